"""Environment streams: CartPole value prediction through gymnax (inside the compiled
loop, 256 copies at once) and through Gymnasium (collect, then replay)."""

import sys

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx import Autostep, LinearLearner
from alberta_eqx.optimizers import LMS
from alberta_eqx.runners import run_learning_loop, run_learning_loop_batched
from alberta_eqx.streams.environments import (
    GymnaxTDStream,
    PredictionStream,
    TrajectoryStream,
    collect_gymnasium,
    epsilon_greedy,
)
from alberta_eqx.td import TDLinearLearner, TDTimeStep

GAMMA = 0.9


def _returns(rewards, discounts):
    """Discounted returns computed backwards from each episode's end (NumPy float64);
    NaN in the last, unfinished episode."""
    returns = np.full(len(rewards), np.nan)
    following = np.nan
    for t in range(len(rewards) - 1, -1, -1):
        following = rewards[t] + (discounts[t] * following if discounts[t] != 0 else 0.0)
        returns[t] = following
    return returns


def _value_error(learner, observations, rewards, discounts):
    """Mean squared error of the learned values against the returns, and the returns'
    variance (the error of predicting their mean)."""
    returns = _returns(np.asarray(rewards, np.float64), np.asarray(discounts, np.float64))
    done = ~np.isnan(returns)
    values = np.asarray(jax.vmap(learner.predict)(jnp.asarray(observations)))
    return np.mean((values - returns)[done] ** 2), np.var(returns[done])


@eqx.filter_jit
def _generate(stream, key, num_steps: int):
    """A stream's first `num_steps` timesteps from `key`, generated in one compiled
    program (op by op, an environment's steps compile dozens of small ones)."""
    return stream.chunk(stream.init(key), jnp.asarray(0), num_steps)[0]


def _abs_features(observation):
    # CartPole's value is about symmetric in the pole angle and the cart position:
    # |observation| lets a linear value function see it.
    return jnp.concatenate([observation, jnp.abs(observation)])


def test_gymnax_cartpole_value_prediction_learns():
    stream = GymnaxTDStream("CartPole-v1", discount=GAMMA, features=_abs_features)
    assert stream.feature_dim == 8
    key = jax.random.key(0)
    result = run_learning_loop(TDLinearLearner(8, LMS(0.03)), stream, 20_000, key)
    # the same transitions again, from the stream (step t's randomness is fold_in(key, t))
    timesteps = _generate(stream, key, 20_000)
    discounts = np.asarray(timesteps.discount)
    assert set(np.unique(discounts)) == {0.0, np.float32(GAMMA)}
    assert np.all(np.asarray(timesteps.reward) == 1)
    error, variance = _value_error(
        result.learner, timesteps.observation, timesteps.reward, discounts
    )
    assert error < 0.5 * variance, (error, variance)


@pytest.mark.slow
def test_gymnax_256_copies_in_one_call():
    stream = GymnaxTDStream("CartPole-v1", discount=GAMMA)
    keys = jax.random.split(jax.random.key(1), 256)
    result = run_learning_loop_batched(TDLinearLearner(4, LMS(0.01)), stream, 1_000, keys)
    assert result.metrics.squared_error.shape == (256, 1_000)
    assert result.learner.weights.shape == (256, 4)
    assert np.all(np.isfinite(result.metrics.squared_error))
    # every copy steps its own environment
    assert len(np.unique(np.asarray(result.learner.weights[:, 0]))) == 256
    # and copy 100 is the run of its key alone
    alone = run_learning_loop(TDLinearLearner(4, LMS(0.01)), stream, 1_000, keys[100])
    np.testing.assert_allclose(result.learner.weights[100], alone.learner.weights, rtol=1e-5)
    np.testing.assert_allclose(
        result.metrics.error[100], alone.metrics.error, rtol=1e-4, atol=1e-5
    )


