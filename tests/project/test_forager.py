"""benchmarks/forager.py: Forager (continual-foragax) through the adapter inside the
compiled control loop, at a tiny size (its compilation alone takes over 10 s)."""

import jax
import numpy as np
import pytest

pytest.importorskip("foragax", reason="continual-foragax (extra [foragax])")

from benchmarks import forager


@pytest.mark.slow
def test_the_adapter_steps_foragax_and_never_ends():
    """The adapter's transition is foragax's own `step_env` (its observation
    flattened), never terminated nor truncated."""
    env = forager.make_env()
    params = env.default_params
    observation, state = env.reset(jax.random.key(0), params)
    expected, _ = env.env.reset_env(jax.random.key(0), params)
    np.testing.assert_array_equal(observation, np.ravel(expected))
    key = jax.random.key(1)
    step = jax.jit(env.step)
    for t in range(3):
        theirs = env.env.step_env(jax.random.fold_in(key, t), state, t % 4, params)
        observation, state, reward, terminated, truncated, info = step(
            jax.random.fold_in(key, t), state, t % 4, params
        )
        np.testing.assert_array_equal(observation, np.ravel(theirs[0]))
        np.testing.assert_array_equal(info["final_observation"], observation)
        assert float(reward) == float(theirs[2])
        assert not bool(terminated) and not bool(truncated)


@pytest.mark.slow
def test_a_tiny_run_records_the_reward_rate():
    """Stream Q(lambda), 2 seeds vmapped, 2 segments of 30 steps: one reward rate per
    seed and segment, finite; a segment that does not divide the run is refused."""
    result = forager.run_forager("stream_q", num_seeds=2, num_steps=60, segment_steps=30)
    rate = np.asarray(result["reward_rate"])
    assert result["steps"] == [30, 60]
    assert rate.shape == (2, 2) and np.all(np.isfinite(rate))
    with pytest.raises(ValueError, match="segment_steps"):
        forager.run_forager("stream_q", num_steps=50, segment_steps=30)
