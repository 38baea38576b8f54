"""LMS, IDBD and Autostep, written once, over any pytree of parameters.

Every rule here takes the loss gradient `g = dL/dtheta` and the curvature `c = z**2`
(`z = dy/dtheta`, the gradient of the prediction) as pytrees shaped like the
parameters, and returns the *update* to add to the parameters (the optax convention)
with the new per-parameter state. For a linear model with loss `delta**2 / 2` we have
`g = -delta * x` and `c = x**2`, and the rules reduce exactly to the papers' per-weight
forms (ALGORITHMS.md); a bias is a weight whose input is 1 (`g = -delta`, `c = 1`).

The linear optimizers (`alberta_eqx.optimizers`) and the optax transformations
(`alberta_eqx.optax`) both call these functions; nothing else implements the rules.
"""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, PyTree

Params = PyTree[Array]


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


# ---------------------------------------------------------------------------------
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


def _unzip(tree: PyTree, like: Params, n: int) -> tuple[Params, ...]:
    """Turn a tree shaped like `like` whose leaves are n-tuples into n trees."""
    return jax.tree.transpose(jax.tree.structure(like), jax.tree.structure((0,) * n), tree)


# ---------------------------------------------------------------------------------
# Gradient-TD (off-policy, linear): TDC, GTD2, GTD(lambda) and GQ(lambda).
#
# Each takes pytrees shaped like the primary weights `w` (a linear learner's
# `(weights, bias)`): the trace `e`, the secondary weights `v`, the features `x` of
# `S_t` and `x_next` of `S_{t+1}` (a bias's feature is 1), and returns the update to
# add (the optax convention). Dot products such as `e . v` run over every leaf.
# The traces they take are already importance-weighted (alberta_eqx.gvf):
# `e = rho x` for TDC and GTD2, Maei's `e_t = rho_t (x_t + gamma_t lambda e_{t-1})`
# for GTD(lambda), and `e_t = x_t + gamma_t lambda rho_t e_{t-1}` for GQ(lambda).


def _tree_dot(a: Params, b: Params) -> Array:
    """`a . b` over every element of every leaf."""
    # `jnp.asarray`: `sum` starts from the int 0, so its type admits an empty tree's 0.
    return jnp.asarray(
        sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    )


def gradient_td_correction(
    step_size: ArrayLike,
    delta: ArrayLike,
    e: Params,
    v: Params,
    x_next: Params,
    correction: ArrayLike,
) -> Params:
    """The primary update of TDC, GTD(lambda) and GQ(lambda):
    `alpha [delta e - correction (e . v) x_next]`.

    With `e = rho x` and `correction = gamma` it is TDC's
    `alpha rho (delta x - gamma x' (x . v))` (Sutton et al. 2009; Sutton & Barto 2018,
    sec. 11.7); with `correction = gamma_{t+1} (1 - lambda_{t+1})` it is GTD(lambda)'s
    `theta` update (Maei 2011, the GTD(lambda) algorithm; Sutton & Barto 2018, sec.
    12.11) and, with the target policy's expected features for `x_next`,
    GQ(lambda)'s (Maei & Sutton 2010, the GQ(lambda) algorithm)."""
    ev = _tree_dot(e, v)
    return jax.tree.map(lambda e, xn: step_size * (delta * e - correction * ev * xn), e, x_next)


def gtd2_primary(
    step_size: ArrayLike, e: Params, v: Params, x: Params, x_next: Params, gamma: ArrayLike
) -> Params:
    """GTD2's primary update `alpha rho (x - gamma x') (x . v)` (Sutton et al. 2009;
    Sutton & Barto 2018, sec. 11.7), written with `e = rho x`:
    `alpha (e . v) (x - gamma x')`."""
    ev = _tree_dot(e, v)
    return jax.tree.map(lambda x, xn: step_size * ev * (x - gamma * xn), x, x_next)


def gradient_td_secondary(
    step_size: ArrayLike,
    delta: ArrayLike,
    e: Params,
    v: Params,
    x: Params,
    decay: ArrayLike,
) -> Params:
    """The secondary weights' update `beta [delta e - decay (v . x) x]`, the LMS
    estimate of the expected TD update's projection.

    `decay = rho` with `e = rho x` is Sutton & Barto's (2018, sec. 11.7)
    `beta rho (delta - v . x) x` for TDC and GTD2; `decay = 1` is Maei's (2011;
    Sutton & Barto 2018, sec. 12.11) `beta [delta e - (v . x) x]` for GTD(lambda)
    and GQ(lambda) (Maei & Sutton 2010, where `beta = alpha eta`). The two agree in
    expectation under the behaviour policy (`E_b[rho | S_t] = 1`), not sample by
    sample."""
    vx = _tree_dot(v, x)
    return jax.tree.map(lambda e, x: step_size * (delta * e - decay * vx * x), e, x)


# ---------------------------------------------------------------------------------
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
