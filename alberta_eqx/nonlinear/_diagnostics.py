"""What a daemon reports about its learner: which input features each prediction rests
on (alberta-framework 0.17's `compute_feature_relevance` and
`compute_feature_sensitivity`), and how useful each hidden unit is (continual
backprop's contribution utility)."""

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jaxtyping import Array, Float

from alberta_eqx import _checks
from alberta_eqx.learners import AbstractLearner, AbstractLinearLearner
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear._cbp import contribution_utility
from alberta_eqx.nonlinear._classifier import ClassifierLearner
from alberta_eqx.nonlinear._mlp import MLPLearner
from alberta_eqx.nonlinear._multihead import MultiHeadLearner
from alberta_eqx.nonlinear._td import TDMLPLearner


class FeatureRelevance(NamedTuple):
    """Per-feature and per-head relevance read from a learner's parameters (no
    forward pass through data).

    **Fields:**

    - `weight_relevance`: the path norm from every input feature to every output,
      `|W_out| |W_L| ... |W_1|`, shape `(k, n)` (`k = 1` for a scalar learner).
    - `step_size_activity`: the mean step-size of each feature's weights in the first
      layer, `(n,)` (from the learner's `step_size_snapshot`); None when the optimizer
      keeps no per-parameter step-sizes.
    - `normalizer_mean`, `normalizer_std`: the feature normalizer's estimates, or None.
    - `head_reliance`: `|W_out|`, each output's absolute weights on the last hidden
      layer (on the features, without one), shape `(k, h)`.
    """

    weight_relevance: Float[Array, "k n"]
    step_size_activity: Float[Array, " n"] | None
    normalizer_mean: Float[Array, " n"] | None
    normalizer_std: Float[Array, " n"] | None
    head_reliance: Float[Array, "k h"]


# The learners whose network is an `alberta_eqx.nn.MLP`, held in their `model` field.
_NetworkLearner = MLPLearner | TDMLPLearner | MultiHeadLearner | ClassifierLearner


def _layers(learner: AbstractLearner) -> list[tuple[Array, Array | None]]:
    """The learner's linear layers `(weight (out, in), bias)`, input layer first: a
    linear learner's declared `weights` and `bias`, or its network's `layers`."""
    if isinstance(learner, AbstractLinearLearner):
        return [(learner.weights[None, :], learner.bias)]
    if not isinstance(learner, _NetworkLearner):
        raise TypeError(
            f"{type(learner).__name__} has no linear layers to read (a linear learner, an "
            "MLPLearner, TDMLPLearner, MultiHeadLearner or ClassifierLearner)"
        )
    layers = learner.model.layers
    return [(jnp.reshape(lay.weight, (-1, lay.weight.shape[-1])), lay.bias) for lay in layers]


def _step_size_activity(
    learner: AbstractLearner, first_layer: Float[Array, "h n"]
) -> Float[Array, " n"] | None:
    """The mean step-size of each feature's weights in the first layer, from the
    learner's declared `step_size_snapshot` (every weight's step-size, the first
    layer's first), or None where it has none (its documented `ValueError`)."""
    try:
        step_sizes = learner.step_size_snapshot(include_bias=False).step_sizes
    except ValueError:
        return None
    h, n = first_layer.shape
    return jnp.mean(jnp.reshape(jnp.ravel(step_sizes)[: h * n], (h, n)), axis=0)


def compute_feature_relevance(learner: AbstractLearner) -> FeatureRelevance:
    """Per-feature relevance from the learner's parameters (0.17's
    `compute_feature_relevance`).

    The path norm is the Jacobian of the network with every weight replaced by its
    absolute value, no biases and identity activations, taken with `jax.jacfwd` (it is
    the same at every input).

    **Arguments:**

    - `learner`: a linear learner (`LinearLearner`, `TDLinearLearner`,
      `GradientTDLearner`), or an `MLPLearner`, `TDMLPLearner`, `MultiHeadLearner` or
      `ClassifierLearner` (whose `model` is an `alberta_eqx.nn.MLP`).
    """
    layers = _layers(learner)
    n = layers[0][0].shape[-1]

    def path(x):
        for weight, _ in layers:
            x = jnp.abs(weight) @ x
        return x

    weight_relevance = jax.jacfwd(path)(jnp.zeros(n, layers[0][0].dtype))
    normalizer = learner.normalizer
    return FeatureRelevance(
        weight_relevance=weight_relevance,
        step_size_activity=_step_size_activity(learner, layers[0][0]),
        normalizer_mean=None if normalizer is None else normalizer.mean,
        normalizer_std=None if normalizer is None else jnp.sqrt(normalizer.var + 1e-8),
        head_reliance=jnp.abs(layers[-1][0]),
    )


def compute_feature_sensitivity(
    learner: AbstractLearner, x: Float[Array, " n"]
) -> Float[Array, "*k n"]:
    """The sensitivity of every prediction to every input feature at `x`: the
    Jacobian `dy/dx` by `jax.jacrev`, shape `(k, n)` for `k` heads and `(n,)` for a
    scalar learner (0.17's `compute_feature_sensitivity`). With a normalizer, the
    derivative is with respect to the raw features.

    **Arguments:**

    - `learner`: any learner.
    - `x`: an observation, shape `(n,)`.
    """
    return jax.jacrev(learner.predict)(jnp.asarray(x, _checks.default_float()))


def compute_unit_utility(
    learner: MLPLearner | MultiHeadLearner, x: Float[Array, " n"]
) -> tuple[Array, ...]:
    """Every hidden unit's contribution utility at `x`, `|h_i| sum_k |w_ik|` over its
    outgoing weights (Dohare et al. 2024), one array per hidden layer. The running
    average that continual backprop ranks units by is
    `learner.unit_reset.utility`.

    **Arguments:**

    - `learner`: an `MLPLearner` or a `MultiHeadLearner` (its `model`, an
      `alberta_eqx.nn.MLP`, gives the hidden activations).
    - `x`: an observation, shape `(n,)`.
    """
    if not isinstance(learner, MLPLearner | MultiHeadLearner):
        raise TypeError(
            f"learner must be an MLPLearner or a MultiHeadLearner, got {type(learner).__name__}"
        )
    model = learner.model
    if not isinstance(model, MLP):
        raise TypeError(
            "compute_unit_utility reads the hidden activations of an alberta_eqx.nn.MLP; "
            f"this learner's network is a {type(model).__name__}"
        )
    x = jnp.asarray(x, model.layers[0].weight.dtype)
    if learner.normalizer is not None:
        x = learner.normalizer.normalize(x)
    _, hidden = model.forward(x)
    return tuple(
        contribution_utility(h, layer.weight)
        for h, layer in zip(hidden, model.layers[1:], strict=True)
    )
