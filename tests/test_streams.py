"""The synthetic streams: chunks equal steps, and each stream means what it says."""

import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.streams import (
    AbruptChangeStream,
    CyclicStream,
    DynamicScaleShiftStream,
    PeriodicChangeStream,
    RandomWalkStream,
    ScaleDriftStream,
    ScaledStreamWrapper,
    SuttonExperiment1Stream,
    clipped_walk,
    make_scale_range,
)

STREAMS = {
    "random_walk": lambda: RandomWalkStream(4, drift_rate=0.05),
    "abrupt": lambda: AbruptChangeStream(4, change_interval=30),
    "sutton": lambda: SuttonExperiment1Stream(),
    "cyclic": lambda: CyclicStream(4, cycle_length=25, num_configurations=3),
    "periodic": lambda: PeriodicChangeStream(4, period=40),
    "scaled": lambda: ScaledStreamWrapper(RandomWalkStream(3), jnp.array([0.1, 1.0, 10.0]), 2.0),
    "scale_shift": lambda: DynamicScaleShiftStream(
        4, scale_change_interval=40, weight_change_interval=30
    ),
    "scale_drift": lambda: ScaleDriftStream(
        4, scale_drift_rate=0.5, min_log_scale=-1.0, max_log_scale=1.0
    ),
}


def _steps(stream, state, t0, n):
    observations, targets = [], []
    for t in range(t0, t0 + n):
        timestep, state = stream.step(state, jnp.asarray(t))
        observations.append(timestep.observation)
        targets.append(timestep.target)
    return np.stack(observations), np.stack(targets), state


