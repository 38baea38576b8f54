"""Control: SARSA(lambda) and Watkins's Q(lambda) with tile coding against a float64
transcription of the book's box (Sutton and Barto 2018, section 12.7; 12.10 for
Watkins's cut), the policies, the compiled loop, and the book's Figure 12.10 at
reduced seeds."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_tiles import tiles

from alberta_eqx.control import (
    EpsilonGreedy,
    FixedPolicy,
    SarsaLambda,
    Softmax,
    control_step,
    run_control,
    start_control,
    watkins_q_lambda,
)
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.tiles import TileCoder


def reference_sarsa(trajectory, scale, num_tilings, size, alpha, lam, gamma, watkins):
    """The box "Sarsa(lambda) with binary features and linear function approximation"
    with replacing traces, in float64, over a recorded trajectory
    `(S, A, R, terminated, S', A')`; Watkins's Q(lambda) bootstraps from the max and
    cuts the trace after a non-greedy A'. Returns the weights after every transition
    and whether each recorded A' was greedy under these weights."""
    w, z = np.zeros(size), np.zeros(size)

    def F(s, a):
        return tiles(size, num_tilings, list(np.asarray(s, np.float64) * scale), [int(a)])

    def q(s, a):
        return sum(w[i] for i in F(s, a))

    weights, greedy = [], []
    for s, a, r, terminated, s_next, a_next in trajectory:
        delta = r
        for i in F(s, a):
            delta -= w[i]
            z[i] = 1.0  # replacing
        q_next = [q(s_next, b) for b in range(3 if len(s) == 2 else 2)]
        is_greedy = q_next[a_next] == max(q_next)
        if terminated:
            w = w + alpha * delta * z
            z[:] = 0
        else:
            delta += gamma * (max(q_next) if watkins else q_next[a_next])
            w = w + alpha * delta * z
            z = 0 * z if watkins and not is_greedy else gamma * lam * z
        weights.append(w.copy())
        greedy.append(is_greedy)
    return np.asarray(weights), np.asarray(greedy)


def _record(run, env, num_steps):
    def body(run, _):
        following = control_step(run, env)
        ended = following.num_episodes > run.num_episodes
        return following, (run.observation, run.action, ended, following.observation,
                           following.action, following.agent.weights)

    return jax.jit(lambda r: jax.lax.scan(body, r, length=num_steps))(run)[1]


@pytest.mark.parametrize("watkins", [False, True])
@pytest.mark.parametrize("environment", ["mountain-car", "cartpole"])
def test_agent_equals_the_book_box_in_float64(environment, watkins):
    with jax.enable_x64(True):
        if environment == "mountain-car":
            env = MountainCar()
            scale, num_steps, reward = 8 / np.array([1.7, 0.14]), 3000, -1.0
            alpha, lam, gamma, policy = 1.2 / 8, 0.9, 1.0, EpsilonGreedy(0.05)
        else:
            import gymnax

            env = gymnax.make("CartPole-v1")[0]
            scale, num_steps, reward = np.array([1.0, 1.0, 8.0, 1.0]), 400, 1.0
            alpha, lam, gamma, policy = 0.1 / 8, 0.8, 0.95, EpsilonGreedy(0.2)
        num_actions = 3 if environment == "mountain-car" else 2
        coder = TileCoder(8, jnp.asarray(scale, jnp.float64), 1024)
        agent = SarsaLambda(coder, num_actions, alpha, lam, gamma, policy, watkins=watkins)
        run = start_control(agent, env, jax.random.key(3))
        s, a, ended, s_next, a_next, w = (np.asarray(v) for v in _record(run, env, num_steps))
        assert ended.sum() >= (1 if environment == "mountain-car" else 10)
        trajectory = [
            (s[t], a[t], reward, ended[t], s_next[t], a_next[t]) for t in range(num_steps)
        ]
        want, greedy = reference_sarsa(trajectory, scale, 8, 1024, alpha, lam, gamma, watkins)
        np.testing.assert_allclose(w, want, rtol=1e-9, atol=1e-9)
        # the exploration happened, so Watkins's cut was exercised
        assert (~greedy[~ended]).sum() >= 3


