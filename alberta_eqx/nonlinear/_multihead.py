"""`MultiHeadLearner`: a shared trunk and `k` scalar heads, some of which may have no
target at a given step."""

from collections.abc import Callable, Sequence
from typing import ClassVar, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, ArrayLike, Bool, Float, PRNGKeyArray, PyTree

from alberta_eqx._checks import features, positive_int
from alberta_eqx.learners import AbstractLearner, StepSizeSnapshot
from alberta_eqx.nonlinear._cbp import ContinualBackprop, reset_where
from alberta_eqx.nonlinear._mlp import (
    _STEP_SIZE_NAMES,
    _find,
    _InjectState,
    _raveled,
    _RuleState,
)
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


def _where(mask: Bool[Array, " k"], new: PyTree, old: PyTree) -> PyTree:
    """`new` where `mask` (over the leading head axis of every leaf), else `old`."""

    def pick(n, o):
        return jnp.where(mask.reshape(mask.shape + (1,) * (n.ndim - 1)), n, o)

    return jax.tree.map(pick, new, old)


def _hidden(trunk: eqx.nn.MLP, x: Float[Array, " n"]) -> list[Float[Array, " h"]]:
    """The activations of every hidden layer of the trunk, the last one its output."""
    hidden = []
    for layer in trunk.layers:
        x = trunk.activation(layer(x))
        hidden.append(x)
    return hidden