@pytest.mark.parametrize("name", STREAMS)
def test_chunk_equals_steps_and_any_split(name):
    stream = STREAMS[name]()
    state = stream.init(jax.random.key(0))
    whole, end = stream.chunk(state, jnp.asarray(0), 60)
    assert whole.observation.shape == (60, stream.feature_dim)
    assert whole.target.shape == (60,)
    assert whole.observation.dtype == jnp.float32
    x, y, stepped_end = _steps(stream, state, 0, 60)
    np.testing.assert_allclose(whole.observation, x, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole.target, y, rtol=1e-5, atol=1e-5)
    first, mid = stream.chunk(state, jnp.asarray(0), 37)
    second, split_end = stream.chunk(mid, jnp.asarray(37), 23)
    np.testing.assert_allclose(
        np.concatenate([first.target, second.target]), whole.target, rtol=1e-5, atol=1e-5
    )
    floats = [
        jax.tree.leaves(eqx.filter(s, eqx.is_inexact_array)) for s in (end, split_end, stepped_end)
    ]
    for a, b, c in zip(*floats, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("name", STREAMS)
def test_vmap_over_keys_and_jit(name):
    stream = STREAMS[name]()
    keys = jax.random.split(jax.random.key(1), 4)
    batched = eqx.filter_jit(
        eqx.filter_vmap(lambda k: stream.chunk(stream.init(k), jnp.asarray(0), 20)[0])
    )(keys)
    assert batched.observation.shape == (4, 20, stream.feature_dim)
    single = stream.chunk(stream.init(keys[2]), jnp.asarray(0), 20)[0]
    np.testing.assert_allclose(batched.target[2], single.target, rtol=1e-5, atol=1e-6)
    assert not np.allclose(batched.target[0], batched.target[1])


def test_sutton_flips_one_sign_every_interval():
    stream = SuttonExperiment1Stream(change_interval=20)
    state = stream.init(jax.random.key(3))
    signs = np.ones(5)
    for t in range(0, 130):
        timestep, state = stream.step(state, jnp.asarray(t))
        new = np.asarray(state.signs)
        flipped = np.sum(new != signs)
        assert flipped == (1 if t > 0 and t % 20 == 0 else 0), t
        x = np.asarray(timestep.observation)
        np.testing.assert_allclose(timestep.target, new @ x[:5], rtol=1e-6, atol=1e-6)
        signs = new
    assert stream.feature_dim == 20


def _exact_linear_fit(x, y):
    """Least-squares weights and the largest residual of y ~ x w."""
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    return w, np.max(np.abs(x @ w - y))


def _noiseless(stream_cls, **kwargs):
    stream = stream_cls(noise_std=0.0, **kwargs)
    state = stream.init(jax.random.key(4))
    timesteps, _ = stream.chunk(state, jnp.asarray(0), 240)
    return np.asarray(timesteps.observation, np.float64), np.asarray(timesteps.target, np.float64)


def test_abrupt_change_is_piecewise_constant():
    x, y = _noiseless(AbruptChangeStream, feature_dim=3, change_interval=60)
    segments = [_exact_linear_fit(x[i : i + 60], y[i : i + 60]) for i in range(0, 240, 60)]
    assert all(residual < 1e-4 for _, residual in segments)
    assert all(not np.allclose(a[0], b[0], atol=1e-2) for a, b in itertools.pairwise(segments))
    # a window straddling a change is not one linear map
    assert _exact_linear_fit(x[30:90], y[30:90])[1] > 1e-2


def test_cyclic_returns_to_its_configurations():
    x, y = _noiseless(CyclicStream, feature_dim=3, cycle_length=40, num_configurations=3)
    fits = [_exact_linear_fit(x[i : i + 40], y[i : i + 40])[0] for i in range(0, 240, 40)]
    np.testing.assert_allclose(fits[0], fits[3], atol=1e-4)
    np.testing.assert_allclose(fits[1], fits[4], atol=1e-4)
    assert not np.allclose(fits[0], fits[1], atol=1e-2)


def test_periodic_follows_closed_form():
    stream = PeriodicChangeStream(3, period=50, amplitude=0.7, noise_std=0.0)
    state = stream.init(jax.random.key(5))
    timesteps, _ = stream.chunk(state, jnp.asarray(10), 60)
    t = np.arange(10, 70)[:, None]
    w = np.asarray(state.base_weights) + 0.7 * np.sin(
        2 * np.pi * t / 50 + np.asarray(state.phases)
    )
    np.testing.assert_allclose(
        timesteps.target, np.sum(w * np.asarray(timesteps.observation), -1), rtol=1e-4, atol=1e-4
    )


def test_dynamic_scale_shift_targets_use_raw_features():
    """Within a segment where weights and scales are both constant, y = (w / s) . obs."""
    x, y = _noiseless(
        DynamicScaleShiftStream,
        feature_dim=3,
        scale_change_interval=120,
        weight_change_interval=60,
    )
    for start in (0, 60, 120, 180):
        _, residual = _exact_linear_fit(x[start : start + 60], y[start : start + 60])
        assert residual < 1e-3 * np.abs(y).max()
    spread = [np.std(x[i : i + 120], axis=0) for i in (0, 120)]
    assert not np.allclose(spread[0], spread[1], rtol=0.2)


def test_clipped_walk_matches_sequential_loop():
    rng = np.random.default_rng(0)
    increments = rng.normal(0, 0.3, size=(500, 3)).astype(np.float32)
    low, high = -0.2, 0.25  # narrow walls, so clipping is frequent
    s, expected = np.zeros(3, np.float32), []
    for a in increments:
        s = np.clip(s + a, low, high)
        expected.append(s)
    got = clipped_walk(jnp.zeros(3), jnp.asarray(increments), low, high)
    np.testing.assert_allclose(got, np.stack(expected), atol=1e-5)
    assert (
        np.mean(np.isclose(np.stack(expected), high) | np.isclose(np.stack(expected), low)) > 0.3
    )


def test_scale_drift_stays_within_walls():
    stream = ScaleDriftStream(3, scale_drift_rate=0.3, min_log_scale=-0.5, max_log_scale=0.5)
    state = stream.init(jax.random.key(0))
    _, state = stream.chunk(state, jnp.asarray(0), 2000)
    assert np.all(np.abs(np.asarray(state.log_scales)) <= 0.5 + 1e-6)


def test_scaled_wrapper_scales_observations_and_target():
    inner = RandomWalkStream(3)
    scales = make_scale_range(3, 0.1, 10.0)
    np.testing.assert_allclose(scales, [0.1, 1.0, 10.0], rtol=1e-5)
    stream = ScaledStreamWrapper(inner, scales, target_scale=-3.0)
    key = jax.random.key(2)
    plain, _ = inner.chunk(inner.init(key), jnp.asarray(0), 10)
    scaled, _ = stream.chunk(stream.init(key), jnp.asarray(0), 10)
    np.testing.assert_allclose(scaled.observation, plain.observation * scales, rtol=1e-6)
    np.testing.assert_allclose(scaled.target, -3.0 * plain.target, rtol=1e-6)


def test_feature_statistics():
    stream = RandomWalkStream(5, feature_std=2.0)
    timesteps, _ = stream.chunk(stream.init(jax.random.key(0)), jnp.asarray(0), 5000)
    x = np.asarray(timesteps.observation)
    assert np.all(np.abs(x.mean(0)) < 0.15)
    np.testing.assert_allclose(x.var(0), 4.0, rtol=0.1)


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: RandomWalkStream(0), "feature_dim"),
        (lambda: RandomWalkStream(3, noise_std=-1.0), "noise_std"),
        (lambda: AbruptChangeStream(3, change_interval=0), "change_interval"),
        (lambda: CyclicStream(3, num_configurations=0), "num_configurations"),
        (lambda: ScaledStreamWrapper(RandomWalkStream(3), jnp.ones(4)), "feature_scales"),
        (lambda: ScaleDriftStream(3, min_log_scale=1.0), "min_log_scale"),
        (lambda: SuttonExperiment1Stream(change_interval=-1), "change_interval"),
    ],
)
def test_bad_parameters_name_the_argument(build, name):
    with pytest.raises((ValueError, TypeError), match=name):
        build()
