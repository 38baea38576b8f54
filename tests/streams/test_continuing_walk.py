"""The continuing random walk of Naik and Sutton (2022) / Naik et al. (2024): its
transitions and rewards as the authors' `random_walk_n.py` defines them, and
centered TD(0) on it reaching the dynamic-programming values."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.optimizers import LMS
from alberta_eqx.streams import ContinuingRandomWalk, ContinuingWalkParams, TDTimeStep
from alberta_eqx.td import RewardRate, TDLinearLearner


def _authors_table(n):
    """`(next state, reward)` for every (state, action): the authors' P and R."""
    mid = n // 2
    table = {}
    for s in range(n):
        table[s, 0] = (mid, -1.0) if s == 0 else (s - 1, 0.0)
        table[s, 1] = (mid, 1.0) if s == n - 1 else (s + 1, 0.0)
    return table


def test_transitions_and_rewards():
    env = ContinuingRandomWalk(5)
    obs, state = env.reset(jax.random.key(0))
    assert int(state) == 2 and np.argmax(obs) == 2
    params = ContinuingWalkParams(reward_offset=3.0)
    for (s, a), (want_s, want_r) in _authors_table(5).items():
        o, nxt, r, term, trunc, info = env.step(
            jax.random.key(0), jnp.asarray(s, jnp.int32), jnp.asarray(a), params
        )
        assert int(nxt) == want_s and np.argmax(o) == want_s
        assert float(r) == want_r + 3.0 and float(info["raw_reward"]) == want_r
        assert not bool(term) and not bool(trunc)
    with pytest.raises(ValueError, match="num_states must be odd"):
        ContinuingRandomWalk(4)


def _transitions(num_steps, offset):
    """`num_steps` transitions under the uniformly random policy, discount 0.99."""
    env = ContinuingRandomWalk(5)
    params = ContinuingWalkParams(reward_offset=offset)

    def body(state, key):
        action = jax.random.bernoulli(key).astype(jnp.int32)
        obs = env.observation(state)
        nxt_obs, nxt, reward, *_ = env.step(key, state, action, params)
        return nxt, TDTimeStep(obs, reward, jnp.asarray(0.99), nxt_obs)

    keys = jax.random.split(jax.random.key(1), num_steps)
    return jax.lax.scan(body, env.reset(keys[0])[1], keys)[1]


def _dp_values(gamma=0.99, offset=5.0):
    """`v_gamma` under the random policy, `(I - gamma P)^-1 r`, and the reward rate."""
    table, n = _authors_table(5), 5
    p, r = np.zeros((n, n)), np.zeros(n)
    for (s, _), (t, reward) in table.items():
        p[s, t] += 0.5
        r[s] += 0.5 * (reward + offset)
    d = np.linalg.matrix_power(p, 200)[0]  # the stationary distribution
    return np.linalg.solve(np.eye(n) - gamma * p, r), float(d @ r)


@eqx.filter_jit
def _learn_all(learner, steps):
    return jax.lax.scan(lambda m, t: (m.learn(t)[0], None), learner, steps)[0]


@pytest.mark.slow
@pytest.mark.parametrize("source", ["td_error", "reward"])
def test_centered_td_learns_the_centered_values(source):
    """With every reward shifted by 5 and gamma = 0.99, centered TD(0) learns the
    discounted values up to a constant (they differ by `rate / (1 - gamma)` = about 500)
    and, simple centering, `Rbar` -> the reward rate."""
    steps = _transitions(40_000, 5.0)
    learner = TDLinearLearner(
        5, LMS(0.02), use_bias=False, reward_rate=RewardRate(0.01, update_from=source)
    )
    learned = _learn_all(learner, steps)
    v, rate = _dp_values()
    w = np.asarray(learned.weights)
    np.testing.assert_allclose(w - w.mean(), v - v.mean(), atol=0.15)
    assert abs(v.mean() - w.mean()) > 400  # the constant centering removed
    if source == "reward":
        assert abs(float(learned.reward_rate.estimate) - rate) < 0.1
