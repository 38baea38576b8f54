r"""Temporal-difference learning: a linear value learner with eligibility traces, and
the TD step-size rules TD(lambda), TD-IDBD and AutoTDIDBD.

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

The step-size rules then update, for every weight i:

**TD(lambda)** (`TDLMS`):

    w_i <- w_i + alpha delta e_i

**TD-IDBD, semi-gradient** (`TDIDBD(semi_gradient=True)`, Algorithm 3):

    beta_i  <- beta_i + theta delta phi_i h_i
    alpha_i <- exp(beta_i)
    w_i     <- w_i + alpha_i delta e_i
    h_i     <- h_i [1 - alpha_i phi_i e_i]^+ + alpha_i delta e_i

**TD-IDBD, ordinary gradient** (`TDIDBD(semi_gradient=False)`, Algorithm 4):

    beta_i  <- beta_i - theta delta (gamma phi'_i - phi_i) h_i
    alpha_i <- exp(beta_i)
    w_i     <- w_i + alpha_i delta e_i
    h_i     <- h_i [1 + alpha_i e_i (gamma phi'_i - phi_i)]^+ + alpha_i delta e_i

**AutoTDIDBD** (`AutoTDIDBD`; Autostep's normaliser and overshoot guard, Mahmood et
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

import abc
from typing import ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, PyTree

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import AutostepState, IDBDState, Params
from alberta_eqx.learners import AbstractOptimizedLinearLearner, StepMetrics, UpdateResult
from alberta_eqx.streams._base import TDTimeStep

# ---------------------------------------------------------------------------------
# Optimizers


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


class AbstractTDOptimizer(eqx.Module):
    """A per-parameter step-size rule for a TD learner.

    `init` allocates state shaped like the parameters. `step` takes the TD error
    `delta` and three pytrees shaped like the parameters: the eligibility trace `e`
    (already decayed and incremented for this transition), the prediction's gradient
    `grad = dv(S_t)/dw` (`phi`, and 1 for a bias) and the discounted gradient at the
    next state `next_grad = gamma dv(S_{t+1})/dw` (`gamma phi'`, and `gamma`); it
    returns the update to add to the parameters and the new optimizer.
    """

    @abc.abstractmethod
    def init(self, params: Params) -> "AbstractTDOptimizer":
        """This optimizer with its state allocated for `params` (and its
        hyperparameters cast to the parameters' floating-point dtype)."""

    @abc.abstractmethod
    def step(
        self, delta: Float[Array, ""], trace: Params, grad: Params, next_grad: Params
    ) -> tuple[Params, "AbstractTDOptimizer"]:
        """One update: `(updates, new_optimizer)`."""

    @abc.abstractmethod
    def step_sizes(self, params: Params) -> Params:
        """The per-parameter step-sizes used by the latest update, shaped like `params`."""

    @property
    def normalizers(self) -> Params | None:
        """AutoTDIDBD's per-parameter `v`; None for rules without one."""
        return None


class TDLMS(AbstractTDOptimizer):
    """TD(lambda) with one fixed step-size: `w_i <- w_i + alpha delta e_i` (LMS's rule,
    `alberta_eqx._rules.lms`, on the gradient `-delta e`).

    **Arguments:**

    - `step_size`: `alpha > 0`.
    """

    step_size: Float[Array, ""] = _checks.hyperparameter()

    def __init__(self, step_size: ArrayLike = 0.01):
        self.step_size = _checks.positive("step_size", step_size)

    def init(self, params: Params) -> "TDLMS":
        return _checks.cast_floating(self, _dtype(params))

    def step(
        self, delta: Float[Array, ""], trace: Params, grad: Params, next_grad: Params
    ) -> tuple[Params, "TDLMS"]:
        return _rules.lms(self.step_size, jax.tree.map(lambda e: -delta * e, trace)), self

    def step_sizes(self, params: Params) -> Params:
        return jax.tree.map(lambda p: jnp.full_like(p, self.step_size), params)


class TDIDBD(AbstractTDOptimizer):
    """TD-IDBD (Kearney et al. 2019): IDBD's meta-learned step-size per weight,
    `alpha_i = exp(beta_i)`, for TD(lambda) with eligibility traces.

    **Arguments:**

    - `initial_step_size`: every `alpha_i` at the start.
    - `meta_step_size`: `theta >= 0` (`0` makes this TD(lambda) with
      `initial_step_size`).
    - `semi_gradient`: meta-descend the semi-gradient of the TD error, treating the
      bootstrapped target as fixed (Algorithm 3, the default), or its ordinary
      gradient, `gamma phi' - phi` (Algorithm 4).
    """

    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    state: IDBDState | None
    semi_gradient: bool = eqx.field(static=True)

    def __init__(
        self,
        initial_step_size: ArrayLike = 0.01,
        *,
        meta_step_size: ArrayLike = 0.01,
        semi_gradient: bool = True,
    ):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.non_negative("meta_step_size", meta_step_size)
        self.semi_gradient = _flag("semi_gradient", semi_gradient)
        self.state = None

    def init(self, params: Params) -> "TDIDBD":
        self = _checks.cast_floating(self, _dtype(params))
        state = _rules.idbd_init(params, self.initial_step_size)
        return eqx.tree_at(lambda o: o.state, self, state, is_leaf=lambda x: x is None)

    def step(
        self, delta: Float[Array, ""], trace: Params, grad: Params, next_grad: Params
    ) -> tuple[Params, "TDIDBD"]:
        state = _initialised(self.state)
        g, m, c = _td_gradients(delta, trace, grad, next_grad, self.semi_gradient)
        # Algorithms 3/4: IDBD, its step-sizes descending the TD error's gradient m
        updates, state = _rules.idbd(state, g, c, self.meta_step_size, meta_gradient=m)
        return updates, eqx.tree_at(lambda o: o.state, self, state)

    def step_sizes(self, params: Params) -> Params:
        return _initialised(self.state).step_size


class AutoTDIDBD(AbstractTDOptimizer):
    """AutoTDIDBD: TD-IDBD with Autostep's normaliser `v_i` of the meta-gradient and
    its overshoot guard `M` (Mahmood et al. 2012; Kearney et al.'s AutoTIDBD), so
    that the meta step-size needs little tuning.

    **Arguments:**

    - `initial_step_size`: every `alpha_i` at the start.
    - `meta_step_size`: `mu > 0` (Autostep's suggested `1e-2`).
    - `tau`: `tau > 0`, the time scale of `v_i`'s decay (suggested `1e4`).
    - `semi_gradient`: meta-descend the semi-gradient, `d = phi` (the default, as
      `TDIDBD`), or the ordinary gradient `d = phi - gamma phi'` (Kearney et al.'s
      AutoTIDBD). On the 19-state random walk the ordinary gradient drives the
      step-sizes up to about 0.4 with `lambda = 0`, where the semi-gradient settles
      near 0.025 whatever the initial step-size.
    """

    initial_step_size: Float[Array, ""] = _checks.hyperparameter()
    meta_step_size: Float[Array, ""] = _checks.hyperparameter()
    tau: Float[Array, ""] = _checks.hyperparameter()
    state: AutostepState | None
    semi_gradient: bool = eqx.field(static=True)

    def __init__(
        self,
        initial_step_size: ArrayLike = 0.01,
        *,
        meta_step_size: ArrayLike = 0.01,
        tau: ArrayLike = 1e4,
        semi_gradient: bool = True,
    ):
        self.initial_step_size = _checks.positive("initial_step_size", initial_step_size)
        self.meta_step_size = _checks.positive("meta_step_size", meta_step_size)
        self.tau = _checks.positive("tau", tau)
        self.semi_gradient = _flag("semi_gradient", semi_gradient)
        self.state = None

    def init(self, params: Params) -> "AutoTDIDBD":
        self = _checks.cast_floating(self, _dtype(params))
        state = _rules.autostep_init(params, self.initial_step_size)
        return eqx.tree_at(lambda o: o.state, self, state, is_leaf=lambda x: x is None)

    def step(
        self, delta: Float[Array, ""], trace: Params, grad: Params, next_grad: Params
    ) -> tuple[Params, "AutoTDIDBD"]:
        state = _initialised(self.state)
        g, m, c = _td_gradients(delta, trace, grad, next_grad, self.semi_gradient)
        updates, state = _rules.autostep(
            state, g, c, self.meta_step_size, self.tau, meta_gradient=m
        )
        return updates, eqx.tree_at(lambda o: o.state, self, state)

    def step_sizes(self, params: Params) -> Params:
        return _initialised(self.state).step_size

    @property
    def normalizers(self) -> Params:
        return _initialised(self.state).normalizer


def _flag(name: str, value: bool) -> bool:
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {type(value).__name__} {value!r}")
    return bool(value)


def _initialised(state: PyTree | None) -> PyTree:
    if state is None:
        raise ValueError(
            "this optimizer has no state yet: call optimizer.init(params), or pass it "
            "to a TDLinearLearner, which does"
        )
    return state


def _dtype(params: Params):
    return jnp.result_type(*jax.tree.leaves(params))


# ---------------------------------------------------------------------------------
# The learner


class TDLinearLearner(AbstractOptimizedLinearLearner):
    """A linear value function `v(s) = w . phi(s) + b` learned online by TD(lambda)
    with accumulating eligibility traces and a TD step-size rule.

    The runners call `learn(timestep)` with a `TDTimeStep` for every transition.
    `update(x, y)` learns `y` as a one-step target, the transition
    `TDTimeStep(x, y, 0, 0)`. With every discount 0 (then `lambda` does not matter:
    the trace is `phi`) the learner is exactly its supervised counterpart: `TDLMS`,
    `TDIDBD` and `AutoTDIDBD` become `LMS`, `IDBD` and `Autostep` on a
    `LinearLearner`.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `optimizer`: the step-size rule (`TDLMS`, `TDIDBD`, `AutoTDIDBD`; default
      `TDLMS(0.01)`).
    - `lambda_`: the trace-decay parameter `lambda` in `[0, 1]`.
    - `use_bias`: whether to learn a bias (its feature is the constant 1).
    - `dtype`: the floating-point dtype of weights and state (default: JAX's default
      float).
    """

    weights: Float[Array, " n"]
    bias: Float[Array, ""] | None
    traces: tuple[Float[Array, "..."], ...]
    previous_discount: Float[Array, ""]
    timestep_type: ClassVar[type] = TDTimeStep
    lambda_: Float[Array, ""] = _checks.hyperparameter()
    optimizer: AbstractTDOptimizer
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        optimizer: AbstractTDOptimizer | None = None,
        lambda_: ArrayLike = 0.0,
        use_bias: bool = True,
        *,
        dtype=None,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        if optimizer is None:
            optimizer = TDLMS(0.01)
        if not isinstance(optimizer, AbstractTDOptimizer):
            raise TypeError(
                f"optimizer must be a TD optimizer (TDLMS, TDIDBD, AutoTDIDBD), got "
                f"{type(optimizer).__name__}"
            )
        dtype = _checks.float_dtype("dtype", dtype or jnp.result_type(float))
        self.lambda_ = _unit_closed("lambda_", lambda_, dtype)
        self.weights = jnp.zeros(feature_dim, dtype)
        self.bias = jnp.zeros((), dtype) if use_bias else None
        self.traces = jax.tree.map(jnp.zeros_like, self._params)
        # No transition led into the first state: its trace starts from phi alone.
        self.previous_discount = jnp.zeros((), dtype)
        self.optimizer = optimizer.init(self._params)

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
        # delta = R + gamma v(phi') - v(phi), both values from the weights before the update
        delta = reward + discounted(self._linear(x_next)) - value
        grad = self._grad(x)
        next_grad = jax.tree.map(discounted, self._grad(x_next))
        # e <- gamma_prev lambda e + phi (accumulating trace)
        decay = self.previous_discount * self.lambda_
        traces = jax.tree.map(lambda e, z: decay * e + z, self.traces, grad)
        updates, optimizer = self.optimizer.step(delta, traces, grad, next_grad)
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
        metrics = StepMetrics(
            squared_error=delta * delta,
            error=delta,
            mean_step_size=jnp.mean(optimizer.step_sizes(params)[0]),
        )
        return new, UpdateResult(prediction=value, error=delta, metrics=metrics)

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["TDLinearLearner", UpdateResult]:
        """Learn `y` as a one-step target: the transition `TDTimeStep(x, y, 0, 0)`."""
        x = _checks.features(x, self.feature_dim, self.weights.dtype)
        zero = jnp.zeros((), x.dtype)
        return self.learn(
            TDTimeStep(x, _checks.scalar_target(y, x.dtype), zero, jnp.zeros_like(x))
        )


def next_trace_discount(
    discount: Float[Array, ""], truncated: ArrayLike | None
) -> Float[Array, ""]:
    """The `gamma_prev` the next transition's trace decays by: this transition's
    discount, or 0 where a time limit truncated the episode after it."""
    return discount if truncated is None else jnp.where(truncated, 0, discount)


def _unit_closed(name: str, value: ArrayLike, dtype) -> Float[Array, ""]:
    """A scalar in `[0, 1]` (checked when concrete)."""
    array = _checks.non_negative(name, value, dtype)
    if not isinstance(array, jax.core.Tracer) and not float(array) <= 1:
        raise ValueError(f"{name} must be in [0, 1], got {float(array)}")
    return array
