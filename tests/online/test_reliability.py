"""Regression tests for the defects of issue 15 in the core library: each failed
before its fix (long metrics windows, the step counter near 2**31, hyperparameters
that overflow their dtype, a stream's `chunk` trusted blindly, zero keys, non-float
learner dtypes, and `find_divergence`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jaxtyping import Array, Float

# Private on purpose: these tests shrink the block budget (`_BLOCK_BUDGET`) and read
# the plan it gives (`_make_plan`), which have no public API (`block_steps` gives only
# the block length).
import alberta_eqx.runners._plan as runners
from alberta_eqx import (
    IDBD,
    LMS,
    AbstractOptimizer,
    AbstractSequentialStream,
    AbstractStream,
    Autostep,
    DriftingTargetStream,
    LinearLearner,
    StepSizeTrackingConfig,
    TDLinearLearner,
    TimeStep,
    _checks,
    find_divergence,
    run_learning_loop,
    run_learning_loop_batched,
)
from alberta_eqx.streams import step_keys

# --- defect 5: memory does not grow with the metrics window -----------------------


def test_a_window_longer_than_a_block_keeps_blocks_within_budget(monkeypatch):
    """A window of 10**7 steps used to make the block 10**7 steps (4.4 GB); the
    plan's block now depends on the budget only."""
    learner, stream = LinearLearner(10, IDBD()), DriftingTargetStream(10)
    plan = runners._make_plan(learner, stream, 10**9, None, None, 10**7, 30)
    assert plan.block * 30 * 11 <= runners._BLOCK_BUDGET
    assert plan.window_spans_blocks


@pytest.mark.slow
def test_a_window_spanning_blocks_averages_every_step(monkeypatch):
    """With blocks of 70 steps (so windows of 175 span blocks and end mid-block),
    the windowed means equal the means of a per-step run. 1400 steps are whole
    blocks of 70 and of 40 (below): a tail block would compile a second copy."""
    learner, stream = LinearLearner(3, Autostep(0.05)), DriftingTargetStream(3)
    key = jax.random.key(1)
    per_step = run_learning_loop(learner, stream, 1400, key, block_size=70)
    windowed = run_learning_loop(learner, stream, 1400, key, metrics_window=175, block_size=70)
    assert windowed.metrics.squared_error.shape == (8,)
    for field in ("squared_error", "error", "mean_step_size"):
        expected = np.asarray(getattr(per_step.metrics, field), np.float64).reshape(8, 175)
        np.testing.assert_allclose(getattr(windowed.metrics, field), expected.mean(1), rtol=1e-5)
    np.testing.assert_allclose(windowed.learner.weights, per_step.learner.weights, rtol=1e-6)
    # by default too: a budget that fits 40 steps of 3 features makes 175 span blocks
    monkeypatch.setattr(runners, "_BLOCK_BUDGET", 40 * 4)
    plan = runners._make_plan(learner, stream, 1400, None, None, 175, 1)
    assert plan.block <= 40 and plan.window_spans_blocks
    default = run_learning_loop(learner, stream, 1400, key, metrics_window=175)
    np.testing.assert_allclose(
        default.metrics.squared_error, windowed.metrics.squared_error, rtol=1e-4
    )


@pytest.mark.slow
def test_a_window_spanning_blocks_with_tracking_and_batches():
    learner, stream = LinearLearner(3, IDBD(0.05, meta_step_size=0.01)), DriftingTargetStream(3)
    keys = jax.random.split(jax.random.key(2), 2)
    tracking = StepSizeTrackingConfig(50)
    per_step = run_learning_loop_batched(
        learner, stream, 600, keys, step_size_tracking=tracking, block_size=100
    )
    windowed = run_learning_loop_batched(
        learner,
        stream,
        600,
        keys,
        step_size_tracking=tracking,
        metrics_window=300,
        block_size=100,
    )
    expected = np.asarray(per_step.metrics.error, np.float64).reshape(2, 2, 300).mean(-1)
    np.testing.assert_allclose(windowed.metrics.error, expected, rtol=1e-4, atol=1e-6)
    np.testing.assert_array_equal(
        windowed.step_size_history.step_sizes, per_step.step_size_history.step_sizes
    )
    with pytest.raises(ValueError, match="metrics_window"):
        run_learning_loop(
            learner,
            stream,
            600,
            keys[0],
            step_size_tracking=StepSizeTrackingConfig(7),
            metrics_window=300,
            block_size=70,
        )


