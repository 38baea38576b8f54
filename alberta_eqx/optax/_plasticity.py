"""Remedies for the loss of plasticity as optax transformations: UPGD, shrink-and-perturb,
L2 Init and weight clipping (the rules in `alberta_eqx._rules`; docs/plasticity.md)."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, PRNGKeyArray, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import L2InitState, NoiseState, Params, UPGDState, WeightClippingState
from alberta_eqx.optax._recording import recorded
from alberta_eqx.optax._step_sizes import _like, lms

__all__ = [
    "L2InitState",
    "NoiseState",
    "UPGDState",
    "WeightClippingState",
    "l2_init",
    "scale_by_upgd",
    "shrink_and_perturb",
    "upgd",
    "weight_clipping",
]


def _raw_key(key: PRNGKeyArray | int | np.ndarray) -> Array:
    """The key as raw `uint32` data (what `jax.random.PRNGKey` returns), so that the
    state holds a plain array that checkpoints and `vmap`s like any other; an int is
    a seed, and a 1-D integer array is raw key data (a saved key, in any integer
    dtype that holds its words)."""
    if isinstance(key, bool) or not isinstance(key, int | np.integer | jax.Array | np.ndarray):
        raise TypeError(f"key must be a JAX PRNG key or an int seed, got {type(key).__name__}")
    if isinstance(key, int | np.integer):
        return jax.random.PRNGKey(int(key))
    if jnp.issubdtype(key.dtype, jax.dtypes.prng_key):
        return jax.random.key_data(key)
    if not jnp.issubdtype(key.dtype, jnp.integer) or key.ndim != 1:
        raise TypeError(
            f"key must be a JAX PRNG key or an int seed, got an array of dtype {key.dtype} "
            f"and shape {key.shape}"
        )
    if key.dtype != jnp.uint32 and not _checks.is_traced(key):
        words = np.asarray(key)
        if words.min(initial=0) < 0 or words.max(initial=0) >= 2**32:
            raise ValueError(f"key's raw data must be 32-bit words, got {words}")
    return jnp.asarray(key, jnp.uint32)


def _needs_params(name: str, params: Params | None) -> Params:
    if params is None:
        raise ValueError(f"{name} needs params: tx.update(updates, state, params)")
    return params


@recorded
def scale_by_upgd(
    key: PRNGKeyArray | int | np.ndarray,
    utility_decay: ArrayLike = 0.999,
    sigma: ArrayLike = 0.001,
    weight_decay: ArrayLike = 0.0,
    protect: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """UPGD's direction (Elsayed and Mahmood 2024, Algorithm 1, first-order utility,
    global scaling): the gradient `g` perturbed and gated by each weight's scaled
    utility `s` in `(0, 1)`, `(g + sigma xi)(1 - s) + weight_decay w` (or, with
    `protect=False`, `g + sigma xi (1 - s) + weight_decay w`), `alberta_eqx._rules.upgd`.
    A step rule after it moves the weights: `upgd` is this followed by `lms`, and
    `optax.chain(scale_by_upgd(key), autostep())` gives Autostep the UPGD direction.

    **Arguments:**

    - `key`: the PRNG key (or int seed) of the perturbations, kept in the state; step
      `t` draws with `fold_in(key, t)` (`alberta_eqx._rules.gaussian_noise`).
    - `utility_decay`: `beta_u` in `[0, 1)`, the decay of the utility's running
      average (default 0.999, as the weight-clipping authors' `UPGD`).
    - `sigma`: `sigma >= 0`, the perturbation's standard deviation (default 0.001).
    - `weight_decay`: `>= 0`, the reference code's decoupled weight decay (default 0).
    - `protect`: True (the default) is the paper's UPGD, where the utility gates the
      gradient and the noise; False is its non-protecting variant, where it gates the
      noise only. With `sigma = 0` and `weight_decay = 0` the non-protecting variant
      is `g` itself, and the protecting one is utility-gated SGD.

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is a
    `UPGDState`; its `update(grads, state, params)` needs `params`.
    """
    key = _raw_key(key)
    utility_decay = _checks.unit_interval_open("utility_decay", utility_decay)
    sigma = _checks.non_negative("sigma", sigma)
    weight_decay = _checks.non_negative("weight_decay", weight_decay)
    protect = bool(protect)

    def init_fn(params: Params) -> UPGDState:
        return _rules.upgd_init(params, key)

    def update_fn(
        updates: Params, state: UPGDState, params: Params | None = None, **extra_args
    ) -> tuple[Params, UPGDState]:
        del extra_args
        params = _needs_params("scale_by_upgd", params)
        beta, sig, wd = _like(updates, utility_decay, sigma, weight_decay)
        return _rules.upgd(state, updates, params, beta, sig, wd, protect)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recorded
def upgd(
    step_size: ArrayLike,
    key: PRNGKeyArray | int | np.ndarray,
    utility_decay: ArrayLike = 0.999,
    sigma: ArrayLike = 0.001,
    weight_decay: ArrayLike = 0.0,
    protect: bool = True,
) -> optax.GradientTransformationExtraArgs:
    """UPGD, utility-based perturbed gradient descent (Elsayed and Mahmood 2024): the
    update `-alpha d`, `d` the direction of `scale_by_upgd` (the arguments are its
    own), i.e. `optax.chain(scale_by_upgd(...), lms(step_size))`.

    **Arguments:**

    - `step_size`: `alpha > 0`.
    - `key`, `utility_decay`, `sigma`, `weight_decay`, `protect`: as `scale_by_upgd`.

    **Returns:** an `optax.GradientTransformationExtraArgs` (a chain); its state's
    first member is the `UPGDState`.
    """
    return optax.chain(
        scale_by_upgd(key, utility_decay, sigma, weight_decay, protect), lms(step_size)
    )


@recorded
def shrink_and_perturb(
    shrink: ArrayLike, sigma: ArrayLike, key: PRNGKeyArray | int | np.ndarray
) -> optax.GradientTransformationExtraArgs:
    """Shrink-and-perturb at every step (Ash and Adams 2020; Dohare et al. 2024): after
    any update `u`, `w <- (1 - shrink) w + u + sigma xi`, `xi` standard normal. Put it
    after a step rule: `optax.chain(lms(alpha), shrink_and_perturb(shrink, sigma,
    key))`. The UPGD authors' `ShrinkandPerturb(lr, decay, sigma)` is this after
    `lms(lr)` with `shrink = lr decay` and `sigma = lr sigma_theirs`.

    **Arguments:**

    - `shrink`: in `[0, 1)`, the fraction of each weight removed every step.
    - `sigma`: `>= 0`, the perturbation's standard deviation.
    - `key`: the PRNG key (or int seed) of the perturbations, kept in the state; step
      `t` draws with `fold_in(key, t)` (`alberta_eqx._rules.gaussian_noise`).

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is a
    `NoiseState`; its `update(updates, state, params)` needs `params`.
    """
    shrink = _checks.unit_interval_open("shrink", shrink)
    sigma = _checks.non_negative("sigma", sigma)
    key = _raw_key(key)

    def init_fn(params: Params) -> NoiseState:
        del params
        return NoiseState(count=jnp.zeros((), jnp.int32), key=key)

    def update_fn(
        updates: Params, state: NoiseState, params: Params | None = None, **extra_args
    ) -> tuple[Params, NoiseState]:
        del extra_args
        params = _needs_params("shrink_and_perturb", params)
        count = state.count + 1
        noise = _rules.gaussian_noise(state.key, count, updates)
        shrink_, sigma_ = _like(updates, shrink, sigma)
        updates = _rules.shrink_and_perturb(updates, params, noise, shrink_, sigma_)
        return updates, NoiseState(count=count, key=state.key)

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recorded
def l2_init(strength: ArrayLike) -> optax.GradientTransformationExtraArgs:
    """L2 Init (Kumar, Marklund and Van Roy 2023): adds the gradient of
    `(lambda / 2) ||w - w_0||^2` to the incoming gradient, `g + lambda (w - w_0)`, with
    `w_0` the parameters `init` was given. Put it before a step rule:
    `optax.chain(l2_init(1e-2), lms(alpha))`.

    **Arguments:**

    - `strength`: `lambda >= 0`.

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is an
    `L2InitState` (holding `w_0`); its `update(grads, state, params)` needs `params`.
    """
    strength = _checks.non_negative("strength", strength)

    def init_fn(params: Params) -> L2InitState:
        return L2InitState(initial=params)

    def update_fn(
        updates: Params, state: L2InitState, params: Params | None = None, **extra_args
    ) -> tuple[Params, L2InitState]:
        del extra_args
        params = _needs_params("l2_init", params)
        (lam,) = _like(updates, strength)
        return _rules.l2_init(updates, params, state.initial, lam), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)


@recorded
def weight_clipping(
    kappa: ArrayLike, bounds: PyTree[ArrayLike] | None = None
) -> optax.GradientTransformationExtraArgs:
    """Weight clipping (Elsayed, Lan, Lyle and Mahmood 2024): after any update, each
    weight is clipped to `[-kappa s, kappa s]`, `s` its layer's initialisation bound.
    Put it last in a chain: `optax.chain(autostep(), weight_clipping(2.0))`.

    **Arguments:**

    - `kappa`: `kappa > 0`, the bound in units of the initialisation bound.
    - `bounds`: the `s` of each leaf, a pytree shaped like the parameters whose leaves
      broadcast to theirs (a scalar per leaf, say). None (the default) computes them
      at `init` from the shapes, as the authors' `InitBounds`: `1 / sqrt(fan_in)`,
      the bound of Equinox's (and PyTorch's) default initialisation, with a weight
      `(out, in, ...)` and its bias after it (`alberta_eqx._rules.initial_bounds`).
      Pass them for any other initialisation (sparse init, say), or for raveled
      parameters (`MLPLearner(flatten=True)`), whose layers cannot be told apart.

    **Returns:** an `optax.GradientTransformationExtraArgs` whose state is a
    `WeightClippingState`; its `update(updates, state, params)` needs `params`.
    """
    kappa = _checks.positive("kappa", kappa)
    if bounds is not None:
        for leaf in jax.tree.leaves(bounds):
            concrete = None if _checks.is_traced(leaf) else np.asarray(leaf)
            if concrete is not None and not np.all(concrete > 0):
                raise ValueError(f"bounds must be > 0 everywhere, got a leaf {concrete}")

    def init_fn(params: Params) -> WeightClippingState:
        if bounds is None:
            return WeightClippingState(bounds=_rules.initial_bounds(params))
        if jax.tree.structure(bounds) != jax.tree.structure(params):
            raise ValueError(
                f"bounds must be a pytree shaped like the parameters, got structure "
                f"{jax.tree.structure(bounds)} for {jax.tree.structure(params)}"
            )
        return WeightClippingState(
            bounds=jax.tree.map(lambda s, p: jnp.asarray(s, p.dtype), bounds, params)
        )

    def update_fn(
        updates: Params, state: WeightClippingState, params: Params | None = None, **extra_args
    ) -> tuple[Params, WeightClippingState]:
        del extra_args
        params = _needs_params("weight_clipping", params)
        (kappa_,) = _like(updates, kappa)
        return _rules.clip_weights(updates, params, state.bounds, kappa_), state

    return optax.GradientTransformationExtraArgs(init_fn, update_fn)
