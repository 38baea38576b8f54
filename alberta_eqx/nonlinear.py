"""`MLPLearner`: an online multilayer perceptron trained by any optax transformation."""

from collections.abc import Callable, Sequence
from types import UnionType

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, ArrayLike, Float, PRNGKeyArray, PyTree

from alberta_eqx._checks import features, positive_int, scalar_target
from alberta_eqx._rules import AutostepState, IDBDState
from alberta_eqx.learners import AbstractLearner, StepMetrics, StepSizeSnapshot, UpdateResult
from alberta_eqx.normalizers import AbstractNormalizer

_RuleState = IDBDState | AutostepState
_InjectState = optax.InjectHyperparamsState | optax.InjectStatefulHyperparamsState
# The names under which `optax.inject_hyperparams` may hold a global step-size:
# optax's own transformations, and `alberta_eqx.optax.lms`.
_STEP_SIZE_NAMES = ("learning_rate", "step_size")


def _find(opt_state: PyTree, kind: type | UnionType) -> list:
    """The sub-states of type `kind` anywhere in an optax state (inside
    `optax.chain`, `optax.inject_hyperparams`, `optax.masked`, ...)."""
    is_kind = lambda s: isinstance(s, kind)  # noqa: E731
    return [s for s in jax.tree.leaves(opt_state, is_leaf=is_kind) if is_kind(s)]


def _raveled(trees: list[PyTree]) -> Float[Array, " p"]:
    """Every leaf of every tree, raveled into one vector."""
    return jnp.concatenate([ravel_pytree(t)[0] for t in trees])


class MLPLearner(AbstractLearner):
    """An `eqx.nn.MLP` with a scalar output, learning online with an optax
    transformation: any, including `alberta_eqx.optax.idbd` and `autostep`.

    Each step computes the prediction's gradient `z = dy/dtheta` once, and derives
    from it both the loss gradient `g = -delta z` (loss `delta**2 / 2`) and the
    curvature `c = z**2`, passed to the transformation as
    `optimizer.update(g, opt_state, params, curvature=c)`; transformations that take
    no extra arguments are wrapped with `optax.with_extra_args_support`, which drops
    it.

    **Arguments:**

    - `feature_dim`: the number of input features.
    - `hidden_sizes`: the widths of the hidden layers, e.g. `(64, 64)`; all equal, as
      `eqx.nn.MLP` builds them; `()` for a linear model.
    - `optimizer`: an optax `GradientTransformation`. Its hyperparameters are
      constants of the compiled program unless it is wrapped in
      `optax.inject_hyperparams`, which keeps them in the state.
    - `key`: initialises the network's weights (`eqx.nn.MLP`'s initialisation).
    - `activation`: the hidden layers' activation (default `jax.nn.relu`).
    - `normalizer`: an optional online feature normalizer (`EMANormalizer`, ...).
    - `dtype`: the floating-point dtype of the parameters (default: JAX's default
      float); observations and targets are cast to it.

    `StepMetrics.mean_step_size` is the mean of the per-parameter step-sizes when the
    optimizer's state holds IDBD or Autostep state; otherwise the step-size held by an
    `optax.inject_hyperparams` state (its `learning_rate`, or `step_size`); otherwise
    NaN (a plain `optax.sgd(0.01)` keeps its learning rate out of its state).
    """

    model: eqx.nn.MLP
    opt_state: PyTree
    normalizer: AbstractNormalizer | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
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
        if normalizer is not None and not isinstance(normalizer, AbstractNormalizer):
            raise TypeError(
                f"normalizer must be an alberta_eqx normalizer, got {type(normalizer).__name__}"
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
        # Kept as given (not wrapped here) so that learners built with the same
        # transformation compare equal as static fields and share compiled code.
        self.optimizer = optimizer
        self.opt_state = optimizer.init(self._params)
        self.normalizer = None if normalizer is None else normalizer.init(feature_dim, dtype)

    @property
    def _params(self) -> PyTree[Array]:
        return eqx.filter(self.model, eqx.is_inexact_array)

    @property
    def _dtype(self) -> jnp.dtype:
        return self.model.layers[0].weight.dtype

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.model.layers[0].weight.shape[:-2]

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        x = features(x, self.feature_dim, self._dtype)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return self.model(x)

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["MLPLearner", UpdateResult]:
        x = features(x, self.feature_dim, self._dtype)
        y = scalar_target(y, self._dtype)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)
        # One backward pass: the prediction y and its gradient z = dy/dtheta.
        prediction, z = jax.value_and_grad(lambda p: eqx.combine(p, static)(x))(params)
        delta = y - prediction
        g = jax.tree.map(lambda z: -delta * z, z)  # g = dL/dtheta = -delta z, L = delta^2/2
        c = jax.tree.map(jnp.square, z)  # curvature c = z^2
        tx = optax.with_extra_args_support(self.optimizer)
        updates, opt_state = tx.update(g, self.opt_state, params, curvature=c)
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
        """See the class docstring: per-parameter step-sizes, else an injected
        learning rate, else NaN."""
        states = _find(self.opt_state, _RuleState)
        if states:
            return jnp.mean(_raveled([s.step_size for s in states]))
        for injected in _find(self.opt_state, _InjectState):
            for name in _STEP_SIZE_NAMES:
                if name in injected.hyperparams:
                    return jnp.asarray(injected.hyperparams[name], self._dtype)
        return jnp.asarray(jnp.nan, self._dtype)

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """Every parameter's step-size, raveled into one vector in the order of
        `jax.flatten_util.ravel_pytree(params)`: weights and biases alike, so
        `bias_step_sizes` is None and `include_bias` has no effect. With Autostep,
        `normalizers` holds the `v` in the same order.

        Raises `ValueError` when the optimizer keeps no per-parameter step-sizes (it
        holds no `alberta_eqx.optax.idbd` / `autostep` state)."""
        del include_bias
        states = _find(self.opt_state, _RuleState)
        if not states:
            raise ValueError(
                "step-size tracking needs per-parameter step-sizes: this MLPLearner's "
                "optimizer holds no alberta_eqx.optax.idbd / autostep state"
            )
        autostep = [s.normalizer for s in states if isinstance(s, AutostepState)]
        return StepSizeSnapshot(
            step_sizes=_raveled([s.step_size for s in states]),
            bias_step_sizes=None,
            normalizers=_raveled(autostep) if autostep else None,
        )
