"""Learners: a model, its optimizer and (optionally) a feature normalizer, as one module.

Every learner follows one interface, which the runners rely on:
`predict(x)`, `update(x, y) -> (new_learner, UpdateResult)`, and `learn(timestep)`,
which reads one step of a stream and calls `update`. `learn` is abstract in
`AbstractLearner` and final where it is written (Equinox's abstract-or-final rule):
`AbstractSupervisedLearner` writes it once for every learner of `TimeStep`s.
"""

import abc
from typing import Any, ClassVar, NamedTuple

import equinox as eqx
import jax.numpy as jnp
from jaxtyping import Array, Float

from alberta_eqx._checks import (
    ArrayLike,
    default_float,
    features,
    float_dtype,
    positive_int,
    scalar_target,
)
from alberta_eqx.normalizers import AbstractNormalizer
from alberta_eqx.optimizers import LMS, AbstractOptimizer
from alberta_eqx.streams import TDTimeStep, TimeStep


class StepMetrics(NamedTuple):
    """What one update reports (each a scalar; stacked over steps by the runners).

    **Fields:**

    - `squared_error`: `delta**2`.
    - `error`: `delta = y* - y`, with `y` the prediction made before the update.
    - `mean_step_size`: the mean of the per-weight step-sizes of this update (the bias
      excluded, as in 0.2.x).
    - `normalizer_mean_var`: the mean of the normalizer's per-feature variances after
      this step; None for a learner without a normalizer.
    - `accuracy`: a classifier's 1 where its prediction (made before the update) was
      the target class, else 0; averaged over a metrics window it is the online
      accuracy. None for a learner that does not classify.
    """

    squared_error: Float[Array, "*batch"]
    error: Float[Array, "*batch"]
    mean_step_size: Float[Array, "*batch"]
    normalizer_mean_var: Float[Array, "*batch"] | None = None
    accuracy: Float[Array, "*batch"] | None = None


class UpdateResult(NamedTuple):
    """The outcome of `learner.update(x, y)` besides the new learner.

    **Fields:**

    - `prediction`: the prediction for `x` made before the update.
    - `error`: `y* - prediction`.
    - `metrics`: the step's `StepMetrics`.
    """

    prediction: Float[Array, ""]
    error: Float[Array, ""]
    metrics: StepMetrics


class StepSizeSnapshot(NamedTuple):
    """Per-weight step-sizes at one moment (stacked over recordings in a history).

    **Fields:**

    - `step_sizes`: one per weight (the bias excluded).
    - `bias_step_sizes`: the bias's step-size; None without a bias or when not asked.
    - `step_size_normalizers`: Autostep's per-weight `v_i`; None for other optimizers.
    """

    step_sizes: Float[Array, "*records n"]
    bias_step_sizes: Float[Array, "*records"] | None
    step_size_normalizers: Float[Array, "*records n"] | None


class AbstractLearner(eqx.Module):
    """An online learner: it predicts, then learns from every example it is shown."""

    feature_dim: eqx.AbstractVar[int]
    normalizer: eqx.AbstractVar[AbstractNormalizer | None]
    # The type of one stream step that `learn` reads (or a tuple of types it reads);
    # the runners check a stream's `chunk` against it. Learners of other kinds of
    # streams declare their own.
    timestep_type: ClassVar[type | tuple[type, ...]] = TimeStep
    accepts_missing_targets: ClassVar[bool] = False  # True: NaN in y marks "no target"

    @property
    def target_shape(self) -> tuple[int, ...]:
        """The shape of one step's target: `()` for a scalar prediction."""
        return ()

    @abc.abstractmethod
    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        """The prediction for `x` (without learning from it)."""

    @abc.abstractmethod
    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["AbstractLearner", UpdateResult]:
        """Predict `x`, learn from the target `y`, return the new learner and the result."""

    @abc.abstractmethod
    def learn(self, timestep: Any) -> tuple["AbstractLearner", Any]:
        """Learn from one step of a stream (of type `timestep_type`): the runners'
        entry point. `AbstractSupervisedLearner` implements it for `TimeStep`s; the
        temporal-difference and GVF learners read their own step types."""

    @abc.abstractmethod
    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """The current per-weight step-sizes, for tracking."""

    @property
    @abc.abstractmethod
    def batch_shape(self) -> tuple[int, ...]:
        """The leading batch axes of this learner's arrays: `()` for one learner,
        `(k,)` for `k` learners built with `eqx.filter_vmap` (a hyperparameter grid)."""