def test_a_run_of_long_windows_continues_bit_identically():
    learner, stream = LinearLearner(3, Autostep(0.05)), DriftingTargetStream(3)
    key = jax.random.key(3)
    options = {"metrics_window": 250, "block_size": 70}
    whole = run_learning_loop(learner, stream, 1000, key, **options)
    first = run_learning_loop(learner, stream, 500, key, **options)
    second = run_learning_loop(
        first.learner,
        stream,
        500,
        key,
        stream_state=first.stream_state,
        start_step=500,
        **options,
    )
    np.testing.assert_array_equal(second.learner.weights, whole.learner.weights)
    np.testing.assert_array_equal(
        np.concatenate([first.metrics.squared_error, second.metrics.squared_error]),
        whole.metrics.squared_error,
    )


# --- defect 6: the step counter near 2**31 ---------------------------------------


class _StepRecorder(AbstractSequentialStream):
    """Records the smallest and largest step index it was asked for, and whether
    every step followed the one before."""

    @property
    def feature_dim(self) -> int:
        return 1

    def init(self, key):
        return (jnp.asarray(2**31 - 1), jnp.asarray(-1), jnp.asarray(True))

    def advance(self, state, t):
        low, high, consecutive = state
        consecutive = consecutive & ((high < 0) | (t == high + 1))
        new = (jnp.minimum(low, t), jnp.maximum(high, t), consecutive)
        return TimeStep(jnp.ones(1), jnp.asarray(1.0)), new


def test_a_run_ending_at_the_last_int32_step_sees_non_negative_steps():
    start = 2**31 - 100
    result = run_learning_loop(
        LinearLearner(1), _StepRecorder(), 100, jax.random.key(0), start_step=start
    )
    low, high, consecutive = result.stream_state
    assert int(low) == start and int(high) == 2**31 - 1 and bool(consecutive)
    keys = step_keys(jax.random.key(0), jnp.asarray(start), 100)
    data = np.asarray(jax.random.key_data(keys))
    assert len({tuple(row) for row in data}) == 100


@pytest.mark.parametrize(("start", "num_steps"), [(2**31 - 100, 200), (2**31, 10), (2**40, 10)])
def test_a_run_past_the_int32_range_is_refused_naming_start_step(start, num_steps):
    with pytest.raises(ValueError, match="start_step"):
        run_learning_loop(
            LinearLearner(1), _StepRecorder(), num_steps, jax.random.key(0), start_step=start
        )


def test_start_step_accepts_numpy_integers():
    learner, stream, key = LinearLearner(3), DriftingTargetStream(3), jax.random.key(0)
    first = run_learning_loop(learner, stream, 10, key)
    a = run_learning_loop(
        first.learner, stream, 10, key, stream_state=first.stream_state, start_step=10
    )
    b = run_learning_loop(
        first.learner, stream, 10, key, stream_state=first.stream_state, start_step=np.int64(10)
    )
    np.testing.assert_array_equal(a.metrics.error, b.metrics.error)


# --- defect 7: hyperparameters checked in their dtype; find_divergence ------------


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: LMS(1e39), "step_size"),
        (lambda: Autostep(tau=1e39), "tau"),
        (lambda: IDBD(meta_step_size=1e39), "meta_step_size"),
        (lambda: LinearLearner(3, LMS(1e5), dtype=jnp.float16), "step_size"),
    ],
)
def test_a_hyperparameter_that_overflows_its_dtype_is_refused(build, name):
    with pytest.raises(ValueError, match=rf"^{name} must be finite in float"):
        build()


