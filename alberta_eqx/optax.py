"""IDBD, Autostep and LMS as optax gradient transformations, for any parameter pytree.

    tx = optax.chain(optax.clip_by_global_norm(1.0), alberta_eqx.optax.autostep())
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, curvature=z_squared)
    params = optax.apply_updates(params, updates)

`grads` is the loss gradient `g = dL/dtheta`, as optax always passes it. The meta-rules
also need the curvature `c = z**2`, the squared gradient of the *prediction* with
respect to each parameter (ALGORITHMS.md, "on any parameter pytree"): pass it as the
extra keyword argument `curvature`, a pytree shaped like the parameters. For a linear
model `z = x` (and `1` for a bias), and the transformations then equal the papers'
per-weight rules exactly. `alberta_eqx.MLPLearner` computes `z` once per step and
passes both.

**Without `curvature`** the transformations use `g**2` in its place (the squared loss
gradient). Since `g = -delta z`, that is `delta**2 z**2`: exact only when `|delta| = 1`.
For IDBD the trace then decays by `[1 - alpha delta^2 z^2]^+`, fast after large errors
and hardly at all after small ones. For Autostep the overshoot guard becomes
`M = max(sum alpha delta^2 z^2, 1)`: it depends on the error's units, so it
normalises the step-sizes too much after large errors and not at all after small ones,
and Autostep loses its invariance to the scale of the target. Pass the curvature
whenever the model can give it.

**Composition.** `optax.chain` hands every extra keyword argument to each of its
members (`optax.with_extra_args_support` lets plain transformations ignore them);
`optax.inject_hyperparams(alberta_eqx.optax.idbd)(meta_step_size=...)` forwards them
to the transformation it rebuilds each step, with the hyperparameters read from
`state.hyperparams` (change them there between steps). A transformation placed
*before* ours in a chain (clipping, scaling) changes `g` but not `curvature`. Inside
`optax.masked` or `optax.partition`, pass `mask_compatible_extra_args=True` so the
curvature is masked like the gradients; Autostep's `M` then sums over its own part of
the parameters only.

The rules are the ones in `alberta_eqx._rules`, shared with the linear optimizers.
"""

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import AutostepState, IDBDState, Params

__all__ = ["AutostepState", "IDBDState", "autostep", "idbd", "lms"]


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


def _like(grads: Params, *hyperparameters: Array) -> tuple[Array, ...]:
    """The hyperparameters in the gradients' (lowest) floating-point dtype, so that no
    leaf of the state is promoted: its dtype stays the same from step to step, as
    `lax.scan` needs (float32 parameters with `jax_enable_x64` on, say)."""
    dtype = optax.tree.dtype(grads, "lowest")
    return tuple(jnp.asarray(h, dtype) for h in hyperparameters)


def lms(step_size: ArrayLike) -> optax.GradientTransformationExtraArgs:
    """LMS (Widrow-Hoff): the update `-alpha g`, i.e. `w <- w + alpha delta x`. This is
    plain SGD, here so that all three rules have the same interface.

    **Arguments:**

    - `step_size`: `alpha > 0`.

    **Returns:** an `optax.GradientTransformationExtraArgs` with an empty state; its
    `update` ignores extra arguments.
    """
    step_size = _checks.positive("step_size", step_size)

    def init_fn(params: Params) -> optax.EmptyState:
        del params
        return optax.EmptyState()

    def update_fn(
        updates: Params, state: optax.EmptyState, params: Params | None = None, **extra_args
    ) -> tuple[Params, optax.EmptyState]:
        del params, extra_args
        (alpha,) = _like(updates, step_size)
        return _rules.lms(alpha, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def idbd(
    meta_step_size: ArrayLike, initial_step_size: ArrayLike = 0.01
) -> optax.GradientTransformationExtraArgs:
    """IDBD (Sutton 1992, Figure 2): a step-size `alpha = exp(beta)` per parameter,
    meta-learned by gradient descent.

    **Arguments:**

    - `meta_step_size`: `theta >= 0` (`0` gives LMS with `initial_step_size`). IDBD's
      best `theta` depends on the units of the target; there is no default.
    - `initial_step_size`: every `alpha` at the start. The default `0.01` is a
      conservative step for inputs of unit scale (and the default of
      `alberta_eqx.IDBD`); IDBD raises it where that helps.

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
        **extra_args,
    ) -> tuple[Params, IDBDState]:
        del params, extra_args
        (theta,) = _like(updates, meta_step_size)
        return _rules.idbd(state, updates, _curvature(updates, curvature), theta)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def autostep(
    meta_step_size: ArrayLike = 1e-2,
    initial_step_size: ArrayLike = 0.01,
    tau: ArrayLike = 1e4,
) -> optax.GradientTransformationExtraArgs:
    """Autostep (Mahmood et al. 2012, Table 1): IDBD with a self-regulated normaliser
    `v` of the meta-gradient and an overshoot guard `M` over all the parameters.

    **Arguments:**

    - `meta_step_size`: `mu > 0` (the paper's suggested `1e-2`).
    - `initial_step_size`: every `alpha` at the start. The paper uses `0.1 / n` for
      `n` inputs; the default `0.01` is that for about ten inputs per unit, and the
      guard `M` shrinks any start that overshoots (with the curvature given).
    - `tau`: the time scale of `v`'s decay (suggested `1e4`).

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is an
    `AutostepState` (`state.step_size` reads the per-parameter step-sizes,
    `state.normalizer` the `v`). Its `update(grads, state, params=None, *,
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
        **extra_args,
    ) -> tuple[Params, AutostepState]:
        del params, extra_args
        mu, tau_ = _like(updates, meta_step_size, tau)
        return _rules.autostep(state, updates, _curvature(updates, curvature), mu, tau_)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
