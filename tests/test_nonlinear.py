"""MLPLearner: the runners work unchanged, it learns a drifting teacher, any optax works."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    EMANormalizer,
    MLPLearner,
    NonlinearTeacherStream,
    StepSizeTrackingConfig,
    run_learning_loop,
    run_learning_loop_batched,
)


class _Counting(MLPLearner):
    traces = 0

    def update(self, x, y):
        _Counting.traces += 1
        return super().update(x, y)


def test_autostep_mlp_learns_the_teacher_over_8_seeds_without_retracing():
    stream = NonlinearTeacherStream(4, hidden_size=4)
    learner = _Counting(4, (16,), aeo.autostep(initial_step_size=0.01), key=jax.random.key(0))
    keys = jax.random.split(jax.random.key(1), 8)
    result = run_learning_loop_batched(learner, stream, 6000, keys, metrics_window=1000)
    traced = _Counting.traces
    run_learning_loop_batched(learner, stream, 6000, keys, metrics_window=1000)
    assert _Counting.traces == traced
    assert result.metrics.squared_error.shape == (8, 6)
    # the error of predicting zero: the targets' mean square over the same stretch
    targets = jax.vmap(lambda k: stream.chunk(stream.init(k), jnp.asarray(5000), 1000)[0].target)(
        keys
    )
    zero_error = np.mean(np.asarray(targets) ** 2)
    final = float(np.mean(result.metrics.squared_error[:, -1]))
    assert final < 0.3 * zero_error, (final, zero_error)
    assert np.all(np.isfinite(result.metrics.mean_step_size))


@pytest.mark.parametrize("tx", [optax.sgd(0.01), optax.adam(1e-3)])
def test_plain_optax_transformations(tx):
    stream = NonlinearTeacherStream(3)
    learner = MLPLearner(3, (8, 8), tx, key=jax.random.key(0), normalizer=EMANormalizer())
    result = run_learning_loop(learner, stream, 3000, jax.random.key(2), metrics_window=1000)
    assert np.all(np.isfinite(result.metrics.squared_error))
    assert result.metrics.squared_error[-1] < result.metrics.squared_error[0]
    assert np.all(np.isnan(result.metrics.mean_step_size))  # no per-parameter step-sizes
    with pytest.raises(ValueError, match="per-parameter step-sizes"):
        run_learning_loop(
            learner, stream, 100, jax.random.key(2), step_size_tracking=StepSizeTrackingConfig(50)
        )


def test_step_size_tracking_of_an_idbd_mlp():
    stream = NonlinearTeacherStream(3)
    learner = MLPLearner(3, (5,), aeo.idbd(0.01), key=jax.random.key(0))
    result = run_learning_loop(
        learner, stream, 200, jax.random.key(0), step_size_tracking=StepSizeTrackingConfig(100)
    )
    num_params = 3 * 5 + 5 + 5 + 1
    assert result.step_size_history.step_sizes.shape == (2, num_params)
    assert result.step_size_history.bias_step_sizes is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="hidden_sizes"):
        MLPLearner(3, (4, 8), optax.sgd(0.1), key=jax.random.key(0))
    with pytest.raises(TypeError, match="optimizer"):
        MLPLearner(3, (4,), "adam", key=jax.random.key(0))
    learner = MLPLearner(3, (4,), optax.sgd(0.1), key=jax.random.key(0))
    with pytest.raises(ValueError, match=r"x must have shape \(3,\)"):
        learner.update(jnp.ones(2), 0.0)
