"""`ClassifierLearner`: an online MLP classifier with a softmax head, trained on the
cross-entropy one example at a time (the permuted-data benchmarks' learner)."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx._checks import default_float, features, is_traced, positive_int, scalar_target
from alberta_eqx.learners import StepMetrics, StepSizeSnapshot, UpdateResult
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear._mlp import _mean_step_size, _MLPNetworkLearner, _step_size_snapshot
from alberta_eqx.normalizers import AbstractNormalizer


class ClassifierLearner(_MLPNetworkLearner):
    """A multilayer perceptron (`alberta_eqx.nn.MLP`) with `num_classes` outputs and a
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

    **Arguments:**

    - `feature_dim`: the number of input features.
    - `num_classes`: the number of classes (at least 2).
    - `hidden_sizes`: the widths of the hidden layers, e.g. `(300, 150)`.
    - `optimizer`: an optax `GradientTransformation`.
    - `key`: initialises the network's weights.
    - `activation`: the hidden layers' activation (default `jax.nn.relu`).
    - `normalizer`: an optional online feature normalizer.
    - `dtype`: the parameters' floating-point dtype (default: JAX's default float).
    - `layer_norm`, `sparsity`: as `MLPLearner`'s.
    """

    model: MLP
    opt_state: PyTree
    normalizer: AbstractNormalizer | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    feature_dim: int = eqx.field(static=True)
    num_classes: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        num_classes: int,
        hidden_sizes: Sequence[int],
        optimizer: optax.GradientTransformation,
        *,
        key: PRNGKeyArray,
        activation: Callable[[Array], Array] = jax.nn.relu,
        normalizer: AbstractNormalizer | None = None,
        dtype=None,
        layer_norm: bool = False,
        sparsity: float | None = None,
    ):
        self.feature_dim = positive_int("feature_dim", feature_dim)
        self.num_classes = positive_int("num_classes", num_classes)
        if self.num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                "optimizer must be an optax GradientTransformation, got "
                f"{type(optimizer).__name__}"
            )
        if normalizer is not None and not isinstance(normalizer, AbstractNormalizer):
            raise TypeError(
                f"normalizer must be an alberta_eqx normalizer, got {type(normalizer).__name__}"
            )
        dtype = dtype or default_float()
        self.model = MLP(
            feature_dim,
            num_classes,
            hidden_sizes,
            key=key,
            activation=activation,
            layer_norm=layer_norm,
            sparsity=sparsity,
            dtype=dtype,
        )
        self.optimizer = optimizer
        self.opt_state = optimizer.init(eqx.filter(self.model, eqx.is_inexact_array))
        self.normalizer = None if normalizer is None else normalizer.init(feature_dim, dtype)

    @property
    def sparsity(self) -> float | None:
        return self.model.sparsity

    @property
    def _dtype(self) -> jnp.dtype:
        return self.model.layers[0].weight.dtype

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.model.layers[0].weight.shape[:-2]

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
        x = features(x, self.feature_dim, self._dtype)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return self.model(x)

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
            logits = eqx.combine(p, static)(x)
            return -jax.nn.log_softmax(logits)[label], logits

        (_, logits), g = jax.value_and_grad(loss, has_aux=True)(params)
        updates, opt_state = self.optimizer.update(g, self.opt_state, params)
        model = eqx.combine(optax.apply_updates(params, updates), static)
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.normalizer),
            self,
            (model, opt_state, normalizer),
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
