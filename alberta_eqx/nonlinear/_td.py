r"""`TDMLPLearner`: TD(lambda) with eligibility traces for a multilayer perceptron's
value function, trained by any optax transformation.

Per transition `(S_t, R_{t+1}, gamma_{t+1}, S_{t+1})` (Sutton and Barto 2018,
sec. 12.2, semi-gradient TD(lambda), with the per-transition discount of
`alberta_eqx.td`):

    delta <- R + gamma v(S', w) - v(S, w)          # both values before the update
    e     <- gamma_prev lambda e + grad_w v(S, w)  # accumulating trace, every parameter
    w     <- w + (the transformation's update for g = -delta e)

`gamma_prev` is the previous transition's discount, 0 after an episode's end or a
truncation (`TDTimeStep.truncated`), which cuts the trace. With replacing traces
(`trace="replacing"`, for binary features) an active feature's trace is reset to its
gradient instead: `e_i <- grad_i` where `grad_i != 0`.

The learner keeps the trace. It calls the transformation as
`update(g, state, params, curvature=grad * e, meta_gradient=-delta grad,
error=delta, prediction_gradient=e, trace_decay=0)`: `g = -delta e` is what plain
rules (`optax.sgd`, `alberta_eqx.optax.lms`: TD(lambda)) follow; `curvature =
grad_w v * e` and `meta_gradient = -delta grad_w v` make `alberta_eqx.optax.idbd` and
`autostep` TD-IDBD and AutoTDIDBD with the semi-gradient (Kearney et al. 2019,
`alberta_eqx.td`); and a rule with a trace of its
own (`alberta_eqx.optax.obgd`) is handed the learner's trace with `trace_decay = 0`,
so `obgd` on this learner is the Stream TD(lambda) of Elsayed, Vasan and Mahmood
(2024): `w <- w + alpha_eff delta e`, `alpha_eff = alpha / max(alpha kappa
max(|delta|, 1) ||e||_1, 1)`.
"""

from collections.abc import Callable, Sequence
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx.learners import StepMetrics, UpdateResult
from alberta_eqx.nonlinear._mlp import MLPLearner
from alberta_eqx.streams._base import TDTimeStep
from alberta_eqx.td import next_trace_discount

_TRACES = {"accumulating": _rules.accumulate_trace, "replacing": _rules.replace_trace}


class TDMLPLearner(MLPLearner):
    """A multilayer perceptron's value function `v(s, w)` learned online by TD(lambda)
    with eligibility traces over all its parameters, through any optax transformation
    (module docstring). The network and the transformation are `MLPLearner`'s (same
    options); the runners call `learn(timestep)` with a `TDTimeStep` per transition.

    With no hidden layer this is `TDLinearLearner` (with `optax.sgd(alpha)` or
    `alberta_eqx.optax.lms(alpha)`, `LMS(alpha)`); with `lambda_ = 0` (or every
    discount 0) one transition is `MLPLearner`'s supervised update on the TD target
    `R + gamma v(S')`.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `hidden_sizes`: the hidden layers' widths (`()` for a linear value function).
    - `optimizer`: an optax transformation (`optax.sgd`, `alberta_eqx.optax.obgd`,
      ...).
    - `key`: initialises the network.
    - `lambda_`: the trace-decay parameter `lambda` in `[0, 1]`.
    - `trace`: `"accumulating"` (default) or `"replacing"` (for binary features).
    - `activation`, `layer_norm`, `sparsity`, `head_optimizer`, `dtype`, `flatten`:
      as for `MLPLearner`.
    """

    traces: PyTree[Array]
    previous_discount: Float[Array, ""]
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    trace: str = eqx.field(static=True)
    timestep_type: ClassVar[type] = TDTimeStep

    def __init__(
        self,
        feature_dim: int,
        hidden_sizes: Sequence[int],
        optimizer: optax.GradientTransformation,
        *,
        key: PRNGKeyArray,
        lambda_: ArrayLike = 0.0,
        trace: str = "accumulating",
        activation: Callable[[Array], Array] = jax.nn.relu,
        dtype=None,
        flatten: bool = False,
        layer_norm: bool = False,
        sparsity: float | None = None,
        head_optimizer: optax.GradientTransformation | None = None,
    ):
        super().__init__(
            feature_dim,
            hidden_sizes,
            optimizer,
            key=key,
            activation=activation,
            dtype=dtype,
            flatten=flatten,
            layer_norm=layer_norm,
            sparsity=sparsity,
            head_optimizer=head_optimizer,
        )
        if trace not in _TRACES:
            raise ValueError(f"trace must be 'accumulating' or 'replacing', got {trace!r}")
        self.trace = trace
        self.lambda_ = _checks.unit_interval_closed("lambda_", lambda_, self._dtype)
        self.traces = jax.tree.map(jnp.zeros_like, eqx.filter(self.model, eqx.is_inexact_array))
        # No transition led into the first state: its trace starts from the gradient.
        self.previous_discount = jnp.zeros((), self._dtype)

    def learn(self, timestep: TDTimeStep) -> tuple["TDMLPLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        dtype = self._dtype
        x, x_next, reward, gamma = _checks.transition(timestep, self.feature_dim, dtype)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)
        value, grad = jax.value_and_grad(lambda p: eqx.combine(p, static)(x))(params)
        # Semi-gradient: v(S') is a target, not differentiated. Where gamma = 0 (a
        # terminal next state) it does not enter at all, whatever the stream put there.
        next_value = jnp.where(gamma == 0, 0, self.model(x_next))
        delta = reward + gamma * next_value - value
        # e <- gamma_prev lambda e + grad (or the replacing trace)
        decay = self.previous_discount * self.lambda_
        traces = _TRACES[self.trace](self.traces, decay, grad)
        g = jax.tree.map(lambda e: -delta * e, traces)
        c = jax.tree.map(jnp.multiply, grad, traces)
        m = jax.tree.map(lambda d: -delta * d, grad)  # TD-IDBD's semi-gradient
        ravel, unravel = self._layout(params)
        updates, opt_state = self._transformation.update(
            ravel(g),
            self.opt_state,
            ravel(params),
            curvature=ravel(c),
            meta_gradient=ravel(m),
            error=delta,
            prediction_gradient=ravel(traces),
            trace_decay=jnp.zeros((), dtype),
        )
        model = eqx.combine(optax.apply_updates(params, unravel(updates)), static)
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.traces, s.previous_discount),
            self,
            (model, opt_state, traces, next_trace_discount(gamma, timestep.truncated)),
        )
        metrics = StepMetrics(
            squared_error=delta * delta, error=delta, mean_step_size=new._mean_step_size()
        )
        return new, UpdateResult(prediction=value, error=delta, metrics=metrics)

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["TDMLPLearner", UpdateResult]:
        """Learn `y` as a one-step target: the transition `TDTimeStep(x, y, 0, 0)`."""
        x = _checks.features(x, self.feature_dim, self._dtype)
        zero = jnp.zeros((), x.dtype)
        return self.learn(
            TDTimeStep(x, _checks.scalar_target(y, x.dtype), zero, jnp.zeros_like(x))
        )
