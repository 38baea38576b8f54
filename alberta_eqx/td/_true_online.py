r"""True Online TD(lambda) (van Seijen and Sutton 2014; van Seijen, Mahmood, Pilarski,
Machado and Sutton 2016, JMLR 17, "True Online Temporal-Difference Learning",
Algorithm 1): a linear value function learned with a dutch trace and the `V_old`
correction, so that its weights equal those of the online lambda-return algorithm
(JMLR sec. 3) at every step.

Per transition `(phi, R, gamma, phi')`, with `V = w . phi` and `V' = w . phi'` (0 when
`gamma = 0`, a terminal next state), both from the weights before the update:

    delta <- R + gamma V' - V
    z     <- gamma_prev lambda z + (1 - alpha gamma_prev lambda z . phi) phi   # dutch trace
    w     <- w + alpha (delta + V - V_old) z - alpha (V - V_old) phi
    V_old <- V'

`gamma_prev` is the discount of the transition that led into `phi`: 0 at an episode's
start (after a terminal or a truncated transition, and before the first), where the
algorithm starts with `z = 0` and `V_old = 0`. With `lambda = 0` the trace is `phi`
and the update is TD(0)'s, `w <- w + alpha delta phi`.

With a `RewardRate` `Rbar` (`reward_rate`) the reward in `delta` is `R - Rbar` and
`Rbar` is updated after the transition from that `delta` (or from the reward), as in
`TDLinearLearner` (`alberta_eqx.td._reward_rate`): differential True Online TD(lambda)
with the stream's discount 1, reward centering below it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.learners import (
    AbstractFixedStepSizeLinearLearner,
    AbstractTDLearner,
    StepMetrics,
    UpdateResult,
)
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td._lambda import next_trace_discount
from alberta_eqx.td._reward_rate import (
    RewardRate,
    centered_reward,
    check_reward_rate,
    with_updated_rate,
)


class TrueOnlineTDLearner(AbstractFixedStepSizeLinearLearner, AbstractTDLearner):
    """A linear value function `v(s) = w . phi(s) + b` learned by True Online
    TD(lambda) with one fixed step-size (JMLR 2016, Algorithm 1).

    Used like `TDLinearLearner`: the runners call `learn(timestep)` with a `TDTimeStep`
    per transition; `update(x, y)` learns `y` as a one-step target. An episode's end
    (`discount = 0`) and a truncation cut the trace and reset `V_old`.

    ```python
    import jax.numpy as jnp
    from alberta_eqx.td import TDTimeStep, TrueOnlineTDLearner

    learner = TrueOnlineTDLearner(3, step_size=0.1, lambda_=0.9)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    step = TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(0.9), x_next)  # reward 1, discount 0.9
    learner, result = learner.learn(step)
    result.error  # about 1.0: delta = R + gamma v(x') - v(x), every value 0 at first
    learner.predict(x)  # about 0.325 = 0.1 * 1.0 * (x . x + 1): the first trace is (x, 1)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `step_size`: `alpha > 0`.
    - `lambda_`: the trace-decay parameter `lambda` in `[0, 1]`.
    - `use_bias`: whether to learn a bias (a weight whose feature is the constant 1).
    - `dtype`: the floating-point dtype of weights and state (default: JAX's default
      float).
    - `reward_rate`: a `RewardRate` to subtract from every reward and learn
      (differential TD or reward centering; module docstring), or None.
    """

    weights: Float[Array, " n"]
    bias: Float[Array, ""] | None
    traces: tuple[Float[Array, "..."], ...]
    value_old: Float[Array, ""]
    reward_rate: RewardRate | None
    previous_discount: Float[Array, ""]
    step_size: Float[Array, ""] = _checks.hyperparameter()
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        step_size: ArrayLike = 0.01,
        lambda_: ArrayLike = 0.0,
        use_bias: bool = True,
        *,
        dtype=None,
        reward_rate: RewardRate | None = None,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        dtype = _checks.float_dtype("dtype", dtype or _checks.default_float())
        self.step_size = _checks.positive("step_size", step_size, dtype)
        self.reward_rate = check_reward_rate(reward_rate, dtype)
        self.lambda_ = _checks.unit_interval_closed("lambda_", lambda_, dtype)
        self.weights = jnp.zeros(feature_dim, dtype)
        self.bias = jnp.zeros((), dtype) if use_bias else None
        self.traces = jax.tree.map(jnp.zeros_like, self._params)
        self.value_old = jnp.zeros((), dtype)
        self.previous_discount = jnp.zeros((), dtype)  # the first state starts an episode

    def _grad(self, x: Float[Array, " n"]) -> tuple[Array, ...]:
        """`dv/dw`: the features, and 1 for the bias."""
        return (x,) if self.bias is None else (x, jnp.ones((), x.dtype))

    def learn(self, timestep: TDTimeStep) -> tuple["TrueOnlineTDLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        x, x_next, reward, gamma = _checks.transition(
            timestep, self.feature_dim, self.weights.dtype
        )
        alpha = self.step_size
        value = self._linear(x)
        # V' = 0 after a terminal step, whatever the stream put in phi'
        value_next = jnp.where(gamma == 0, 0, self._linear(x_next))
        # differential / centered: R - Rbar in place of R (module docstring)
        delta = centered_reward(self.reward_rate, reward) + gamma * value_next - value
        # An episode's start: z <- 0 (the decay is 0) and V_old <- 0.
        decay = self.previous_discount * self.lambda_
        value_old = jnp.where(self.previous_discount == 0, 0, self.value_old)
        grad = self._grad(x)
        z_phi = sum(jnp.vdot(z, g) for z, g in zip(self.traces, grad, strict=True))
        # Algorithm 1: z <- gamma lambda z + (1 - alpha gamma lambda z.phi) phi
        traces = tuple(
            decay * z + (1 - alpha * decay * z_phi) * g
            for z, g in zip(self.traces, grad, strict=True)
        )
        # w <- w + alpha (delta + V - V_old) z - alpha (V - V_old) phi
        params = tuple(
            p + alpha * (delta + value - value_old) * z - alpha * (value - value_old) * g
            for p, z, g in zip(self._params, traces, grad, strict=True)
        )
        new = eqx.tree_at(
            lambda s: (s.weights, s.bias, s.traces, s.value_old, s.previous_discount),
            self,
            (
                params[0],
                params[1] if len(params) > 1 else None,
                traces,
                value_next,
                next_trace_discount(gamma, timestep.truncated),
            ),
            is_leaf=lambda n: n is None,
        )
        new = with_updated_rate(new, reward, delta)  # Rbar <- Rbar + beta delta (or R - Rbar)
        metrics = StepMetrics(squared_error=delta * delta, error=delta, mean_step_size=alpha)
        return new, UpdateResult(prediction=value, error=delta, metrics=metrics)
