"""`MLPLearner`: an online network (`alberta_eqx.nn.MLP`, or any network given to it)
trained by any optax transformation, and the abstract bases of the learners of a
network."""

from collections.abc import Callable
from types import UnionType
from typing import cast

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jax.flatten_util import ravel_pytree
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from alberta_eqx._checks import ArrayLike, features, scalar_target
from alberta_eqx._rules import AutostepState, IDBDState
from alberta_eqx.learners import (
    AbstractLearner,
    AbstractSupervisedLearner,
    StepMetrics,
    StepSizeSnapshot,
    UpdateResult,
)
from alberta_eqx.nn import MLP, Network, check_network
from alberta_eqx.nonlinear._resets import AbstractUnitReset, check_unit_reset, reset_units
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


def _mean_step_size(opt_state: PyTree, dtype) -> Float[Array, ""]:
    """The mean per-parameter step-size of an optax state holding IDBD or Autostep
    state, else the step-size held by an `optax.inject_hyperparams` state, else NaN."""
    states = _find(opt_state, _RuleState)
    if states:
        return jnp.mean(_raveled([s.step_size for s in states]))
    for injected in _find(opt_state, _InjectState):
        for name in _STEP_SIZE_NAMES:
            if name in injected.hyperparams:
                return jnp.asarray(injected.hyperparams[name], dtype)
    return jnp.asarray(jnp.nan, dtype)


def _step_size_snapshot(opt_state: PyTree, owner: str) -> StepSizeSnapshot:
    """Every per-parameter step-size (and Autostep's `v`) of an optax state, raveled."""
    states = _find(opt_state, _RuleState)
    if not states:
        raise ValueError(
            f"step-size tracking needs per-parameter step-sizes: this {owner}'s "
            "optimizer holds no alberta_eqx.optax.idbd / autostep state"
        )
    autostep = [s.step_size_normalizer for s in states if isinstance(s, AutostepState)]
    return StepSizeSnapshot(
        step_sizes=_raveled([s.step_size for s in states]),
        bias_step_sizes=None,
        step_size_normalizers=_raveled(autostep) if autostep else None,
    )


def _optimizer(name: str, tx: object) -> optax.GradientTransformation:
    if not isinstance(tx, optax.GradientTransformation):
        raise TypeError(f"{name} must be an optax GradientTransformation, got {type(tx).__name__}")
    return tx


def _trained_network(
    model: object,
    optimizer: object,
    head_optimizer: object,
    flatten: bool,
) -> tuple[Network, optax.GradientTransformation, optax.GradientTransformation | None, bool]:
    """The arguments `model`, `optimizer`, `head_optimizer` and `flatten` of a scalar
    network's learner, checked."""
    if head_optimizer is not None:
        head_optimizer = _optimizer("head_optimizer", head_optimizer)
        if flatten:
            raise ValueError(
                "head_optimizer needs the model's pytree to tell the output layer apart: "
                "pass flatten=False"
            )
    return (
        check_network("model", model, out_size="scalar"),
        _optimizer("optimizer", optimizer),
        head_optimizer,
        bool(flatten),
    )


def _forward(model: Network, x: Float[Array, " n"]) -> tuple[Array, tuple[Array, ...]]:
    """The network's output and its hidden activations (none for a network other than
    `alberta_eqx.nn.MLP`, which only a learner without unit resets takes)."""
    return model.forward(x) if isinstance(model, MLP) else (model(x), ())


def _normalizer(normalizer: object) -> AbstractNormalizer | None:
    if normalizer is not None and not isinstance(normalizer, AbstractNormalizer):
        raise TypeError(
            f"normalizer must be an alberta_eqx normalizer, got {type(normalizer).__name__}"
        )
    return normalizer


