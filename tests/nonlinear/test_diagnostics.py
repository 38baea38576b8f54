"""Feature relevance and sensitivity (0.17's semantics) and hidden units' utility,
against NumPy computations written here."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    IDBD,
    GradientTDLearner,
    GVFQuestion,
    Horde,
    LinearLearner,
    MLPLearner,
    MultiHeadLearner,
    TDLinearLearner,
    WelfordNormalizer,
    compute_feature_relevance,
    compute_feature_sensitivity,
    compute_unit_utility,
)
from alberta_eqx.nn import MLP
from tests._compiled import compiled, update


@pytest.fixture(scope="module")
def learner():
    """A multi-head network after 5 updates, shared by the tests (it is immutable)."""
    learner = compiled(
        MultiHeadLearner,
        compiled(MLP, 4, 3, (6, 5), key=jax.random.split(jax.random.key(0))[0]),
        aeo.autostep(),
        normalizer=WelfordNormalizer(),
    )
    rng = np.random.default_rng(0)
    for _ in range(5):
        learner, _ = update(
            learner,
            jnp.asarray(rng.normal(size=4), jnp.float32),
            jnp.asarray(rng.normal(size=3), jnp.float32),
        )
    return learner


@pytest.mark.slow
def test_relevance_is_the_path_norm(learner):
    w = [np.abs(np.asarray(layer.weight)) for layer in learner.model.layers]
    relevance = compiled(compute_feature_relevance, learner)
    np.testing.assert_allclose(relevance.weight_relevance, w[2] @ w[1] @ w[0], rtol=1e-5)
    np.testing.assert_allclose(relevance.head_reliance, w[2])
    step = np.asarray(learner.trunk_state.step_size[0].weight)
    np.testing.assert_allclose(relevance.step_size_activity, step.mean(0), rtol=1e-6)
    np.testing.assert_allclose(
        np.asarray(relevance.normalizer_std) ** 2, np.asarray(learner.normalizer.var) + 1e-8
    )


def test_relevance_of_a_linear_learner_is_abs_weights():
    learner = compiled(LinearLearner, 3, IDBD(0.1, meta_step_size=0.1))
    learner, _ = update(learner, jnp.array([1.0, -2.0, 0.5]), jnp.asarray(3.0))
    relevance = compiled(compute_feature_relevance, learner)
    np.testing.assert_allclose(
        np.asarray(relevance.weight_relevance)[0], np.abs(np.asarray(learner.weights))
    )
    np.testing.assert_allclose(relevance.step_size_activity, learner.step_sizes)


def test_sensitivity_is_the_jacobian(learner):
    x = np.array([0.3, -1.0, 2.0, 0.1], np.float32)
    jac = np.asarray(compiled(compute_feature_sensitivity, learner, jnp.asarray(x)))
    assert jac.shape == (3, 4)
    eps = 1e-3
    for j in range(4):
        e = np.zeros(4, np.float32)
        e[j] = eps
        plus, minus = (
            np.asarray(compiled(learner.predict, jnp.asarray(x + s * e))) for s in (1, -1)
        )
        fd = (plus - minus) / (2 * eps)
        np.testing.assert_allclose(jac[:, j], fd, rtol=2e-2, atol=2e-3)


def test_unit_utility(learner):
    x = jnp.array([0.3, -1.0, 2.0, 0.1])
    utility = compiled(compute_unit_utility, learner, x)
    _, hidden = compiled(
        lambda learner, x: learner.model.forward(learner.normalizer.normalize(x)), learner, x
    )
    for u, h, layer in zip(utility, hidden, learner.model.layers[1:], strict=True):
        expected = np.abs(np.asarray(h)) * np.abs(np.asarray(layer.weight)).sum(0)
        np.testing.assert_allclose(u, expected, rtol=1e-6)


def test_relevance_reads_only_what_learners_declare():
    """The step-sizes come from `step_size_snapshot`: a gradient-TD learner's fixed
    `alpha`, and None for a network whose optimizer keeps no per-parameter step-sizes
    (its snapshot's documented `ValueError`); a learner without linear layers is
    refused by name."""
    gtd = compiled(GradientTDLearner, 3, "tdc", 0.05)
    relevance = compiled(compute_feature_relevance, gtd)
    np.testing.assert_allclose(relevance.step_size_activity, [0.05] * 3, rtol=1e-6)
    sgd = compiled(
        MLPLearner, compiled(MLP, 3, "scalar", (4,), key=jax.random.key(1)), aeo.lms(0.1)
    )
    assert compiled(compute_feature_relevance, sgd).step_size_activity is None
    horde = Horde(GVFQuestion(np.eye(4)[:1], [0.5]), TDLinearLearner(3))
    with pytest.raises(TypeError, match="Horde has no linear layers"):
        compute_feature_relevance(horde)
