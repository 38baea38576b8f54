"""Every rule written once, over any pytree of parameters: the one implementation
behind the modules (`alberta_eqx.optimizers`, the learners) and the optax
transformations (`alberta_eqx.optax`); nothing else implements the rules.

One module per kind of rule:

- `step_sizes`: LMS, IDBD and Autostep. Each takes the loss gradient
  `g = dL/dtheta` and the curvature `c = z**2` (`z = dy/dtheta`, the gradient of the
  prediction) as pytrees shaped like the parameters, and returns the *update* to add
  to the parameters (the optax convention) with the new per-parameter state. For a
  linear model with loss `delta**2 / 2` we have `g = -delta * x` and `c = x**2`, and
  the rules reduce exactly to the papers' per-weight forms (ALGORITHMS.md); a bias is a
  weight whose input is 1 (`g = -delta`, `c = 1`).
- `traces`: eligibility traces, trace-SGD, ObGD, AdaptiveObGD and the ObGD bound, on
  the error `delta` and the prediction gradient.
- `gradient_td`: TDC, GTD2, GTD(lambda) and GQ(lambda).
- `plasticity`: UPGD, shrink-and-perturb, L2 Init and weight clipping.
"""

from alberta_eqx._rules._params import Params
from alberta_eqx._rules.gradient_td import (
    gradient_td_correction,
    gradient_td_secondary,
    gtd2_primary,
)
from alberta_eqx._rules.plasticity import (
    L2InitState,
    NoiseState,
    UPGDState,
    WeightClippingState,
    clip_weights,
    gaussian_noise,
    initial_bounds,
    l2_init,
    shrink_and_perturb,
    upgd,
    upgd_init,
)
from alberta_eqx._rules.step_sizes import (
    AutostepState,
    IDBDState,
    autostep,
    autostep_init,
    idbd,
    idbd_init,
    lms,
    loss_gradient,
)
from alberta_eqx._rules.traces import (
    AdaptiveObGDState,
    TraceState,
    accumulate_trace,
    adaptive_obgd,
    adaptive_obgd_init,
    obgd,
    obgd_bound,
    replace_trace,
    trace_init,
    trace_sgd,
)

__all__ = [
    "AdaptiveObGDState",
    "AutostepState",
    "IDBDState",
    "L2InitState",
    "NoiseState",
    "Params",
    "TraceState",
    "UPGDState",
    "WeightClippingState",
    "accumulate_trace",
    "adaptive_obgd",
    "adaptive_obgd_init",
    "autostep",
    "autostep_init",
    "clip_weights",
    "gaussian_noise",
    "gradient_td_correction",
    "gradient_td_secondary",
    "gtd2_primary",
    "idbd",
    "idbd_init",
    "initial_bounds",
    "l2_init",
    "lms",
    "loss_gradient",
    "obgd",
    "obgd_bound",
    "replace_trace",
    "shrink_and_perturb",
    "trace_init",
    "trace_sgd",
    "upgd",
    "upgd_init",
]
