"""The step-size rules (LMS, IDBD, Autostep) and the trace rules (trace-SGD, ObGD,
AdaptiveObGD, the ObGD bound, AGC) as optax transformations; the package docstring
(`alberta_eqx.optax`) describes their interface."""

from collections.abc import Callable
from typing import TypeVar

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array

from alberta_eqx import _checks, _rules
from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules import AdaptiveObGDState, AutostepState, IDBDState, Params, TraceState
from alberta_eqx.optax._recording import recorded

__all__ = [
    "AdaptiveObGDState",
    "AutostepState",
    "IDBDState",
    "TraceState",
    "adaptive_obgd",
    "agc",
    "autostep",
    "idbd",
    "lms",
    "obgd",
    "obgd_bound",
    "trace_sgd",
]


_State = TypeVar("_State")


def _curvature(grads: Params, curvature: Params | None) -> Params:
    """The curvature `z**2` as given, or the fallback `g**2` (see the module docstring)."""
    if curvature is None:
        return jax.tree.map(jnp.square, grads)
    if jax.tree.structure(curvature) != jax.tree.structure(grads):
        raise ValueError(
            "curvature must be a pytree shaped like the gradients, got structure "
            f"{jax.tree.structure(curvature)} for gradients {jax.tree.structure(grads)} "
            "(inside optax.masked / optax.partition, pass mask_compatible_extra_args=True)"
        )
    return curvature


def _meta_gradient(grads: Params, meta_gradient: Params | None) -> Params | None:
    """The gradient the step-sizes descend when it is not `grads` (TD-IDBD's
    `-delta grad_w v` while the weights move along `-delta e`), checked; None for
    `grads` itself."""
    if meta_gradient is not None and jax.tree.structure(meta_gradient) != jax.tree.structure(
        grads
    ):
        raise ValueError(
            "meta_gradient must be a pytree shaped like the gradients, got structure "
            f"{jax.tree.structure(meta_gradient)} for gradients {jax.tree.structure(grads)}"
        )
    return meta_gradient


def _like(grads: Params, *hyperparameters: Array) -> tuple[Array, ...]:
    """The hyperparameters in the gradients' (lowest) floating-point dtype, so that no
    leaf of the state is promoted: its dtype stays the same from step to step, as
    `lax.scan` needs (float32 parameters with `jax_enable_x64` on, say)."""
    dtype = optax.tree.dtype(grads, "lowest")
    return tuple(jnp.asarray(h, dtype) for h in hyperparameters)


@recorded
def lms(step_size: ArrayLike = 0.01) -> optax.GradientTransformationExtraArgs:
    """LMS (Widrow-Hoff): the update `-alpha g`, i.e. `w <- w + alpha delta x`. This is
    plain SGD, here so that all three rules have the same interface.

    **Arguments:**

    - `step_size`: `alpha > 0`.

    **Returns:** an `optax.GradientTransformationExtraArgs` with an empty state; its
    `update` ignores extra arguments.
    """
    step_size = _checks.positive("step_size", step_size)

    def update_fn(
        updates: Params, state: optax.EmptyState, params: Params | None = None, **extra_args
    ) -> tuple[Params, optax.EmptyState]:
        del params, extra_args
        (alpha,) = _like(updates, step_size)
        return _rules.lms(alpha, updates), state

    return optax.GradientTransformationExtraArgs(optax.init_empty_state, update_fn)


