"""Eligibility traces, trace-SGD, ObGD, AdaptiveObGD and the ObGD bound: the rules on
the error `delta` and the prediction gradient (see `alberta_eqx._rules`)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules._params import Params
from alberta_eqx._rules.step_sizes import lms

# Eligibility traces, ObGD, AdaptiveObGD and the ObGD bound (Elsayed, Vasan and
# Mahmood 2024, "Streaming Deep Reinforcement Learning Finally Works", Algorithm 3
# and Appendix B). These rules take the error `delta` (TD error, or `y* - y`) and the
# prediction's gradient `grad = dv/dtheta` rather than the loss gradient: the trace
# accumulates `grad`, and the current `delta` weights the whole trace.


class TraceState(NamedTuple):
    """An eligibility trace over the parameters.

    **Fields:**

    - `trace`: `z`, shaped like the parameters.
    """

    trace: Params


def trace_init(params: Params) -> TraceState:
    """`z = 0`."""
    return TraceState(trace=jax.tree.map(jnp.zeros_like, params))


def accumulate_trace(trace: Params, decay: ArrayLike, grad: Params) -> Params:
    """The accumulating trace `z <- decay z + grad` (every leaf, every element);
    `decay = gamma lambda`, and 0 cuts the trace (the first step of an episode)."""
    return jax.tree.map(lambda z, g: decay * z + g, trace, grad)


def replace_trace(trace: Params, decay: ArrayLike, grad: Params) -> Params:
    """The replacing trace for binary features (Singh and Sutton 1996; Sutton and
    Barto 2018, sec. 12.3): `z_i <- grad_i` where `grad_i != 0` (an active feature's
    trace is reset to its value, 1), `z_i <- decay z_i` elsewhere."""
    return jax.tree.map(lambda z, g: jnp.where(g != 0, g, decay * z), trace, grad)


def obgd_bound(updates: Params, error: ArrayLike, kappa: ArrayLike) -> tuple[Params, Array]:
    """The ObGD bound on any update `u` (0.17's `ObGDBounding`): `u` times

        s = 1 / max(kappa * delta_bar * ||u / delta||_1, 1),   delta_bar = max(|delta|, 1),

    with one L1 norm over every element of every leaf. Since
    `delta_bar / |delta| = 1 / min(|delta|, 1)`, this caps the update's L1 norm at
    `min(|delta|, 1) / kappa`: `s = min(1, min(|delta|, 1) / (kappa ||u||_1))`, the
    form computed here. It is defined for every `delta`: `s = 1` when `u = 0`, and
    when `delta = 0` a nonzero `u` is scaled to 0 (the limit of `s` as
    `delta -> 0`). For the trace-SGD update `u = alpha delta z` it gives ObGD's
    `alpha / max(alpha kappa delta_bar ||z||_1, 1)` exactly.

    Returns the bounded update and `s`.
    """
    norm = sum(jnp.sum(jnp.abs(u)) for u in jax.tree.leaves(updates))
    cap = jnp.minimum(jnp.abs(error), 1) / kappa  # min(|delta|, 1) / kappa
    binds = norm > cap
    scale = jnp.where(binds, cap / jnp.where(binds, norm, 1), 1)
    return jax.tree.map(lambda u: scale * u, updates), scale


def trace_sgd(
    state: TraceState, error: ArrayLike, grad: Params, decay: ArrayLike, step_size: ArrayLike
) -> tuple[Params, TraceState]:
    """Trace-SGD, semi-gradient TD(lambda)'s update on any parameters:
    `z <- decay z + grad`, then `w <- w + alpha delta z` (LMS on the gradient
    `-delta z`)."""
    z = accumulate_trace(state.trace, decay, grad)
    return lms(step_size, jax.tree.map(lambda z: -error * z, z)), TraceState(trace=z)


def obgd(
    state: TraceState,
    error: ArrayLike,
    grad: Params,
    decay: ArrayLike,
    step_size: ArrayLike,
    kappa: ArrayLike,
) -> tuple[Params, TraceState, Array]:
    """One ObGD step (Elsayed et al. 2024, Algorithm 3):

        z         <- decay z + grad                       # decay = gamma lambda
        M         <- alpha kappa max(|delta|, 1) ||z||_1  # one L1 norm over all parameters
        alpha_eff <- alpha / max(M, 1)
        w         <- w + alpha_eff delta z

    computed as trace-SGD followed by the bound (`obgd_bound`), which is the same
    update. Returns the update, the new state and the bound's scale
    `alpha_eff / alpha`.
    """
    updates, state = trace_sgd(state, error, grad, decay, step_size)
    updates, scale = obgd_bound(updates, error, kappa)
    return updates, state, scale


class AdaptiveObGDState(NamedTuple):
    """AdaptiveObGD's state (Elsayed et al. 2024, Appendix B).

    **Fields:**

    - `trace`: `z`, the eligibility trace.
    - `second_moment`: `v`, the running second moment of `delta z`.
    - `count`: `t`, the number of steps taken (for the bias correction).
    """

    trace: Params
    second_moment: Params
    # `count` shadows `tuple.count` (mypy: an incompatible override); the field wins on
    # attribute access, and the name is part of the state's public, saved layout.
    count: Array  # type: ignore[assignment]


def adaptive_obgd_init(params: Params) -> AdaptiveObGDState:
    """`z = v = 0`, `t = 0`."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return AdaptiveObGDState(trace=zeros, second_moment=zeros, count=jnp.zeros((), jnp.int32))


def adaptive_obgd(
    state: AdaptiveObGDState,
    error: ArrayLike,
    grad: Params,
    decay: ArrayLike,
    step_size: ArrayLike,
    kappa: ArrayLike,
    beta2: ArrayLike,
    eps: ArrayLike,
) -> tuple[Params, AdaptiveObGDState, Array]:
    """One AdaptiveObGD step (Elsayed et al. 2024, Appendix B; the authors' `optim.py`):

        z         <- decay z + grad
        v         <- beta2 v + (1 - beta2) (delta z)^2
        v_hat     <- v / (1 - beta2^t)
        M         <- alpha kappa max(|delta|, 1) ||z / sqrt(v_hat + eps)||_1
        w         <- w + alpha / max(M, 1) delta z / sqrt(v_hat + eps)

    computed as the step `alpha delta z / sqrt(v_hat + eps)` followed by the bound
    (`obgd_bound`). Returns the update, the new state and the bound's scale.
    """
    z = accumulate_trace(state.trace, decay, grad)
    # t only drives the bias correction 1 - beta2^t: it saturates at 2**31 - 1 rather
    # than wrap to a negative int32 (beta2^-2**31 = inf). Exact wherever beta2^(2**31 - 1)
    # underflows to 0: every beta2 < 1 in float32, beta2 < 1 - 3.5e-7 in float64.
    count = optax.safe_increment(state.count)
    correction = 1 - beta2**count
    v = jax.tree.map(
        lambda v, z: beta2 * v + (1 - beta2) * jnp.square(error * z), state.second_moment, z
    )
    steps = jax.tree.map(lambda z, v: z / jnp.sqrt(v / correction + eps), z, v)
    updates, scale = obgd_bound(
        lms(step_size, jax.tree.map(lambda s: -error * s, steps)), error, kappa
    )
    return updates, AdaptiveObGDState(trace=z, second_moment=v, count=count), scale
