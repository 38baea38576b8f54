"""Every rule against an independent float64 transcription of the published equations."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

from alberta_eqx import (
    IDBD,
    LMS,
    AbstractNormalizer,
    AbstractOptimizer,
    Autostep,
    DriftingTargetStream,
    EMANormalizer,
    LinearLearner,
    WelfordNormalizer,
    _checks,
    run_learning_loop,
)
from tests._reference import rules as reference


def _data(seed, steps=300, n=6, scale=1.0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(steps, n)) * rng.uniform(0.3, 2.0, size=n)
    w_true = rng.normal(size=n)
    ys = (xs @ w_true + 0.3 * rng.normal(size=steps)) * scale
    # flip the target halfway so the step-sizes have something to adapt to
    ys[steps // 2 :] *= -1
    return xs, ys


def _run(learner, xs, ys):
    """Weights (bias last) and step-sizes after every step, from a scan."""

    def step(learner, xy):
        learner, _ = learner.update(*xy)
        params = (
            learner.weights if learner.bias is None else jnp.append(learner.weights, learner.bias)
        )
        alphas = (
            learner.step_sizes
            if learner.bias is None
            else jnp.append(learner.step_sizes, learner.bias_step_size)
        )
        return learner, (params, alphas)

    xs = jnp.asarray(xs, jnp.float32)
    ys = jnp.asarray(ys, jnp.float32)
    _, (w, a) = jax.lax.scan(step, learner, (xs, ys))
    return np.asarray(w), np.asarray(a)


def _columns(per_leaf):
    """(steps, n) and (steps,) leaves side by side: weights first, bias last."""
    return np.hstack([np.asarray(a).reshape(a.shape[0], -1) for a in per_leaf])


def _augment(xs, use_bias):
    return np.hstack([xs, np.ones((len(xs), 1))]) if use_bias else xs


# float32 against float64 over 300 steps of a recurrence: relative agreement to ~1e-4.
RTOL, ATOL = 2e-4, 2e-5


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize("seed", [0, 1])
def test_lms_matches_reference(use_bias, seed):
    xs, ys = _data(seed)
    w, a = _run(LinearLearner(xs.shape[1], LMS(0.02), use_bias=use_bias), xs, ys)
    ref = reference.lms(_augment(xs, use_bias), ys, 0.02)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)
    np.testing.assert_allclose(a, np.stack([r[1] for r in ref]), rtol=1e-6)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize(("seed", "alpha0", "theta"), [(0, 0.05, 0.01), (1, 0.01, 0.05)])
def test_idbd_matches_figure_2(use_bias, seed, alpha0, theta):
    xs, ys = _data(seed)
    w, a = _run(
        LinearLearner(xs.shape[1], IDBD(alpha0, meta_step_size=theta), use_bias=use_bias), xs, ys
    )
    ref = reference.idbd(_augment(xs, use_bias), ys, alpha0, theta)
    ref_a = np.stack([r[1] for r in ref])
    # the step-sizes must actually have moved, or this test would prove little
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(a, ref_a, rtol=RTOL)
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


@pytest.mark.parametrize("use_bias", [True, False])
@pytest.mark.parametrize(
    ("seed", "alpha0", "mu", "tau"), [(0, 0.02, 1e-2, 1e4), (1, 0.1, 0.05, 100.0)]
)
def test_autostep_matches_table_1(use_bias, seed, alpha0, mu, tau):
    xs, ys = _data(seed)
    learner = LinearLearner(
        xs.shape[1], Autostep(alpha0, meta_step_size=mu, tau=tau), use_bias=use_bias
    )

    def step(learner, xy):
        learner, _ = learner.update(*xy)
        v = learner.optimizer.step_size_normalizer
        return learner, (learner.optimizer.state.step_size, v)

    _, (alphas, vs) = jax.lax.scan(
        step, learner, (jnp.asarray(xs, jnp.float32), jnp.asarray(ys, jnp.float32))
    )
    w, _ = _run(learner, xs, ys)
    ref = reference.autostep(_augment(xs, use_bias), ys, alpha0, mu, tau)
    ref_a = np.stack([r[1] for r in ref])
    assert np.max(np.abs(np.log(ref_a[-1] / alpha0))) > 0.1
    np.testing.assert_allclose(_columns(alphas), ref_a, rtol=RTOL)
    np.testing.assert_allclose(
        _columns(vs),
        np.stack([r[2] for r in ref]),
        rtol=RTOL,
        atol=1e-6,
    )
    np.testing.assert_allclose(w, np.stack([r[0] for r in ref]), rtol=RTOL, atol=ATOL)


def test_autostep_overshoot_guard_counts_the_bias():
    """With one big input the guard M binds: sum_i alpha_i x_i^2 (bias included) <= 1."""
    learner = LinearLearner(2, Autostep(initial_step_size=0.6))
    learner, _ = learner.update(jnp.array([1.0, 1.0]), jnp.array(3.0))
    total = jnp.sum(learner.step_sizes * 1.0) + learner.bias_step_size
    np.testing.assert_allclose(total, 1.0, rtol=1e-6)
    without_bias = LinearLearner(2, Autostep(initial_step_size=0.6), use_bias=False)
    without_bias, _ = without_bias.update(jnp.array([1.0, 1.0]), jnp.array(3.0))
    np.testing.assert_allclose(jnp.sum(without_bias.step_sizes), 1.0, rtol=1e-6)


def test_idbd_with_zero_meta_step_size_is_lms():
    xs, ys = _data(3)
    w_idbd, a_idbd = _run(LinearLearner(xs.shape[1], IDBD(0.03, meta_step_size=0.0)), xs, ys)
    w_lms, a_lms = _run(LinearLearner(xs.shape[1], LMS(0.03)), xs, ys)
    np.testing.assert_allclose(a_idbd, a_lms, rtol=1e-6)
    np.testing.assert_allclose(w_idbd, w_lms, rtol=1e-5, atol=1e-6)


def test_ema_normalizer_matches_recurrence():
    rng = np.random.default_rng(0)
    xs = rng.normal(3.0, 2.0, size=(200, 4))
    ref = reference.ema_normalizer(xs, 0.9, 1e-8)
    norm = EMANormalizer(decay=0.9).init(4)

    def step(norm, x):
        norm, x_hat = norm.update(x)
        return norm, (x_hat, norm.mean, norm.var)

    _, (x_hat, mean, var) = jax.lax.scan(step, norm, jnp.asarray(xs, jnp.float32))
    np.testing.assert_allclose(mean, np.stack([r[1] for r in ref]), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(var, np.stack([r[2] for r in ref]), rtol=1e-4)
    np.testing.assert_allclose(x_hat[1:], np.stack([r[0] for r in ref])[1:], rtol=1e-3, atol=1e-4)


def test_welford_matches_numpy():
    rng = np.random.default_rng(1)
    xs = rng.normal(-2.0, 5.0, size=(500, 3))
    norm = WelfordNormalizer().init(3)
    for x in xs[:2]:
        norm, _ = norm.update(jnp.asarray(x, jnp.float32))
    np.testing.assert_allclose(norm.var, np.var(xs[:2], axis=0, ddof=1), rtol=1e-4)
    norm, _ = jax.lax.scan(
        lambda n, x: (n.update(x)[0], None), norm, jnp.asarray(xs[2:], jnp.float32)
    )
    np.testing.assert_allclose(norm.mean, xs.mean(axis=0), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.var, xs.var(axis=0, ddof=1), rtol=1e-4)


def test_normalized_learner_learns_on_normalised_features():
    """With a normalizer the weights learn on x_hat: the same as a plain learner fed the
    normalizer's outputs."""
    xs, ys = _data(4, n=3)
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


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: LMS(0.0), "step_size"),
        (lambda: LMS(-1.0), "step_size"),
        (lambda: LMS(float("nan")), "step_size"),
        (lambda: IDBD(0.0, meta_step_size=0.01), "initial_step_size"),
        (lambda: IDBD(0.01, meta_step_size=-0.1), "meta_step_size"),
        (lambda: Autostep(0.01, meta_step_size=0.01, tau=0.0), "tau"),
        (lambda: Autostep(0.01, meta_step_size=-1.0), "meta_step_size"),
        (lambda: EMANormalizer(decay=0.0), "decay"),
        (lambda: EMANormalizer(decay=1.5), "decay"),
        (lambda: LinearLearner(0), "feature_dim"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()


def test_bad_shapes_and_types_are_refused():
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
