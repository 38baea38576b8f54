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


# One step and one update per call, jitted at module level so that every case (and
# every step of a case) shares the compiled programs of its structure.
_step = eqx.filter_jit(lambda stream, state, t: stream.step(state, t))
_update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))


def _python_loop(learner, stream, num_steps, key):
    """The definition of a run: step the stream, update the learner, one at a time."""
    state = stream.init(key)
    errors, alphas = [], []
    for t in range(num_steps):
        timestep, state = _step(stream, state, jnp.asarray(t))
        learner, result = _update(learner, timestep.observation, timestep.target)
        errors.append(float(result.error))
        alphas.append(np.asarray(learner.step_sizes))
    return learner, np.array(errors), np.array(alphas)


@pytest.mark.parametrize("optimizer", [LMS(0.02), IDBD(0.05, meta_step_size=0.01), Autostep(0.01)])
def test_run_equals_python_loop(optimizer):
    stream = DriftingTargetStream(feature_dim=5)
    learner = LinearLearner(5, optimizer)
    key = jax.random.key(3)
    result = run_learning_loop(learner, stream, 200, key)
    final, errors, _ = _python_loop(learner, stream, 200, key)
    _close(result.metrics.error, errors)
    np.testing.assert_allclose(result.metrics.squared_error, errors**2, rtol=1e-3, atol=1e-6)
    _close(result.learner.weights, final.weights)
    assert result.step_size_history is None and result.normalizer_history is None
    assert result.metrics.normalizer_mean_var is None


def test_block_size_does_not_change_results(monkeypatch):
    """Small blocks (with a tail block) give the numbers of one big block, to float
    rounding: XLA's vectorised generation may round differently for arrays of another
    length, so equality is to ~1e-6, not bitwise."""
    stream = SuttonExperiment1Stream()
    learner = LinearLearner(20, IDBD(0.05, meta_step_size=0.01))
    key = jax.random.key(0)
    big = run_learning_loop(learner, stream, 1030, key)
    # room for 70 steps: blocks of 50 (divide 10,000) + a tail of 30
    monkeypatch.setattr(runners, "_BLOCK_BUDGET", 21 * 70)
    plan = runners._make_plan(learner, stream, 1030, None, None, 1, 1)
    assert plan.block == 50
    small = run_learning_loop(learner, stream, 1030, key)
    _close(big.metrics.error, small.metrics.error)
    _close(big.learner.weights, small.learner.weights)


def test_batched_seed_equals_single_run():
    stream = DriftingTargetStream(feature_dim=4)
    learner = LinearLearner(4, Autostep(0.02))
    keys = jax.random.split(jax.random.key(1), 5)
    batched = run_learning_loop_batched(learner, stream, 300, keys)
    assert batched.metrics.error.shape == (5, 300)
    assert batched.learner.weights.shape == (5, 4)
    for i in (0, 3):
        single = run_learning_loop(learner, stream, 300, keys[i])
        _close(batched.metrics.error[i], single.metrics.error)
        _close(batched.learner.weights[i], single.learner.weights)


def test_grid_cell_equals_configuration_alone():
    stream = SuttonExperiment1Stream()
    thetas = jnp.array([0.0, 0.005, 0.02])
    learners = eqx.filter_vmap(
        lambda th: LinearLearner(20, IDBD(0.05, meta_step_size=th), use_bias=False)
    )(thetas)
    keys = jax.random.split(jax.random.key(2), 3)
    grid = run_learning_loop_batched(learners, stream, 400, keys)
    assert grid.metrics.error.shape == (3, 3, 400)
    assert grid.learner.weights.shape == (3, 3, 20)
    for c, theta in enumerate([0.0, 0.005, 0.02]):
        for s in range(3):
            alone = run_learning_loop(
                LinearLearner(20, IDBD(0.05, meta_step_size=theta), use_bias=False),
                stream,
                400,
                keys[s],
            )
            _close(grid.metrics.error[c, s], alone.metrics.error)