class MultiHeadLearner(AbstractLearner):
    """A shared trunk and `k` scalar heads, `y_i = w_i . h(x) + b_i`, learning online
    from a target vector in which NaN marks a head without a target this step
    (alberta-framework 0.17's `MultiHeadMLPLearner`).

    Each step computes the trunk's features `h` and every head's error
    `delta_i = y*_i - y_i` (0 for an absent head), and learns from the loss
    `sum_i delta_i**2 / 2` over the heads present:

    - **heads**: head `i`'s prediction gradient is `z_i = (h, 1)`; its parameters are
      updated by `head_optimizer` from `g_i = -delta_i z_i` and curvature `z_i**2`,
      with a separate optimizer state per head (so that a per-parameter-set rule such
      as Autostep's `M` or an ObGD bound acts on each head as on a linear learner). A
      head without a target keeps its parameters and its optimizer state exactly.
    - **trunk**: the gradient `g = -sum_i delta_i z_i` (one backward pass through the
      trunk, absent heads contributing nothing) and the curvature
      `c = sum_i z_i**2` over the present heads (the Gauss-Newton diagonal of the
      summed loss), given to `optimizer` as
      `optimizer.update(g, state, params, curvature=c)`. When no head has a target
      the trunk and its optimizer state are left as they are.

    With `hidden_sizes=()` there is no trunk: the heads read the features directly,
    and the learner is `k` independent linear learners.

    **Arguments:**

    - `feature_dim`: the number of input features.
    - `num_heads`: `k >= 1`.
    - `hidden_sizes`: the trunk's hidden widths, all equal (`eqx.nn.MLP` builds the
      trunk), e.g. `(64, 64)`; `()` for no trunk.
    - `optimizer`: the trunk's optax transformation (and the heads', unless
      `head_optimizer` is given).
    - `key`: initialises the trunk and the heads (Equinox's `Linear` initialisation;
      without a trunk the heads start at 0, as `LinearLearner` does).
    - `head_optimizer`: an optax transformation for the heads, each head with its own
      state.
    - `activation`: the trunk's activation (default `jax.nn.relu`).
    - `normalizer`: an optional online feature normalizer.
    - `continual_backprop`: a `ContinualBackprop` to replace low-utility mature
      units of the trunk (incoming weights re-drawn as the trunk was initialised,
      outgoing weights, in the next layer or the heads, set to 0), with the
      optimizers' state of those weights reset to its initial value.
    - `dtype`: the floating-point dtype of the parameters.
    """

    # Targets may be NaN (a head without a target): `OnlineLearner` lets them through.
    accepts_missing_targets: ClassVar[bool] = True

    trunk: eqx.nn.MLP | None
    head_weights: Float[Array, "k h"]
    head_biases: Float[Array, " k"]
    trunk_state: PyTree
    head_state: PyTree
    normalizer: AbstractNormalizer | None
    continual_backprop: ContinualBackprop | None
    optimizer: optax.GradientTransformation = eqx.field(static=True)
    head_optimizer: optax.GradientTransformation | None = eqx.field(static=True)
    feature_dim: int = eqx.field(static=True)
    num_heads: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        num_heads: int,
        hidden_sizes: Sequence[int],
        optimizer: optax.GradientTransformation,
        *,
        key: PRNGKeyArray,
        head_optimizer: optax.GradientTransformation | None = None,
        activation: Callable[[Array], Array] = jax.nn.relu,
        normalizer: AbstractNormalizer | None = None,
        continual_backprop: ContinualBackprop | None = None,
        dtype=None,
    ):
        self.feature_dim = positive_int("feature_dim", feature_dim)
        self.num_heads = positive_int("num_heads", num_heads)
        hidden_sizes = tuple(positive_int("hidden_sizes", h) for h in hidden_sizes)
        if len(set(hidden_sizes)) > 1:
            raise ValueError(f"hidden_sizes must all be equal (eqx.nn.MLP), got {hidden_sizes}")
        for name, tx in (("optimizer", optimizer), ("head_optimizer", head_optimizer)):
            if tx is not None and not isinstance(tx, optax.GradientTransformation):
                raise TypeError(
                    f"{name} must be an optax GradientTransformation, got {type(tx).__name__}"
                )
        if normalizer is not None and not isinstance(normalizer, AbstractNormalizer):
            raise TypeError(
                f"normalizer must be an alberta_eqx normalizer, got {type(normalizer).__name__}"
            )
        if continual_backprop is not None:
            if not isinstance(continual_backprop, ContinualBackprop):
                raise TypeError(
                    "continual_backprop must be a ContinualBackprop, got "
                    f"{type(continual_backprop).__name__}"
                )
            if not hidden_sizes:
                raise ValueError("continual_backprop needs hidden units: hidden_sizes is ()")
        dtype = dtype or jnp.result_type(float)
        trunk_key, head_key, cbp_key = jax.random.split(key, 3)
        if hidden_sizes:
            width = hidden_sizes[0]
            self.trunk = eqx.nn.MLP(
                feature_dim,
                width,
                width,
                len(hidden_sizes) - 1,
                activation=activation,
                final_activation=activation,
                key=trunk_key,
                dtype=dtype,
            )
            heads = jax.vmap(lambda k: eqx.nn.Linear(width, "scalar", key=k, dtype=dtype))(
                jax.random.split(head_key, num_heads)
            )
            # Linear(width, "scalar") holds a (1, width) weight and a (1,) bias.
            self.head_weights, self.head_biases = heads.weight[:, 0], heads.bias[:, 0]
        else:
            self.trunk = None
            self.head_weights = jnp.zeros((num_heads, feature_dim), dtype)
            self.head_biases = jnp.zeros(num_heads, dtype)
        self.optimizer = optimizer
        self.head_optimizer = head_optimizer
        self.trunk_state = (
            None if self.trunk is None else optimizer.init(eqx.filter(self.trunk, eqx.is_array))
        )
        self.head_state = jax.vmap(self._head_tx.init)((self.head_weights, self.head_biases))
        self.normalizer = None if normalizer is None else normalizer.init(feature_dim, dtype)
        self.continual_backprop = (
            None
            if continual_backprop is None
            else continual_backprop.init(hidden_sizes, cbp_key, dtype)
        )

    @property
    def _head_tx(self) -> optax.GradientTransformation:
        return self.optimizer if self.head_optimizer is None else self.head_optimizer

    @property
    def _dtype(self) -> jnp.dtype:
        return self.head_weights.dtype

    @property
    def batch_shape(self) -> tuple[int, ...]:
        return self.head_weights.shape[:-2]

    def features(self, x: Float[Array, " n"]) -> Float[Array, " h"]:
        """The trunk's output `h(x)` (the normalised `x` itself without a trunk)."""
        x = features(x, self.feature_dim, self._dtype)
        if self.normalizer is not None:
            x = self.normalizer.normalize(x)
        return x if self.trunk is None else self.trunk(x)

    def predict(self, x: Float[Array, " n"]) -> Float[Array, " k"]:
        """Every head's prediction for `x`, shape `(k,)`."""
        return self.head_weights @ self.features(x) + self.head_biases

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

        W, b = self.head_weights, self.head_biases
        if self.trunk is None:
            h, backward, trunk_params = x, None, None
        else:
            trunk_params, static = eqx.partition(self.trunk, eqx.is_array)

            def forward(p):
                hidden = _hidden(eqx.combine(p, static), x)
                return hidden[-1], hidden

            h, backward, hidden = jax.vjp(forward, trunk_params, has_aux=True)
        prediction = W @ h + b
        delta = jnp.where(present, y - prediction, 0)  # absent heads: no error

        # Heads: z_i = (h, 1); g_i = -delta_i z_i (loss delta_i^2 / 2); c_i = z_i^2.
        # One optimizer state per head (vmapped), kept as it was for an absent head.
        z_heads = (jnp.broadcast_to(h, W.shape), jnp.ones_like(b))
        g_heads = jax.tree.map(lambda z: -_expand(delta, z) * z, z_heads)
        c_heads = jax.tree.map(jnp.square, z_heads)
        tx = optax.with_extra_args_support(self._head_tx)
        head_updates, head_state = jax.vmap(
            lambda g, s, p, c: tx.update(g, s, p, curvature=c)
        )(g_heads, self.head_state, (W, b), c_heads)
        new_W, new_b = optax.apply_updates((W, b), head_updates)
        new_W, new_b = _where(present, (new_W, new_b), (W, b))
        head_state = _where(present, head_state, self.head_state)

        new = eqx.tree_at(
            lambda s: (s.head_weights, s.head_biases, s.head_state, s.normalizer),
            self,
            (new_W, new_b, head_state, normalizer),
            is_leaf=lambda n: n is None,
        )
        if self.trunk is not None:
            # g = -sum_i delta_i z_i: one backward pass with the cotangent -delta @ W;
            # c = sum_i z_i^2 over present heads: one backward pass per head (vmapped;
            # XLA drops it when the transformation ignores the curvature).
            (g,) = backward(-(delta @ W))
            z = jax.vmap(lambda w: backward(w)[0])(W * present[:, None].astype(W.dtype))
            c = jax.tree.map(lambda zi: jnp.sum(zi * zi, axis=0), z)
            trunk_tx = optax.with_extra_args_support(self.optimizer)
            updates, trunk_state = trunk_tx.update(g, self.trunk_state, trunk_params, curvature=c)
            trunk_params, trunk_state = _where(
                jnp.any(present),
                (optax.apply_updates(trunk_params, updates), trunk_state),
                (trunk_params, self.trunk_state),
            )
            new = eqx.tree_at(
                lambda s: (s.trunk, s.trunk_state),
                new,
                (eqx.combine(trunk_params, static), trunk_state),
            )
            if self.continual_backprop is not None:
                new = new._replace_units(hidden)

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

    def _replace_units(self, hidden: list[Float[Array, " h"]]) -> "MultiHeadLearner":
        """Continual backprop's step after the gradient step: update the utilities
        from this step's activations and the updated weights, and replace the units it
        selects (see `ContinualBackprop`)."""
        trunk, cbp = self.trunk, self.continual_backprop
        assert trunk is not None and cbp is not None
        layers = list(trunk.layers)
        outgoing = [layer.weight for layer in layers[1:]] + [self.head_weights]
        cbp, replace = cbp.select(hidden, outgoing)
        cbp, key = cbp.next_key()

        # Fresh layers drawn as the trunk was first drawn; only replaced rows are used.
        def draw(key):
            fresh = eqx.nn.MLP(
                trunk.in_size,
                trunk.out_size,
                trunk.width_size,
                trunk.depth,
                activation=trunk.activation,
                final_activation=trunk.final_activation,
                key=key,
                dtype=self._dtype,
            )
            return [(layer.weight, layer.bias) for layer in fresh.layers]

        old = [(layer.weight, layer.bias) for layer in layers]
        fresh = jax.lax.cond(
            jnp.any(jnp.concatenate(replace)), draw, lambda _: old, key
        )
        weights, biases, weight_masks = [], [], []
        for i, ((w, b), (fw, fb), mask) in enumerate(zip(old, fresh, replace, strict=True)):
            w = jnp.where(mask[:, None], fw, w)  # incoming weights re-drawn
            w_mask = jnp.broadcast_to(mask[:, None], w.shape)
            if i > 0:  # outgoing weights of the previous layer's replaced units: 0
                w = jnp.where(replace[i - 1][None, :], 0, w)
                w_mask = w_mask | replace[i - 1][None, :]
            weights.append(w)
            biases.append(jnp.where(mask, fb, b))
            weight_masks.append(w_mask)
        head_mask = jnp.broadcast_to(replace[-1][None, :], self.head_weights.shape)
        head_weights = jnp.where(head_mask, 0, self.head_weights)

        where = lambda m: [a for lay in m.layers for a in (lay.weight, lay.bias)]  # noqa: E731
        new_trunk = eqx.tree_at(where, trunk, [a for wb in zip(weights, biases) for a in wb])
        # The optimizers' state of every changed weight back to its initial value.
        params = eqx.filter(new_trunk, eqx.is_array)
        masks = eqx.tree_at(
            where,
            jax.tree.map(lambda _: False, params),
            [m for wb in zip(weight_masks, replace) for m in wb],
        )
        trunk_state = reset_where(
            self.trunk_state, self.optimizer.init(params), params, masks
        )
        heads = (head_weights, self.head_biases)
        head_state = reset_where(
            self.head_state,
            jax.vmap(self._head_tx.init)(heads),
            heads,
            (head_mask, jnp.zeros_like(self.head_biases, bool)),
        )
        return eqx.tree_at(
            lambda s: (s.trunk, s.head_weights, s.trunk_state, s.head_state, s.continual_backprop),
            self,
            (new_trunk, head_weights, trunk_state, head_state, cbp),
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
            normalizers=None,
        )


def _expand(delta: Float[Array, " k"], like: Array) -> Array:
    """`delta` with trailing axes to broadcast against `like` (leading axis: heads)."""
    return delta.reshape(delta.shape + (1,) * (like.ndim - 1))
