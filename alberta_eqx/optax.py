"""IDBD, Autostep and LMS as optax gradient transformations, for any parameter pytree.

    tx = optax.chain(optax.clip_by_global_norm(1.0), alberta_eqx.optax.autostep())
    state = tx.init(params)
    updates, state = tx.update(grads, state, params, curvature=z_squared)
    params = optax.apply_updates(params, updates)

`grads` is the loss gradient `g = dL/dtheta`, as optax always passes it. The meta-rules
also need the curvature `c = z**2`, the squared gradient of the *prediction* with
respect to each parameter (ALGORITHMS.md, "on any parameter pytree"): pass it as the
extra argument `curvature`, a pytree shaped like the parameters. For a linear model
`z = x`, and the transformations then equal the papers' rules exactly.

**Without `curvature`** the transformations use `g**2` in its place. That equals `z**2`
only when `|delta| = 1` (since `g = -delta z`): IDBD's trace then decays by
`[1 - alpha g^2]^+`, and Autostep's overshoot guard becomes
`M = max(sum alpha g^2, 1)`, which depends on the loss's units, so Autostep loses its
invariance to the target's scale. Pass the curvature when you can (as
`alberta_eqx.MLPLearner`-style learners do, from one prediction gradient per step).

The rules are the ones in `alberta_eqx._rules`, shared with the linear optimizers.
"""

import jax
import optax
from jaxtyping import ArrayLike

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import AutostepState, IDBDState, Params


def _curvature(grads: Params, curvature: Params | None) -> Params:
    if curvature is None:
        return jax.tree.map(lambda g: g * g, grads)
    if jax.tree.structure(curvature) != jax.tree.structure(grads):
        raise ValueError(
            "curvature must be a pytree shaped like the parameters, got structure "
            f"{jax.tree.structure(curvature)} for gradients {jax.tree.structure(grads)}"
        )
    return curvature


def lms(step_size: ArrayLike) -> optax.GradientTransformationExtraArgs:
    """LMS: the update `-alpha g` (plain SGD, here for symmetry with the others).

    **Arguments:**

    - `step_size`: `alpha > 0`.
    """
    step_size = _checks.positive("step_size", step_size)

    def init_fn(params):
        del params
        return optax.EmptyState()

    def update_fn(updates, state, params=None, **extra_args):
        del params, extra_args
        return _rules.lms(step_size, updates), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def idbd(
    meta_step_size: ArrayLike, initial_step_size: ArrayLike = 0.01
) -> optax.GradientTransformationExtraArgs:
    """IDBD (Sutton 1992, Figure 2): per-parameter step-sizes `exp(beta)`,
    meta-learned. The state is an `IDBDState`; `state.step_size` reads the step-sizes.

    **Arguments:**

    - `meta_step_size`: `theta >= 0`.
    - `initial_step_size`: every step-size at the start (default 0.01).

    `update` takes the extra keyword argument `curvature` (see the module docstring).
    """
    meta_step_size = _checks.non_negative("meta_step_size", meta_step_size)
    initial_step_size = _checks.positive("initial_step_size", initial_step_size)

    def init_fn(params) -> IDBDState:
        return _rules.idbd_init(params, initial_step_size)

    def update_fn(updates, state, params=None, *, curvature=None, **extra_args):
        del params, extra_args
        c = _curvature(updates, curvature)
        return _rules.idbd(state, updates, c, meta_step_size)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


def autostep(
    meta_step_size: ArrayLike = 1e-2,
    initial_step_size: ArrayLike = 0.01,
    tau: ArrayLike = 1e4,
) -> optax.GradientTransformationExtraArgs:
    """Autostep (Mahmood et al. 2012, Table 1): IDBD with a self-regulated normaliser
    and an overshoot guard over every parameter. The state is an `AutostepState`;
    `state.step_size` reads the step-sizes.

    **Arguments:**

    - `meta_step_size`: `mu > 0` (suggested 1e-2).
    - `initial_step_size`: every step-size at the start (default 0.01).
    - `tau`: the time scale of the normaliser's decay (suggested 1e4).

    `update` takes the extra keyword argument `curvature` (see the module docstring).
    """
    meta_step_size = _checks.positive("meta_step_size", meta_step_size)
    initial_step_size = _checks.positive("initial_step_size", initial_step_size)
    tau = _checks.positive("tau", tau)

    def init_fn(params) -> AutostepState:
        return _rules.autostep_init(params, initial_step_size)

    def update_fn(updates, state, params=None, *, curvature=None, **extra_args):
        del params, extra_args
        c = _curvature(updates, curvature)
        return _rules.autostep(state, updates, c, meta_step_size, tau)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