class _AbstractNetworkLearner(AbstractLearner):
    """A learner of a network given to it (`alberta_eqx.nn.MLP`, `eqx.nn.MLP` or any
    network that `alberta_eqx.nn.check_network` accepts): the feature count, dtype
    and batch axes are the network's."""

    model: eqx.AbstractVar[Network]

    @property
    def feature_dim(self) -> int:
        return cast(int, self.model.in_size)

    @property
    def _dtype(self) -> jnp.dtype:
        return self.model.layers[0].weight.dtype

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.model.layers[0].weight.shape[:-2]

    def _unit_reset(
        self, unit_reset: object, key: PRNGKeyArray | None
    ) -> AbstractUnitReset | None:
        """The argument `unit_reset` checked and initialised for this network (the
        model already set)."""
        if unit_reset is None:
            return None
        check_unit_reset(unit_reset, self.model, key)
        assert isinstance(unit_reset, AbstractUnitReset) and key is not None
        return unit_reset.init(cast(MLP, self.model).hidden_sizes, key, self._dtype)

    def _normalized(self, x: Float[Array, " n"]) -> Float[Array, " n"]:
        """`x` checked, cast to the network's dtype and normalized (without learning)."""
        x = features(x, self.feature_dim, self._dtype)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return x


class _AbstractPredictionGradientLearner(_AbstractNetworkLearner):
    """A scalar-output network trained through one optax transformation (or one for
    the hidden layers and one for the output layer) that is given the prediction's
    gradient with the loss gradient: `MLPLearner` and `TDMLPLearner`."""

    opt_state: eqx.AbstractVar[PyTree]
    optimizer: eqx.AbstractVar[optax.GradientTransformation]
    head_optimizer: eqx.AbstractVar[optax.GradientTransformation | None]
    flatten: eqx.AbstractVar[bool]

    def _initial_state(self) -> PyTree:
        """The transformation's state for this network (the optimizers and `flatten`
        already set and checked)."""
        params = eqx.filter(self.model, eqx.is_inexact_array)
        ravel, _ = self._layout(params)
        try:
            return self._transformation.init(ravel(params))
        except (TypeError, ValueError) as error:
            if self.flatten:
                error.add_note(
                    f"{type(self).__name__} gives the optimizer its parameters raveled into "
                    "one vector; for a transformation that needs the model's pytree "
                    "(optax.masked, optax.partition, ...), pass flatten=False"
                )
            raise

    @property
    def _transformation(self) -> optax.GradientTransformationExtraArgs:
        """The optimizer, or the optimizer for the hidden layers and the head
        optimizer for the output layer, taking the extra keyword arguments."""
        if self.head_optimizer is None:
            return optax.with_extra_args_support(self.optimizer)
        transforms = {
            "trunk": optax.with_extra_args_support(self.optimizer),
            "head": optax.with_extra_args_support(self.head_optimizer),
        }
        return optax.partition(transforms, _head_labels, mask_compatible_extra_args=True)

    def _layout(self, params: PyTree[Array]) -> tuple[Callable, Callable]:
        """Functions to and from the layout in which the optimizer sees trees shaped
        like `params`: one raveled vector when `flatten`, else the trees as they are."""
        if not self.flatten:
            return (lambda tree: tree), (lambda tree: tree)
        return (lambda tree: ravel_pytree(tree)[0]), ravel_pytree(params)[1]

    def _step(
        self, params: PyTree[Array], static: PyTree, g: PyTree[Array], **extras: PyTree
    ) -> tuple[Network, PyTree]:
        """The network after one step of the transformation from the gradient `g` with
        the `alberta_eqx.optax` keyword arguments `extras` (trees shaped like `params`
        or scalars), and the transformation's new state."""
        ravel, unravel = self._layout(params)
        extras = {k: v if k in ("error", "trace_decay") else ravel(v) for k, v in extras.items()}
        updates, opt_state = self._transformation.update(
            ravel(g), self.opt_state, ravel(params), **extras
        )
        return eqx.combine(optax.apply_updates(params, unravel(updates)), static), opt_state

    def _reset_units(
        self, unit_reset: AbstractUnitReset, hidden: tuple[Array, ...]
    ) -> tuple[AbstractUnitReset, MLP, PyTree, PyTree[Bool[Array, "..."]]]:
        """`reset_units` on this learner's network and optimizer state (in the
        optimizer's layout): the rule, network and state after it, and the mask of
        the changed parameters."""
        model = cast(MLP, self.model)
        ravel, _ = self._layout(eqx.filter(model, eqx.is_inexact_array))
        return reset_units(
            unit_reset, model, hidden, self.opt_state, self._transformation.init, ravel
        )

    def predict(self, x: Float[Array, " n"]) -> Float[Array, ""]:
        return self.model(self._normalized(x))

    def _mean_step_size(self) -> Float[Array, ""]:
        return _mean_step_size(self.opt_state, self._dtype)

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """Every parameter's step-size, raveled into one vector in the order of
        `jax.flatten_util.ravel_pytree(params)`: weights and biases alike, so
        `bias_step_sizes` is None and `include_bias` has no effect. With Autostep,
        `step_size_normalizers` holds the `v` in the same order.

        Raises `ValueError` when the optimizer keeps no per-parameter step-sizes (it
        holds no `alberta_eqx.optax.idbd` / `autostep` state)."""
        del include_bias
        return _step_size_snapshot(self.opt_state, type(self).__name__)


