"""Average-reward control and reward centering: differential semi-gradient Sarsa(lambda)
(Sutton and Barto 2018, section 10.3), differential Q-learning (Wan, Naik and Sutton
2021) and reward centering (Naik et al. 2024) against float64 transcriptions
(`tests/_reference/differential.py`) over 300 transitions of the access-control task; the
access-control environment; and the bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.config import from_config, to_config
from alberta_eqx.control import (
    EpsilonGreedy,
    RewardRate,
    SarsaLambda,
    control_step,
    differential_q_learning,
    differential_sarsa,
    start_control,
    watkins_q_lambda,
)
from alberta_eqx.streams.access_control import AccessControl, AccessControlState
from alberta_eqx.streams.tiles import TileCoder
from tests._reference import differential as ref

NUM_STEPS = 300
SCALE = np.array([8 / 10, 8 / 3])  # Zhang's tiling of (free servers, priority)


@eqx.filter_jit
def _scan(agent, key):
    env = AccessControl()

    def body(run, _):
        following = control_step(run, env)
        reward = following.episode_return - run.episode_return
        rate = following.agent.reward_rate
        estimate = jnp.nan if rate is None else rate.estimate
        record = (run.observation, run.action, reward, following.observation, following.action)
        return following, (*record, following.agent.weights, estimate)

    return jax.lax.scan(body, start_control(agent, env, key), length=NUM_STEPS)[1]


def _record(agent, seed=0):
    """`NUM_STEPS` transitions of `agent` on access control in the compiled loop:
    `(S, A, R, S', A')`, the weights and `Rbar` after each (one compiled program per
    agent structure, the start included: hyperparameters are leaves)."""
    return tuple(np.asarray(o) for o in _scan(agent, jax.random.key(seed)))


def _trajectory(recorded):
    s, a, r, s_next, a_next = recorded[:5]
    assert np.all(np.isin(r, [0.0, 1.0, 2.0, 4.0, 8.0])) and (r > 0).sum() >= 20
    return [(s[t], a[t], r[t], s_next[t], a_next[t]) for t in range(NUM_STEPS)]


@pytest.mark.parametrize("lam", [0.0, 0.8])
@pytest.mark.slow
def test_differential_sarsa_equals_the_book_box_in_float64(lam):
    with jax.enable_x64(True):
        coder = TileCoder(8, jnp.asarray(SCALE, jnp.float64), 2048)
        agent = differential_sarsa(coder, 2, 0.1 / 8, 0.05, lam, EpsilonGreedy(0.1))
        recorded = _record(agent)
        want_w, want_rate = ref.differential_sarsa(
            _trajectory(recorded), SCALE, 8, 2048, 0.1 / 8, 0.05, lam
        )
        np.testing.assert_allclose(recorded[5], want_w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(recorded[6], want_rate, rtol=1e-9, atol=1e-12)
        assert abs(want_rate[-1]) > 0.1  # Rbar moved


def test_differential_q_learning_equals_wan_et_al_in_float64():
    with jax.enable_x64(True):
        # tabular: one tiling of one tile per (free servers, priority), the action appended
        coder = TileCoder(1, jnp.ones(2, jnp.float64), low=[0, 0], high=[10, 3], int_sizes=(2,))
        agent = differential_q_learning(coder, 2, 0.1, 0.5, EpsilonGreedy(0.2))
        recorded = _record(agent, seed=1)
        s, a, r, s_next = (recorded[i] for i in (0, 1, 2, 3))

        def state(o):
            return int(o[0]) * 4 + int(o[1])

        trajectory = [(state(s[t]), a[t], r[t], state(s_next[t])) for t in range(NUM_STEPS)]
        tables, want_rate = ref.differential_q_learning(trajectory, 44, 2, 0.1, 0.5)
        # the dense index of (free, priority, action) is (free * 4 + priority) * 2 + action
        np.testing.assert_allclose(recorded[5], tables.reshape(NUM_STEPS, -1), rtol=1e-9)
        np.testing.assert_allclose(recorded[6], want_rate, rtol=1e-9, atol=1e-12)
        assert abs(want_rate[-1]) > 0.1


@pytest.mark.parametrize(("simple", "target"), [(False, "q"), (True, "sarsa")])
def test_reward_centering_equals_naik_et_al_in_float64(simple, target):
    with jax.enable_x64(True):
        coder = TileCoder(8, jnp.asarray(SCALE, jnp.float64), 2048)
        rate = RewardRate(0.02, update_from="reward" if simple else "td_error")
        agent = SarsaLambda(
            coder, 2, 0.1 / 8, 0.0, 0.9, EpsilonGreedy(0.1), target=target, reward_rate=rate
        )
        recorded = _record(agent, seed=2)
        want_w, want_rate = ref.centered_sarsa(
            _trajectory(recorded), SCALE, 8, 2048, 0.1 / 8, 0.02, 0.9, simple, target == "q"
        )
        np.testing.assert_allclose(recorded[5], want_w, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(recorded[6], want_rate, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("target", ["sarsa", "q"])
def test_a_fixed_zero_rate_is_the_discounted_rule_with_gamma_one(target):
    """The issue's check: with the rate's step-size at 0 and `Rbar` at 0 the
    differential rule (Sarsa; Watkins's: differential Q-learning at lambda = 0) is the
    discounted one with `gamma = 1`. A step-size of 0 is refused at construction (a
    rate that never learns is a mistake), so the test sets it afterwards. In float64
    with the other tests' tile coder, so that the differential agents' compiled runs
    are theirs (differential Sarsa's, and centered Q's)."""
    with jax.enable_x64(True):
        coder = TileCoder(8, jnp.asarray(SCALE, jnp.float64), 2048)
        watkins = target == "q"
        lam = 0.0 if watkins else 0.5
        plain = SarsaLambda(coder, 2, 0.1 / 8, lam, 1.0, EpsilonGreedy(0.1), target=target)
        differential = (
            differential_q_learning(coder, 2, 0.1 / 8, 1.0, EpsilonGreedy(0.1))
            if watkins
            else differential_sarsa(coder, 2, 0.1 / 8, 0.01, lam, EpsilonGreedy(0.1))
        )
        differential = eqx.tree_at(lambda a: a.reward_rate.step_size, differential, jnp.zeros(()))
        plain_run, differential_run = (_record(a, seed=4) for a in (plain, differential))
        np.testing.assert_array_equal(plain_run[5], differential_run[5])
        assert np.all(differential_run[6] == 0.0)
        assert np.abs(plain_run[5][-1]).max() > 1  # it learned


def test_access_control_dynamics():
    env = AccessControl()
    keys = jax.random.split(jax.random.key(0), 20000)
    step = jax.jit(jax.vmap(env.step, in_axes=(0, None, None)))
    # ten busy servers: the number freed in one step is Binomial(10, 0.06)
    busy = AccessControlState(jnp.asarray(0, jnp.int32), jnp.asarray(3, jnp.int32))
    _, states, rewards, *_ = step(keys, busy, jnp.asarray(1))
    assert np.all(np.asarray(rewards) == 0)  # no free server: accepting is rejecting
    freed = np.asarray(states.free)
    assert abs(freed.mean() - 0.6) < 0.03 and freed.max() <= 10
    np.testing.assert_allclose(np.bincount(np.asarray(states.priority)) / 20000, 0.25, atol=0.015)
    # accepting a priority-4 customer (index 2) with 10 free: reward 4, one server taken,
    # and that server may free in the same step (Zhang's order)
    idle = AccessControlState(jnp.asarray(10, jnp.int32), jnp.asarray(2, jnp.int32))
    obs, states, rewards, terminated, truncated, info = step(keys, idle, jnp.asarray(1))
    assert np.all(np.asarray(rewards) == 4.0)
    np.testing.assert_allclose((np.asarray(states.free) == 10).mean(), 0.06, atol=0.01)
    assert not np.asarray(terminated).any() and not np.asarray(truncated).any()
    np.testing.assert_array_equal(info["final_observation"], obs)
    _, states, rewards, *_ = step(keys, idle, jnp.asarray(0))
    assert np.all(np.asarray(rewards) == 0) and np.all(np.asarray(states.free) == 10)


def test_config_round_trip_and_bad_inputs_are_named():
    coder = TileCoder(8, SCALE, 2048)
    agent = differential_sarsa(coder, 2, 0.01, 0.02, 0.5, EpsilonGreedy(0.1))
    rebuilt = from_config(to_config(agent))
    assert isinstance(rebuilt.reward_rate, RewardRate)
    assert float(rebuilt.reward_rate.step_size) == pytest.approx(0.02)
    assert float(rebuilt.discount) == 1.0
    centered = watkins_q_lambda(
        coder, 2, 0.01, 0.0, 0.99, reward_rate=RewardRate(0.1, 2.0, update_from="reward")
    )
    again = from_config(to_config(centered))
    assert again.reward_rate.update_from == "reward" and float(again.reward_rate.estimate) == 2.0
    with pytest.raises(ValueError, match="step_size must be > 0"):
        RewardRate(0.0)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        RewardRate(-0.1)
    with pytest.raises(ValueError, match="estimate must be finite"):
        RewardRate(0.1, float("nan"))
    with pytest.raises(ValueError, match="estimate must be finite"):
        RewardRate(0.1, float("inf"))
    with pytest.raises(ValueError, match="update_from must be one of"):
        RewardRate(0.1, update_from="rewards")
    with pytest.raises(TypeError, match="reward_rate"):
        SarsaLambda(coder, 2, 0.1, reward_rate=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="eta must be > 0"):
        differential_q_learning(coder, 2, 0.1, 0.0)
    with pytest.raises(ValueError, match="step_size must be > 0"):
        differential_sarsa(coder, 2, 0.1, -1.0)
    with pytest.raises(ValueError, match="num_servers"):
        AccessControl(0)


@pytest.mark.slow
def test_access_control_figure_10_5_reduced():
    """Figure 10.5 at 100,000 steps x 2 seeds (the book: 2,000,000): the policy's two
    clearest claims already hold, and the report prints a verdict per claim beside
    Zhang's reproduction."""
    from alberta_eqx.replications import access_control as ac

    result = ac.access_control(num_seeds=2, num_steps=100_000, segment_steps=50_000)
    assert result.policy.shape == (2, 4, 11) and result.values.shape == (2, 4, 11)
    np.testing.assert_allclose(result.occupancy.sum(axis=1), 1.0)
    assert np.all(result.policy[:, :, 0] == 0)
    assert np.all((result.average_reward > 2.0) & (result.average_reward < 3.0))
    assert any("Zhang" in line for line in ac.report(result))
    accepts_8, rejects_1 = ac.CHECKS[:2]
    assert accepts_8.measure(result)[0] and rejects_1.measure(result)[0]
    # a policy that accepts everything fails the threshold claims
    greedy = result._replace(policy=np.ones_like(result.policy))
    assert rejects_1.measure(greedy)[0] is False
