r"""SwiftTD's per-feature rule (Javed, Sharifnassab and Sutton 2024), written once over
arrays of any shape: the whole weight vector (dense features) or the entries gathered
at the active features and at the features with a live trace (sparse features).

The authors' package (`swifttd` 0.2.0, `src/cpp/SwiftTD.cpp`) splits one step
`step(x_t, r_t)` into two loops over features, which are the two functions here:

- `swifttd_trace_step` (the first loop, with the TD error `delta` of the transition
  that ended in `x_t`): the weights move, the step-sizes `alpha_i = exp(beta_i)` take
  their meta-gradient step and are clipped to the bound `eta`, and the traces decay
  by `gamma lambda`;
- `swifttd_trace_increment` (the second loop, with the features `x_t` that start the
  next transition): the traces take `x_t` in, with every step-size scaled down by
  `eta / max(eta, sum_i alpha_i x_i^2)` so that the rate of learning does not exceed
  `eta`; when the bound binds the meta-traces are reset and the active step-sizes
  decay by the factor `step_size_decay`.

The learner computes the scalars they share (`delta`, `v_delta`, the rate of learning,
`t = z . x`). Names follow the package: `z` the (dutch) eligibility trace, `z_delta`
its latest increment, `delta_w` the latest weight change, `p`, `h`, `h_old`, `h_temp`
and `z_bar` the meta-traces of the step-size gradient.
"""

from typing import NamedTuple

import jax.numpy as jnp
from jaxtyping import Array, Bool, Float


class SwiftTDState(NamedTuple):
    """SwiftTD's per-feature state (each shaped like the weights, or like a gathered
    slice of them). `z_delta` is zero between steps; `last_alpha` is the sparse forms'
    threshold for dropping a trace."""

    weights: Float[Array, "..."]
    beta: Float[Array, "..."]
    z: Float[Array, "..."]
    z_delta: Float[Array, "..."]
    delta_w: Float[Array, "..."]
    p: Float[Array, "..."]
    z_bar: Float[Array, "..."]
    h: Float[Array, "..."]
    h_old: Float[Array, "..."]
    h_temp: Float[Array, "..."]
    last_alpha: Float[Array, "..."]


def swifttd_init(
    weights: Float[Array, "..."], initial_step_size: Float[Array, ""]
) -> SwiftTDState:
    """The state of a fresh learner: zero weights and traces, `beta = log(alpha_0)`."""
    beta = jnp.full_like(weights, jnp.log(initial_step_size))
    return SwiftTDState(weights, beta, *(jnp.zeros_like(weights) for _ in range(9)))


def swifttd_trace_step(
    s: SwiftTDState,
    delta: Float[Array, ""],
    v_delta: Float[Array, ""],
    trace_decay: Float[Array, ""],
    meta_step_size: Float[Array, ""],
    max_step_size: Float[Array, ""],
    eta_min: Float[Array, ""],
) -> SwiftTDState:
    """The package's first loop: learn from the TD error `delta` (the true online
    correction `v_delta` is the change the last update made to the value of the
    current features), then decay the traces by `trace_decay = gamma lambda`."""
    # True online TD(lambda)'s weight update, in the package's deferred form
    delta_w = delta * s.z - s.z_delta * v_delta
    # Meta-gradient step on beta = log(alpha), then the bound alpha <= eta
    beta = s.beta + meta_step_size / jnp.exp(s.beta) * (delta - v_delta) * s.p
    alpha = jnp.exp(beta)
    beta = jnp.where((alpha > max_step_size) | jnp.isinf(alpha), jnp.log(max_step_size), beta)
    # The package's lower bound compares alpha with log(eta_min) (sic), so that for
    # eta_min < 1 it never acts; transcribed as it is.
    beta = jnp.where(jnp.exp(beta) < jnp.log(eta_min), jnp.log(eta_min), beta)
    h = s.h_temp + delta * s.z_bar - s.z_delta * v_delta
    return SwiftTDState(
        weights=s.weights + delta_w,
        beta=beta,
        z=trace_decay * s.z,
        z_delta=jnp.zeros_like(s.z_delta),
        delta_w=delta_w,
        p=trace_decay * s.p,
        z_bar=trace_decay * s.z_bar,
        h=h,
        h_old=s.h,
        h_temp=h,
        last_alpha=s.last_alpha,
    )


def swifttd_trace_increment(
    s: SwiftTDState,
    x: Float[Array, "..."],
    scale: Float[Array, ""],
    t: Float[Array, ""],
    binds: Bool[Array, ""],
    step_size_decay: Float[Array, ""],
    reset_first: bool,
) -> SwiftTDState:
    """The package's second loop: take the features `x` into the traces, with the
    step-sizes scaled by `scale = eta / max(eta, rate of learning)`; `t = z . x` over
    the decayed traces. Where the bound `binds`, the meta-traces `h`, `h_old`,
    `h_temp`, `z_bar` are reset and `beta_i` decays by `log(step_size_decay) x_i^2`.

    `reset_first` (a static choice) is where the two package forms differ: its sparse
    forms reset before the traces take `x` in (so `p` gains nothing and `z_bar`
    restarts from its increment), its dense form after (so `p` gains `h_old x` and
    `z_bar` ends at 0).
    """

    def reset(s: SwiftTDState) -> SwiftTDState:
        zero = lambda a: jnp.where(binds, 0, a)  # noqa: E731
        beta = jnp.where(binds, s.beta + jnp.log(step_size_decay) * x * x, s.beta)
        return s._replace(
            h=zero(s.h), h_old=zero(s.h_old), h_temp=zero(s.h_temp), z_bar=zero(s.z_bar), beta=beta
        )

    # The increment uses the step-sizes before the decay, in both forms.
    last_alpha = scale * jnp.exp(s.beta)
    z_delta = last_alpha * x
    s = s._replace(z_delta=z_delta, last_alpha=last_alpha)
    if reset_first:
        s = reset(s)
    z = s.z + z_delta * (1 - t)  # the dutch trace: z += alpha x (1 - z . x)
    s = s._replace(
        z=z,
        p=s.p + s.h_old * x,
        z_bar=s.z_bar + z_delta * (1 - t - s.z_bar * x),
        h_temp=s.h - s.h_old * x * (z - z_delta) - s.h * z_delta * x,
    )
    return s if reset_first else reset(s)
