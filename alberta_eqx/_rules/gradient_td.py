"""Gradient-TD rules (off-policy, linear): TDC, GTD2, GTD(lambda) and GQ(lambda)
(see `alberta_eqx._rules`)."""

import jax
import jax.numpy as jnp
from jaxtyping import Array

from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules._params import Params

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