@recorded
def idbd(
    initial_step_size: ArrayLike = 0.01, *, meta_step_size: ArrayLike = 0.01
) -> optax.GradientTransformationExtraArgs:
    """IDBD (Sutton 1992, Figure 2): a step-size `alpha = exp(beta)` per parameter,
    meta-learned by gradient descent.

    **Arguments:**

    - `initial_step_size`: every `alpha` at the start. The default `0.01` is a
      conservative step for inputs of unit scale; IDBD raises it where that helps.
    - `meta_step_size`: `theta >= 0` (`0` gives LMS with `initial_step_size`). IDBD's
      best `theta` depends on the units of the target: set it for your problem.

    The parameters, their order and defaults are those of `alberta_eqx.IDBD`.

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is an
    `IDBDState` (`state.step_size` reads the per-parameter step-sizes, shaped like the
    parameters). Its `update(grads, state, params=None, *, curvature=None)` takes
    the curvature `z**2` as a keyword argument; without it, `g**2` stands in, which
    is exact only when `|delta| = 1` (see the module docstring).
    """
    meta_step_size = _checks.non_negative("meta_step_size", meta_step_size)
    initial_step_size = _checks.positive("initial_step_size", initial_step_size)

    def init_fn(params: Params) -> IDBDState:
        return _rules.idbd_init(params, initial_step_size)

    def update_fn(
        updates: Params,
        state: IDBDState,
        params: Params | None = None,
        *,
        curvature: Params | None = None,
        meta_gradient: Params | None = None,
        **extra_args,
    ) -> tuple[Params, IDBDState]:
        del params, extra_args
        (theta,) = _like(updates, meta_step_size)
        return _rules.idbd(
            state,
            updates,
            _curvature(updates, curvature),
            theta,
            meta_gradient=_meta_gradient(updates, meta_gradient),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recorded
def autostep(
    initial_step_size: ArrayLike = 0.01,
    *,
    meta_step_size: ArrayLike = 0.01,
    tau: ArrayLike = 1e4,
) -> optax.GradientTransformationExtraArgs:
    """Autostep (Mahmood et al. 2012, Table 1): IDBD with a self-regulated normaliser
    `v` of the meta-gradient and an overshoot guard `M` over all the parameters.

    **Arguments:**

    - `initial_step_size`: every `alpha` at the start. The paper uses `0.1 / n` for
      `n` inputs; the default `0.01` is that for about ten inputs per unit, and the
      guard `M` shrinks any start that overshoots (with the curvature given).
    - `meta_step_size`: `mu > 0` (the paper's suggested `1e-2`).
    - `tau`: the time scale of `v`'s decay (suggested `1e4`).

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is an
    `AutostepState` (`state.step_size` reads the per-parameter step-sizes,
    `state.step_size_normalizer` the `v`). Its `update(grads, state, params=None, *,
    curvature=None)` takes the curvature `z**2` as a keyword argument; without it,
    `g**2` stands in, so the guard becomes `M = max(sum alpha delta^2 z^2, 1)`, which
    depends on the error's scale, and the invariance to the target's scale is lost
    (see the module docstring).
    """
    meta_step_size = _checks.positive("meta_step_size", meta_step_size)
    initial_step_size = _checks.positive("initial_step_size", initial_step_size)
    tau = _checks.positive("tau", tau)

    def init_fn(params: Params) -> AutostepState:
        return _rules.autostep_init(params, initial_step_size)

    def update_fn(
        updates: Params,
        state: AutostepState,
        params: Params | None = None,
        *,
        curvature: Params | None = None,
        meta_gradient: Params | None = None,
        **extra_args,
    ) -> tuple[Params, AutostepState]:
        del params, extra_args
        mu, tau_ = _like(updates, meta_step_size, tau)
        return _rules.autostep(
            state,
            updates,
            _curvature(updates, curvature),
            mu,
            tau_,
            meta_gradient=_meta_gradient(updates, meta_gradient),
        )

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


# ---------------------------------------------------------------------------------
# ObGD, AdaptiveObGD, trace-SGD, the ObGD bound and AGC


def _trace_update(
    name: str,
    rule: Callable[..., tuple],
    hyperparameters: tuple[Array, ...],
    updates: Params,
    state: _State,
    *,
    error: ArrayLike | None = None,
    prediction_gradient: Params | None = None,
    trace_decay: ArrayLike = 0.0,
    **extra_args,
) -> tuple[Params, _State]:
    """The update function of the trace transformation `name`, one step of `rule`
    (`_rules.trace_sgd`, `obgd` or `adaptive_obgd`) with its `hyperparameters`: the
    error, the prediction gradient and the trace decay checked, and they and the
    hyperparameters cast to the parameters' dtype (module docstring). `updates` only
    gives the parameters' structure and dtype; ObGD's scale is dropped."""
    del extra_args
    if error is None or prediction_gradient is None:
        raise ValueError(
            f"{name} needs the keyword arguments error (the scalar delta) and "
            "prediction_gradient (dv/dtheta, shaped like the parameters): "
            f"tx.update(grads, state, params, error=..., prediction_gradient=..., "
            f"trace_decay=...)"
        )
    if jax.tree.structure(prediction_gradient) != jax.tree.structure(updates):
        raise ValueError(
            "prediction_gradient must be a pytree shaped like the parameters, got "
            f"structure {jax.tree.structure(prediction_gradient)} for "
            f"{jax.tree.structure(updates)} (inside optax.masked / optax.partition, "
            "pass mask_compatible_extra_args=True)"
        )
    if jnp.shape(error) != ():
        raise ValueError(f"error must be a scalar, got shape {jnp.shape(error)}")
    if jnp.shape(trace_decay) != ():
        raise ValueError(f"trace_decay must be a scalar, got shape {jnp.shape(trace_decay)}")
    delta, decay = _like(updates, jnp.asarray(error), jnp.asarray(trace_decay))
    # `trace_sgd` returns (updates, state); `obgd` and `adaptive_obgd` add the scale.
    new_updates, new_state, *_ = rule(
        state, delta, prediction_gradient, decay, *_like(updates, *hyperparameters)
    )
    return new_updates, new_state


@recorded
def trace_sgd(step_size: ArrayLike = 1.0) -> optax.GradientTransformationExtraArgs:
    """Trace-SGD: semi-gradient TD(lambda)'s update on any parameters,
    `z <- trace_decay z + dv/dtheta`, `w <- w + alpha delta z`, with the trace in the
    state. ObGD is this followed by `obgd_bound`.

    **Arguments:**

    - `step_size`: `alpha > 0`.

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is a
    `TraceState`; its `update(grads, state, params=None, *, error, prediction_gradient,
    trace_decay=0.0)` ignores `grads` (module docstring).
    """
    step_size = _checks.positive("step_size", step_size)

    def update_fn(
        updates: Params, state: TraceState, params: Params | None = None, **extra_args
    ) -> tuple[Params, TraceState]:
        del params
        return _trace_update(
            "trace_sgd", _rules.trace_sgd, (step_size,), updates, state, **extra_args
        )

    return optax.GradientTransformationExtraArgs(_rules.trace_init, update_fn)


@recorded
def obgd(
    step_size: ArrayLike = 1.0, *, kappa: ArrayLike = 2.0
) -> optax.GradientTransformationExtraArgs:
    """ObGD, observation-bounded gradient descent (Elsayed, Vasan and Mahmood 2024,
    Algorithm 3): trace-SGD whose step-size shrinks, for this step only, to
    `alpha / max(alpha kappa max(|delta|, 1) ||z||_1, 1)`, so that one update cannot
    overshoot the error.

    **Arguments:**

    - `step_size`: `alpha > 0` (the paper's default 1.0).
    - `kappa`: `kappa > 0`, the bound's strength (the paper: 2 for values, 3 for
      policies).

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is a
    `TraceState`; its `update(grads, state, params=None, *, error, prediction_gradient,
    trace_decay=0.0)` ignores `grads` (module docstring).
    """
    step_size = _checks.positive("step_size", step_size)
    kappa = _checks.positive("kappa", kappa)

    def update_fn(
        updates: Params, state: TraceState, params: Params | None = None, **extra_args
    ) -> tuple[Params, TraceState]:
        del params
        return _trace_update("obgd", _rules.obgd, (step_size, kappa), updates, state, **extra_args)

    return optax.GradientTransformationExtraArgs(_rules.trace_init, update_fn)


@recorded
def adaptive_obgd(
    step_size: ArrayLike = 1.0,
    *,
    kappa: ArrayLike = 2.0,
    beta2: ArrayLike = 0.999,
    eps: ArrayLike = 1e-8,
) -> optax.GradientTransformationExtraArgs:
    """AdaptiveObGD (Elsayed, Vasan and Mahmood 2024, Appendix B): ObGD on the trace
    divided by `sqrt(v_hat + eps)`, where `v` is the bias-corrected running second
    moment of `delta z`, as Adam's.

    **Arguments:**

    - `step_size`: `alpha > 0` (default 1.0).
    - `kappa`: `kappa > 0` (default 2.0).
    - `beta2`: the second moment's decay, in `[0, 1)` (default 0.999).
    - `eps`: `eps > 0`, added to `v_hat` under the square root (default `1e-8`).

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is an
    `AdaptiveObGDState`; its `update` takes the same keyword arguments as `obgd`'s.
    """
    step_size = _checks.positive("step_size", step_size)
    kappa = _checks.positive("kappa", kappa)
    beta2 = _checks.unit_interval_open("beta2", beta2)
    eps = _checks.positive("eps", eps)

    def update_fn(
        updates: Params, state: AdaptiveObGDState, params: Params | None = None, **extra_args
    ) -> tuple[Params, AdaptiveObGDState]:
        del params
        return _trace_update(
            "adaptive_obgd",
            _rules.adaptive_obgd,
            (step_size, kappa, beta2, eps),
            updates,
            state,
            **extra_args,
        )

    return optax.GradientTransformationExtraArgs(_rules.adaptive_obgd_init, update_fn)


@recorded
def obgd_bound(kappa: ArrayLike = 2.0) -> optax.GradientTransformationExtraArgs:
    """The ObGD bound on any update (0.17's `ObGDBounding`): the incoming update `u`
    times `1 / max(kappa max(|delta|, 1) ||u / delta||_1, 1)`, one L1 norm over all
    the parameters. This caps `||u||_1` at `min(|delta|, 1) / kappa`; with
    `delta = 0` a nonzero update becomes 0 (`alberta_eqx._rules.obgd_bound` defines
    it). Put it last in a chain: `optax.chain(alberta_eqx.optax.autostep(),
    obgd_bound(2.0))`.

    **Arguments:**

    - `kappa`: `kappa > 0`.

    **Returns:** an `optax.GradientTransformationExtraArgs` with an empty state; its
    `update(updates, state, params=None, *, error)` needs the error.
    """
    kappa = _checks.positive("kappa", kappa)

    def update_fn(
        updates: Params,
        state: optax.EmptyState,
        params: Params | None = None,
        *,
        error: ArrayLike | None = None,
        **extra_args,
    ) -> tuple[Params, optax.EmptyState]:
        del params, extra_args
        if error is None:
            raise ValueError(
                "obgd_bound needs the keyword argument error (the scalar delta): "
                "tx.update(grads, state, params, error=delta)"
            )
        if jnp.shape(error) != ():
            raise ValueError(f"error must be a scalar, got shape {jnp.shape(error)}")
        delta, kappa_ = _like(updates, jnp.asarray(error), kappa)
        return _rules.obgd_bound(updates, delta, kappa_)[0], state

    return optax.GradientTransformationExtraArgs(optax.init_empty_state, update_fn)


def _unit_axes(p: Array) -> tuple[int, ...] | None:
    """The axes of one unit's norm in Equinox's layout: a weight `(out, in, ...)` has a
    unit per output row (norm over every axis but the first); a bias or any vector is
    one unit (optax's and Brock et al.'s convention)."""
    return None if p.ndim <= 1 else tuple(range(1, p.ndim))


@recorded
def agc(
    clipping: ArrayLike = 0.01, *, eps: ArrayLike = 1e-3
) -> optax.GradientTransformationExtraArgs:
    """Adaptive gradient clipping (Brock, De, Smith and Simonyan 2021) for Equinox's
    weight layout: every output unit's slice `G_i` of the incoming updates is scaled
    to `clipping max(||W_i||, eps) G_i / ||G_i||` where `||G_i|| > clipping max(||W_i||,
    eps)` (L2 norms over the unit, `W_i` the parameters').

    This is `optax.adaptive_grad_clip` applied leaf by leaf with the unit axes of an
    `eqx.nn.Linear`: a weight `(out, in)` has one unit per row (optax's default axis
    is for `(in, out)` kernels, where it would take columns), a bias is one unit.
    Placed before a step rule it clips gradients (Brock et al.); placed after one,
    `optax.chain(lms(alpha), agc(...))`, it clips updates, as 0.17's `AGCBounding`.
    It needs the model's pytree (`MLPLearner(flatten=False)`, the default) and `params`.

    **Arguments:**

    - `clipping`: `lambda > 0`, the largest allowed ratio of a unit's update norm to its
      weight norm (default 0.01).
    - `eps`: `eps > 0`, the floor on the weight norm (default `1e-3`).

    **Returns:** an `optax.GradientTransformationExtraArgs` with an empty state.
    """
    clipping = _checks.positive("clipping", clipping)
    eps = _checks.positive("eps", eps)

    def update_fn(
        updates: Params,
        state: optax.EmptyState,
        params: Params | None = None,
        **extra_args,
    ) -> tuple[Params, optax.EmptyState]:
        del extra_args
        if params is None:
            raise ValueError("agc needs params: tx.update(updates, state, params)")
        clip, eps_ = _like(updates, clipping, eps)

        def leaf(u: Array, p: Array) -> Array:
            clipper = optax.adaptive_grad_clip(clip, eps_, axis=_unit_axes(p))
            return clipper.update(u, optax.EmptyState(), p)[0]

        return jax.tree.map(leaf, updates, params), state

    return optax.GradientTransformationExtraArgs(optax.init_empty_state, update_fn)