class AbstractSupervisedLearner(AbstractLearner):
    """A learner of a supervised stream: it learns `timestep.target` from
    `timestep.observation` (`LinearLearner`, `MLPLearner`, `MultiHeadLearner`,
    `ClassifierLearner`)."""

    def learn(self, timestep: TimeStep) -> tuple["AbstractLearner", Any]:
        """Learn from one `TimeStep`: `update(timestep.observation, timestep.target)`."""
        return self.update(timestep.observation, timestep.target)


class AbstractTDLearner(AbstractLearner):
    """A learner of transitions (`TDTimeStep`s): the TD learners (`TDLinearLearner`,
    `TrueOnlineTDLearner`, `SwiftTDLearner`, `TDMLPLearner`). Each writes `learn`;
    `update(x, y)` learns `y` as a one-step target, the transition
    `TDTimeStep(x, y, 0, 0)` (discount 0: nothing is bootstrapped)."""

    timestep_type: ClassVar[type] = TDTimeStep

    @property
    @abc.abstractmethod
    def _dtype(self) -> jnp.dtype:
        """The floating-point dtype of the learner's weights and state."""

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["AbstractLearner", UpdateResult]:
        """Learn `y` as a one-step target: the transition `TDTimeStep(x, y, 0, 0)`."""
        x = features(x, self.feature_dim, self._dtype)
        zero = jnp.zeros((), x.dtype)
        return self.learn(TDTimeStep(x, scalar_target(y, x.dtype), zero, jnp.zeros_like(x)))