def test_gymnasium_collect_then_learn():
    trajectory = collect_gymnasium(
        "CartPole-v1",
        5_000,
        seed=0,
        discount=GAMMA,
        features=lambda o: np.concatenate([o, np.abs(o)]),
    )
    assert trajectory.observation.shape == trajectory.next_observation.shape == (5_000, 8)
    assert np.all(trajectory.reward == 1) and 100 < np.sum(trajectory.discount == 0) < 500
    # within an episode, the next observation is the next step's observation
    going_on = trajectory.discount[:-1] != 0
    np.testing.assert_array_equal(
        trajectory.next_observation[:-1][going_on], trajectory.observation[1:][going_on]
    )
    stream = TrajectoryStream(trajectory)
    # four passes over the collected data
    result = run_learning_loop(TDLinearLearner(8, LMS(0.03)), stream, 20_000, jax.random.key(0))
    error, variance = _value_error(
        result.learner, trajectory.observation, trajectory.reward, trajectory.discount
    )
    assert error < 0.5 * variance, (error, variance)


def test_trajectory_stream_replays_and_checks_shapes():
    trajectory = TDTimeStep(
        np.arange(10.0).reshape(5, 2), np.arange(5.0), np.ones(5), np.zeros((5, 2))
    )
    stream = TrajectoryStream(trajectory)
    steps, _ = stream.chunk(stream.init(jax.random.key(0)), jnp.asarray(3), 4)
    np.testing.assert_array_equal(steps.reward, [3.0, 4.0, 0.0, 1.0])
    with pytest.raises(ValueError, match="trajectory"):
        TrajectoryStream(trajectory._replace(discount=np.ones(4)))


def test_prediction_stream_reward_and_next_observation():
    trajectory = TDTimeStep(
        np.arange(10.0).reshape(5, 2), np.arange(5.0), np.ones(5), -np.arange(10.0).reshape(5, 2)
    )
    steps, _ = PredictionStream(TrajectoryStream(trajectory)).chunk(
        jax.random.key(0), jnp.asarray(1), 3
    )
    np.testing.assert_array_equal(steps.observation, trajectory.observation[1:4])
    np.testing.assert_array_equal(steps.target, [1.0, 2.0, 3.0])
    steps, _ = PredictionStream(TrajectoryStream(trajectory), 1).chunk(
        jax.random.key(0), jnp.asarray(1), 3
    )
    np.testing.assert_array_equal(steps.target, [-3.0, -5.0, -7.0])
    with pytest.raises(ValueError, match="target must be 'reward' or a component index"):
        PredictionStream(TrajectoryStream(trajectory), 2)

    # CartPole's next cart velocity from the observation, learned inside the scan: the
    # unobserved random push leaves noise, far less than the velocity's variance
    stream = PredictionStream(GymnaxTDStream("CartPole-v1"), target=1)
    key = jax.random.key(2)
    result = run_learning_loop(LinearLearner(4, Autostep(0.1)), stream, 20_000, key)
    steps = _generate(stream, key, 20_000)
    error = np.mean(np.asarray(result.metrics.squared_error[-5_000:]))
    assert error < 0.5 * np.var(np.asarray(steps.target[-5_000:])), error


def test_epsilon_greedy_explores_with_probability_epsilon():
    greedy = lambda observation: jnp.asarray(2)  # noqa: E731
    keys = jax.random.split(jax.random.key(0), 20_000)
    observation = jnp.zeros(4)
    for epsilon in (0.0, 0.3, 1.0):
        actions = np.asarray(
            jax.vmap(epsilon_greedy(greedy, epsilon, 3), (0, None))(keys, observation)
        )
        # a random action is the greedy one a third of the time
        assert abs(np.mean(actions != 2) - epsilon * 2 / 3) < 0.015, epsilon
        assert set(np.unique(actions)) <= {0, 1, 2}

    def episodes(policy):
        stream = GymnaxTDStream("CartPole-v1", policy=policy)
        steps = _generate(stream, jax.random.key(1), 2_000)
        return np.sum(np.asarray(steps.discount) == 0)

    # pushing toward the pole's lean keeps it up far longer than random actions do
    leaning = epsilon_greedy(lambda o: (o[2] > 0).astype(jnp.int32), 0.1, 2)
    assert 2 * episodes(leaning) < episodes(None)
    with pytest.raises(ValueError, match="epsilon must be in"):
        epsilon_greedy(greedy, 1.5, 3)


def test_missing_extras_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "gymnax", None)
    with pytest.raises(ImportError, match=r"pip install 'alberta_eqx\[gymnax\]'"):
        GymnaxTDStream("CartPole-v1")
    monkeypatch.setitem(sys.modules, "gymnasium", None)
    with pytest.raises(ImportError, match=r"pip install 'alberta_eqx\[gymnasium\]'"):
        collect_gymnasium("CartPole-v1", 10)
