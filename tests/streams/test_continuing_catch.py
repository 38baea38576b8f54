"""csuite's continuing Catch: the JAX environment stepped side by side with a NumPy
transcription of csuite's `Catch` (`csuite/environments/catch.py`: the balls a list
of `(x, y)` in age order, as there), fed the draws the JAX steps made; the reward
offset; a run in the compiled control loop; the arguments' checks.
(`benchmarks/csuite_catch_check.py` checks against csuite's own code.)"""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.control import EpsilonGreedy, run_control, start_control, watkins_q_lambda
from alberta_eqx.streams import (
    ContinuingCatch,
    ContinuingCatchParams,
    ContinuingCatchState,
    TileCoder,
)


class _CsuiteCatch:
    """csuite's `Catch.start` / `step` / `_get_observation_*`, transcribed, with the
    random draws given rather than drawn (the board sized rows x columns)."""

    def __init__(self, rows, columns, spawn_probability, first_column):
        self.rows, self.columns, self.p = rows, columns, spawn_probability
        self.paddle_x, self.paddle_y = columns // 2, rows - 1
        self.balls = [(int(first_column), 0)]

    def step(self, action, uniform, column):
        self.paddle_x = int(np.clip(self.paddle_x + action - 1, 0, self.columns - 1))
        self.balls = [(x, y + 1) for x, y in self.balls]
        reward = 0.0
        if self.balls and self.balls[0][1] == self.paddle_y:
            reward = 1.0 if self.balls[0][0] == self.paddle_x else -1.0
            self.balls = self.balls[1:]
        if uniform < self.p:
            self.balls.append((int(column), 0))
        return reward

    def discrete(self):
        board = np.zeros((self.rows, self.columns), dtype=int)
        board[self.paddle_y, self.paddle_x] = 1
        for x, y in self.balls:
            board[y, x] = 1
        return board

    def continuous(self):
        obs = np.zeros(3)
        obs[0] = self.paddle_x / self.columns
        if self.balls:
            obs[1] = self.balls[0][0] / self.columns
            obs[2] = self.balls[0][1] / self.rows
        return obs


def _draws(key, columns):
    """The documented draws of `step(key, ...)`: the spawn's uniform, its column."""
    spawn_key, column_key = jax.random.split(key)
    return jax.random.uniform(spawn_key), jax.random.randint(column_key, (), 0, columns)


@eqx.filter_jit
def _trajectory(env, discrete, params, keys, actions):
    """Reset with `keys[0]`, then a step per action with `keys[1:]`: the continuous
    and discrete observations (the first the reset's) and the rewards."""
    obs, state = env.reset(keys[0], params)

    def body(state, xs):
        key, action = xs
        obs, state, reward, terminated, truncated, _ = env.step(key, state, action, params)
        return state, (obs, discrete.observation(state), reward, terminated | truncated)

    first = (obs, discrete.observation(state))
    _, steps = jax.lax.scan(body, state, (keys[1:], actions))
    return first, steps


