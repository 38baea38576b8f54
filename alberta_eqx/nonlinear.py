"""`MLPLearner`: an online multilayer perceptron trained by any optax transformation."""

from collections.abc import Callable, Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from alberta_eqx._checks import positive_int, scalar_target
from alberta_eqx._rules import AutostepState, IDBDState
from alberta_eqx.learners import AbstractLearner, StepMetrics, StepSizeSnapshot, UpdateResult
from alberta_eqx.normalizers import AbstractNormalizer


def _rule_states(opt_state: PyTree) -> list[IDBDState | AutostepState]:
    """The IDBD / Autostep states inside an optax state (also inside chains and
    `inject_hyperparams`)."""
    is_rule = lambda s: isinstance(s, IDBDState | AutostepState)  # noqa: E731
    return [s for s in jax.tree.leaves(opt_state, is_leaf=is_rule) if is_rule(s)]


class MLPLearner(AbstractLearner):
    """An `eqx.nn.MLP` with a scalar output, learning online with an optax
    transformation — any, including `alberta_eqx.optax.idbd` and `autostep`.

    Each step computes the prediction's gradient `z = dy/dtheta` once, and derives
    from it both the loss gradient `g = -delta z` (loss `delta**2 / 2`) and the
    curvature `c = z**2`, passed to the transformation as `curvature=` (plain optax
    transformations ignore it).

    **Arguments:**

    - `feature_dim`: the number of input features.
    - `hidden_sizes`: the widths of the hidden layers (all equal, as `eqx.nn.MLP`
      builds them; `()` for a linear model).
    - `optimizer`: an optax `GradientTransformation`.
    - `key`: initialises the network's weights.
    - `activation`: the hidden layers' activation.
    - `normalizer`: an optional online feature normalizer.
    - `dtype`: the floating-point dtype of the parameters.

    `mean_step_size` in the metrics is the mean per-parameter step-size when the
    optimizer holds IDBD or Autostep state, and NaN otherwise.
    """

    model: eqx.nn.MLP
    opt_state: PyTree
    normalizer: AbstractNormalizer | None
    optimizer: optax.GradientTransformationExtraArgs = eqx.field(static=True)
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        hidden_sizes: Sequence[int],
        optimizer: optax.GradientTransformation,
        *,
        key: PRNGKeyArray,
        activation: Callable[[Array], Array] = jax.nn.relu,
        normalizer: AbstractNormalizer | None = None,
        dtype=None,
    ):
        self.feature_dim = positive_int("feature_dim", feature_dim)
        hidden_sizes = tuple(positive_int("hidden_sizes", h) for h in hidden_sizes)
        if len(set(hidden_sizes)) > 1:
            raise ValueError(f"hidden_sizes must all be equal (eqx.nn.MLP), got {hidden_sizes}")
        if not isinstance(optimizer, optax.GradientTransformation):
            raise TypeError(
                "optimizer must be an optax GradientTransformation, got "
                f"{type(optimizer).__name__}"
            )
        dtype = dtype or jnp.result_type(float)
        self.model = eqx.nn.MLP(
            feature_dim,
            "scalar",
            hidden_sizes[0] if hidden_sizes else 1,
            len(hidden_sizes),
            activation=activation,
            key=key,
            dtype=dtype,
        )
        self.optimizer = optax.with_extra_args_support(optimizer)
        self.opt_state = self.optimizer.init(eqx.filter(self.model, eqx.is_inexact_array))
        self.normalizer = None if normalizer is None else normalizer.init(feature_dim, dtype)

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.model.layers[0].weight.shape[:-2]

    def _features(self, x: ArrayLike) -> Float[Array, " n"]:
        x = jnp.asarray(x)
        if x.shape != (self.feature_dim,):
            raise ValueError(f"x must have shape ({self.feature_dim},), got {x.shape}")
        return x

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        x = self._features(x)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return self.model(x)

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["MLPLearner", UpdateResult]:
        x = self._features(x)
        dtype = self.model.layers[0].weight.dtype
        y = scalar_target(y, dtype)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)
        prediction, z = jax.value_and_grad(lambda p: eqx.combine(p, static)(x))(params)
        delta = y - prediction
        g = jax.tree.map(lambda z: -delta * z, z)  # dL/dtheta for L = delta^2 / 2
        c = jax.tree.map(lambda z: z * z, z)  # curvature z^2
        updates, opt_state = self.optimizer.update(g, self.opt_state, params, curvature=c)
        model = eqx.combine(optax.apply_updates(params, updates), static)
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.normalizer),
            self,
            (model, opt_state, normalizer),
            is_leaf=lambda n: n is None,
        )
        metrics = StepMetrics(
            squared_error=delta * delta,
            error=delta,
            mean_step_size=new._mean_step_size(),
            normalizer_mean_var=None if normalizer is None else jnp.mean(normalizer.var),
        )
        return new, UpdateResult(prediction=prediction, error=delta, metrics=metrics)

    def _mean_step_size(self) -> Float[Array, ""]:
        states = _rule_states(self.opt_state)
        if not states:
            return jnp.asarray(jnp.nan, self.model.layers[0].weight.dtype)
        return jnp.mean(jnp.concatenate([ravel_pytree(s.step_size)[0] for s in states]))

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """All parameters' step-sizes, raveled into one vector (biases included; there
        is no separate bias entry)."""
        states = _rule_states(self.opt_state)
        if not states:
            raise ValueError(
                "step-size tracking needs per-parameter step-sizes: this MLPLearner's "
                "optimizer holds no alberta_eqx.optax.idbd / autostep state"
            )
        alphas = jnp.concatenate([ravel_pytree(s.step_size)[0] for s in states])
        vs = [ravel_pytree(s.normalizer)[0] for s in states if isinstance(s, AutostepState)]
        return StepSizeSnapshot(alphas, None, jnp.concatenate(vs) if vs else None)
