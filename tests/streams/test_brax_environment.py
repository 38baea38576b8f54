"""`BraxEnvironment`: a brax environment stepped as gymnax's are (an episode limit that
truncates, a fresh random start after every end, the final observation in `info`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.streams.brax_environment import BraxEnvironment

pytest.importorskip("brax", reason="needs the [brax] extra")


@pytest.mark.slow
def test_brax_steps_as_gymnax_does():
    env = BraxEnvironment("inverted_pendulum", episode_length=5)
    assert env.action_space().shape == (1,) and env.observation_space().shape == (4,)
    observation, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    hold = jnp.zeros(1)
    for t in range(5):  # the pole, upright at the start, takes longer than 5 steps to fall
        expected = env.env.step(state.env_state, hold)
        observation, state, reward, terminated, truncated, info = step(
            jax.random.key(t + 1), state, hold
        )
        np.testing.assert_allclose(info["final_observation"], expected.obs, rtol=1e-6)
        assert float(reward) == 1.0 and not terminated
        assert bool(truncated) == (t == 4)
    # the limit cut the episode: time starts again, from the reset of the step's key
    assert int(state.time) == 0
    np.testing.assert_allclose(observation, env.env.reset(jax.random.key(5)).obs, rtol=1e-6)
    assert not np.allclose(observation, info["final_observation"])
    # pushed one way, the pole falls: a termination, before any limit
    env = BraxEnvironment("inverted_pendulum")
    _, state = env.reset(jax.random.key(0))
    step = jax.jit(env.step)
    for t in range(200):
        _, state, _, terminated, truncated, _ = step(jax.random.key(t), state, jnp.ones(1))
        if terminated:
            break
    assert terminated and not truncated and int(state.time) == 0
