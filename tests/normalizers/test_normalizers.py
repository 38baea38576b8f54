"""The feature normalizers (`alberta_eqx.normalizers`) against their recurrences and
NumPy."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alberta_eqx import EMANormalizer, WelfordNormalizer
from tests._reference import rules as reference

SETTINGS = settings(max_examples=12, deadline=None, derandomize=True)


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


@SETTINGS
@given(st.integers(2, 200), st.integers(1, 5), st.integers(0, 2**16), st.floats(-50, 50))
@pytest.mark.slow
def test_welford_matches_numpy_and_bounds_z_scores(steps, n, seed, shift):
    xs = np.random.default_rng(seed).normal(shift, 3.0, size=(steps, n))
    norm = WelfordNormalizer().init(n)

    def step(norm, x):
        norm, x_hat = norm.update(x)
        return norm, x_hat

    norm, x_hat = jax.lax.scan(step, norm, jnp.asarray(xs, jnp.float32))
    np.testing.assert_allclose(norm.mean, xs.mean(0), rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(norm.var, xs.var(0, ddof=1), rtol=2e-3)
    # the newest of k samples is at most (k - 1) / sqrt(k) standard deviations out
    k = np.arange(1, steps + 1)[:, None]
    assert np.all(np.abs(np.asarray(x_hat)) <= (k - 1) / np.sqrt(k) + 1e-3)


@SETTINGS
@given(st.floats(0.5, 1.0), st.integers(0, 2**16))
def test_ema_normalizer_follows_its_recurrence(decay, seed):
    xs = np.random.default_rng(seed).normal(2.0, 4.0, size=(60, 3))
    norm = EMANormalizer(decay).init(3)
    mean, var = np.zeros(3), np.ones(3)
    for count, x in enumerate(xs, start=1):
        norm, x_hat = norm.update(jnp.asarray(x, jnp.float32))
        d = min(decay, 1 - 1 / (count + 1))
        new_mean = mean + (1 - d) * (x - mean)
        var = np.maximum(d * var + (1 - d) * (x - mean) * (x - new_mean), 1e-8)
        mean = new_mean
    np.testing.assert_allclose(norm.mean, mean, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(norm.var, var, rtol=1e-3)
    assert np.all(np.isfinite(np.asarray(x_hat)))


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: EMANormalizer(decay=0.0), "decay"),
        (lambda: EMANormalizer(decay=1.5), "decay"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()
