"""The synthetic streams: chunks equal steps, and each stream means what it says.

Semantics are checked against plain NumPy loops or closed forms, independently of the
vectorised chunk code (`cumsum`, `cumprod`, `associative_scan`, segment lookups).
"""

import functools
import itertools

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.streams import (
    AbruptChangeStream,
    AbstractSequentialStream,
    AbstractStream,
    CyclicStream,
    DriftingTargetStream,
    DynamicScaleShiftStream,
    PeriodicChangeStream,
    ScaleDriftStream,
    ScaledStreamWrapper,
    SuttonExperiment1Stream,
    TimeStep,
    clipped_walk,
    make_scale_range,
)
from alberta_eqx.streams._draws import normals
from alberta_eqx.streams.scales import _compose_clips
from alberta_eqx.streams.targets import (
    AbruptChangeTarget,
    CyclicTarget,
    PeriodicChangeTarget,
    RandomWalkTarget,
)
from alberta_eqx.streams.teacher import NonlinearTeacherStream

STREAMS = {
    "random_walk": lambda: DriftingTargetStream(4, drift_rate=0.05),
    "abrupt": lambda: AbruptChangeStream(4, change_interval=30),
    "sutton": lambda: SuttonExperiment1Stream(change_interval=20),
    "cyclic": lambda: CyclicStream(4, cycle_length=25, num_configurations=3),
    "periodic": lambda: PeriodicChangeStream(4, period=40),
    "scaled": lambda: ScaledStreamWrapper(
        DriftingTargetStream(3), jnp.array([0.1, 1.0, 10.0]), 2.0
    ),
    "scale_shift": lambda: DynamicScaleShiftStream(
        4, scale_change_interval=40, weight_change_interval=30
    ),
    "scale_drift": lambda: ScaleDriftStream(
        4, scale_drift_rate=0.5, min_log_scale=-1.0, max_log_scale=1.0
    ),
    # wide enough that a 100-step chunk draws its normals in batches (`lax.map`)
    "wide": lambda: DriftingTargetStream(200, drift_rate=0.05),
}
# Streams whose observations are the step's normals times parameters, so that a chunk
# reproduces the step-by-step observations bit for bit. The others are equal to float32
# rounding: `scale_shift`'s scales are `exp` of a draw (which XLA may round differently
# in differently shaped programs) and `scale_drift`'s log-scales are an associative scan.
# Targets are dot products, which XLA may reduce in a different order, so they too are
# compared to float32 rounding.
EXACT_OBSERVATIONS = set(STREAMS) - {"scale_shift", "scale_drift"}


def _quick_jit(fun):
    """`eqx.filter_jit`, compiled at XLA's optimisation level 0: these programs are tiny,
    and compiling them at the default level costs most of this file's time (threefry
    alone takes ~0.4 s per program). Non-array arguments are static."""

    @functools.partial(
        jax.jit, static_argnums=0, compiler_options={"xla_backend_optimization_level": 0}
    )
    def call(static, dynamic):
        return fun(*eqx.combine(dynamic, static))

    @functools.wraps(fun)
    def wrapped(*args):
        dynamic, static = eqx.partition(args, eqx.is_array)
        return call(static, dynamic)

    return wrapped


@_quick_jit
def _jit_chunk(stream, state, t0, num_steps):
    return stream.chunk(state, t0, num_steps)


def _chunk(stream, state, t0, num_steps):
    """`stream.chunk`, compiled once per stream structure and chunk length (the stream's
    array parameters are arguments, so streams of one shape share a compilation)."""
    return _jit_chunk(stream, state, jnp.asarray(t0), num_steps)


@_quick_jit
def _step(stream, state, t):
    return stream.step(state, t)


@_quick_jit
def _steps(stream, state, t0, num_steps):
    """`num_steps` calls of `step` (scanned, as a 0.2.x runner would), stacked."""

    def body(state, t):
        timestep, state = stream.step(state, t)
        return state, timestep

    state, timesteps = jax.lax.scan(body, state, t0 + jnp.arange(num_steps))
    return timesteps, state


def _draws(key, t0, n, width):
    """Step `t`'s standard normals, drawn as the streams document: from `fold_in(key, t)`."""
    return np.stack(
        [
            np.asarray(jax.random.normal(jax.random.fold_in(key, t), (width,), jnp.float32))
            for t in range(t0, t0 + n)
        ]
    ).astype(np.float64)