def test_greedy_agent_breaks_ties_at_random_and_explores_optimistically():
    env = MountainCar()
    coder = TileCoder(8, 8 / np.array([1.7, 0.14]), low=[-1.2, -0.07], high=[0.5, 0.07],
                      int_sizes=(3,))
    agent = SarsaLambda(coder, 3, 0.5 / 8, 0.9)
    # all values 0: every action is greedy, each taken about a third of the time
    actions = jax.vmap(lambda k: agent.act(k, jnp.array([-0.5, 0.0])))(
        jax.random.split(jax.random.key(0), 3000)
    )
    counts = np.bincount(np.asarray(actions), minlength=3)
    assert np.all(np.abs(counts - 1000) < 150)


def test_policies_probabilities():
    q = jnp.array([1.0, 3.0, 3.0, 0.0])
    np.testing.assert_allclose(EpsilonGreedy(0.2).probabilities(q), [0.05, 0.45, 0.45, 0.05])
    np.testing.assert_allclose(Softmax(0.5).probabilities(q), np.exp(2 * q) / np.exp(2 * q).sum(),
                               rtol=1e-6)
    np.testing.assert_allclose(FixedPolicy([0.25, 0.75]).probabilities(jnp.zeros(2)), [0.25, 0.75])
    draws = jax.vmap(lambda k: Softmax(1.0).sample(k, q))(jax.random.split(jax.random.key(1), 20000))
    frequencies = np.bincount(np.asarray(draws), minlength=4) / 20000
    np.testing.assert_allclose(frequencies, np.exp(q) / np.exp(q).sum(), atol=0.015)


def test_bad_policy_and_agent_arguments_are_named():
    with pytest.raises(ValueError, match="probabilities must sum to 1"):
        FixedPolicy([0.5, 0.4])
    with pytest.raises(ValueError, match="probabilities must be non-negative"):
        FixedPolicy([1.5, -0.5])
    with pytest.raises(ValueError, match="epsilon"):
        EpsilonGreedy(1.5)
    with pytest.raises(ValueError, match="temperature"):
        Softmax(0.0)
    coder = TileCoder(4, [1.0, 1.0], 256)
    with pytest.raises(ValueError, match="step_size"):
        SarsaLambda(coder, 3, -0.1)
    with pytest.raises(ValueError, match="trace_decay"):
        SarsaLambda(coder, 3, 0.1, 1.5)
    with pytest.raises(ValueError, match="tile_coder must take the action"):
        SarsaLambda(TileCoder(4, [1.0], low=[0], high=[1]), 3, 0.1)
    with pytest.raises(ValueError, match="num_tilings"):
        TileCoder(0, [1.0], 256)


def test_loop_records_episodes_and_continues_across_calls():
    env = MountainCar()
    coder = TileCoder(8, 8 / np.array([1.7, 0.14]), low=[-1.2, -0.07], high=[0.5, 0.07],
                      int_sizes=(3,))
    runs = eqx.filter_vmap(
        lambda k: start_control(watkins_q_lambda(coder, 3, 1.0 / 8, 0.9), env, k, max_episodes=8)
    )(jax.random.split(jax.random.key(0), 3))
    once = eqx.filter_vmap(lambda r: run_control(r, env, 3000))(runs)
    twice = eqx.filter_vmap(lambda r: run_control(r, env, 1500))(runs)
    twice = eqx.filter_vmap(lambda r: run_control(r, env, 1500))(twice)
    np.testing.assert_array_equal(once.lengths, twice.lengths)
    np.testing.assert_array_equal(once.agent.weights, twice.agent.weights)
    for lengths, ends, n in zip(np.asarray(once.lengths), np.asarray(once.end_steps),
                                np.asarray(once.num_episodes)):
        k = min(n, 8)
        assert k >= 2 and np.all(lengths[:k] > 0) and np.all(lengths[k:] == -1)
        np.testing.assert_array_equal(np.cumsum(lengths[:k]), ends[:k])
    np.testing.assert_array_equal(once.returns[once.lengths > 0], -once.lengths[once.lengths > 0])
