"""Reduced runs of `alberta-eqx replicate stream-x-minatar`: every agent on every game
(2 seeds, 100 to 400 steps), a grid in the same program, and the wrapper on
MinAtar's images against the authors' wrappers. Each case compiles its own program
(a game's environment and shapes are its own), so they are slow tests."""

import importlib.util
import math

import equinox as eqx
import jax
import numpy as np
import pytest

from alberta_eqx.replications.stream_x_minatar import (
    AGENTS,
    CONTINUOUS,
    GAMES,
    environment,
    stream_x,
    stream_x_table,
)

pytest.importorskip("gymnax", reason="the MinAtar games are gymnax's")

CASES = [(game, agent) for game in GAMES if game not in CONTINUOUS for agent in AGENTS]
CASES.append(("pendulum", "ac"))
CASES.append(
    pytest.param(
        "inverted_pendulum",
        "ac",
        marks=pytest.mark.skipif(
            importlib.util.find_spec("brax") is None, reason="needs the [brax] extra"
        ),
    )
)


def _params(runs):
    """The agents' network weights (not their traces, which an episode's end zeroes)."""
    agent = runs.agent
    nets = (agent.q_net,) if hasattr(agent, "q_net") else (agent.policy_net, agent.value_net)
    return jax.tree.leaves(eqx.filter(nets, eqx.is_inexact_array))


@pytest.mark.slow
@pytest.mark.parametrize(("game", "agent"), CASES)
def test_every_agent_runs_on_every_game(game, agent):
    # (kappa, not step_size: with MinAtar's networks ObGD's bound is active at every
    # step, and its step alpha / (alpha kappa max(|delta|, 1) |z|_1) is alpha's own)
    grid = {"kappa": [2.0, 3.0]} if (game, agent) == ("breakout", "q") else None
    # (compilation is most of a case's time; the games whose episodes are not checked
    # to end run a quarter of the steps, still in two segments)
    num_steps = 400 if game in ("breakout", *CONTINUOUS) else 100
    result = stream_x(
        game, agent, num_seeds=2, num_steps=num_steps, segment_steps=num_steps // 2, grid=grid
    )
    runs = 4 if grid else 2
    assert result.returns.shape[0] == runs and len(result.configs) == runs
    assert np.all(np.asarray(result.runs.step) == num_steps)
    # every layer of every run learned: fewer of its weights are exactly zero than
    # the sparse initialisation set (ceil(0.9 fan_in) per unit), and all are finite
    for weight in _params(result.runs):
        assert np.all(np.isfinite(weight))
        if weight.ndim >= 3:  # (runs, units, inputs...): a layer's weights
            per_run = np.asarray(weight).reshape(weight.shape[0], weight.shape[1], -1)
            initial_zeros = weight.shape[1] * math.ceil(0.9 * per_run.shape[2])
            assert np.all(np.sum(per_run == 0, axis=(1, 2)) < initial_zeros)
    for returns, n in zip(result.returns, result.num_episodes, strict=True):
        assert np.all(np.isfinite(returns[:n])) and np.all(np.isnan(returns[n:]))
        if game not in CONTINUOUS:  # MinAtar's raw rewards are 0 or 1 (true returns)
            np.testing.assert_array_equal(returns[:n], np.round(returns[:n]))
            assert np.all(returns[:n] >= 0)
    if game in ("breakout", *CONTINUOUS):  # episodes end within 400 steps
        assert np.all(result.num_episodes >= 1)
        assert len(stream_x_table(result)) == 2 + runs + 1
    if grid:
        assert [c["kappa"] for c in result.configs] == [2.0, 2.0, 3.0, 3.0]
        # the same seed with another kappa is another run
        assert not np.array_equal(_params(result.runs)[0][0], _params(result.runs)[0][2])


@pytest.mark.slow
def test_streaming_wrapper_on_minatar_equals_the_authors_wrappers(x64):
    """`NormalizeObservation` and `ScaleReward` of the authors' MinAtar scripts over a
    recorded Breakout trajectory: elementwise statistics, the image kept."""
    base, params, env = environment("breakout")

    def step(carry, key):
        raw_state, state = carry
        action = jax.random.randint(jax.random.fold_in(key, 1), (), 0, base.num_actions)
        raw = base.step(key, raw_state, action, params)
        wrapped = env.step(key, state, action, params)
        out = (raw[0], raw[2], raw[3] | raw[4], raw[5]["final_observation"])
        return (raw[1], wrapped[1]), (out, (wrapped[0], wrapped[2], wrapped[5]))

    key = jax.random.key(0)
    raw_first, raw_state = base.reset(key, params)
    first, state = env.reset(key, params)
    keys = jax.random.split(jax.random.key(1), 150)
    _, (raw, wrapped) = jax.jit(lambda c: jax.lax.scan(step, c, keys))((raw_state, state))
    assert first.shape == (10, 10, 4) and wrapped[0].shape == (150, 10, 10, 4)
    # the authors' SampleMeanStd, elementwise over the image
    count, mean, p = 0, np.zeros((10, 10, 4)), np.zeros((10, 10, 4))

    def normalize(o):
        nonlocal count, mean, p
        count += 1
        new_mean = mean + (o - mean) / count
        p = p + (o - mean) * (o - new_mean)
        mean = new_mean
        return (o - mean) / np.sqrt((1 if count < 2 else p / (count - 1)) + 1e-8)

    trace, r_mean, r_p = 0.0, 0.0, 0.0
    np.testing.assert_allclose(first, normalize(np.asarray(raw_first, float)), rtol=1e-9)
    ends = 0
    for t in range(150):
        o_next, r, done, final = (np.asarray(x[t], float) for x in raw)
        trace = trace * 0.99 * (1 - done) + r
        r_count = t + 1
        new = r_mean + (trace - r_mean) / r_count
        r_p += (trace - r_mean) * (trace - new)
        r_mean = new
        var = 1 if r_count < 2 else r_p / (r_count - 1)
        np.testing.assert_allclose(wrapped[1][t], r / np.sqrt(var + 1e-8), rtol=1e-9)
        np.testing.assert_allclose(
            wrapped[2]["final_observation"][t], normalize(final), rtol=1e-9, atol=1e-12
        )
        if done:
            ends += 1
            np.testing.assert_allclose(wrapped[0][t], normalize(o_next), rtol=1e-9, atol=1e-12)
    assert ends >= 2