def _float_leaves(tree):
    return jax.tree.leaves(eqx.filter(tree, eqx.is_inexact_array))


# --------------------------------------------------------------------------------------
# The protocol: chunk = steps = any split; shapes, dtypes, keys, jit, vmap.


@_quick_jit
def _split_over_keys(stream, keys):
    """`chunk(0, 37)` then `chunk(37, 63)` from `init(key)`, vmapped over `keys`."""

    def split(key):
        first, mid = stream.chunk(stream.init(key), jnp.asarray(0), 37)
        second, end = stream.chunk(mid, jnp.asarray(37), 63)
        return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), first, second), end

    return eqx.filter_vmap(split)(keys)


@pytest.mark.parametrize("name", STREAMS)
@pytest.mark.slow
def test_chunk_equals_steps_and_any_split(name):
    """`chunk(0, 100)` = 100 `step`s = `chunk(0, 37)` + `chunk(37, 63)`; the split is
    run under `eqx.filter_vmap` over 4 keys, so this also checks vmap and jit."""
    stream = STREAMS[name]()
    assert isinstance(stream, AbstractStream)
    keys = jax.random.split(jax.random.key(0), 4)
    state = stream.init(keys[0])
    whole, end = _chunk(stream, state, 0, 100)
    assert isinstance(whole, TimeStep)
    assert whole.observation.shape == (100, stream.feature_dim)
    assert whole.target.shape == (100,)
    assert whole.observation.dtype == whole.target.dtype == jnp.float32

    stepped, stepped_end = _steps(stream, state, jnp.asarray(0), 100)
    split, split_end = _split_over_keys(stream, keys)
    assert split.observation.shape == (4, 100, stream.feature_dim)
    assert split.target.shape == (4, 100)
    assert not np.allclose(split.target[0], split.target[1])  # keys differ, streams differ
    split, split_end = jax.tree.map(lambda a: a[0], (split, split_end))
    if name in EXACT_OBSERVATIONS:
        np.testing.assert_array_equal(whole.observation, stepped.observation)
        np.testing.assert_array_equal(whole.observation, split.observation)
    else:
        np.testing.assert_allclose(whole.observation, stepped.observation, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(whole.observation, split.observation, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(whole.target, stepped.target, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(whole.target, split.target, rtol=1e-5, atol=1e-5)
    for a, b, c in zip(*map(_float_leaves, (end, split_end, stepped_end)), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(a, c, rtol=1e-5, atol=1e-6)


def test_raw_uint32_keys():
    """An old-style uint32 key gives the same stream as the typed key it holds."""
    stream = STREAMS["scale_shift"]()  # splits its key in `chunk`, and folds in segments
    key = jax.random.key(9)
    typed, _ = _chunk(stream, stream.init(key), 0, 100)
    raw, _ = _chunk(stream, stream.init(jax.random.key_data(key)), 0, 100)
    np.testing.assert_array_equal(raw.observation, typed.observation)
    np.testing.assert_allclose(raw.target, typed.target, rtol=1e-6, atol=1e-6)


@pytest.mark.slow
def test_float64_when_x64_is_on():
    with jax.enable_x64(True):
        for name in ["sutton", "periodic", "scale_shift", "scale_drift"]:
            stream = STREAMS[name]()
            timesteps, state = _chunk(stream, stream.init(jax.random.key(0)), 0, 5)
            assert timesteps.observation.dtype == jnp.float64, name
            assert timesteps.target.dtype == jnp.float64, name
            assert all(leaf.dtype == jnp.float64 for leaf in _float_leaves(state)), name


def test_vmap_over_a_parameter():
    """Float parameters are array leaves: one stream per `noise_std`, in one call."""
    key = jax.random.key(2)

    def targets(noise_std):
        stream = DriftingTargetStream(3, noise_std=noise_std)
        return stream.chunk(stream.init(key), jnp.asarray(0), 50)[0].target

    batched = jax.jit(jax.vmap(targets))(jnp.array([0.0, 0.5, 2.0]))
    # the single stream jitted too: one program, not one per operation of an eager chunk
    np.testing.assert_allclose(batched[0], jax.jit(targets)(0.0), rtol=1e-5, atol=1e-6)
    # the noise enters linearly: the same draws, scaled
    np.testing.assert_allclose(
        batched[2] - batched[0], 4 * (batched[1] - batched[0]), rtol=1e-4, atol=1e-5
    )


def test_aliases():
    assert RandomWalkTarget is DriftingTargetStream
    assert AbruptChangeTarget is AbruptChangeStream
    assert CyclicTarget is CyclicStream
    assert PeriodicChangeTarget is PeriodicChangeStream


# --------------------------------------------------------------------------------------
# Each stream's meaning, against NumPy loops and closed forms.


def test_random_walk_matches_numpy_loop():
    """Drift first, then features and target, from step t's draws."""
    d, drift, noise, fstd = 4, 0.2, 0.3, 1.5
    stream = DriftingTargetStream(d, drift_rate=drift, noise_std=noise, feature_std=fstd)
    state = stream.init(jax.random.key(6))
    timesteps, end = _chunk(stream, state, 0, 100)
    z = _draws(state.key, 0, 100, 2 * d + 1)
    w, xs, ys = np.asarray(state.weights, np.float64), [], []
    for z_t in z:
        w = w + drift * z_t[:d]
        x = fstd * z_t[d : 2 * d]
        xs.append(x)
        ys.append(w @ x + noise * z_t[-1])
    np.testing.assert_allclose(timesteps.observation, np.stack(xs), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(timesteps.target, ys, rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(end.weights, w, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize(("low", "high"), [(-1.0, 0.3), (0.5, 0.7)])
def test_scale_drift_matches_numpy_loop(low, high):
    """The clipped log-scale walk, weights walk, raw-feature target, from step t's draws.
    Walls that exclude the start (0) are allowed: the walk is clipped into them."""
    d, n, w_rate, s_rate, noise = 4, 100, 0.1, 0.5, 0.2
    stream = ScaleDriftStream(
        d,
        weight_drift_rate=w_rate,
        scale_drift_rate=s_rate,
        min_log_scale=low,
        max_log_scale=high,
        noise_std=noise,
    )
    state = stream.init(jax.random.key(7))
    timesteps, end = _chunk(stream, state, 0, n)
    z = _draws(state.key, 0, n, 3 * d + 1)
    w, s = np.asarray(state.weights, np.float64), np.zeros(d)
    xs, ys, clipped = [], [], 0
    for z_t in z:
        w = w + w_rate * z_t[:d]
        s = np.clip(s + s_rate * z_t[d : 2 * d], low, high)
        clipped += np.sum((s == low) | (s == high))
        raw = z_t[2 * d : 3 * d]
        xs.append(raw * np.exp(s))
        ys.append(w @ raw + noise * z_t[-1])
    assert clipped > 0.3 * n * d  # the walls are hit often
    np.testing.assert_allclose(timesteps.observation, np.stack(xs), rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(timesteps.target, ys, rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(end.log_scales, s, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(end.weights, w, rtol=1e-5, atol=1e-5)


_jit_clipped_walk = _quick_jit(clipped_walk)


def _sequential_clip(start, increments, low, high):
    s, out = np.asarray(start, np.float64), []
    for a in increments:
        s = np.clip(s + a, low, high)
        out.append(s)
    return np.stack(out)


@pytest.mark.parametrize(
    ("start", "std", "low", "high"),
    [
        (0.0, 0.3, -0.2, 0.25),  # narrow walls
        (0.0, 0.3, -1e-3, 1e-3),  # tiny range: clipped nearly every step
        (0.0, 0.3, 0.1, 0.1),  # a single point
        (5.0, 0.01, 0.5, 0.7),  # start outside the walls
        (0.0, 0.3, -1e6, 1e6),  # never clipped: a cumulative sum
        (0.0, 0.3, np.array([-0.1, -2.0, 0.0]), np.array([0.1, 2.0, 1e-4])),  # per feature
    ],
)
@pytest.mark.slow
def test_clipped_walk_matches_sequential_loop(start, std, low, high):
    rng = np.random.default_rng(0)
    increments = rng.normal(0, std, size=(777, 3)).astype(np.float32)
    expected = _sequential_clip(np.full(3, start), increments, low, high)
    low, high = (np.broadcast_to(np.float32(v), (3,)) for v in (low, high))
    got = _jit_clipped_walk(jnp.full(3, start), jnp.asarray(increments), low, high)
    assert got.shape == increments.shape
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=2e-5)


def test_clip_composition_is_associative_and_exact():
    """`_compose_clips(f, g)` is `g` after `f`, and composition is associative."""
    rng = np.random.default_rng(1)

    def random_map():
        a = rng.normal(0, 1, 64)
        walls = np.sort(rng.normal(0, 1, (2, 64)) * rng.choice([1e-3, 1.0], 64), axis=0)
        return tuple(jnp.asarray(v, jnp.float32) for v in (a, walls[0], walls[1]))

    def apply(f, s):
        return np.clip(s + np.asarray(f[0]), np.asarray(f[1]), np.asarray(f[2]))

    f, g, h = random_map(), random_map(), random_map()
    s = rng.normal(0, 2, 64)
    np.testing.assert_allclose(apply(_compose_clips(f, g), s), apply(g, apply(f, s)), atol=1e-5)
    left = _compose_clips(_compose_clips(f, g), h)
    right = _compose_clips(f, _compose_clips(g, h))
    for a, b in zip(left, right, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_scale_drift_walk_variance():
    """Far from the walls the log-scales (and the weights) are random walks: variance
    t * rate^2 after t steps."""
    stream = ScaleDriftStream(
        4, weight_drift_rate=0.1, scale_drift_rate=0.1, min_log_scale=-100.0, max_log_scale=100
    )
    log_scales, drifts = [], []
    for key in jax.random.split(jax.random.key(8), 50):
        state = stream.init(key)
        _, end = _chunks(stream, state, 4)
        log_scales.append(end.log_scales)
        drifts.append(end.weights - state.weights)
    np.testing.assert_allclose(np.var(log_scales), 400 * 0.1**2, rtol=0.3)
    np.testing.assert_allclose(np.var(drifts), 400 * 0.1**2, rtol=0.3)


def test_sutton_flips_one_sign_every_interval():
    """Scanned step by step: exactly one sign flips at each t = k * interval (k >= 1), none
    otherwise; the flipped sign is uniform; the target is signs . x[:5], noise-free."""
    interval, flips = 7, 3000
    stream = SuttonExperiment1Stream(change_interval=interval)
    assert stream.feature_dim == 20

    @jax.jit
    def run(key):
        def body(state, t):
            timestep, state = stream.step(state, t)
            return state, (timestep, state.signs)

        return jax.lax.scan(body, stream.init(key), jnp.arange(interval * flips + 1))[1]

    timesteps, signs = run(jax.random.key(3))
    assert timesteps.target.shape == (interval * flips + 1,)
    signs, x, y = map(np.asarray, (signs, timesteps.observation, timesteps.target))
    previous = np.concatenate([np.ones((1, 5)), signs[:-1]])
    changed = signs != previous
    t = np.arange(len(signs))
    np.testing.assert_array_equal(changed.sum(1), (t > 0) & (t % interval == 0))
    assert set(np.unique(signs)) <= {-1.0, 1.0}
    np.testing.assert_allclose(y, np.sum(signs * x[:, :5], axis=1), rtol=1e-5, atol=1e-5)
    frequencies = changed.sum(0) / flips
    np.testing.assert_allclose(frequencies, 0.2, atol=0.035)
    np.testing.assert_allclose(x.mean(0), 0, atol=0.03)
    np.testing.assert_allclose(x.var(0), 1, rtol=0.05)


def test_sutton_without_irrelevant_inputs():
    stream = SuttonExperiment1Stream(num_relevant=3, num_irrelevant=0, change_interval=5)
    timesteps, state = _chunk(stream, stream.init(jax.random.key(4)), 0, 50)
    assert timesteps.observation.shape == (50, 3)
    assert state.signs.shape == (3,)


def _exact_linear_fit(x, y):
    """Least-squares weights and the largest residual of y ~ x w."""
    w, *_ = np.linalg.lstsq(x, y, rcond=None)
    return w, np.max(np.abs(x @ w - y))


def _chunks(stream, state, count, t0=0):
    """`count` consecutive 100-step chunks, concatenated (one compilation per stream
    structure, shared with the protocol tests)."""
    parts = []
    for i in range(count):
        timesteps, state = _chunk(stream, state, t0 + 100 * i, 100)
        parts.append(timesteps)
    return jax.tree.map(lambda *a: np.concatenate(a), *parts), state


def _noiseless(stream, count, t0=0, key=4):
    state = stream.init(jax.random.key(key))
    timesteps, _ = _chunks(stream, state, count, t0)
    x = np.asarray(timesteps.observation, np.float64)
    return x, np.asarray(timesteps.target, np.float64), state


def test_abrupt_change_is_piecewise_constant():
    """Exactly linear within each segment of `change_interval` steps (starting at 0), a
    new N(0, I) draw in each, and not linear across a boundary."""
    d, interval = 4, 30
    stream = AbruptChangeStream(d, change_interval=interval, noise_std=0.0)
    x, y, _ = _noiseless(stream, 6)
    fits = [
        _exact_linear_fit(x[i : i + interval], y[i : i + interval])
        for i in range(0, len(y), interval)
    ]
    assert len(fits) == 20
    assert all(residual < 1e-4 for _, residual in fits)
    assert all(not np.allclose(a[0], b[0], atol=1e-2) for a, b in itertools.pairwise(fits))
    for start in range(interval // 2, 5 * interval, interval):  # windows straddling a change
        assert (
            _exact_linear_fit(x[start : start + interval], y[start : start + interval])[1] > 1e-3
        )
    weights = np.stack([w for w, _ in fits])
    assert abs(weights.mean()) < 0.3
    np.testing.assert_allclose(weights.std(), 1.0, rtol=0.25)
    # Far into the stream, starting mid-segment: the same segment structure.
    t0 = 10**6 + 15
    x, y, _ = _noiseless(stream, 1, t0=t0)
    first = interval - t0 % interval
    assert _exact_linear_fit(x[:first], y[:first])[1] < 1e-4
    assert _exact_linear_fit(x[first : first + interval], y[first : first + interval])[1] < 1e-4
    assert _exact_linear_fit(x[:interval], y[:interval])[1] > 1e-3


def test_cyclic_returns_to_its_configurations():
    stream = CyclicStream(4, cycle_length=25, num_configurations=3, noise_std=0.0)
    x, y, state = _noiseless(stream, 2)
    configurations = np.asarray(state.configurations)
    for k, start in enumerate(range(0, 200, 25)):
        w, residual = _exact_linear_fit(x[start : start + 25], y[start : start + 25])
        assert residual < 1e-4
        np.testing.assert_allclose(w, configurations[k % 3], atol=1e-4)
    assert not np.allclose(configurations[0], configurations[1], atol=1e-2)


@pytest.mark.parametrize("t0", [10, 10_000_010])
def test_periodic_follows_closed_form(t0):
    """Also far into the stream, where `2 pi t / period` in float32 would lose the phase."""
    stream = PeriodicChangeStream(4, period=40, amplitude=0.7, noise_std=0.0)
    x, y, state = _noiseless(stream, 1, t0=t0, key=5)
    phases = np.asarray(state.phases, np.float64)
    assert np.all((phases >= 0) & (phases < 2 * np.pi))
    t = np.arange(t0, t0 + 100)[:, None]
    w = np.asarray(state.base_weights, np.float64) + 0.7 * np.sin(2 * np.pi * t / 40 + phases)
    np.testing.assert_allclose(y, np.sum(w * x, -1), rtol=1e-5, atol=1e-5)


def test_dynamic_scale_shift_targets_use_raw_features():
    """With every scale fixed at 8, observation / 8 are the raw N(0, 1) features and the
    target is exactly w . raw, with w ~ N(0, I) redrawn every weight interval."""
    stream = DynamicScaleShiftStream(
        4,
        scale_change_interval=40,
        weight_change_interval=30,
        min_scale=8.0,
        max_scale=8.0,
        noise_std=0.0,
    )
    x, y, _ = _noiseless(stream, 6)
    raw = x / 8.0
    np.testing.assert_allclose(raw.var(0), 1.0, rtol=0.2)
    fits = [_exact_linear_fit(raw[i : i + 30], y[i : i + 30]) for i in range(0, 600, 30)]
    assert all(residual < 1e-4 for _, residual in fits)
    np.testing.assert_allclose(np.std([w for w, _ in fits]), 1.0, rtol=0.25)


def test_dynamic_scale_shift_scales_are_piecewise_log_uniform():
    """Per-feature scales, constant for `scale_change_interval` steps, log-uniform in
    [min_scale, max_scale]; the target still uses the raw features."""
    d, interval = 4, 200
    stream = DynamicScaleShiftStream(
        d, scale_change_interval=interval, weight_change_interval=100, noise_std=0.0
    )
    x, y, _ = _noiseless(stream, 40)
    segments = x.reshape(20, interval, d)
    scales = segments.std(1)  # estimates of each segment's scales (raw x has unit variance)
    halves = segments.reshape(20, 2, interval // 2, d).std(2)
    np.testing.assert_allclose(halves[:, 0], halves[:, 1], rtol=0.5)  # constant in a segment
    assert np.all((scales > 0.01 * 0.6) & (scales < 100 * 1.4))
    np.testing.assert_allclose(np.std(np.log(scales)), np.log(1e4) / np.sqrt(12), rtol=0.3)
    # y = (w / s) . observation within a weight segment, so w = coefficient * s is N(0, 1)
    weights = []
    for i in range(0, 20 * interval, 100):
        c, residual = _exact_linear_fit(x[i : i + 100], y[i : i + 100])
        assert residual < 1e-3 * np.abs(y[i : i + 100]).max()
        weights.append(c * scales[i // interval])
    np.testing.assert_allclose(np.std(weights), 1.0, rtol=0.35)


def test_scaled_wrapper_scales_observations():
    inner = DriftingTargetStream(3)
    scales = make_scale_range(3, 0.1, 10.0)
    np.testing.assert_allclose(scales, [0.1, 1.0, 10.0], rtol=1e-5)
    np.testing.assert_allclose(make_scale_range(3, 1.0, 3.0, log_spaced=False), [1.0, 2.0, 3.0])
    key = jax.random.key(2)
    plain, _ = _chunk(inner, inner.init(key), 0, 100)
    stream = ScaledStreamWrapper(inner, scales)
    assert stream.feature_dim == 3
    scaled, _ = _chunk(stream, stream.init(key), 0, 100)
    np.testing.assert_allclose(scaled.observation, plain.observation * scales, rtol=1e-6)
    np.testing.assert_array_equal(scaled.target, plain.target)
    stream = ScaledStreamWrapper(inner, scales, target_scale=-3.0)
    scaled, _ = _chunk(stream, stream.init(key), 0, 100)
    np.testing.assert_allclose(scaled.target, -3.0 * plain.target, rtol=1e-6)


def test_feature_and_noise_statistics():
    stream = DriftingTargetStream(4, drift_rate=0.0, noise_std=0.3, feature_std=2.0)
    state = stream.init(jax.random.key(0))
    timesteps, _ = _chunks(stream, state, 50)
    x = np.asarray(timesteps.observation, np.float64)
    assert np.all(np.abs(x.mean(0)) < 0.15)
    np.testing.assert_allclose(x.var(0), 4.0, rtol=0.1)
    residual = timesteps.target - x @ np.asarray(state.weights, np.float64)
    assert abs(residual.mean()) < 0.03
    np.testing.assert_allclose(residual.std(), 0.3, rtol=0.1)


# --------------------------------------------------------------------------------------
# Bad parameters fail early, naming the argument.


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: DriftingTargetStream(0), "feature_dim"),
        (lambda: DriftingTargetStream(2.5), "feature_dim"),
        (lambda: DriftingTargetStream(True), "feature_dim"),
        (lambda: DriftingTargetStream(3, noise_std=-1.0), "noise_std"),
        (lambda: DriftingTargetStream(3, noise_std=float("nan")), "noise_std"),
        (lambda: DriftingTargetStream(3, drift_rate=-0.1), "drift_rate"),
        (lambda: DriftingTargetStream(3, feature_std=0.0), "feature_std"),
        (lambda: AbruptChangeStream(3, change_interval=0), "change_interval"),
        (lambda: AbruptChangeStream(3, noise_std=-0.1), "noise_std"),
        (lambda: SuttonExperiment1Stream(num_relevant=0), "num_relevant"),
        (lambda: SuttonExperiment1Stream(num_irrelevant=-1), "num_irrelevant"),
        (lambda: SuttonExperiment1Stream(change_interval=-1), "change_interval"),
        (lambda: CyclicStream(3, cycle_length=0), "cycle_length"),
        (lambda: CyclicStream(3, num_configurations=0), "num_configurations"),
        (lambda: PeriodicChangeStream(3, period=0), "period"),
        (lambda: PeriodicChangeStream(3, amplitude=-1.0), "amplitude"),
        (lambda: ScaledStreamWrapper(DriftingTargetStream(3), jnp.ones(4)), "feature_scales"),
        (lambda: ScaledStreamWrapper(DriftingTargetStream(3), jnp.ones((3, 1))), "feature_scales"),
        (lambda: make_scale_range(0), "feature_dim"),
        (lambda: make_scale_range(3, min_scale=0.0), "min_scale"),
        (lambda: DynamicScaleShiftStream(3, scale_change_interval=0), "scale_change_interval"),
        (lambda: DynamicScaleShiftStream(3, weight_change_interval=0), "weight_change_interval"),
        (lambda: DynamicScaleShiftStream(3, min_scale=0.0), "min_scale"),
        (lambda: DynamicScaleShiftStream(3, min_scale=10.0, max_scale=1.0), "min_scale"),
        (lambda: ScaleDriftStream(3, min_log_scale=5.0), "min_log_scale"),
        (lambda: ScaleDriftStream(3, scale_drift_rate=-1.0), "scale_drift_rate"),
        (lambda: ScaleDriftStream(3, noise_std=-1.0), "noise_std"),
    ],
)
def test_bad_parameters_name_the_argument(build, name):
    with pytest.raises((ValueError, TypeError), match=name):
        build()


@pytest.mark.slow
def test_wide_draws_are_standard_normal_and_per_step():
    """Wide float32 draws use both words of every threefry hash (`_wide_normals`):
    standard normal (a KS test against scipy's CDF), uncorrelated within and across
    steps, a function of the step key alone, and narrow draws stay
    `jax.random.normal`'s."""
    from scipy import stats

    from alberta_eqx.streams import step_keys

    keys = step_keys(jax.random.key(7), jnp.asarray(0), 400)
    z = np.asarray(normals(keys, 1001), np.float64)
    assert z.shape == (400, 1001)
    assert stats.kstest(z.ravel(), "norm").pvalue > 1e-3
    assert abs(z.mean()) < 0.01 and abs(z.std() - 1) < 0.01
    pairs = np.corrcoef(z[:, :500].ravel(), z[:, 500:1000].ravel())[0, 1]  # the paired words
    steps = np.corrcoef(z[:-1].ravel(), z[1:].ravel())[0, 1]
    assert abs(pairs) < 0.01 and abs(steps) < 0.01
    later = normals(step_keys(jax.random.key(7), jnp.asarray(5), 3), 1001)
    np.testing.assert_array_equal(later, z[5:8].astype(np.float32))
    narrow = normals(keys[:3], 21)
    np.testing.assert_array_equal(
        narrow, jax.vmap(lambda k: jax.random.normal(k, (21,)))(keys[:3])
    )


class _AR1Stream(AbstractSequentialStream):
    """A user's sequential stream: x_t = 0.9 x_{t-1} + N(0, I) from fold_in(key, t),
    target the sum of x_t; only `advance` is written, `chunk` is the default scan."""

    @property
    def feature_dim(self) -> int:
        return 2

    def init(self, key):
        return (key, jnp.zeros(2))

    def advance(self, state, t):
        key, x = state
        x = 0.9 * x + jax.random.normal(jax.random.fold_in(key, t), (2,))
        return TimeStep(x, jnp.sum(x)), (key, x)


def test_sequential_stream_default_chunk_equals_its_steps():
    stream = _AR1Stream()
    state = stream.init(jax.random.key(0))
    chunked, after = _chunk(stream, state, 5, 20)
    steps = []
    for t in range(5, 25):
        timestep, state = _step(stream, state, jnp.asarray(t))
        steps.append(timestep)
    # equal to float32 rounding: the scan's compiled steps may fuse `0.9 x + n`
    np.testing.assert_allclose(chunked.observation, [s.observation for s in steps], rtol=1e-5)
    np.testing.assert_allclose(chunked.target, [s.target for s in steps], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(after[1], state[1], rtol=1e-5)
    # and the runners take it, in blocks (the continuation from step 5 included)
    from alberta_eqx import LMS, LinearLearner, run_learning_loop

    run = run_learning_loop(
        LinearLearner(2, LMS(0.1)),
        stream,
        20,
        jax.random.key(0),
        block_size=7,
        stream_state=stream.init(jax.random.key(0)),
        start_step=5,
    )
    np.testing.assert_allclose(run.stream_state[1], state[1], rtol=1e-6)


@pytest.mark.parametrize(
    "build",
    [
        lambda: DriftingTargetStream(16384),
        lambda: AbruptChangeStream(32768),
        lambda: ScaleDriftStream(20000),
        # a step draws (hidden_size + 1)(n + 1) = 9 * 3642 = 32,778 normals: just over
        lambda: NonlinearTeacherStream(3641),
    ],
    ids=["random_walk_16384", "abrupt_32768", "scale_drift_20000", "teacher_3641"],
)
@pytest.mark.slow
def test_draws_wider_than_one_batch(build):
    """Issue 15, defect 1: a step whose draw is wider than `_DRAWS_PER_BATCH` normals
    (32,768) crashed with `max() arg is an empty sequence` in `per_step`. A chunk of
    such a stream now draws one step per iteration; its observations are still each
    step's own (those of `step`), and a run through the runner works."""
    from alberta_eqx import IDBD, LinearLearner, run_learning_loop

    stream = build()
    state = stream.init(jax.random.key(3))
    whole, _ = stream.chunk(state, jnp.asarray(5), 3)
    assert whole.observation.shape == (3, stream.feature_dim)
    assert np.isfinite(np.asarray(whole.observation)).all()
    assert np.isfinite(np.asarray(whole.target)).all()
    stepped = state
    for i in range(3):
        single, stepped = stream.step(stepped, jnp.asarray(5 + i))
        # bit for bit where the observation is the step's normals times parameters;
        # `ScaleDriftStream`'s log-scales are a scan, equal to float32 rounding
        np.testing.assert_allclose(single.observation, whole.observation[i], rtol=1e-5)
    assert not np.allclose(whole.observation[0], whole.observation[1])  # steps differ
    learner = LinearLearner(stream.feature_dim, IDBD(0.001, meta_step_size=0.001))
    result = run_learning_loop(learner, stream, 4, jax.random.key(0))
    assert result.metrics.squared_error.shape == (4,)
    assert np.isfinite(np.asarray(result.metrics.squared_error)).all()


def _stream_classes() -> list[type]:
    """Every stream class defined in `alberta_eqx.streams`'s modules."""
    import importlib
    import inspect
    import pkgutil

    import alberta_eqx.streams as package

    modules = [
        importlib.import_module(f"{package.__name__}.{info.name}")
        for info in pkgutil.iter_modules(package.__path__)
    ]
    return [
        cls
        for module in modules
        for _, cls in inspect.getmembers(module, inspect.isclass)
        if issubclass(cls, AbstractStream) and cls.__module__ == module.__name__
    ]


def test_streams_are_abstract_or_final():
    """Equinox's rule (issue 23, item 3): no concrete stream is subclassed, and no
    concrete method of a stream base class is overridden (`step` is written once,
    in `AbstractStream`)."""
    import inspect

    classes = _stream_classes()
    concrete = [cls for cls in classes if not inspect.isabstract(cls)]
    assert {"DriftingTargetStream", "RandomWalkChainStream", "BairdStream"} <= {
        cls.__name__ for cls in concrete
    }
    for cls in concrete:
        subclasses = [other.__name__ for other in classes if cls in other.__mro__[1:]]
        assert not subclasses, f"{cls.__name__} is concrete and subclassed by {subclasses}"
        assert cls.step is AbstractStream.step, cls.__name__
    for cls in classes:
        for name, method in vars(cls).items():
            if not inspect.isfunction(method) or name.startswith("__"):
                continue
            for base in cls.__mro__[1:]:
                inherited = vars(base).get(name)
                overridden = inspect.isfunction(inherited) and not getattr(
                    inherited, "__isabstractmethod__", False
                )
                assert not overridden, f"{cls.__name__}.{name} overrides {base.__name__}'s"


@pytest.mark.slow
def test_a_stream_must_declare_its_feature_dim():
    """`feature_dim` is an `AbstractVar` of `AbstractStream`: a stream without it
    cannot be built, one with it as a field or a property can."""

    class NoWidth(AbstractStream):
        def init(self, key):
            return key

        def chunk(self, state, t0, num_steps):
            return TimeStep(jnp.zeros((num_steps, 1)), jnp.zeros(num_steps)), state

    with pytest.raises(TypeError, match="feature_dim"):
        NoWidth()

    class Field(NoWidth):
        feature_dim: int = eqx.field(static=True, default=1)

    class Property(NoWidth):
        @property
        def feature_dim(self) -> int:
            return 1

    assert Field().feature_dim == Property().feature_dim == 1