def test_find_divergence_ignores_hyperparameters():
    """An infinite tau (possible in a grid built under vmap, where values are not
    checked) does not make a finite run "diverged"."""
    learners = eqx.filter_vmap(lambda tau: LinearLearner(3, Autostep(0.05, tau=tau)))(
        jnp.array([1e4, jnp.inf])
    )
    result = run_learning_loop_batched(
        learners, DriftingTargetStream(3), 200, jax.random.split(jax.random.key(0), 2)
    )
    assert np.all(np.isfinite(result.metrics.squared_error))
    report = find_divergence(result)
    np.testing.assert_array_equal(report.diverged, np.zeros((2, 2), bool))
    np.testing.assert_array_equal(report.first_step, -np.ones((2, 2)))
    assert report.summary() == "none of 4 runs diverged"


class _AbstractAltered(AbstractStream):
    """A drifting target whose chunks a subclass alters (it wraps the stream rather
    than subclassing the concrete class)."""

    inner: eqx.AbstractVar[DriftingTargetStream]

    @property
    def feature_dim(self) -> int:
        return self.inner.feature_dim

    def init(self, key):
        return self.inner.init(key)


class _PoisonStream(_AbstractAltered):
    """A drifting target whose observation at step `bad` is NaN in one feature."""

    inner: DriftingTargetStream
    bad: int = eqx.field(static=True, default=57)

    def chunk(self, state, t0, num_steps):
        timesteps, state = self.inner.chunk(state, t0, num_steps)
        ts = t0 + jnp.arange(num_steps)
        poison = jnp.where(ts == self.bad, jnp.nan, 0.0)
        obs = timesteps.observation.at[:, 0].add(poison)
        return timesteps._replace(observation=obs), state


def test_find_divergence_names_the_first_bad_step_whatever_the_window():
    learner, stream, key = (
        LinearLearner(3, IDBD()),
        _PoisonStream(DriftingTargetStream(3)),
        jax.random.key(0),
    )
    for window in (1, 10, 100):
        result = run_learning_loop(learner, stream, 200, key, metrics_window=window)
        report = find_divergence(result)
        assert bool(report.diverged) and int(report.first_step) == 57
    assert report.summary() == "diverged: first non-finite at step 57"


class _GrowingLMS(AbstractOptimizer):
    """A user's optimizer: LMS, plus a state `scale` that grows tenfold per step
    and which the updates never read: it overflows float32 after step 38
    (10**39 > 3.4e38) while the metrics stay finite."""

    step_size: Float[Array, ""] = _checks.hyperparameter()
    scale: Float[Array, ""]

    def __init__(self, step_size=0.05):
        self.step_size = _checks.positive("step_size", step_size)
        self.scale = jnp.ones(())

    def init(self, params):
        return _checks.cast_floating(self, params[0].dtype)

    def step(self, gradient, curvature, **rest):
        updates = jax.tree.map(lambda g: -self.step_size * g, gradient)
        return updates, eqx.tree_at(lambda o: o.scale, self, self.scale * 10)

    def step_sizes(self, params):
        return jax.tree.map(lambda p: jnp.full_like(p, self.step_size), params)

    @property
    def step_size_normalizer(self):
        return None


def test_find_divergence_sees_a_state_that_is_not_in_the_metrics():
    """Only the optimizer's state becomes non-finite (after step 38): the old report
    said "diverged" with step -1; now the end of the block where it happened."""
    learner = LinearLearner(3, _GrowingLMS())
    result = run_learning_loop(learner, DriftingTargetStream(3), 50, jax.random.key(0))
    assert np.all(np.isfinite(result.metrics.squared_error))
    report = find_divergence(result)  # found at the end of its block (one of 50)
    assert bool(report.diverged) and int(report.first_step) == 49
    for block_size, step in ((20, 39), (1, 38)):
        result = run_learning_loop(
            learner, DriftingTargetStream(3), 50, jax.random.key(0), block_size=block_size
        )
        assert int(find_divergence(result).first_step) == step


