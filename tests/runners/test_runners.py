"""The runners: equal to a plain Python loop, batched = single, grid = each alone,
tracking and windows record the right things, no retracing, clear errors."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

# Private on purpose: these tests shrink the block budget (`_BLOCK_BUDGET`) and read
# the plan it gives (`_make_plan`), which have no public API (`block_steps` gives only
# the block length).
import alberta_eqx.runners._plan as runners
from alberta_eqx import (
    IDBD,
    LMS,
    Autostep,
    DriftingTargetStream,
    EMANormalizer,
    LinearLearner,
    NormalizerTrackingConfig,
    StepSizeTrackingConfig,
    SuttonExperiment1Stream,
    metrics_to_dicts,
    run_learning_loop,
    run_learning_loop_batched,
)
from tests._doubles import AbstractWrappedLearner


def _close(actual, desired):
    """Equal up to float32 rounding: differently shaped compiled loops (blocks, units,
    vmap) may fuse and round differently, so runs agree to ~1e-6, not bit for bit."""
    np.testing.assert_allclose(actual, desired, rtol=1e-4, atol=1e-5)


# Compiling a run costs far more than running it, so most tests run these learners on
# this stream for this many steps: their runs share compiled programs (a program per
# optimizer, batch and tracking structure; hyperparameter values are traced).
_STREAM = DriftingTargetStream(feature_dim=4)
_STEPS = 300
_OPTIMIZERS = {
    "LMS": LMS(0.02),
    "IDBD": IDBD(0.05, meta_step_size=0.01),
    "Autostep": Autostep(0.01),
}
_KEY = jax.random.key(3)

# One step and one update per call, jitted at module level so that every case (and
# every step of a case) shares the compiled programs of its structure.
_step = eqx.filter_jit(lambda stream, state, t: stream.step(state, t))
_update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))


def _python_loop(learner, stream, num_steps, key):
    """The definition of a run: step the stream, update the learner, one at a time.
    Returns the learner after each update (`learners[t]` has learned `t + 1` steps),
    the errors and the step-sizes."""
    state = stream.init(key)
    learners, errors, alphas = [], [], []
    for t in range(num_steps):
        timestep, state = _step(stream, state, jnp.asarray(t))
        learner, result = _update(learner, timestep.observation, timestep.target)
        learners.append(learner)
        errors.append(float(result.error))
        alphas.append(np.asarray(learner.step_sizes))
    return learners, np.array(errors), np.array(alphas)


@pytest.fixture(scope="module")
def python_loop():
    """`_python_loop` of `LinearLearner(4, _OPTIMIZERS[name])` on `_STREAM` from
    `_KEY` for `_STEPS` steps, run once per optimizer for the whole module."""
    loops = {}

    def loop(name):
        if name not in loops:
            learner = LinearLearner(4, _OPTIMIZERS[name])
            loops[name] = _python_loop(learner, _STREAM, _STEPS, _KEY)
        return loops[name]

    return loop


@pytest.mark.parametrize("name", list(_OPTIMIZERS))
def test_run_equals_python_loop(name, python_loop):
    learner = LinearLearner(4, _OPTIMIZERS[name])
    result = run_learning_loop(learner, _STREAM, _STEPS, _KEY)
    learners, errors, _ = python_loop(name)
    _close(result.metrics.error, errors)
    np.testing.assert_allclose(result.metrics.squared_error, errors**2, rtol=1e-3, atol=1e-6)
    _close(result.learner.weights, learners[-1].weights)
    assert result.step_size_history is None and result.normalizer_history is None
    assert result.metrics.normalizer_mean_var is None


def test_block_size_does_not_change_results(monkeypatch):
    """Small blocks (with a tail block) give the numbers of one big block, to float
    rounding: XLA's vectorised generation may round differently for arrays of another
    length, so equality is to ~1e-6, not bitwise."""
    learner = LinearLearner(4, IDBD(0.05, meta_step_size=0.01))
    key = jax.random.key(0)
    big = run_learning_loop(learner, _STREAM, _STEPS, key)
    assert runners._make_plan(learner, _STREAM, _STEPS, None, None, 1, 1).block == _STEPS
    # room for 150 steps of 5 floats: blocks of 125 (divide 10,000) + a tail of 50
    monkeypatch.setattr(runners, "_BLOCK_BUDGET", 5 * 150)
    plan = runners._make_plan(learner, _STREAM, _STEPS, None, None, 1, 1)
    assert plan.block == 125
    small = run_learning_loop(learner, _STREAM, _STEPS, key)
    _close(big.metrics.error, small.metrics.error)
    _close(big.learner.weights, small.learner.weights)


def test_batched_seed_equals_single_run():
    learner = LinearLearner(4, Autostep(0.02))
    keys = jax.random.split(jax.random.key(1), 5)
    batched = run_learning_loop_batched(learner, _STREAM, _STEPS, keys)
    assert batched.metrics.error.shape == (5, _STEPS)
    assert batched.learner.weights.shape == (5, 4)
    errors, weights = np.asarray(batched.metrics.error), np.asarray(batched.learner.weights)
    for i in (0, 3):
        single = run_learning_loop(learner, _STREAM, _STEPS, keys[i])
        _close(errors[i], single.metrics.error)
        _close(weights[i], single.learner.weights)


def test_grid_cell_equals_configuration_alone():
    thetas = jnp.array([0.0, 0.005, 0.02])
    # built in one compiled program rather than op by op
    learners = eqx.filter_jit(
        eqx.filter_vmap(lambda th: LinearLearner(4, IDBD(0.05, meta_step_size=th)))
    )(thetas)
    keys = jax.random.split(jax.random.key(2), 3)
    grid = run_learning_loop_batched(learners, _STREAM, _STEPS, keys)
    assert grid.metrics.error.shape == (3, 3, _STEPS)
    assert grid.learner.weights.shape == (3, 3, 4)
    errors = np.asarray(grid.metrics.error)
    for c, theta in enumerate([0.0, 0.005, 0.02]):
        for s in range(3):
            alone = run_learning_loop(
                LinearLearner(4, IDBD(0.05, meta_step_size=theta)), _STREAM, _STEPS, keys[s]
            )
            _close(errors[c, s], alone.metrics.error)


def test_step_size_tracking_records_the_learner_every_interval(python_loop):
    """Every 120 steps of 300: two recordings, then a tail of 60 steps that the
    block learns after its last whole unit."""
    learner = LinearLearner(4, _OPTIMIZERS["Autostep"])
    tracked = run_learning_loop(
        learner, _STREAM, _STEPS, _KEY, step_size_tracking=StepSizeTrackingConfig(interval=120)
    )
    plain = run_learning_loop(learner, _STREAM, _STEPS, _KEY)
    _close(tracked.metrics.error, plain.metrics.error)
    history = tracked.step_size_history
    np.testing.assert_array_equal(history.recording_indices, [119, 239])
    assert history.step_sizes.shape == (2, 4)
    assert history.bias_step_sizes.shape == (2,)
    assert history.step_size_normalizers.shape == (2, 4)  # Autostep's v
    # the 2nd recording is the learner after 240 updates
    after_240 = python_loop("Autostep")[0][239]
    _close(history.step_sizes[1], after_240.step_sizes)
    _close(history.bias_step_sizes[1], after_240.bias_step_size)
    _close(history.step_size_normalizers[1], after_240.optimizer.step_size_normalizer[0])


@pytest.fixture(scope="module")
def tracked_with_normalizer():
    """LMS with a normalizer, step-sizes tracked every 20 steps and the normalizer
    every 30 (shared by the trackers' and `metrics_to_dicts`' tests)."""
    learner = LinearLearner(4, LMS(0.1), normalizer=EMANormalizer())
    return run_learning_loop(
        learner,
        _STREAM,
        120,
        jax.random.key(0),
        step_size_tracking=StepSizeTrackingConfig(interval=20, include_bias=False),
        normalizer_tracking=NormalizerTrackingConfig(interval=30),
    )


def test_two_trackers_with_different_intervals(tracked_with_normalizer):
    result = tracked_with_normalizer
    ss, norm = result.step_size_history, result.normalizer_history
    np.testing.assert_array_equal(ss.recording_indices, np.arange(1, 7) * 20 - 1)
    np.testing.assert_array_equal(norm.recording_indices, np.arange(1, 5) * 30 - 1)
    assert ss.bias_step_sizes is None and ss.step_size_normalizers is None
    np.testing.assert_allclose(norm.means[-1], result.learner.normalizer.mean, rtol=1e-6)
    np.testing.assert_allclose(norm.variances[-1], result.learner.normalizer.var, rtol=1e-6)
    assert result.metrics.normalizer_mean_var.shape == (120,)


def test_metrics_window_averages():
    learner = LinearLearner(4, IDBD())
    key = jax.random.key(5)
    per_step = run_learning_loop(learner, _STREAM, _STEPS, key).metrics
    windowed = run_learning_loop(learner, _STREAM, _STEPS, key, metrics_window=50).metrics
    assert windowed.squared_error.shape == (6,)
    np.testing.assert_allclose(
        windowed.squared_error, per_step.squared_error.reshape(6, 50).mean(1), rtol=1e-5
    )
    with pytest.raises(ValueError, match="metrics_window"):
        run_learning_loop(learner, _STREAM, _STEPS + 1, key, metrics_window=50)


class _CountingLearner(AbstractWrappedLearner):
    """Counts how often `update` is traced (a Python side effect runs only while tracing)."""

    inner: LinearLearner

    def update(self, x, y):
        _CountingLearner.traces += 1
        inner, result = self.inner.update(x, y)
        return self._with(inner), result


def test_second_call_does_not_trace_again():
    _CountingLearner.traces = 0
    keys = jax.random.split(jax.random.key(0), 4)
    run_learning_loop_batched(
        _CountingLearner(LinearLearner(4, IDBD(0.01, meta_step_size=0.01))), _STREAM, 100, keys
    )
    after_first = _CountingLearner.traces
    assert after_first > 0
    # other hyperparameter values and other keys: same structure, no new trace
    run_learning_loop_batched(
        _CountingLearner(LinearLearner(4, IDBD(0.02, meta_step_size=0.05))),
        _STREAM,
        100,
        jax.random.split(jax.random.key(1), 4),
    )
    assert _CountingLearner.traces == after_first
    run_learning_loop(
        _CountingLearner(LinearLearner(4, IDBD(0.01, meta_step_size=0.01))), _STREAM, 100, keys[0]
    )
    after_single = _CountingLearner.traces
    run_learning_loop(
        _CountingLearner(LinearLearner(4, IDBD(0.03, meta_step_size=0.01))), _STREAM, 100, keys[1]
    )
    assert _CountingLearner.traces == after_single


def test_metrics_to_dicts(tracked_with_normalizer):
    result = tracked_with_normalizer
    rows = metrics_to_dicts(result.metrics)
    assert len(rows) == 120
    assert set(rows[0]) == {"squared_error", "error", "mean_step_size", "normalizer_mean_var"}
    assert rows[2]["error"] == pytest.approx(float(result.metrics.error[2]))
    assert rows[0]["mean_step_size"] == pytest.approx(0.1)


def test_uint32_keys_are_accepted():
    learner = LinearLearner(4)
    a = run_learning_loop(learner, _STREAM, _STEPS, jax.random.PRNGKey(7))
    b = run_learning_loop(
        learner, _STREAM, _STEPS, jax.random.wrap_key_data(jax.random.PRNGKey(7))
    )
    np.testing.assert_array_equal(a.metrics.error, b.metrics.error)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"num_steps": 0}, ValueError, "num_steps"),
        ({"num_steps": -5}, ValueError, "num_steps"),
        ({"step_size_tracking": StepSizeTrackingConfig(0)}, ValueError, "interval"),
        ({"step_size_tracking": StepSizeTrackingConfig(101)}, ValueError, "interval"),
        ({"normalizer_tracking": NormalizerTrackingConfig(10)}, ValueError, "no normalizer"),
        ({"key": jnp.zeros(3)}, TypeError, "key"),
        ({"key": jax.random.split(jax.random.key(0), 2)}, ValueError, "single key"),
        ({"stream": DriftingTargetStream(4)}, ValueError, "feature_dim"),
    ],
)
def test_bad_arguments(kwargs, error, match):
    args = {
        "learner": LinearLearner(3),
        "stream": DriftingTargetStream(3),
        "num_steps": 100,
        "key": jax.random.key(0),
    } | kwargs
    with pytest.raises(error, match=match):
        run_learning_loop(**args)


@pytest.mark.slow
def test_a_run_in_segments_equals_one_run():
    """Continuing from a result's learner and stream state learns from the same
    examples as one long run (what progress reporting and checkpoints rely on)."""
    learner = LinearLearner(4, Autostep(0.02))
    key = jax.random.key(8)
    # the tracking of `test_step_size_tracking_records_the_learner_every_interval`:
    # its program (the same learner, stream, length and tracking) runs both halves
    tracking = StepSizeTrackingConfig(120)
    whole = run_learning_loop(learner, _STREAM, 2 * _STEPS, key, step_size_tracking=tracking)
    first = run_learning_loop(learner, _STREAM, _STEPS, key, step_size_tracking=tracking)
    second = run_learning_loop(
        first.learner,
        _STREAM,
        _STEPS,
        key,
        step_size_tracking=tracking,
        stream_state=first.stream_state,
        start_step=_STEPS,
    )
    _close(np.concatenate([first.metrics.error, second.metrics.error]), whole.metrics.error)
    _close(second.learner.weights, whole.learner.weights)
    np.testing.assert_array_equal(second.step_size_history.recording_indices, [419, 539])
    # 5 seeds and two halves of 300 steps: the program that
    # `test_batched_seed_equals_single_run` compiles (the same learner, stream and
    # batch) runs the first half
    keys = jax.random.split(key, 5)
    batched = run_learning_loop_batched(learner, _STREAM, 2 * _STEPS, keys)
    part = run_learning_loop_batched(learner, _STREAM, _STEPS, keys)
    rest = run_learning_loop_batched(
        part.learner, _STREAM, _STEPS, keys, stream_states=part.stream_state, start_step=_STEPS
    )
    _close(rest.metrics.error, batched.metrics.error[:, _STEPS:])


def test_divergence_is_reported_per_run():
    """IDBD with a large meta step-size diverges on the Sutton task (within its first
    dozen steps); a small one does not. The report names the configurations and the
    first bad step."""
    from alberta_eqx import find_divergence

    stream = SuttonExperiment1Stream()
    thetas = jnp.array([0.005, 0.5])
    learners = eqx.filter_jit(
        eqx.filter_vmap(
            lambda th: LinearLearner(20, IDBD(0.05, meta_step_size=th), use_bias=False)
        )
    )(thetas)
    # 500 steps: one block (a longer run adds a tail block, compiled separately)
    result = run_learning_loop_batched(
        learners, stream, 500, jax.random.split(jax.random.key(0), 2)
    )
    report = find_divergence(result)
    np.testing.assert_array_equal(report.diverged, [[False, False], [True, True]])
    np.testing.assert_array_equal(report.first_step[0], [-1, -1])
    metrics = np.stack([result.metrics.squared_error, result.metrics.error])
    for s in range(2):
        first = int(report.first_step[1, s])
        assert first > 0
        assert np.all(np.isfinite(metrics[:, 1, s, :first]))
        assert not np.all(np.isfinite(metrics[:, 1, s, first]))
    windowed = run_learning_loop_batched(
        learners, stream, 500, jax.random.split(jax.random.key(0), 2), metrics_window=100
    )
    # the step is exact whatever the window
    coarse = find_divergence(windowed)
    np.testing.assert_array_equal(coarse.diverged, report.diverged)
    np.testing.assert_array_equal(coarse.first_step, report.first_step)