class AbstractLinearLearner(AbstractLearner):
    """What the linear learners (supervised, temporal-difference and gradient-TD)
    share: weights `w`, an optional bias `b` (a weight whose input is the constant 1),
    the prediction `w . x + b`, and the step-sizes they learn with."""

    weights: eqx.AbstractVar[Float[Array, " n"]]
    bias: eqx.AbstractVar[Float[Array, ""] | None]

    @property
    def use_bias(self) -> bool:
        return self.bias is not None

    @property
    def _params(self) -> tuple[Array, ...]:
        return (self.weights,) if self.bias is None else (self.weights, self.bias)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.weights.shape[:-1]

    @property
    def _dtype(self) -> jnp.dtype:
        return self.weights.dtype

    def _linear(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        y = jnp.dot(self.weights, x)
        return y if self.bias is None else y + self.bias

    @property
    @abc.abstractmethod
    def step_sizes(self) -> Float[Array, "*batch n"]:
        """The per-weight step-sizes used by the latest update (the bias excluded)."""

    @property
    @abc.abstractmethod
    def bias_step_size(self) -> Float[Array, "*batch"] | None:
        """The bias's step-size (None without a bias)."""


class AbstractOptimizedLinearLearner(AbstractLinearLearner):
    """A linear learner whose step-sizes are its optimizer's (an
    `alberta_eqx.AbstractOptimizer` keeping per-parameter step-sizes for `(w, b)`)."""

    optimizer: eqx.AbstractVar[Any]

    def _initial_optimizer(self, optimizer: AbstractOptimizer | None) -> AbstractOptimizer:
        """`optimizer` (`LMS(0.01)` when None) initialised for this learner's weights
        and bias: the constructors call it once those are set."""
        if optimizer is None:
            optimizer = LMS(0.01)
        if not isinstance(optimizer, AbstractOptimizer):
            raise TypeError(
                f"optimizer must be an alberta_eqx optimizer (LMS, IDBD, Autostep), "
                f"got {type(optimizer).__name__}"
            )
        return optimizer.init(self._params)

    @property
    def step_sizes(self) -> Float[Array, "*batch n"]:
        """The per-weight step-sizes used by the latest update (the bias excluded)."""
        return self.optimizer.step_sizes(self._params)[0]

    @property
    def bias_step_size(self) -> Float[Array, "*batch"] | None:
        """The bias's step-size (None without a bias)."""
        return None if self.bias is None else self.optimizer.step_sizes(self._params)[1]

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        v = self.optimizer.step_size_normalizer
        return StepSizeSnapshot(
            step_sizes=self.step_sizes,
            bias_step_sizes=self.bias_step_size if include_bias else None,
            step_size_normalizers=None if v is None else v[0],
        )


class AbstractFixedStepSizeLinearLearner(AbstractLinearLearner):
    """A linear learner with one fixed step-size `alpha` for every weight and the
    bias, and no feature normalizer (`GradientTDLearner`, `TrueOnlineTDLearner`)."""

    step_size: eqx.AbstractVar[Float[Array, ""]]

    @property
    def normalizer(self) -> None:
        """These learners have no feature normalizer."""
        return None

    @property
    def step_sizes(self) -> Float[Array, "*batch n"]:
        """`alpha` for every weight (fixed)."""
        return jnp.broadcast_to(self.step_size[..., None], self.weights.shape)

    @property
    def bias_step_size(self) -> Float[Array, "*batch"] | None:
        """`alpha` for the bias (fixed); None without a bias."""
        return None if self.bias is None else self.step_size

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        return StepSizeSnapshot(
            step_sizes=self.step_sizes,
            bias_step_sizes=self.bias_step_size if include_bias else None,
            step_size_normalizers=None,
        )

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return self._linear(features(x, self.feature_dim, self.weights.dtype))


class LinearLearner(AbstractOptimizedLinearLearner, AbstractSupervisedLearner):
    """A linear predictor `y = w . x + b`, trained online by a step-size rule.

    The bias is a weight whose input is the constant 1, so it follows exactly the
    same per-weight rule as the other weights (and, in Autostep, counts in `M`).
    With a normalizer this is 0.2.x's `NormalizedLinearLearner`: the normalizer's
    statistics update on every step, and prediction and learning use the
    normalised features.

    ```python
    import jax.numpy as jnp
    from alberta_eqx import LMS, LinearLearner

    learner = LinearLearner(3, LMS(0.1))  # w = 0, b = 0
    x = jnp.array([1.0, 0.5, -1.0])
    learner, result = learner.update(x, 2.0)  # a new learner, and what the step did
    result.error  # about 2.0: y minus the prediction made before the update (0)
    learner.predict(x)  # about 0.65 = 0.1 * 2.0 * (x . x + 1), the bias's input being 1
    ```

    **Arguments:**

    - `feature_dim`: the number of input features.
    - `optimizer`: the step-size rule (`LMS`, `IDBD`, `Autostep`, ...).
    - `normalizer`: an optional online feature normalizer.
    - `use_bias`: whether to learn a bias.
    - `dtype`: the floating-point dtype of weights and state (default: JAX's default
      float, float32 unless `jax_enable_x64` is on).
    """

    weights: Float[Array, " n"]
    bias: Float[Array, ""] | None
    optimizer: AbstractOptimizer
    normalizer: AbstractNormalizer | None
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        optimizer: AbstractOptimizer | None = None,
        normalizer: AbstractNormalizer | None = None,
        use_bias: bool = True,
        *,
        dtype=None,
    ):
        self.feature_dim = positive_int("feature_dim", feature_dim)
        if normalizer is not None and not isinstance(normalizer, AbstractNormalizer):
            raise TypeError(
                f"normalizer must be an alberta_eqx normalizer, got {type(normalizer).__name__}"
            )
        dtype = float_dtype("dtype", dtype or default_float())
        self.weights = jnp.zeros(feature_dim, dtype)
        self.bias = jnp.zeros((), dtype) if use_bias else None
        self.optimizer = self._initial_optimizer(optimizer)
        self.normalizer = None if normalizer is None else normalizer.init(feature_dim, dtype)

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        x = features(x, self.feature_dim, self.weights.dtype)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return self._linear(x)

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["LinearLearner", UpdateResult]:
        x = features(x, self.feature_dim, self.weights.dtype)
        y = scalar_target(y, self.weights.dtype)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)
        prediction = self._linear(x)
        delta = y - prediction
        # Loss delta**2/2: gradient -delta * z and curvature z**2, with z = x (and 1
        # for the bias).
        z = (x,) if self.bias is None else (x, jnp.ones_like(delta))
        g = tuple(-delta * zi for zi in z)
        c = tuple(zi * zi for zi in z)
        updates, optimizer = self.optimizer.step(g, c, error=delta, prediction_gradient=z)
        params = tuple(p + u for p, u in zip(self._params, updates, strict=True))
        new = eqx.tree_at(
            lambda s: (s.weights, s.bias, s.optimizer, s.normalizer),
            self,
            (params[0], params[1] if len(params) > 1 else None, optimizer, normalizer),
            is_leaf=lambda n: n is None,
        )
        metrics = StepMetrics(
            squared_error=delta * delta,
            error=delta,
            mean_step_size=jnp.mean(optimizer.step_sizes(params)[0]),
            normalizer_mean_var=None if normalizer is None else jnp.mean(normalizer.var),
        )
        return new, UpdateResult(prediction=prediction, error=delta, metrics=metrics)