def test_find_divergence_over_segments_and_summary():
    stream, key = _PoisonStream(DriftingTargetStream(3)), jax.random.key(0)
    keys = jax.random.split(key, 3)
    learners = eqx.filter_vmap(lambda a: LinearLearner(3, LMS(a)))(jnp.array([0.01, 0.02]))
    first = run_learning_loop_batched(learners, DriftingTargetStream(3), 40, keys)
    second = run_learning_loop_batched(
        first.learner, stream, 60, keys, stream_states=first.stream_state, start_step=40
    )
    third = run_learning_loop_batched(
        second.learner, stream, 60, keys, stream_states=second.stream_state, start_step=100
    )
    assert np.all(find_divergence(third).first_step == 100)  # poisoned on entry
    report = find_divergence([first, second, third])
    np.testing.assert_array_equal(report.first_step, np.full((2, 3), 57))
    assert report.summary().startswith("6 of 6 runs diverged: run (0, 0) at step 57, ")


# --- defect 9: a stream's chunk is checked at trace time --------------------------


class _BadChunk(_AbstractAltered):
    inner: DriftingTargetStream
    mode: str = eqx.field(static=True, default="short")

    def chunk(self, state, t0, num_steps):
        timesteps, state = self.inner.chunk(state, t0, num_steps)
        if self.mode == "short":
            return jax.tree.map(lambda a: a[:1], timesteps), state
        if self.mode == "double":
            return jax.tree.map(lambda a: jnp.concatenate([a, a]), timesteps), state
        if self.mode == "tuple":
            return tuple(timesteps), state
        if self.mode == "dict":
            return timesteps._asdict(), state
        return timesteps

    def __init__(self, mode):
        self.inner = DriftingTargetStream(3)
        self.mode = mode


@pytest.mark.parametrize(
    ("mode", "error", "match"),
    [
        ("short", ValueError, r"_BadChunk\.chunk must return observation of shape \(10, 3\)"),
        ("double", ValueError, r"_BadChunk\.chunk must return observation of shape \(10, 3\)"),
        ("tuple", TypeError, r"_BadChunk\.chunk must return TimeStep timesteps"),
        ("dict", TypeError, r"_BadChunk\.chunk must return TimeStep timesteps"),
        ("pair", TypeError, r"_BadChunk\.chunk must return a pair"),
    ],
)
def test_a_stream_returning_the_wrong_chunk_is_refused(mode, error, match):
    with pytest.raises(error, match=match):
        run_learning_loop(LinearLearner(3), _BadChunk(mode), 10, jax.random.key(0))


def test_a_td_learner_on_a_supervised_stream_is_refused():
    with pytest.raises(TypeError, match="must return TDTimeStep timesteps for TDLinearLearner"):
        run_learning_loop(TDLinearLearner(3), DriftingTargetStream(3), 10, jax.random.key(0))


# --- defect 10, 12 -------------------------------------------------------------------


def test_zero_keys_are_refused_naming_keys():
    with pytest.raises(ValueError, match=r"^keys must hold at least one key"):
        run_learning_loop_batched(
            LinearLearner(3), DriftingTargetStream(3), 10, jax.random.split(jax.random.key(0), 0)
        )


@pytest.mark.parametrize("dtype", [jnp.int32, jnp.complex64, jnp.uint8, bool])
def test_learners_refuse_non_float_dtypes(dtype):
    with pytest.raises(TypeError, match=r"^dtype must be a real floating-point dtype"):
        LinearLearner(3, dtype=dtype)
    with pytest.raises(TypeError, match=r"^dtype must be a real floating-point dtype"):
        TDLinearLearner(3, dtype=dtype)


def test_an_int64_observation_is_reported_as_int64():
    """Called directly: with the jaxtyping hook, `update`'s annotation refuses an
    integer `x` first (tests/project/test_validation.py checks the message without it)."""
    with pytest.raises(TypeError, match=r"got dtype int64$"):
        _checks.features(np.ones(3, np.int64), 3, jnp.float32)
    with pytest.raises(TypeError, match=r"got dtype complex128$"):
        _checks.scalar_target(np.complex128(1j), jnp.float32)