def test_step_size_tracking_records_the_learner_every_interval():
    stream = SuttonExperiment1Stream()
    learner = LinearLearner(20, Autostep(0.01))
    key = jax.random.key(4)
    tracked = run_learning_loop(
        learner, stream, 1000, key, step_size_tracking=StepSizeTrackingConfig(interval=300)
    )
    plain = run_learning_loop(learner, stream, 1000, key)
    _close(tracked.metrics.error, plain.metrics.error)
    history = tracked.step_size_history
    np.testing.assert_array_equal(history.recording_indices, [299, 599, 899])
    assert history.step_sizes.shape == (3, 20)
    assert history.bias_step_sizes.shape == (3,)
    assert history.step_size_normalizers.shape == (3, 20)  # Autostep's v
    # the 2nd recording is the learner after 600 updates
    after_600 = run_learning_loop(learner, stream, 600, key).learner
    _close(history.step_sizes[1], after_600.step_sizes)
    _close(history.bias_step_sizes[1], after_600.bias_step_size)
    _close(history.step_size_normalizers[1], after_600.optimizer.step_size_normalizer[0])


def test_two_trackers_with_different_intervals():
    stream = DriftingTargetStream(feature_dim=3)
    learner = LinearLearner(3, IDBD(), normalizer=EMANormalizer())
    result = run_learning_loop(
        learner,
        stream,
        120,
        jax.random.key(0),
        step_size_tracking=StepSizeTrackingConfig(interval=20, include_bias=False),
        normalizer_tracking=NormalizerTrackingConfig(interval=30),
    )
    ss, norm = result.step_size_history, result.normalizer_history
    np.testing.assert_array_equal(ss.recording_indices, np.arange(1, 7) * 20 - 1)
    np.testing.assert_array_equal(norm.recording_indices, np.arange(1, 5) * 30 - 1)
    assert ss.bias_step_sizes is None and ss.step_size_normalizers is None
    np.testing.assert_allclose(norm.means[-1], result.learner.normalizer.mean, rtol=1e-6)
    np.testing.assert_allclose(norm.variances[-1], result.learner.normalizer.var, rtol=1e-6)
    assert result.metrics.normalizer_mean_var.shape == (120,)


def test_metrics_window_averages():
    stream = DriftingTargetStream(feature_dim=3)
    learner = LinearLearner(3, IDBD())
    key = jax.random.key(5)
    per_step = run_learning_loop(learner, stream, 600, key).metrics
    windowed = run_learning_loop(learner, stream, 600, key, metrics_window=50).metrics
    assert windowed.squared_error.shape == (12,)
    np.testing.assert_allclose(
        windowed.squared_error, per_step.squared_error.reshape(12, 50).mean(1), rtol=1e-5
    )
    with pytest.raises(ValueError, match="metrics_window"):
        run_learning_loop(learner, stream, 601, key, metrics_window=50)


class _CountingLearner(AbstractWrappedLearner):
    """Counts how often `update` is traced (a Python side effect runs only while tracing)."""

    inner: LinearLearner

    def update(self, x, y):
        _CountingLearner.traces += 1
        inner, result = self.inner.update(x, y)
        return self._with(inner), result


def test_second_call_does_not_trace_again():
    _CountingLearner.traces = 0
    stream = DriftingTargetStream(feature_dim=3)
    keys = jax.random.split(jax.random.key(0), 4)
    run_learning_loop_batched(
        _CountingLearner(LinearLearner(3, IDBD(0.01, meta_step_size=0.01))), stream, 100, keys
    )
    after_first = _CountingLearner.traces
    assert after_first > 0
    # other hyperparameter values and other keys: same structure, no new trace
    run_learning_loop_batched(
        _CountingLearner(LinearLearner(3, IDBD(0.02, meta_step_size=0.05))),
        stream,
        100,
        jax.random.split(jax.random.key(1), 4),
    )
    assert _CountingLearner.traces == after_first
    run_learning_loop(
        _CountingLearner(LinearLearner(3, IDBD(0.01, meta_step_size=0.01))), stream, 100, keys[0]
    )
    after_single = _CountingLearner.traces
    run_learning_loop(
        _CountingLearner(LinearLearner(3, IDBD(0.03, meta_step_size=0.01))), stream, 100, keys[1]
    )
    assert _CountingLearner.traces == after_single


