"""LMS, IDBD and Autostep: the step-size rules on the loss gradient `g`, the curvature
`c` and (for the meta-learning rules) the meta-gradient (see `alberta_eqx._rules`)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, PyTree

from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules._params import Params


def loss_gradient(error: Array, z: Params) -> Params:
    """The loss gradient `g = -delta * z` of `L = delta**2 / 2`, for the error `delta`
    and the prediction gradient (or trace) `z`. With one error per head (shape `(k,)`)
    each leaf of `z` holds the heads on its leading axis: `g_i = -delta_i z_i`."""
    return jax.tree.map(
        lambda z: -error.reshape(error.shape + (1,) * (z.ndim - error.ndim)) * z, z
    )


def lms(step_size: ArrayLike, g: Params) -> Params:
    """LMS (Widrow-Hoff): `w <- w + alpha * delta * x`, i.e. the update `-alpha * g`."""
    return jax.tree.map(lambda g: -step_size * g, g)


class IDBDState(NamedTuple):
    """IDBD's per-parameter state (Sutton 1992, Figure 2).

    **Fields:**

    - `log_step_size`: `beta_i`, with `alpha_i = exp(beta_i)`.
    - `meta_trace`: `h_i`, a decaying trace of recent weight changes.
    """

    log_step_size: Params
    meta_trace: Params

    @property
    def step_size(self) -> Params:
        """`alpha_i = exp(beta_i)`: the step-sizes of the latest update."""
        return jax.tree.map(jnp.exp, self.log_step_size)


def idbd_init(params: Params, initial_step_size: ArrayLike) -> IDBDState:
    """`beta_i = ln(alpha_init)`, `h_i = 0`."""
    return IDBDState(
        log_step_size=jax.tree.map(lambda p: jnp.full_like(p, jnp.log(initial_step_size)), params),
        meta_trace=jax.tree.map(jnp.zeros_like, params),
    )


def idbd(
    state: IDBDState,
    g: Params,
    c: Params,
    meta_step_size: ArrayLike,
    meta_gradient: Params | None = None,
) -> tuple[Params, IDBDState]:
    """One IDBD step (Sutton 1992, Figure 2), in the paper's order.

    `meta_gradient` (default `g`) is the gradient the step-sizes descend when it is not
    the one that moves the weights: TD-IDBD's (semi-)gradient of the TD error, where
    the weights move along the eligibility trace (`alberta_eqx.td`).

    No clip guards `beta`: the rule is exactly the published one, and a meta
    step-size large enough to make it diverge shows up as non-finite values.
    """

    def leaf(beta, h, g, m, c):
        beta = beta - meta_step_size * m * h  # beta_i += theta delta x_i h_i, OLD h_i
        alpha = jnp.exp(beta)  # the NEW alpha_i ...
        update = -alpha * g  # ... moves the weight: w_i += alpha_i delta x_i
        h = h * jnp.maximum(1 - alpha * c, 0) - alpha * g  # h_i [1 - alpha_i x_i^2]^+ + ...
        return update, beta, h

    m = g if meta_gradient is None else meta_gradient
    out = jax.tree.map(leaf, state.log_step_size, state.meta_trace, g, m, c)
    update, beta, h = _unzip(out, g, 3)
    return update, IDBDState(log_step_size=beta, meta_trace=h)


class AutostepState(NamedTuple):
    """Autostep's per-parameter state (Mahmood et al. 2012, Table 1).

    **Fields:**

    - `step_size`: `alpha_i`.
    - `meta_trace`: `h_i`.
    - `step_size_normalizer`: `v_i`, the self-regulated running magnitude of
      `delta x_i h_i`.
    """

    step_size: Params
    meta_trace: Params
    step_size_normalizer: Params


def autostep_init(params: Params, initial_step_size: ArrayLike) -> AutostepState:
    """`alpha_i = alpha_init`, `h_i = v_i = 0`."""
    return AutostepState(
        step_size=jax.tree.map(lambda p: jnp.full_like(p, initial_step_size), params),
        meta_trace=jax.tree.map(jnp.zeros_like, params),
        step_size_normalizer=jax.tree.map(jnp.zeros_like, params),
    )


def autostep(
    state: AutostepState,
    g: Params,
    c: Params,
    meta_step_size: ArrayLike,
    tau: ArrayLike,
    meta_gradient: Params | None = None,
) -> tuple[Params, AutostepState]:
    """One Autostep step (Mahmood et al. 2012, Table 1).

    The overshoot guard `M` sums `alpha_i * c_i` over every element of every leaf, so
    it spans all the parameters (a linear learner's bias included). `meta_gradient`
    (default `g`) is the gradient the normaliser and the step-sizes follow, as in
    `idbd` (AutoTDIDBD: `Autostep` in a `TDLinearLearner`, `alberta_eqx.td`).
    """

    def meta(alpha, h, v, m, c):
        dxh = -m * h  # delta x_i h_i
        abs_dxh = jnp.abs(dxh)
        # v_i <- max(|delta x_i h_i|, v_i + (1/tau) alpha_i x_i^2 (|delta x_i h_i| - v_i))
        v = jnp.maximum(abs_dxh, v + alpha * c * (abs_dxh - v) / tau)
        # alpha_i <- alpha_i exp(mu delta x_i h_i / v_i) where v_i != 0
        nonzero = v != 0
        ratio = jnp.where(nonzero, dxh / jnp.where(nonzero, v, 1), 0)
        return alpha * jnp.exp(meta_step_size * ratio), v

    m = g if meta_gradient is None else meta_gradient
    alpha, v = _unzip(
        jax.tree.map(meta, state.step_size, state.meta_trace, state.step_size_normalizer, m, c),
        g,
        2,
    )
    # M <- max(sum_i alpha_i x_i^2, 1), over all parameters
    effective = jax.tree.map(lambda a, c: jnp.sum(a * c), alpha, c)
    m = jnp.maximum(sum(jax.tree.leaves(effective)), 1)

    def apply(alpha, h, g, c):
        alpha = alpha / m
        update = -alpha * g  # w_i += alpha_i delta x_i
        # h_i [1 - alpha_i x_i^2]^+ + alpha_i delta x_i; with c >= 0, M keeps every
        # alpha_i c_i <= 1 and [.]^+ never binds (Table 1 omits it); TD's c can be < 0.
        h = h * jnp.maximum(1 - alpha * c, 0) - alpha * g
        return update, alpha, h

    update, alpha, h = _unzip(jax.tree.map(apply, alpha, state.meta_trace, g, c), g, 3)
    return update, AutostepState(step_size=alpha, meta_trace=h, step_size_normalizer=v)


def _unzip(tree: PyTree, like: Params, n: int) -> tuple[Params, ...]:
    """Turn a tree shaped like `like` whose leaves are n-tuples into n trees."""
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tree)
