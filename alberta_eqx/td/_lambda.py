r"""Temporal-difference learning: a linear value learner with eligibility traces, whose
step-size rules `LMS`, `IDBD` and `Autostep` (`alberta_eqx.optimizers`) are then
TD(lambda), TD-IDBD and AutoTDIDBD.

A TD stream yields transitions `(phi, R, gamma, phi')`: the features of the state
`S_t`, the reward `R_{t+1}`, the discount `gamma_{t+1}` of the transition (0 when
`S_{t+1}` is terminal) and the features of `S_{t+1}`. The learner predicts
`v(s) = w . phi(s) + b` and, per transition (Kearney, Veeriah, Travnik, Pilarski and
Sutton 2019, "Learning Feature Relevance Through Step Size Adaptation in
Temporal-Difference Learning", Algorithms 3 and 4; the bias is a weight whose
feature is 1):

    delta <- R + gamma v(phi') - v(phi)                 # TD error, weights before the update
    e_i   <- gamma_prev lambda e_i + phi_i              # accumulating trace

`gamma_prev` is the discount of the *previous* transition, the one that led into
`S_t`: the trace is cut when an episode ends, but the transition into the terminal
state still credits the whole episode (the papers write one discount for a
continuing task; with a discount per transition this is the general form). After a
*truncated* transition (`TDTimeStep.truncated`, a time limit) `gamma_prev` is 0 too:
that transition bootstraps with its own discount, and the next episode starts with a
fresh trace.

**Differential and centered TD(lambda).** With a `RewardRate` `Rbar`
(`reward_rate`), the reward in `delta` is `R - Rbar`, and `Rbar` is updated after
every transition from the same `delta` (or, for simple centering, from the reward):

    delta <- R - Rbar + gamma v(phi') - v(phi)
    Rbar  <- Rbar + beta delta          (or Rbar + beta (R - Rbar), simple centering)

With the stream's discount 1 this is differential semi-gradient TD(lambda) (Sutton
and Barto 2018, section 10.3, the differential TD error (10.10) with the traces of
section 12.2); with a discount below 1 it is discounted TD(lambda) with reward
centering (Naik, Wan, Tomar and Sutton 2024), value-based or simple.

The step-size rules then update, for every weight i:

**TD(lambda)** (`LMS`):

    w_i <- w_i + alpha delta e_i

**TD-IDBD, semi-gradient** (`IDBD`, with the learner's `semi_gradient=True`, Algorithm 3):

    beta_i  <- beta_i + theta delta phi_i h_i
    alpha_i <- exp(beta_i)
    w_i     <- w_i + alpha_i delta e_i
    h_i     <- h_i [1 - alpha_i phi_i e_i]^+ + alpha_i delta e_i

**TD-IDBD, ordinary gradient** (`IDBD`, with `semi_gradient=False`, Algorithm 4):

    beta_i  <- beta_i - theta delta (gamma phi'_i - phi_i) h_i
    alpha_i <- exp(beta_i)
    w_i     <- w_i + alpha_i delta e_i
    h_i     <- h_i [1 + alpha_i e_i (gamma phi'_i - phi_i)]^+ + alpha_i delta e_i

**AutoTDIDBD** (`Autostep`; Autostep's normaliser and overshoot guard, Mahmood et
al. 2012 Table 1, on TD-IDBD's meta-gradient, as in Kearney et al.'s AutoTIDBD),
with `d_i = phi_i` (semi-gradient, the default) or `d_i = phi_i - gamma phi'_i`
(ordinary gradient, as Kearney et al.'s Algorithm 6):

    v_i     <- max(|delta d_i h_i|, v_i + (1/tau) alpha_i d_i e_i (|delta d_i h_i| - v_i))
    alpha_i <- alpha_i exp(mu delta d_i h_i / v_i)      # where v_i != 0
    M       <- max(sum_i alpha_i d_i e_i, 1)            # over all weights, bias included
    alpha_i <- alpha_i / M
    w_i     <- w_i + alpha_i delta e_i
    h_i     <- h_i [1 - alpha_i d_i e_i]^+ + alpha_i delta e_i

(Kearney et al.'s Algorithm 6 writes the normaliser's decay term with
`|delta phi_i h_i|`, the semi-gradient quantity, beside the ordinary-gradient one in
the `max`; this follows Autostep and uses the one meta-gradient in both places.)

**How the rules are shared.** In `alberta_eqx._rules` terms every TD rule is the
supervised rule with three inputs per parameter: the gradient that moves the weights,
`g = -delta e`; the meta-gradient the step-sizes descend, `m = -delta d`; and the
curvature of the trace, `c = d e`. In supervised learning (and in TD with
`lambda = gamma = 0`, where `e = d = phi`) `m = g` and `c = x^2`; `_rules.idbd` and
`_rules.autostep` take `m` as their `meta_gradient`.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules import Params
from alberta_eqx.learners import (
    AbstractOptimizedLinearLearner,
    AbstractTDLearner,
    StepMetrics,
    UpdateResult,
)
from alberta_eqx.optimizers import AbstractOptimizer
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td._reward_rate import (
    RewardRate,
    centered_reward,
    check_reward_rate,
    with_updated_rate,
)


def _td_gradients(
    delta: Float[Array, ""], trace: Params, grad: Params, next_grad: Params, semi: bool
) -> tuple[Params, Params, Params]:
    """`(g, m, c)`: the gradient that moves the weights, the meta-gradient and the
    curvature of the trace (module docstring). `d = -d(delta)/dw`: `phi` for the
    semi-gradient (Algorithm 3), `phi - gamma phi'` for the ordinary gradient
    (Algorithm 4)."""
    d = grad if semi else jax.tree.map(jnp.subtract, grad, next_grad)
    g = jax.tree.map(lambda e: -delta * e, trace)
    m = jax.tree.map(lambda d: -delta * d, d)
    c = jax.tree.map(jnp.multiply, d, trace)
    return g, m, c


# ---------------------------------------------------------------------------------
# The learner


class TDLinearLearner(AbstractOptimizedLinearLearner, AbstractTDLearner):
    """A linear value function `v(s) = w . phi(s) + b` learned online by TD(lambda)
    with accumulating eligibility traces and a TD step-size rule.

    The runners call `learn(timestep)` with a `TDTimeStep` for every transition.
    `update(x, y)` learns `y` as a one-step target, the transition
    `TDTimeStep(x, y, 0, 0)`. With every discount 0 (then `lambda` does not matter:
    the trace is `phi`) the learner is exactly a `LinearLearner` with the same
    optimizer.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS
    from alberta_eqx.td import TDLinearLearner, TDTimeStep

    learner = TDLinearLearner(3, LMS(0.1), lambda_=0.9)  # TD(lambda)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    step = TDTimeStep(x, jnp.asarray(1.0), jnp.asarray(0.9), x_next)  # reward 1, discount 0.9
    learner, result = learner.learn(step)
    result.error  # about 1.0: delta = R + gamma v(x') - v(x), every value 0 at first
    learner.predict(x)  # about 0.325 = 0.1 * 1.0 * (x . x + 1)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `optimizer`: the step-size rule (`LMS` for TD(lambda), `IDBD` for TD-IDBD,
      `Autostep` for AutoTDIDBD, or any other `AbstractOptimizer`; default
      `LMS(0.01)`). It gets the TD error's meta-gradient (module docstring).
    - `lambda_`: the trace-decay parameter `lambda` in `[0, 1]`.
    - `use_bias`: whether to learn a bias (its feature is the constant 1).
    - `semi_gradient`: whether the step-sizes descend the semi-gradient of the TD
      error, treating the bootstrapped target as fixed (`d = phi`, Algorithm 3, the
      default), or its ordinary gradient (`d = phi - gamma phi'`, Algorithm 4 and
      Kearney et al.'s AutoTIDBD). It matters only to rules that meta-learn their
      step-sizes (`IDBD`, `Autostep`). On the 19-state random walk the ordinary
      gradient drives AutoTDIDBD's step-sizes up to about 0.4 with `lambda = 0`,
      where the semi-gradient settles near 0.025 whatever the initial step-size.
    - `dtype`: the floating-point dtype of weights and state (default: JAX's default
      float).
    - `reward_rate`: a `RewardRate` to subtract from every reward and learn
      (differential TD(lambda) or reward centering; module docstring), or None.
    """

    weights: Float[Array, " n"]
    bias: Float[Array, ""] | None
    traces: tuple[Float[Array, "..."], ...]
    previous_discount: Float[Array, ""]
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    optimizer: AbstractOptimizer
    reward_rate: RewardRate | None
    feature_dim: int = eqx.field(static=True)
    semi_gradient: bool = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        optimizer: AbstractOptimizer | None = None,
        lambda_: ArrayLike = 0.0,
        use_bias: bool = True,
        *,
        semi_gradient: bool = True,
        dtype=None,
        reward_rate: RewardRate | None = None,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.semi_gradient = _checks.flag("semi_gradient", semi_gradient)
        dtype = _checks.float_dtype("dtype", dtype or _checks.default_float())
        self.lambda_ = _checks.unit_interval_closed("lambda_", lambda_, dtype)
        self.weights = jnp.zeros(feature_dim, dtype)
        self.bias = jnp.zeros((), dtype) if use_bias else None
        self.traces = jax.tree.map(jnp.zeros_like, self._params)
        # No transition led into the first state: its trace starts from phi alone.
        self.previous_discount = jnp.zeros((), dtype)
        self.optimizer = self._initial_optimizer(optimizer)
        self.reward_rate = check_reward_rate(reward_rate, dtype)

    @property
    def normalizer(self) -> None:
        """TD learners have no feature normalizer."""
        return None

    def _grad(self, x: Float[Array, " n"]) -> tuple[Array, ...]:
        """`dv/dw`: the features, and 1 for the bias."""
        return (x,) if self.bias is None else (x, jnp.ones((), x.dtype))

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return self._linear(_checks.features(x, self.feature_dim, self.weights.dtype))

    def learn(self, timestep: TDTimeStep) -> tuple["TDLinearLearner", UpdateResult]:
        """Learn from one transition (the runners' entry point)."""
        dtype = self.weights.dtype
        x, x_next, reward, gamma = _checks.transition(timestep, self.feature_dim, dtype)
        # Where gamma = 0 (a terminal next state) phi' does not enter at all, whatever
        # the stream put there. (Selecting on the products rather than zeroing phi'
        # keeps phi' shared: a Horde's demons take all their v(phi') in one matmul.)
        discounted = lambda z: gamma * jnp.where(gamma == 0, 0, z)  # noqa: E731
        value = self._linear(x)
        # delta = R + gamma v(phi') - v(phi), both values from the weights before the
        # update; differential / centered: R - Rbar in place of R (module docstring)
        centered = centered_reward(self.reward_rate, reward)
        delta = centered + discounted(self._linear(x_next)) - value
        grad = self._grad(x)
        next_grad = jax.tree.map(discounted, self._grad(x_next))
        # e <- gamma_prev lambda e + phi (accumulating trace)
        decay = self.previous_discount * self.lambda_
        traces = jax.tree.map(lambda e, z: decay * e + z, self.traces, grad)
        g, m, c = _td_gradients(delta, traces, grad, next_grad, self.semi_gradient)
        # Algorithms 3/4: the rule's step-sizes descend the TD error's gradient m;
        # ObGD's own trace, decayed as e is, equals e.
        updates, optimizer = self.optimizer.step(
            g, c, meta_gradient=m, error=delta, prediction_gradient=grad, trace_decay=decay
        )
        params = tuple(p + u for p, u in zip(self._params, updates, strict=True))
        new = eqx.tree_at(
            lambda s: (s.weights, s.bias, s.traces, s.previous_discount, s.optimizer),
            self,
            (
                params[0],
                params[1] if len(params) > 1 else None,
                traces,
                next_trace_discount(gamma, timestep.truncated),
                optimizer,
            ),
            is_leaf=lambda n: n is None,
        )
        new = with_updated_rate(new, reward, delta)  # Rbar <- Rbar + beta delta (or R - Rbar)
        metrics = StepMetrics(
            squared_error=delta * delta,
            error=delta,
            mean_step_size=jnp.mean(optimizer.step_sizes(params)[0]),
        )
        return new, UpdateResult(prediction=value, error=delta, metrics=metrics)


def next_trace_discount(
    discount: Float[Array, ""], truncated: ArrayLike | None
) -> Float[Array, ""]:
    """The `gamma_prev` the next transition's trace decays by: this transition's
    discount, or 0 where a time limit truncated the episode after it."""
    return discount if truncated is None else jnp.where(truncated, 0, discount)
