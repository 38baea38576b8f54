"""`MultiHeadLearner`: a shared trunk and `k` scalar heads, some of which may have no
target at a given step."""

from collections.abc import Callable
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, PRNGKeyArray, PyTree

from alberta_eqx import _rules
from alberta_eqx._checks import ArrayLike, features
from alberta_eqx.learners import AbstractSupervisedLearner, StepSizeSnapshot
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear._mlp import (
    _STEP_SIZE_NAMES,
    _AbstractNetworkLearner,
    _find,
    _InjectState,
    _normalizer,
    _optimizer,
    _raveled,
    _RuleState,
)
from alberta_eqx.nonlinear._resets import AbstractUnitReset, reset_where
from alberta_eqx.normalizers import AbstractNormalizer


class MultiHeadStepMetrics(NamedTuple):
    """What one multi-head update reports: `StepMetrics`' scalar fields (averaged over
    the heads that had a target) and the same per head.

    **Fields:**

    - `squared_error`, `error`: the mean of `delta_i**2` and of `delta_i` over the
      heads present this step (0 when none was).
    - `mean_step_size`: as `MLPLearner`'s, over the trunk's and the heads' step-sizes.
    - `normalizer_mean_var`: the normalizer's mean variance, or None.
    - `head_squared_errors`, `head_errors`: `delta_i**2` and `delta_i` per head,
      shape `(k,)`; 0 for a head without a target.
    - `head_present`: per head, 1.0 where the head had a target, else 0.0. Over a run,
      a head's mean squared error is `sum(head_squared_errors) / sum(head_present)`
      (this also holds for metrics averaged over windows).
    """

    squared_error: Float[Array, "*batch"]
    error: Float[Array, "*batch"]
    mean_step_size: Float[Array, "*batch"]
    normalizer_mean_var: Float[Array, "*batch"] | None
    head_squared_errors: Float[Array, "*batch k"]
    head_errors: Float[Array, "*batch k"]
    head_present: Float[Array, "*batch k"]


class MultiHeadUpdateResult(NamedTuple):
    """The outcome of `MultiHeadLearner.update(x, y)` besides the new learner.

    **Fields:**

    - `prediction`: every head's prediction for `x` before the update, shape `(k,)`.
    - `error`: `y*_i - y_i` per head, NaN where the target was NaN (no target).
    - `metrics`: the step's `MultiHeadStepMetrics`.
    """

    prediction: Float[Array, " k"]
    error: Float[Array, " k"]
    metrics: MultiHeadStepMetrics


def _where(mask: Bool[Array, "*k"], new: PyTree, old: PyTree) -> PyTree:
    """`new` where `mask` (over the leading head axis of every leaf), else `old`."""

    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


