"""`ClassifierLearner`: an online MLP classifier with a softmax head, trained on the
cross-entropy one example at a time (the permuted-data benchmarks' learner)."""

from typing import cast

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx._checks import ArrayLike, features, is_traced, scalar_target
from alberta_eqx.learners import (
    AbstractSupervisedLearner,
    StepMetrics,
    StepSizeSnapshot,
    UpdateResult,
)
from alberta_eqx.nn import Network, check_network
from alberta_eqx.nonlinear._mlp import (
    _AbstractNetworkLearner,
    _forward,
    _mean_step_size,
    _normalizer,
    _optimizer,
    _step_size_snapshot,
)
from alberta_eqx.nonlinear._resets import AbstractUnitReset, reset_units
from alberta_eqx.normalizers import AbstractNormalizer


class ClassifierLearner(_AbstractNetworkLearner, AbstractSupervisedLearner):
    """A network (`alberta_eqx.nn.MLP`, ...) with `num_classes` outputs and a
    softmax, learning online by any optax transformation on the cross-entropy
    `L = -log p(y*)`, `p = softmax(logits)`.

    The target is the class index (a float holding an integer, as the permuted streams
    give it). Each step calls `optimizer.update(g, opt_state, params)` with the loss
    gradient `g` and no extra arguments: the rules that need the prediction's gradient
    (ObGD and the trace rules) do not apply, and Autostep and IDBD use their `g**2`
    fallback for the curvature (`alberta_eqx.optax`). The plasticity transformations
    (`upgd`, `shrink_and_perturb`, `l2_init`, `weight_clipping`) all apply.

    `UpdateResult.prediction` is the predicted class (the arg-max, before the update)
    as a float; `error` is `1 - p(y*)`. The metrics carry `accuracy` (1 where the
    prediction was right), `squared_error` the Brier score `||p - onehot(y*)||^2`,
    and `mean_step_size` as `MLPLearner`'s.

    ```python
    import jax
    import jax.numpy as jnp
    import optax
    from alberta_eqx import ClassifierLearner
    from alberta_eqx.nn import MLP

    model = MLP(3, 4, (8,), key=jax.random.key(0))  # 3 features -> 8 -> 4 classes
    learner = ClassifierLearner(model, optax.sgd(0.1))
    x = jnp.array([1.0, 0.5, -1.0])
    learner, result = learner.update(x, 2.0)  # the target: class 2
    result.metrics.accuracy  # 1 where the class predicted before the update was 2
    learner.predict(x)  # the predicted class now, as a float
    ```

    **Arguments:**

    - `model`: the network, with `out_size` the number of classes (at least 2), e.g.
      `alberta_eqx.nn.MLP(feature_dim, num_classes, (300, 150), key=key)`, or any
      network `alberta_eqx.nn.check_network` accepts.
    - `optimizer`: an optax `GradientTransformation`.
    - `normalizer`: an optional online feature normalizer.
    - `unit_reset`, `key`: as for `MLPLearner` (continual backprop or ReDo).
    """

    model: Network
    opt_state: PyTree
    normalizer: AbstractNormalizer | None
    unit_reset: AbstractUnitReset | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)

    def __init__(
        self,
        model: Network,
        optimizer: optax.GradientTransformation,
        *,
        normalizer: AbstractNormalizer | None = None,
        unit_reset: AbstractUnitReset | None = None,
        key: PRNGKeyArray | None = None,
    ):
        self.model = check_network("model", model)
        if not isinstance(model.out_size, int) or model.out_size < 2:
            raise ValueError(
                f"model must have out_size = num_classes >= 2, got {model.out_size!r}"
            )
        self.optimizer = _optimizer("optimizer", optimizer)
        self.opt_state = optimizer.init(eqx.filter(self.model, eqx.is_inexact_array))
        normalizer = _normalizer(normalizer)
        self.normalizer = (
            None if normalizer is None else normalizer.init(self.feature_dim, self._dtype)
        )
        self.unit_reset = self._unit_reset(unit_reset, key)

    @property
    def num_classes(self) -> int:
        """The number of classes, the network's `out_size`."""
        return cast(int, self.model.out_size)

    def _label(self, y: ArrayLike) -> Int[Array, ""]:
        """The class index of the target `y`, checked where it is concrete."""
        target = scalar_target(y, self._dtype)
        if not is_traced(target):
            value = float(np.asarray(target))
            if value != int(value) or not 0 <= value < self.num_classes:
                raise ValueError(
                    f"y must be a class index in [0, {self.num_classes}), got {value}"
                )
        return target.astype(jnp.int32)

    def logits(self, x: Float[Array, " n"]) -> Float[Array, " k"]:
        """The network's outputs for `x` (without learning from it)."""
        return self.model(self._normalized(x))

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        """The predicted class, as a float."""
        return jnp.argmax(self.logits(x)).astype(self._dtype)

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["ClassifierLearner", UpdateResult]:
        x = features(x, self.feature_dim, self._dtype)
        label = self._label(y)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)

        def loss(p):
            logits, hidden = _forward(eqx.combine(p, static), x)
            return -jax.nn.log_softmax(logits)[label], (logits, hidden)

        (_, (logits, hidden)), g = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = self.optimizer.update(g, self.opt_state, params)
        model = eqx.combine(optax.apply_updates(params, updates), static)
        unit_reset = self.unit_reset
        if unit_reset is not None:
            unit_reset, model, opt_state, _ = reset_units(
                unit_reset, model, hidden, opt_state, self.optimizer.init
            )
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.normalizer, s.unit_reset),
            self,
            (model, opt_state, normalizer, unit_reset),
            is_leaf=lambda n: n is None,
        )
        p = jax.nn.softmax(logits)
        predicted = jnp.argmax(logits)
        error = 1 - p[label]
        metrics = StepMetrics(
            squared_error=jnp.sum(jnp.square(p - jax.nn.one_hot(label, self.num_classes))),
            error=error,
            mean_step_size=_mean_step_size(new.opt_state, self._dtype),
            normalizer_mean_var=None if normalizer is None else jnp.mean(normalizer.var),
            accuracy=(predicted == label).astype(self._dtype),
        )
        return new, UpdateResult(
            prediction=predicted.astype(self._dtype), error=error, metrics=metrics
        )

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """As `MLPLearner.step_size_snapshot`: every parameter's step-size, raveled."""
        del include_bias
        return _step_size_snapshot(self.opt_state, type(self).__name__)