@eqx.filter_jit
def _rollout(env, params, actions):
    """`env` from a fixed start under `actions`: each step's state, reward, end and
    final observation."""

    def step(state, inputs):
        key, action = inputs
        out = env.step(key, state, action, params)
        return out[1], (out[1], out[2], out[3] | out[4], out[5]["final_observation"])

    _, state = env.reset(jax.random.key(3), params)
    keys = jax.random.split(jax.random.key(4), actions.shape[0])
    return jax.lax.scan(step, state, (keys, actions))[1]


@pytest.mark.slow
def test_sticky_actions_are_minatars():
    """`sticky_action_prob` as `minatar.Environment.act`: the previously executed
    action (0 before the first) replaces the chosen one with that probability, and is
    kept across an episode's end (minatar's `reset` leaves `last_action` alone)."""
    base, params, plain = environment("breakout")
    chosen = jax.numpy.array([1, 2, 2, 1, 2, 1])
    # always sticky: every executed action is the first previous one, 0 (no-op); a
    # short stretch without an episode's end, where Breakout's dynamics use no key
    _, _, done, final = _rollout(
        environment("breakout", sticky_action_prob=1.0)[2], params, chosen
    )
    _, _, base_done, base_final = _rollout(plain, params, chosen * 0)
    _, _, _, moved = _rollout(plain, params, chosen)
    assert not done.any() and not base_done.any()
    np.testing.assert_array_equal(final, base_final)
    assert not np.array_equal(final, moved)  # the chosen actions would have moved the paddle

    # half sticky, 300 steps: each step executes the chosen action or repeats the last
    actions = jax.random.randint(jax.random.key(5), (300,), 0, base.num_actions)
    half = environment("breakout", sticky_action_prob=0.5)[2]
    states, _, done, _ = _rollout(half, params, actions)
    last = np.asarray(states.env_state.last_action)
    previous = np.concatenate([[0], last[:-1]])
    actions = np.asarray(actions)
    assert ((last == actions) | (last == previous)).all()
    differs = actions != previous
    assert 0.35 < np.mean(last[differs] == previous[differs]) < 0.65
    # An episode's end keeps the executed action, not 0: with the check above, the
    # step after an end repeats the ending step's action, as minatar's does.
    ends = np.flatnonzero(np.asarray(done))
    assert ends.size >= 2 and (last[ends] != 0).any()
    with pytest.raises(ValueError, match="sticky_action_prob"):
        environment("breakout", sticky_action_prob=1.5)
    with pytest.raises(ValueError, match="sticky_action_prob"):
        environment("pendulum", sticky_action_prob=0.1)


@pytest.mark.slow
def test_the_command_line_options_and_lengths():
    """`--game` and `--agent` are stream-x-minatar's own options, checked against
    their choices; the default length is the agent's script's."""
    from argparse import Namespace

    from alberta_eqx.cli._options import CommandError
    from alberta_eqx.cli._replicate import replication_options, steps_for

    name = "stream-x-minatar"
    chosen = replication_options(name, Namespace(game=None, agent="sarsa"))
    assert chosen == {"game": "breakout", "agent": "sarsa"}
    assert steps_for(name, None, False, chosen) == 10_000_000
    assert steps_for(name, None, False, {"game": "breakout", "agent": "q"}) == 5_000_000
    assert steps_for(name, None, False, {"game": "pendulum", "agent": "ac"}) == 2_000_000
    assert steps_for(name, None, True, chosen) == 100_000
    with pytest.raises(CommandError, match="--agent for stream-x-minatar must be one of"):
        replication_options(name, Namespace(game="breakout", agent="dqn"))
    with pytest.raises(CommandError, match="--game is not an option of stream-ac-cartpole"):
        replication_options("stream-ac-cartpole", Namespace(game="breakout", agent=None))
