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
(`trace_type="replacing"`, for binary features) an active feature's trace is reset to its
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

With a `RewardRate` `Rbar` (`reward_rate`) the reward in `delta` is `R - Rbar` and
`Rbar` is learned from every transition, as for `TDLinearLearner`: differential
semi-gradient TD(lambda) with the stream's discount 1 (Sutton and Barto 2018,
section 10.3), reward centering below 1 (Naik, Wan, Tomar and Sutton 2024).
"""

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._checks import ArrayLike
from alberta_eqx.learners import AbstractTDLearner, StepMetrics, UpdateResult
from alberta_eqx.nn import Network
from alberta_eqx.nonlinear._mlp import (
    _AbstractPredictionGradientLearner,
    _forward,
    _trained_network,
)
from alberta_eqx.nonlinear._resets import AbstractUnitReset
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td import (
    RewardRate,
    centered_reward,
    check_reward_rate,
    next_trace_discount,
    with_updated_rate,
)

_TRACES = {"accumulating": _rules.accumulate_trace, "replacing": _rules.replace_trace}


class TDMLPLearner(_AbstractPredictionGradientLearner, AbstractTDLearner):
    """A network's value function `v(s, w)` learned online by TD(lambda) with
    eligibility traces over all its parameters, through any optax transformation
    (module docstring). The network and the transformation are as for `MLPLearner`;
    the runners call `learn(timestep)` with a `TDTimeStep` per transition.

    With no hidden layer this is `TDLinearLearner` (with `optax.sgd(alpha)` or
    `alberta_eqx.optax.lms(alpha)`, `LMS(alpha)`); with `lambda_ = 0` (or every
    discount 0) one transition is `MLPLearner`'s supervised update on the TD target
    `R + gamma v(S')`.

    ```python
    import jax
    import jax.numpy as jnp
    import optax
    from alberta_eqx.nn import MLP
    from alberta_eqx.nonlinear import TDMLPLearner
    from alberta_eqx.td import TDTimeStep

    model = MLP(3, "scalar", (8,), key=jax.random.key(0))  # v(s): 3 -> 8 -> 1
    learner = TDMLPLearner(model, optax.sgd(0.1), lambda_=0.9)  # TD(lambda)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    step = TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(0.9), x_next)  # reward 1, discount 0.9
    learner, result = learner.learn(step)  # result.error: delta = R + gamma v(x') - v(x)
    ```

    **Arguments:**

    - `model`: the value function's network, with `out_size="scalar"` (e.g.
      `alberta_eqx.nn.MLP(feature_dim, "scalar", hidden_sizes, key=key)`).
    - `optimizer`: an optax transformation (`optax.sgd`, `alberta_eqx.optax.obgd`,
      ...).
    - `lambda_`: the trace-decay parameter `lambda` in `[0, 1]`.
    - `trace_type`: `"accumulating"` (default) or `"replacing"` (for binary
      features).
    - `head_optimizer`, `flatten`, `unit_reset`, `key`: as for `MLPLearner`; a
      replaced unit's traces are reset to 0 with its optimizer state.
    - `reward_rate`: a `RewardRate` to subtract from every reward and learn
      (differential TD(lambda) or reward centering; module docstring), or None.
    """

    model: Network
    opt_state: PyTree
    traces: PyTree[Array]
    previous_discount: Float[Array, ""]
    unit_reset: AbstractUnitReset | None
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    reward_rate: RewardRate | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    head_optimizer: optax.GradientTransformation | None = eqx.field(static=True)
    flatten: bool = eqx.field(static=True)
    trace_type: str = eqx.field(static=True)

    def __init__(
        self,
        model: Network,
        optimizer: optax.GradientTransformation,
        *,
        lambda_: ArrayLike = 0.0,
        trace_type: str = "accumulating",
        head_optimizer: optax.GradientTransformation | None = None,
        flatten: bool = False,
        reward_rate: RewardRate | None = None,
        unit_reset: AbstractUnitReset | None = None,
        key: PRNGKeyArray | None = None,
    ):
        self.model, self.optimizer, self.head_optimizer, self.flatten = _trained_network(
            model, optimizer, head_optimizer, flatten
        )
        self.opt_state = self._initial_state()
        if trace_type not in _TRACES:
            raise ValueError(
                f"trace_type must be 'accumulating' or 'replacing', got {trace_type!r}"
            )
        self.trace_type = trace_type
        self.lambda_ = _checks.unit_interval_closed("lambda_", lambda_, self._dtype)
        self.traces = jax.tree.map(jnp.zeros_like, eqx.filter(self.model, eqx.is_inexact_array))
        # No transition led into the first state: its trace starts from the gradient.
        self.previous_discount = jnp.zeros((), self._dtype)
        self.reward_rate = check_reward_rate(reward_rate, self._dtype)
        self.unit_reset = self._unit_reset(unit_reset, key)

    @property
    def normalizer(self) -> None:
        """None: this learner reads its features as they are."""
        return None

    def learn(self, timestep: TDTimeStep) -> tuple["TDMLPLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        dtype = self._dtype
        x, x_next, reward, gamma = _checks.transition(timestep, self.feature_dim, dtype)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)
        (value, hidden), grad = jax.value_and_grad(
            lambda p: _forward(eqx.combine(p, static), x), has_aux=True
        )(params)
        # Semi-gradient: v(S') is a target, not differentiated. Where gamma = 0 (a
        # terminal next state) it does not enter at all, whatever the stream put there.
        next_value = jnp.where(gamma == 0, 0, self.model(x_next))
        # differential / centered: R - Rbar in place of R (module docstring)
        delta = centered_reward(self.reward_rate, reward) + gamma * next_value - value
        # e <- gamma_prev lambda e + grad (or the replacing trace)
        decay = self.previous_discount * self.lambda_
        traces = _TRACES[self.trace_type](self.traces, decay, grad)
        model, opt_state = self._step(
            params,
            static,
            jax.tree.map(lambda e: -delta * e, traces),
            curvature=jax.tree.map(jnp.multiply, grad, traces),
            meta_gradient=jax.tree.map(lambda d: -delta * d, grad),  # TD-IDBD's semi-gradient
            error=delta,
            prediction_gradient=traces,
            trace_decay=jnp.zeros((), dtype),
        )
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.traces, s.previous_discount),
            self,
            (model, opt_state, traces, next_trace_discount(gamma, timestep.truncated)),
        )
        new = with_updated_rate(new, reward, delta)  # Rbar <- Rbar + beta delta (or R - Rbar)
        if new.unit_reset is not None:
            unit_reset, model, opt_state, mask = new._reset_units(new.unit_reset, hidden)
            traces = jax.tree.map(lambda e, m: jnp.where(m, 0, e), new.traces, mask)
            new = eqx.tree_at(
                lambda s: (s.model, s.opt_state, s.traces, s.unit_reset),
                new,
                (model, opt_state, traces, unit_reset),
            )
        metrics = StepMetrics(
            squared_error=delta * delta, error=delta, mean_step_size=new._mean_step_size()
        )
        return new, UpdateResult(prediction=value, error=delta, metrics=metrics)