@pytest.mark.parametrize(
    ("rows", "columns", "spawn_probability", "num_steps"),
    [(10, 5, 0.1, 2000), (4, 3, 0.6, 500)],
)
def test_steps_are_csuites(rows, columns, spawn_probability, num_steps):
    env = ContinuingCatch(rows, columns)
    discrete = ContinuingCatch(rows, columns, "discrete")
    params = ContinuingCatchParams(spawn_probability=spawn_probability)
    keys = jax.random.split(jax.random.key(7), num_steps + 1)
    actions = np.random.default_rng(0).integers(3, size=num_steps)
    (obs0, board0), (obs, boards, rewards, ended) = _trajectory(
        env, discrete, params, keys, jnp.asarray(actions, jnp.int32)
    )
    first_column = jax.random.randint(keys[0], (), 0, columns)
    uniforms, spawn_columns = jax.vmap(lambda k: _draws(k, columns))(keys[1:])
    obs, boards, rewards = np.asarray(obs), np.asarray(boards), np.asarray(rewards)
    uniforms, spawn_columns = np.asarray(uniforms), np.asarray(spawn_columns)
    assert not np.asarray(ended).any()

    ref = _CsuiteCatch(rows, columns, spawn_probability, first_column)
    dtype = obs.dtype
    np.testing.assert_array_equal(np.asarray(obs0), ref.continuous().astype(dtype))
    np.testing.assert_array_equal(np.asarray(board0), ref.discrete().astype(dtype))
    num_balls = []
    for t in range(num_steps):
        reward = ref.step(int(actions[t]), float(uniforms[t]), int(spawn_columns[t]))
        assert rewards[t] == reward, t
        # x / n in float64 rounded to float32 is float32's x / n (53 >= 2 * 24 + 2 bits)
        np.testing.assert_array_equal(obs[t], ref.continuous().astype(dtype), err_msg=str(t))
        np.testing.assert_array_equal(boards[t], ref.discrete().astype(dtype), err_msg=str(t))
        num_balls.append(len(ref.balls))
    # the run met every case: catches, misses, an empty board, several balls at once
    assert (rewards == 1).sum() >= 5 and (rewards == -1).sum() >= 5
    assert min(num_balls) == 0 and max(num_balls) >= 3


def test_reward_offset_shifts_the_reward_not_raw_reward():
    env = ContinuingCatch()
    # a ball one row above the paddle (column 2), which the next step brings down
    state = ContinuingCatchState(
        jnp.asarray(2, jnp.int32), jnp.full(10, -1, jnp.int32).at[8].set(2)
    )
    empty = ContinuingCatchState(jnp.asarray(2, jnp.int32), jnp.full(10, -1, jnp.int32))
    key = jax.random.key(3)
    offset = ContinuingCatchParams(reward_offset=jnp.asarray(2.5))
    step = jax.jit(env.step)
    for start, action, raw in [(state, 1, 1.0), (state, 0, -1.0), (empty, 2, 0.0)]:
        action = jnp.asarray(action, jnp.int32)
        obs, nxt, reward, terminated, truncated, info = step(key, start, action)
        obs_o, nxt_o, reward_o, *_, info_o = step(key, start, action, offset)
        assert float(reward) == raw and float(info["raw_reward"]) == raw
        assert float(reward_o) == raw + 2.5 and float(info_o["raw_reward"]) == raw
        np.testing.assert_array_equal(obs, obs_o)
        np.testing.assert_array_equal(nxt.ball_x, nxt_o.ball_x)
        assert int(nxt.ball_x[9]) == -1  # the ball that reached the paddle's row is gone
        assert not bool(terminated) and not bool(truncated)
        np.testing.assert_array_equal(info["final_observation"], obs)


def test_runs_in_the_control_loop():
    env = ContinuingCatch()
    # one tile per cell of the board, for the paddle's and the ball's coordinates
    coder = TileCoder(4, [5.0, 5.0, 10.0], 1024)
    agent = watkins_q_lambda(coder, 3, 0.1 / 4, 0.0, 0.99, EpsilonGreedy(0.1))
    params = ContinuingCatchParams(reward_offset=jnp.asarray(5.0))
    run = start_control(agent, env, jax.random.key(0), env_params=params)
    run = run_control(run, env, 300, env_params=params)
    assert int(run.step) == 300 and int(run.num_episodes) == 0
    # the return counts the raw rewards (+-1 per ball), not the offset ones (+5 a step)
    episode_return = float(run.episode_return)
    assert episode_return == round(episode_return) and abs(episode_return) <= 40
    assert np.abs(np.asarray(run.agent.weights)).max() > 0  # it learned


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"rows": 1}, "rows must be >= 2"),
        ({"rows": 0}, "rows must be >= 2"),
        ({"columns": 0}, "columns must be >= 1"),
        ({"observation_type": "pixels"}, "observation_type must be"),
    ],
)
def test_bad_arguments_are_named(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContinuingCatch(**kwargs)