def test_metrics_to_dicts():
    result = run_learning_loop(
        LinearLearner(3, LMS(0.1), normalizer=EMANormalizer()),
        DriftingTargetStream(3),
        5,
        jax.random.key(0),
    )
    rows = metrics_to_dicts(result.metrics)
    assert len(rows) == 5
    assert set(rows[0]) == {"squared_error", "error", "mean_step_size", "normalizer_mean_var"}
    assert rows[2]["error"] == pytest.approx(float(result.metrics.error[2]))
    assert rows[0]["mean_step_size"] == pytest.approx(0.1)


def test_uint32_keys_are_accepted():
    stream = DriftingTargetStream(3)
    learner = LinearLearner(3)
    a = run_learning_loop(learner, stream, 50, jax.random.PRNGKey(7))
    b = run_learning_loop(learner, stream, 50, jax.random.wrap_key_data(jax.random.PRNGKey(7)))
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


def test_a_run_in_segments_equals_one_run():
    """Continuing from a result's learner and stream state learns from the same
    examples as one long run (what progress reporting and checkpoints rely on)."""
    stream = DriftingTargetStream(4)
    learner = LinearLearner(4, Autostep(0.02))
    key = jax.random.key(8)
    tracking = StepSizeTrackingConfig(100)
    whole = run_learning_loop(learner, stream, 600, key, step_size_tracking=tracking)
    first = run_learning_loop(learner, stream, 300, key, step_size_tracking=tracking)
    second = run_learning_loop(
        first.learner,
        stream,
        300,
        key,
        step_size_tracking=tracking,
        stream_state=first.stream_state,
        start_step=300,
    )
    _close(np.concatenate([first.metrics.error, second.metrics.error]), whole.metrics.error)
    _close(second.learner.weights, whole.learner.weights)
    np.testing.assert_array_equal(second.step_size_history.recording_indices, [399, 499, 599])
    # 5 seeds and two halves of 300 steps: the program that
    # `test_batched_seed_equals_single_run` compiles (the same learner, stream and
    # batch) runs both halves
    keys = jax.random.split(key, 5)
    batched = run_learning_loop_batched(learner, stream, 600, keys)
    part = run_learning_loop_batched(learner, stream, 300, keys)
    rest = run_learning_loop_batched(
        part.learner, stream, 300, keys, stream_states=part.stream_state, start_step=300
    )
    _close(rest.metrics.error, batched.metrics.error[:, 300:])


def test_divergence_is_reported_per_run():
    """IDBD with a large meta step-size diverges on the Sutton task; a small one does
    not. The report names the configurations and the first bad step."""
    from alberta_eqx import find_divergence

    stream = SuttonExperiment1Stream()
    thetas = jnp.array([0.005, 0.5])
    learners = eqx.filter_vmap(
        lambda th: LinearLearner(20, IDBD(0.05, meta_step_size=th), use_bias=False)
    )(thetas)
    result = run_learning_loop_batched(
        learners, stream, 3000, jax.random.split(jax.random.key(0), 2)
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
        learners, stream, 3000, jax.random.split(jax.random.key(0), 2), metrics_window=100
    )
    # the step is exact whatever the window
    coarse = find_divergence(windowed)
    np.testing.assert_array_equal(coarse.diverged, report.diverged)
    np.testing.assert_array_equal(coarse.first_step, report.first_step)
