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

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, PyTree

Params = PyTree[Array]


def lms(step_size: ArrayLike, g: Params) -> Params:
    """LMS (Widrow-Hoff): `w <- w + alpha * delta * x`, i.e. the update `-alpha * g`."""
    return jax.tree.map(lambda g: -step_size * g, g)


class IDBDState(NamedTuple):
    """IDBD's per-parameter state (Sutton 1992, Figure 2).

    **Fields:**

    - `log_step_size`: `beta_i`, with `alpha_i = exp(beta_i)`.
    - `trace`: `h_i`, a decaying trace of recent weight changes.
    """

    log_step_size: Params
    trace: Params

    @property
    def step_size(self) -> Params:
        """`alpha_i = exp(beta_i)`: the step-sizes of the latest update."""
        return jax.tree.map(jnp.exp, self.log_step_size)


def idbd_init(params: Params, initial_step_size: ArrayLike) -> IDBDState:
    """`beta_i = ln(alpha_init)`, `h_i = 0`."""
    return IDBDState(
        log_step_size=jax.tree.map(lambda p: jnp.full_like(p, jnp.log(initial_step_size)), params),
        trace=jax.tree.map(jnp.zeros_like, params),
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
    out = jax.tree.map(leaf, state.log_step_size, state.trace, g, m, c)
    update, beta, h = _unzip(out, g, 3)
    return update, IDBDState(log_step_size=beta, trace=h)


class AutostepState(NamedTuple):
    """Autostep's per-parameter state (Mahmood et al. 2012, Table 1).

    **Fields:**

    - `step_size`: `alpha_i`.
    - `trace`: `h_i`.
    - `normalizer`: `v_i`, the self-regulated running magnitude of `delta x_i h_i`.
    """

    step_size: Params
    trace: Params
    normalizer: Params


def autostep_init(params: Params, initial_step_size: ArrayLike) -> AutostepState:
    """`alpha_i = alpha_init`, `h_i = v_i = 0`."""
    return AutostepState(
        step_size=jax.tree.map(lambda p: jnp.full_like(p, initial_step_size), params),
        trace=jax.tree.map(jnp.zeros_like, params),
        normalizer=jax.tree.map(jnp.zeros_like, params),
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
    `idbd` (AutoTDIDBD, `alberta_eqx.td`).
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
        jax.tree.map(meta, state.step_size, state.trace, state.normalizer, m, c), g, 2
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

    update, alpha, h = _unzip(jax.tree.map(apply, alpha, state.trace, g, c), g, 3)
    return update, AutostepState(step_size=alpha, trace=h, normalizer=v)


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
    return sum(jnp.vdot(x, y) for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))


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