class MLPLearner(_AbstractPredictionGradientLearner, AbstractSupervisedLearner):
    """A network with a scalar output (`alberta_eqx.nn.MLP(feature_dim, "scalar",
    hidden_sizes, key=key)`, or any network `alberta_eqx.nn.check_network` accepts,
    such as `eqx.nn.MLP`), learning online with an optax transformation: any,
    including `alberta_eqx.optax.idbd`, `autostep`, `obgd` and chains ending in
    `obgd_bound`.

    Each step computes the prediction's gradient `z = dy/dtheta` once, and derives
    from it both the loss gradient `g = -delta z` (loss `delta**2 / 2`) and the
    curvature `c = z**2`, passed to the transformation as
    `optimizer.update(g, opt_state, params, curvature=c, error=delta,
    prediction_gradient=z, trace_decay=0)` (the keyword arguments of
    `alberta_eqx.optax`; a supervised learner keeps no eligibility trace, so
    `trace_decay` is 0); transformations that take no extra arguments are wrapped
    with `optax.with_extra_args_support`, which drops them. With `flatten=True`,
    `params`, `g`, `c` and `z` are raveled into one vector each.

    The streaming-RL papers' network (Elsayed, Vasan and Mahmood 2024) is
    `MLP(feature_dim, "scalar", hidden_sizes, key=key, sparsity=0.9)` (LeakyReLU and
    parameterless LayerNorm are `MLP`'s defaults) with
    `alberta_eqx.optax.obgd(1.0, kappa=2.0)`.

    ```python
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    import alberta_eqx.optax as aeo
    from alberta_eqx import MLPLearner
    from alberta_eqx.nn import MLP

    model = MLP(3, "scalar", (8,), key=jax.random.key(0))  # 3 -> 8 -> 1
    learner = MLPLearner(model, aeo.autostep(initial_step_size=0.01))
    x = jnp.array([1.0, 0.5, -1.0])
    update = eqx.filter_jit(MLPLearner.update)  # update is pure: compile it once
    learner, result = update(learner, x, 2.0)  # result.error: y minus the prediction before
    ```

    **Arguments:**

    - `model`: the network, with `out_size="scalar"`; its `in_size` is the number of
      features, and its parameters' dtype the learner's (observations and targets are
      cast to it).
    - `optimizer`: an optax `GradientTransformation`. Its hyperparameters are
      constants of the compiled program unless it is wrapped in
      `optax.inject_hyperparams`, which keeps them in the state.
    - `normalizer`: an optional online feature normalizer (`EMANormalizer`, ...).
    - `head_optimizer`: an optax transformation for the output layer only; the
      `optimizer` then trains the hidden layers (0.17's `head_optimizer`). Built
      with `optax.partition(..., mask_compatible_extra_args=True)`, so each part sees
      its own slice of the curvature and of `prediction_gradient`, and a rule that
      sums over the parameters (Autostep's `M`, ObGD's L1 norm) sums over its own
      part. Needs `flatten=False`.
    - `unit_reset`: a `ContinualBackprop` or `ReDo` to replace hidden units after
      every gradient step (the model must be an `alberta_eqx.nn.MLP`); a replaced
      unit's optimizer state is reset with it (`reset_units`).
    - `key`: the draws of the replaced units' weights; needed with `unit_reset`.
    - `flatten`: give the optimizer every parameter raveled into one vector
      (`jax.flatten_util.ravel_pytree` order, as `optax.flatten` does) instead of the
      model's pytree; its state then holds vectors too (`opt_state.step_size` is one
      vector). Per-parameter transformations (`alberta_eqx.optax.idbd`, `autostep`,
      `optax.sgd`, `adam`, global-norm clipping) compute the same either way;
      transformations that look at the pytree (`optax.masked`, `optax.partition`,
      per-layer rules such as `optax.lamb`) need the default, `False`. Use `True`
      for one event per call (`OnlineLearner`): XLA then compiles one fused loop per
      rule instead of one per weight matrix and bias, and on CPU independent small
      kernels cost microseconds each per call, so a 64x64 MLP under Autostep learns
      an event in about half the time. Inside the runners' scans the opposite holds:
      packing the gradients into one vector costs more per step than the kernels it
      saves (benchmarks/README.md has both measurements).

    `StepMetrics.mean_step_size` is the mean of the per-parameter step-sizes when the
    optimizer's state holds IDBD or Autostep state; otherwise the step-size held by an
    `optax.inject_hyperparams` state (its `learning_rate`, or `step_size`); otherwise
    NaN (a plain `optax.sgd(0.01)` keeps its learning rate out of its state).
    """

    model: Network
    opt_state: PyTree
    normalizer: AbstractNormalizer | None
    unit_reset: AbstractUnitReset | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    head_optimizer: optax.GradientTransformation | None = eqx.field(static=True)
    flatten: bool = eqx.field(static=True)

    def __init__(
        self,
        model: Network,
        optimizer: optax.GradientTransformation,
        *,
        normalizer: AbstractNormalizer | None = None,
        head_optimizer: optax.GradientTransformation | None = None,
        flatten: bool = False,
        unit_reset: AbstractUnitReset | None = None,
        key: PRNGKeyArray | None = None,
    ):
        # The transformations are kept as given (not wrapped here) so that learners
        # built with the same transformation compare equal as static fields and share
        # compiled code.
        self.model, self.optimizer, self.head_optimizer, self.flatten = _trained_network(
            model, optimizer, head_optimizer, flatten
        )
        self.opt_state = self._initial_state()
        normalizer = _normalizer(normalizer)
        self.normalizer = (
            None if normalizer is None else normalizer.init(self.feature_dim, self._dtype)
        )
        self.unit_reset = self._unit_reset(unit_reset, key)

    def update(self, x: Float[Array, " n"], y: ArrayLike) -> tuple["MLPLearner", UpdateResult]:
        x = features(x, self.feature_dim, self._dtype)
        y = scalar_target(y, self._dtype)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)
        params, static = eqx.partition(self.model, eqx.is_inexact_array)
        # One backward pass: the prediction y and its gradient z = dy/dtheta.
        (prediction, hidden), z = jax.value_and_grad(
            lambda p: _forward(eqx.combine(p, static), x), has_aux=True
        )(params)
        delta = y - prediction
        model, opt_state = self._step(
            params,
            static,
            jax.tree.map(lambda z: -delta * z, z),  # g = dL/dtheta = -delta z, L = delta^2/2
            curvature=jax.tree.map(jnp.square, z),  # c = z^2
            error=delta,
            prediction_gradient=z,
            trace_decay=jnp.zeros((), delta.dtype),
        )
        new = eqx.tree_at(
            lambda s: (s.model, s.opt_state, s.normalizer),
            self,
            (model, opt_state, normalizer),
            is_leaf=lambda n: n is None,
        )
        if new.unit_reset is not None:
            unit_reset, model, opt_state, _ = new._reset_units(new.unit_reset, hidden)
            new = eqx.tree_at(
                lambda s: (s.model, s.opt_state, s.unit_reset), new, (model, opt_state, unit_reset)
            )
        metrics = StepMetrics(
            squared_error=delta * delta,
            error=delta,
            mean_step_size=new._mean_step_size(),
            normalizer_mean_var=None if normalizer is None else jnp.mean(normalizer.var),
        )
        return new, UpdateResult(prediction=prediction, error=delta, metrics=metrics)


def _head_labels(params: Network) -> PyTree[str]:
    """`"head"` for the output layer's parameters, `"trunk"` for the others."""
    labels = jax.tree.map(lambda _: "trunk", params)
    head = params.layers[-1]
    return eqx.tree_at(lambda m: m.layers[-1], labels, jax.tree.map(lambda _: "head", head))
