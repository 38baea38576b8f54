"""Reward centering in Stream AC(lambda) and Stream Q(lambda) / SARSA(lambda) (Naik,
Wan, Tomar and Sutton 2024): the TD error uses `R - Rbar`, and `Rbar` moves by
`beta delta` (value-based) or `beta (R - Rbar)` (simple), with `delta` computed here
from the networks before the update; configs; bad inputs."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.config import from_config, to_config
from alberta_eqx.control import ControlTransition, StreamAC, StreamQ
from alberta_eqx.td import RewardRate

KEY = jax.random.key(0)
OBS = jnp.asarray([0.3, -1.2, 0.5])
NEXT = jnp.asarray([-0.4, 0.9, 1.1])
REWARD, RBAR, BETA = 3.0, 1.25, 0.1


def _transition(reward):
    return ControlTransition(
        OBS, jnp.asarray(1), jnp.asarray(reward), NEXT, jnp.asarray(False), jnp.asarray(False)
    )


@eqx.filter_jit  # compiled, as the updates and delta below: eagerly each operation is one
def _agent(name):
    if name == "ac":
        return StreamAC(3, 2, key=KEY, hidden_sizes=(8,))
    target = "q" if name == "q" else "sarsa"
    return StreamQ(3, 2, key=KEY, hidden_sizes=(8,), exploration_steps=10, target=target)


@eqx.filter_jit
def _delta(agent, reward, next_key):
    """The TD error of the transition with reward `reward` from the networks before the
    update (gamma = 0.99, not terminal)."""
    if isinstance(agent, StreamAC):
        return reward + 0.99 * agent.value_net(NEXT) - agent.value_net(OBS)
    q_next = agent.q_net(NEXT)
    if agent.target == "q":
        bootstrap = jnp.max(q_next)
    else:  # A' drawn before the update, with the key the update uses
        bootstrap = q_next[agent._sample(next_key, NEXT, agent.steps + 2.0)]
    return reward + 0.99 * bootstrap - agent.q_net(OBS)[1]


def _with_rate(agent, rate):
    return eqx.tree_at(lambda a: a.reward_rate, agent, rate, is_leaf=lambda n: n is None)


_update = eqx.filter_jit(lambda agent, key, transition: agent.update(key, transition))


@pytest.mark.parametrize(
    ("name", "source"),
    [
        ("ac", "td_error"),
        pytest.param("q", "reward", marks=pytest.mark.slow),
        pytest.param("sarsa", "td_error", marks=pytest.mark.slow),
    ],
)
def test_centering_subtracts_rbar_and_learns_it(name, source):
    plain = _agent(name)
    centered = _with_rate(plain, RewardRate(BETA, RBAR, update_from=source))
    after, action = _update(centered, KEY, _transition(REWARD))
    # the networks learn exactly what the uncentered agent learns from R - Rbar
    frozen = eqx.tree_at(lambda a: a.reward_rate.step_size, centered, jnp.zeros(()))
    shifted, shifted_action = _update(plain, KEY, _transition(REWARD - RBAR))
    same, _ = _update(frozen, KEY, _transition(REWARD))
    for x, y in zip(
        jax.tree.leaves(shifted), jax.tree.leaves(_with_rate(same, None)), strict=True
    ):
        np.testing.assert_array_equal(x, y)
    assert int(action) == int(shifted_action)
    # Rbar <- Rbar + beta delta (value-based), Rbar + beta (R - Rbar) (simple)
    delta = float(_delta(plain, REWARD - RBAR, KEY))
    signal = delta if source == "td_error" else REWARD - RBAR
    np.testing.assert_allclose(after.reward_rate.estimate, RBAR + BETA * signal, rtol=1e-5)


@pytest.mark.slow
def test_configs():
    rate = RewardRate(0.02, 0.5, update_from="reward")
    for agent in (
        StreamAC(3, 2, key=KEY, hidden_sizes=(8,), reward_rate=rate),
        StreamQ(3, 2, key=KEY, hidden_sizes=(8,), reward_rate=rate),
    ):
        again = from_config(to_config(agent), key=KEY)
        assert again.reward_rate.update_from == "reward"
        assert float(again.reward_rate.estimate) == 0.5
        assert float(again.reward_rate.step_size) == pytest.approx(0.02)
    assert StreamQ(3, 2, key=KEY).reward_rate is None


def test_bad_inputs_are_named():
    with pytest.raises(TypeError, match="reward_rate"):
        StreamAC(3, 2, key=KEY, reward_rate=0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="reward_rate"):
        StreamQ(3, 2, key=KEY, reward_rate=0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="step_size must be > 0"):
        RewardRate(-1.0)
    with pytest.raises(ValueError, match="estimate must be finite"):
        RewardRate(0.1, float("inf"))