class MultiHeadLearner(_AbstractNetworkLearner, AbstractSupervisedLearner):
    """A shared trunk and `k` scalar heads, `y_i = w_i . h(x) + b_i`, learning online
    from a target vector in which NaN marks a head without a target this step
    (alberta-framework 0.17's `MultiHeadMLPLearner`).

    The network is one `alberta_eqx.nn.MLP` with `k` outputs: its hidden layers are
    the trunk, the rows of its output layer the heads. Each step computes the trunk's
    features `h` and every head's error `delta_i = y*_i - y_i` (0 for an absent
    head), and learns from the loss `sum_i delta_i**2 / 2` over the heads present:

    - **heads**: head `i`'s prediction gradient is `z_i = (h, 1)`; its parameters are
      updated by `head_optimizer` from `g_i = -delta_i z_i` and the extra arguments
      `curvature=z_i**2`, `error=delta_i`, `prediction_gradient=z_i`, with an
      optimizer state of its own (so that Autostep's `M` or an ObGD bound acts on each
      head as on a linear learner). A head without a target keeps its parameters and
      its optimizer state exactly.
    - **trunk**: the gradient `g = -sum_i delta_i z_i` (one backward pass through the
      trunk, absent heads contributing nothing) and the curvature
      `c = sum_i z_i**2` over the present heads (the Gauss-Newton diagonal of the
      summed loss), given to `optimizer` with `error=1` and
      `prediction_gradient=sum_i delta_i z_i = -g` (so ObGD bounds the summed step,
      as 0.17 does with its pseudo-error 1). When no head has a target the trunk and
      its optimizer state are left as they are, and so is the unit reset's state:
      units age, and are replaced, only on steps that learn.

    An event without any target therefore changes the learner only through the
    normalizer (if there is one), which learns the features' statistics from every
    `x`; without a normalizer, a stream gives the same learner as the stream with
    those events removed.

    With no hidden layer (`hidden_sizes=()`) there is no trunk: the heads read the
    features directly, and the learner is `k` independent linear learners.

    ```python
    import jax
    import jax.numpy as jnp
    import alberta_eqx.optax as aeo
    from alberta_eqx import MultiHeadLearner
    from alberta_eqx.nn import MLP

    model = MLP(3, 2, (8,), key=jax.random.key(0))  # a trunk 3 -> 8, and 2 heads
    learner = MultiHeadLearner(model, aeo.lms(0.1))
    x = jnp.array([1.0, 0.5, -1.0])
    learner, result = learner.update(x, jnp.array([2.0, jnp.nan]))  # head 1: no target
    result.metrics.head_present  # [1, 0]: head 1 kept its parameters
    ```

    **Arguments:**

    - `model`: the network, an `alberta_eqx.nn.MLP` with `k = out_size >= 1`
      outputs, e.g. `MLP(feature_dim, k, (64, 64), key=key, sparsity=0.9)` (0.17's
      and the streaming papers' network: LeakyReLU and parameterless LayerNorm are
      `MLP`'s defaults).
    - `optimizer`: the trunk's optax transformation (and the heads', unless
      `head_optimizer` is given).
    - `key`: the unit resets' re-initialisations (needed with `unit_reset` only).
    - `head_optimizer`: an optax transformation for the heads, each head with its own
      state.
    - `normalizer`: an optional online feature normalizer.
    - `unit_reset`: a `ContinualBackprop` (low-utility mature units) or `ReDo`
      (dormant units) to replace hidden units (incoming weights re-drawn as the
      network was initialised, outgoing weights, in the next layer or the heads, set
      to 0), with the optimizers' state of those weights reset to its initial value.
    """

    # Targets may be NaN (a head without a target): `OnlineLearner` lets them through.
    accepts_missing_targets: ClassVar[bool] = True

    model: MLP
    trunk_state: PyTree
    head_state: PyTree
    normalizer: AbstractNormalizer | None
    unit_reset: AbstractUnitReset | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    head_optimizer: optax.GradientTransformation | None = eqx.field(static=True)

    @property
    def target_shape(self) -> tuple[int, ...]:
        return (self.num_heads,)

    @property
    def num_heads(self) -> int:
        """The number of heads `k`: the rows of the network's output layer (its
        `out_size`)."""
        return self.head_weights.shape[-2]

    def __init__(
        self,
        model: MLP,
        optimizer: optax.GradientTransformation,
        *,
        key: PRNGKeyArray | None = None,
        head_optimizer: optax.GradientTransformation | None = None,
        normalizer: AbstractNormalizer | None = None,
        unit_reset: AbstractUnitReset | None = None,
    ):
        if not isinstance(model, MLP):
            raise TypeError(
                "model must be an alberta_eqx.nn.MLP (its hidden layers are the trunk), got "
                f"{type(model).__name__}"
            )
        if model.out_size == "scalar":
            raise ValueError("model must have out_size the number of heads (>= 1), got 'scalar'")
        self.model = model
        self.optimizer = _optimizer("optimizer", optimizer)
        self.head_optimizer = (
            None if head_optimizer is None else _optimizer("head_optimizer", head_optimizer)
        )
        self.trunk_state = optimizer.init(self._trunk_layers)
        self.head_state = jax.vmap(self._head_tx.init)(self._head)
        normalizer = _normalizer(normalizer)
        self.normalizer = (
            None if normalizer is None else normalizer.init(self.feature_dim, self._dtype)
        )
        self.unit_reset = self._unit_reset(unit_reset, key)

    @property
    def head_weights(self) -> Float[Array, "*batch k h"]:
        """The heads' weights `w_i`, one row per head."""
        return self.model.layers[-1].weight

    @property
    def head_biases(self) -> Float[Array, "*batch k"]:
        """The heads' biases `b_i`."""
        return self.model.biases[-1]

    @property
    def _head(self) -> tuple[Array, Array]:
        return self.head_weights, self.head_biases

    @property
    def _trunk_layers(self) -> tuple[eqx.nn.Linear, ...]:
        return tuple(self.model.layers[:-1])

    @property
    def _head_tx(self) -> optax.GradientTransformation:
        return self.optimizer if self.head_optimizer is None else self.head_optimizer

    def _with(self, trunk_layers, head: tuple[Array, Array]) -> MLP:
        """The network with these trunk layers and head parameters."""
        last = eqx.tree_at(lambda lin: (lin.weight, lin.bias), self.model.layers[-1], head)
        return eqx.tree_at(lambda m: m.layers, self.model, (*trunk_layers, last))

    def predict(self, x: Float[Array, " n"]) -> Float[Array, " k"]:
        """Every head's prediction for `x`, shape `(k,)`."""
        return self.model(self._normalized(x))

    def update(
        self, x: Float[Array, " n"], y: ArrayLike
    ) -> tuple["MultiHeadLearner", MultiHeadUpdateResult]:
        """Predict `x`, learn from the targets `y` (shape `(k,)`, NaN where a head has
        no target), return the new learner and the result."""
        x = features(x, self.feature_dim, self._dtype)
        y = jnp.asarray(y)
        if y.shape != (self.num_heads,):
            raise ValueError(f"y must have shape ({self.num_heads},), got {y.shape}")
        if not jnp.issubdtype(y.dtype, jnp.floating):
            raise TypeError(f"y must be a real floating-point array, got dtype {y.dtype}")
        y = y.astype(self._dtype)
        present = ~jnp.isnan(y)
        normalizer = self.normalizer
        if normalizer is not None:
            normalizer, x = normalizer.update(x)

        W, b = self._head
        h, backward, hidden = self._trunk_features(x)
        prediction = W @ h + b
        delta = jnp.where(present, y - prediction, 0)  # absent heads: no error

        # Heads: z_i = (h, 1); g_i = -delta_i z_i (loss delta_i^2 / 2); c_i = z_i^2.
        z_heads = (jnp.broadcast_to(h, W.shape), jnp.ones_like(b))
        g_heads = _rules.loss_gradient(delta, z_heads)
        head_extras = {
            "curvature": jax.tree.map(jnp.square, z_heads),
            "error": delta,
            "prediction_gradient": z_heads,
        }
        trunk_step = None
        if self._trunk_layers:
            # g = -sum_i delta_i z_i: one backward pass with the cotangent -delta @ W;
            # c = sum_i z_i^2 over present heads: one backward pass per head (vmapped;
            # XLA drops it when the transformation ignores the curvature).
            (g,) = backward(-(delta @ W))
            z = jax.vmap(lambda w: backward(w)[0])(W * present[:, None].astype(W.dtype))
            c = jax.tree.map(lambda zi: jnp.sum(zi * zi, axis=0), z)
            trunk_step = (
                g,
                {
                    "curvature": c,
                    "error": jnp.ones((), self._dtype),
                    "prediction_gradient": jax.tree.map(jnp.negative, g),
                },
            )
        new = self._apply(present, (g_heads, head_extras), trunk_step)
        new = eqx.tree_at(lambda s: s.normalizer, new, normalizer, is_leaf=lambda n: n is None)
        if self.unit_reset is not None:
            new = new._replace_units_if(jnp.any(present), hidden)

        count = jnp.maximum(jnp.sum(present), 1).astype(self._dtype)
        squared = delta * delta
        metrics = MultiHeadStepMetrics(
            squared_error=jnp.sum(squared) / count,
            error=jnp.sum(delta) / count,
            mean_step_size=new._mean_step_size(),
            normalizer_mean_var=None if normalizer is None else jnp.mean(normalizer.var),
            head_squared_errors=squared,
            head_errors=delta,
            head_present=present.astype(self._dtype),
        )
        error = jnp.where(present, delta, jnp.nan)
        return new, MultiHeadUpdateResult(prediction=prediction, error=error, metrics=metrics)

    def _trunk_features(
        self, x: Float[Array, " n"]
    ) -> tuple[Float[Array, " h"], Callable, tuple[Array, ...]]:
        """The trunk's features `h` for (normalized) features `x`, the function
        mapping a cotangent on `h` to the trunk parameters' cotangent (a one-element
        tuple), and the hidden activations (for the unit resets)."""

        def forward(trunk):
            _, hidden = self._with(trunk, self._head).forward(x)
            return (hidden[-1] if hidden else x), hidden

        return jax.vjp(forward, self._trunk_layers, has_aux=True)

    def _apply(
        self,
        present: Bool[Array, " k"],
        heads: tuple[PyTree, dict],
        trunk: tuple[PyTree, dict] | None,
    ) -> "MultiHeadLearner":
        """One optimizer step. `heads` is `(g_i, extras_i)`, every leaf with the head
        axis first, for `head_optimizer` (one state per head, vmapped); `trunk` is
        `(g, extras)` for `optimizer`, or None to leave the trunk as it is. The extras
        are the `alberta_eqx.optax` keyword arguments (`curvature`, `error`, ...). A
        head not `present` keeps its parameters and state; with no head present the
        trunk keeps its parameters and state too."""
        head = self._head
        tx = optax.with_extra_args_support(self._head_tx)
        g_heads, head_extras = heads
        head_updates, head_state = jax.vmap(lambda g, s, p, e: tx.update(g, s, p, **e))(
            g_heads, self.head_state, head, head_extras
        )
        new_head = _where(present, optax.apply_updates(head, head_updates), head)
        head_state = _where(present, head_state, self.head_state)
        new_trunk, trunk_state = self._trunk_layers, self.trunk_state
        if trunk is not None and new_trunk:
            g, extras = trunk
            trunk_tx = optax.with_extra_args_support(self.optimizer)
            updates, state = trunk_tx.update(g, trunk_state, new_trunk, **extras)
            new_trunk, trunk_state = _where(
                jnp.any(present),
                (optax.apply_updates(new_trunk, updates), state),
                (new_trunk, trunk_state),
            )
        return eqx.tree_at(
            lambda s: (s.model, s.trunk_state, s.head_state),
            self,
            (self._with(new_trunk, new_head), trunk_state, head_state),
        )

    def _replace_units_if(
        self, learned: Bool[Array, ""], hidden: tuple[Float[Array, " h"], ...]
    ) -> "MultiHeadLearner":
        """`_replace_units` on a step that learned (some head had a target); this
        learner as it is otherwise, so that no unit ages, and none is replaced, while
        the network does not learn."""
        dynamic, static = eqx.partition(self, eqx.is_array)

        def replace(dynamic):
            new = eqx.combine(dynamic, static)._replace_units(hidden)
            return eqx.filter(new, eqx.is_array)

        return eqx.combine(jax.lax.cond(learned, replace, lambda d: d, dynamic), static)

    def _replace_units(self, hidden: tuple[Float[Array, " h"], ...]) -> "MultiHeadLearner":
        """The unit reset's step after the gradient step: its bookkeeping from this
        step's activations (and the updated weights), and the replacement of the units
        it selects (`AbstractUnitReset.step`)."""
        unit_reset = self.unit_reset
        assert unit_reset is not None
        unit_reset, new_model, masks = unit_reset.step(self.model, hidden)
        new = eqx.tree_at(lambda s: s.model, self, new_model)
        # The optimizers' state of every changed weight back to its initial value.
        trunk, head = new._trunk_layers, new._head
        trunk_masks = tuple(
            eqx.tree_at(lambda lin: (lin.weight, lin.bias), layer, mask)
            for layer, mask in zip(trunk, masks[:-1], strict=True)
        )
        trunk_state = reset_where(self.trunk_state, self.optimizer.init(trunk), trunk, trunk_masks)
        head_state = reset_where(
            self.head_state, jax.vmap(self._head_tx.init)(head), head, masks[-1]
        )
        return eqx.tree_at(
            lambda s: (s.trunk_state, s.head_state, s.unit_reset),
            new,
            (trunk_state, head_state, unit_reset),
        )

    def _mean_step_size(self) -> Float[Array, ""]:
        """The mean per-parameter step-size over trunk and heads when their optimizers
        hold IDBD or Autostep state; else an injected step-size; else NaN."""
        states = _find((self.trunk_state, self.head_state), _RuleState)
        if states:
            return jnp.mean(_raveled([s.step_size for s in states]))
        for injected in _find((self.trunk_state, self.head_state), _InjectState):
            for name in _STEP_SIZE_NAMES:
                if name in injected.hyperparams:
                    return jnp.mean(jnp.asarray(injected.hyperparams[name], self._dtype))
        return jnp.asarray(jnp.nan, self._dtype)

    def step_size_snapshot(self, include_bias: bool = True) -> StepSizeSnapshot:
        """Every parameter's step-size raveled into one vector, the trunk's first (in
        `ravel_pytree` order) and then the heads' (`(head_weights, head_biases)`
        raveled); `bias_step_sizes` is None. Raises `ValueError` when the optimizers
        keep no per-parameter step-sizes."""
        del include_bias
        states = _find((self.trunk_state, self.head_state), _RuleState)
        if not states:
            raise ValueError(
                "step-size tracking needs per-parameter step-sizes: this "
                "MultiHeadLearner's optimizers hold no alberta_eqx.optax.idbd / autostep state"
            )
        return StepSizeSnapshot(
            step_sizes=_raveled([s.step_size for s in states]),
            bias_step_sizes=None,
            step_size_normalizers=None,
        )
