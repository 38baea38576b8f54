"""Plasticity rules: UPGD, shrink-and-perturb, L2 Init and weight clipping (see
`alberta_eqx._rules`)."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array

from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules._params import Params

# Plasticity: UPGD, shrink-and-perturb, L2 Init and weight clipping. Each takes the
# incoming gradient or update and the parameters; the noisy ones draw their noise
# with `gaussian_noise`, from a key and the step count kept in their state.


def gaussian_noise(key: Array, count: ArrayLike, like: Params) -> Params:
    """Standard normal noise shaped like `like`, for step `count`: leaf `i` (in
    `jax.tree.leaves` order) draws from `jax.random.split(jax.random.fold_in(key,
    count), n_leaves)[i]`, in the leaf's dtype. The same key and count give the same
    noise, so a run is deterministic for its key."""
    leaves, treedef = jax.tree.flatten(like)
    keys = jax.random.split(jax.random.fold_in(key, count), len(leaves))
    noise = [jax.random.normal(k, p.shape, p.dtype) for k, p in zip(keys, leaves, strict=True)]
    return jax.tree.unflatten(treedef, noise)


class NoiseState(NamedTuple):
    """The state of a transformation that draws noise (shrink-and-perturb).

    **Fields:**

    - `count`: `t`, the number of steps taken; step `t` draws with `fold_in(key, t)`.
    - `key`: the raw (`uint32`) PRNG key the noise comes from.
    """

    count: Array  # type: ignore[assignment]  # shadows tuple.count, as AdaptiveObGDState's
    key: Array


class UPGDState(NamedTuple):
    """UPGD's state (Elsayed and Mahmood 2024, Algorithm 1).

    **Fields:**

    - `utility`: `U`, the running average of the first-order utility `-g w`.
    - `count`: `t`, the number of steps taken (for the bias correction and the noise).
    - `key`: the raw (`uint32`) PRNG key the perturbations come from.
    """

    utility: Params
    count: Array  # type: ignore[assignment]  # shadows tuple.count, as AdaptiveObGDState's
    key: Array


def upgd_init(params: Params, key: Array) -> UPGDState:
    """`U = 0`, `t = 0`."""
    zeros = jax.tree.map(jnp.zeros_like, params)
    return UPGDState(utility=zeros, count=jnp.zeros((), jnp.int32), key=key)


def upgd(
    state: UPGDState,
    g: Params,
    params: Params,
    utility_decay: ArrayLike,
    sigma: ArrayLike,
    weight_decay: ArrayLike,
    protect: bool,
) -> tuple[Params, UPGDState]:
    """UPGD's direction with the first-order utility and global scaling (Elsayed and
    Mahmood 2024, Algorithm 1; the authors' `FirstOrderGlobalUPGD` and
    `FirstOrderNonprotectingGlobalUPGD`). The weights then move by `-alpha` times it:

        U     <- beta_u U + (1 - beta_u) (-g w)          # first-order utility of w
        eta   <- max U over every element of every leaf  # U before bias correction
        s     <- sigmoid(U / (1 - beta_u^t) / eta)       # scaled utility, in (0, 1)
        d     <- (g + sigma xi) (1 - s) + wd w           # protect=True
        d     <- g + sigma xi (1 - s) + wd w             # protect=False (non-protecting)

    with `xi` standard normal noise (`gaussian_noise`). `eta` is the maximum of the
    *uncorrected* `U` while the numerator is corrected, as in the paper's Algorithm 1
    and the reference code. When `eta = 0` and `U = 0` (a network whose every weight
    is zero) the ratio `0/0` is taken as 0, so `s = 1/2`; the reference gives NaN.
    """
    count = state.count + 1
    u = jax.tree.map(
        lambda u, g, w: utility_decay * u + (1 - utility_decay) * (-g * w),
        state.utility,
        g,
        params,
    )
    eta = jnp.max(jnp.stack([jnp.max(x) for x in jax.tree.leaves(u)]))
    correction = 1 - utility_decay**count
    noise = gaussian_noise(state.key, count, g)

    def leaf(u, g, w, xi):
        u_hat = u / correction
        s = jax.nn.sigmoid(jnp.where(u_hat == 0, 0, u_hat / eta))
        gated = (g + sigma * xi) * (1 - s) if protect else g + sigma * xi * (1 - s)
        return gated + weight_decay * w

    direction = jax.tree.map(leaf, u, g, params, noise)
    return direction, UPGDState(utility=u, count=count, key=state.key)


def shrink_and_perturb(
    updates: Params, params: Params, noise: Params, shrink: ArrayLike, sigma: ArrayLike
) -> Params:
    """Shrink-and-perturb after any update `u` (Ash and Adams 2020, every step as in
    Dohare et al. 2024): `w <- (1 - shrink) w + u + sigma xi`, i.e. the update
    `u - shrink w + sigma xi`, with `xi` standard normal."""
    return jax.tree.map(lambda u, w, xi: u - shrink * w + sigma * xi, updates, params, noise)


class L2InitState(NamedTuple):
    """L2 Init's state.

    **Fields:**

    - `initial`: `w_0`, the parameters the transformation was initialised with.
    """

    initial: Params


def l2_init(g: Params, params: Params, initial: Params, strength: ArrayLike) -> Params:
    """L2 Init (Kumar, Marklund and Van Roy 2023): the gradient of
    `L + (lambda / 2) ||w - w_0||^2`, i.e. `g + lambda (w - w_0)`."""
    return jax.tree.map(lambda g, w, w0: g + strength * (w - w0), g, params, initial)


class WeightClippingState(NamedTuple):
    """Weight clipping's state.

    **Fields:**

    - `bounds`: `s`, each leaf's initialisation bound (a scalar or an array that
      broadcasts to the leaf); the weights stay in `[-kappa s, kappa s]`.
    """

    bounds: Params


def initial_bounds(params: Params) -> Params:
    """Each leaf's initialisation bound `s = 1 / sqrt(fan_in)`, the limit of PyTorch's
    and Equinox's default uniform initialisation of a linear or convolutional layer
    (the weight-clipping reference's `InitBounds`). A weight `(out, in, ...)` (Equinox's
    layout) has `fan_in = in * prod(...)`; a leaf of fewer than two dimensions (a bias)
    takes the fan-in of the weight before it in `jax.tree.leaves` order."""
    bounds, fan_in = [], None
    leaves, treedef = jax.tree.flatten(params)
    for p in leaves:
        if p.ndim >= 2:
            fan_in = math.prod(p.shape[1:])
        elif fan_in is None:
            raise ValueError(
                f"cannot compute the initialisation bound of a leaf of shape {p.shape}: no "
                "weight matrix comes before it (raveled parameters?); pass bounds"
            )
        bounds.append(jnp.asarray(1 / math.sqrt(fan_in), p.dtype))
    return jax.tree.unflatten(treedef, bounds)


def clip_weights(updates: Params, params: Params, bounds: Params, kappa: ArrayLike) -> Params:
    """Weight clipping (Elsayed, Lan, Lyle and Mahmood 2024) after any update `u`: the
    new weight `w + u` clipped to `[-kappa s, kappa s]`, returned as an update. Where
    no clip binds the update is `u` itself (not `(w + u) - w`, which can round)."""

    def leaf(u, w, s):
        new = w + u
        bound = kappa * s
        return jnp.where(jnp.abs(new) > bound, jnp.clip(new, -bound, bound) - w, u)

    return jax.tree.map(leaf, updates, params, bounds)
