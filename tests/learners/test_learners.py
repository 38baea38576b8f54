"""The learners' interface (`alberta_eqx.learners`): normalised features, batched
hyperparameters, argument checks, and a user's optimizer and normalizer through a
learner and the runner."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

from alberta_eqx import (
    IDBD,
    AbstractNormalizer,
    AbstractOptimizer,
    DriftingTargetStream,
    EMANormalizer,
    LinearLearner,
    _checks,
    run_learning_loop,
)
from tests._reference import rules as reference


def test_normalized_learner_learns_on_normalised_features():
    """With a normalizer the weights learn on x_hat: the same as a plain learner fed the
    normalizer's outputs."""
    xs, ys = reference.flipping_regression(4, n=3)
    xs = xs * 50 + 7
    learner = LinearLearner(3, IDBD(0.05, meta_step_size=0.01), normalizer=EMANormalizer(0.99))
    norm = EMANormalizer(0.99).init(3)
    plain = LinearLearner(3, IDBD(0.05, meta_step_size=0.01))
    for x, y in zip(jnp.asarray(xs[:50], jnp.float32), ys[:50], strict=True):
        learner, result = learner.update(x, y)
        norm, x_hat = norm.update(x)
        plain, plain_result = plain.update(x_hat, y)
        np.testing.assert_allclose(
            result.prediction, plain_result.prediction, rtol=1e-5, atol=1e-5
        )
    np.testing.assert_allclose(learner.weights, plain.weights, rtol=1e-5, atol=1e-6)
    assert result.metrics.normalizer_mean_var is not None


def test_hyperparameters_are_leaves_that_vmap():
    """A vector of step-sizes builds one batched learner with eqx.filter_vmap."""
    alphas = jnp.array([0.01, 0.02, 0.04])
    learners = eqx.filter_vmap(lambda a: LinearLearner(4, IDBD(a, meta_step_size=0.01)))(alphas)
    assert learners.batch_shape == (3,)
    np.testing.assert_allclose(learners.step_sizes[:, 0], alphas, rtol=1e-6)


def test_bad_shapes_and_types_are_refused():
    with pytest.raises(ValueError, match="feature_dim"):
        LinearLearner(0)
    learner = LinearLearner(3)
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        learner.update(jnp.ones(4), 1.0)
    # jaxtyping's runtime check (on in the tests) or the learner's own check
    with pytest.raises(TypeError, match=r"x must be a real floating-point|parameter 'x'"):
        learner.update(jnp.ones(3, jnp.int32), 1.0)
    with pytest.raises(ValueError, match="y must be a scalar"):
        learner.update(jnp.ones(3), jnp.ones(2))
    with pytest.raises(TypeError, match="optimizer"):
        LinearLearner(3, optimizer="idbd")


class _MaxAbsNormalizer(AbstractNormalizer):
    """A user's normalizer: divides by the largest magnitude seen so far per feature
    (mean 0, variance the square of that)."""

    epsilon: Float[Array, ""] = _checks.hyperparameter()
    mean: Float[Array, " n"] | None
    peak: Float[Array, " n"] | None

    def __init__(self, epsilon=1e-8):
        self.epsilon = _checks.positive("epsilon", epsilon)
        self.mean = self.peak = None

    def init(self, feature_dim, dtype=None):
        dtype = dtype or self.epsilon.dtype
        zeros = jnp.zeros(feature_dim, dtype)
        return eqx.tree_at(
            lambda s: (s.mean, s.peak), self, (zeros, zeros), is_leaf=lambda x: x is None
        )

    @property
    def var(self):
        return self.peak**2

    def update(self, x):
        new = eqx.tree_at(lambda s: s.peak, self, jnp.maximum(self.peak, jnp.abs(x)))
        return new, new.normalize(x)


class _SignSGD(AbstractOptimizer):
    """A user's optimizer: w <- w - alpha sign(g)."""

    step_size: Float[Array, ""] = _checks.hyperparameter()

    def __init__(self, step_size=0.01):
        self.step_size = _checks.positive("step_size", step_size)

    def init(self, params):
        return _checks.cast_floating(self, params[0].dtype)

    def step(self, gradient, curvature, **rest):
        return jax.tree.map(lambda g: -self.step_size * jnp.sign(g), gradient), self

    def step_sizes(self, params):
        return jax.tree.map(lambda p: jnp.full_like(p, self.step_size), params)

    @property
    def step_size_normalizer(self):
        return None


def test_user_optimizer_and_normalizer_through_a_learner_and_the_runner():
    """Subclasses written as a user would run in `LinearLearner` and
    `run_learning_loop`, and equal a float64 NumPy transcription of their rules."""
    stream = DriftingTargetStream(3, feature_std=3.0)
    learner = LinearLearner(3, _SignSGD(0.02), normalizer=_MaxAbsNormalizer())
    key = jax.random.key(0)
    result = run_learning_loop(learner, stream, 300, key)
    timesteps, _ = stream.chunk(stream.init(key), jnp.asarray(0), 300)
    xs, ys = np.asarray(timesteps.observation, np.float64), np.asarray(timesteps.target)
    w, b, peak, errors = np.zeros(3), 0.0, np.zeros(3), []
    for x, y in zip(xs, ys, strict=True):
        peak = np.maximum(peak, np.abs(x))
        x_hat = x / (peak + 1e-8)
        delta = y - (w @ x_hat + b)
        w, b = w + 0.02 * np.sign(delta * x_hat), b + 0.02 * np.sign(delta)
        errors.append(delta)
    np.testing.assert_allclose(result.metrics.error, errors, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.learner.weights, w, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(result.learner.normalizer.peak, peak, rtol=1e-6)
    np.testing.assert_allclose(result.metrics.mean_step_size, 0.02)


def test_learn_is_abstract_or_final():
    """Equinox's rule (issue 23, item 3) for the runners' entry point: `learn` is
    abstract in `AbstractLearner`, every concrete learner has one, and no class
    overrides a `learn` written above it (the supervised learners share
    `AbstractSupervisedLearner`'s)."""
    import inspect

    import alberta_eqx.gvf
    import alberta_eqx.nonlinear
    import alberta_eqx.td  # noqa: F401
    from alberta_eqx.learners import AbstractLearner, AbstractSupervisedLearner

    def below(cls):
        for sub in cls.__subclasses__():
            if sub.__module__.startswith("alberta_eqx"):
                yield sub
                yield from below(sub)

    classes = set(below(AbstractLearner))
    assert AbstractLearner.learn.__isabstractmethod__
    concrete = [cls for cls in classes if not inspect.isabstract(cls)]
    assert {"LinearLearner", "MLPLearner", "TDLinearLearner", "Horde"} <= {
        cls.__name__ for cls in concrete
    }
    for cls in concrete:
        assert not getattr(cls.learn, "__isabstractmethod__", False), cls.__name__
    for cls in classes:
        if "learn" not in vars(cls):
            continue
        for above in cls.__mro__[1:]:
            inherited = vars(above).get("learn")
            assert inherited is None or getattr(inherited, "__isabstractmethod__", False), (
                f"{cls.__name__}.learn overrides {above.__name__}'s"
            )
    assert LinearLearner.learn is AbstractSupervisedLearner.learn
