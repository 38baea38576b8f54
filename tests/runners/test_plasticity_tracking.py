"""`plasticity_tracking`: the runners record `plasticity_diagnostics` of the learner's
network every `interval` steps, inside the compiled loop."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import (
    LMS,
    ClassifierLearner,
    InputPermutedStream,
    LinearLearner,
    PlasticityTrackingConfig,
    run_learning_loop,
)
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import plasticity_diagnostics

PROBE = np.asarray(np.random.default_rng(0).normal(size=(16, 64)), np.float32)


@pytest.mark.slow
def test_the_last_recording_is_the_final_networks_diagnostics():
    stream = InputPermutedStream(interval=20)
    model = MLP(64, 10, (6, 5), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False)
    learner = ClassifierLearner(model, aeo.lms(0.1))
    config = PlasticityTrackingConfig(10, PROBE, tau=0.1)
    result = run_learning_loop(learner, stream, 40, jax.random.key(1), plasticity_tracking=config)
    history = result.plasticity_history
    np.testing.assert_array_equal(history.recording_indices, [9, 19, 29, 39])
    assert history.dormant_fraction.shape == (4, 2)
    assert history.effective_rank.shape == (4, 2)
    assert history.stable_rank.shape == (4, 3)
    assert history.weight_norm.shape == (4,)
    final = plasticity_diagnostics(result.learner.model, jnp.asarray(PROBE), 0.1)
    np.testing.assert_allclose(history.dormant_fraction[-1], final.dormant_fraction)
    np.testing.assert_allclose(history.effective_rank[-1], final.effective_rank, rtol=1e-5)
    np.testing.assert_allclose(history.stable_rank[-1], final.stable_rank, rtol=1e-5)
    np.testing.assert_allclose(history.weight_norm[-1], final.weight_norm, rtol=1e-6)
    # The weights change over the run, so the recordings differ.
    assert len(set(np.asarray(history.weight_norm).tolist())) == 4


def test_bad_plasticity_tracking_is_refused():
    stream = InputPermutedStream(interval=20)
    with pytest.raises(ValueError, match="plasticity_tracking needs a learner of an"):
        run_learning_loop(
            LinearLearner(64, LMS(0.1)),
            stream,
            20,
            jax.random.key(0),
            plasticity_tracking=PlasticityTrackingConfig(10, PROBE),
        )
    learner = ClassifierLearner(MLP(64, 10, (4,), key=jax.random.key(0)), aeo.lms(0.1))
    with pytest.raises(ValueError, match="probe must have 64 columns"):
        run_learning_loop(
            learner,
            stream,
            20,
            jax.random.key(0),
            plasticity_tracking=PlasticityTrackingConfig(10, PROBE[:, :3]),
        )
    with pytest.raises(ValueError, match="probe must be a 2-D floating array"):
        PlasticityTrackingConfig(10, PROBE[0])
    with pytest.raises(ValueError, match="tau must be >= 0"):
        PlasticityTrackingConfig(10, PROBE, tau=-1.0)
