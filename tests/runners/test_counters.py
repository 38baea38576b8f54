"""Counters past 2**31 (JAX's default int32, x64 off): each starts a few steps short
of 2**31 - 1 and steps past it. A count that only gates a schedule saturates there
(StreamQ's epsilon stays at its end, AdaptiveObGD's bias correction stays 1, Mountain
Car's episode time stays at the largest int32); `run_control` refuses to pass it;
the normalizers' float counts stay exact in float64. Continual backprop's ages are
tested in test_cbp.py."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import EMANormalizer, WelfordNormalizer
from alberta_eqx.control import (
    ControlTransition,
    SarsaLambda,
    StreamQ,
    run_control,
    start_control,
)
from alberta_eqx.replications.mountain_car import book_tile_coder
from alberta_eqx.streams.mountain_car import MountainCar

LAST = 2**31 - 1  # the largest int32
NEAR = LAST - 2  # a start a few steps short of it
# the Stream Q agents' one architecture: their construction's operations compile once
STREAM_Q = {"hidden_sizes": (8,), "sparsity": 0.0}


@pytest.mark.parametrize("target", ["q", "sarsa"])
@pytest.mark.slow
def test_stream_q_acts_greedily_past_2_31_when_epsilon_ends_at_0(target):
    """With `epsilon_end = 0` every action after the schedule is greedy; a wrapped
    counter made epsilon about 5e7 (every action random)."""
    agent = StreamQ(
        3,
        4,
        key=jax.random.key(0),
        exploration_steps=40,
        epsilon_end=0.0,
        target=target,
        **STREAM_Q,  # dense weights: no tied q-values, so a random action shows
    )
    agent = eqx.tree_at(lambda a: a.steps, agent, jnp.asarray(NEAR, jnp.int32))
    update = eqx.filter_jit(
        lambda agent, key, s, a, s_next: agent.update(
            key,
            ControlTransition(
                s, a, jnp.asarray(0.5), s_next, jnp.asarray(False), jnp.asarray(False)
            ),
        )
    )
    # compiled: eagerly each operation of a network's forward pass is a program
    q_values = eqx.filter_jit(lambda net, s: net(s))
    observations = jax.random.normal(jax.random.key(1), (9, 3))
    assert len(set(np.asarray(q_values(agent.q_net, observations[0])).tolist())) == 4
    action = eqx.filter_jit(agent.act)(jax.random.key(2), observations[0])
    assert int(action) == int(jnp.argmax(q_values(agent.q_net, observations[0])))
    for t in range(8):
        s, s_next = observations[t], observations[t + 1]
        # SARSA draws A' from the agent before the update, Q from the one after it
        before = agent
        agent, action = update(agent, jax.random.key(10 + t), s, action, s_next)
        chooser = before if target == "sarsa" else agent
        assert int(action) == int(jnp.argmax(q_values(chooser.q_net, s_next))), t
        assert int(agent.steps) == min(NEAR + t + 1, LAST)
    assert float(eqx.filter_jit(agent.epsilon)(agent.steps + 2.0)) == 0.0


def test_stream_q_refuses_a_schedule_the_counter_cannot_finish():
    with pytest.raises(ValueError, match="exploration_steps"):
        StreamQ(3, 4, key=jax.random.key(0), exploration_steps=2**31, **STREAM_Q)


def test_adaptive_obgd_bias_correction_past_2_31():
    """The step of AdaptiveObGD at step counts 2**31 - 2 ... 2**31 + 3 against a float64
    transcription with the true count (where `1 - beta2**t` is 1): a wrapped count
    made the correction -inf and the step `alpha delta z / sqrt(eps)`."""
    alpha, kappa, beta2, eps, decay = 0.3, 2.0, 0.999, 1e-8, 0.5
    tx = aeo.adaptive_obgd(alpha, kappa=kappa, beta2=beta2, eps=eps)
    rng = np.random.default_rng(0)
    w = jnp.zeros(4)
    state = tx.init(w)._replace(count=jnp.asarray(NEAR, jnp.int32))
    z, v = np.zeros(4), np.zeros(4)
    step = jax.jit(
        lambda s, delta, x: tx.update(w, s, error=delta, prediction_gradient=x, trace_decay=decay)
    )
    for t in range(NEAR + 1, NEAR + 7):
        delta, x = rng.normal(), rng.normal(size=4)
        updates, state = step(state, jnp.asarray(delta, jnp.float32), jnp.asarray(x, jnp.float32))
        # the transcription, float64, count t (Elsayed et al. 2024, Appendix B)
        z = decay * z + x
        v = beta2 * v + (1 - beta2) * (delta * z) ** 2
        scaled = z / np.sqrt(v / (1 - beta2**t) + eps)
        bound = alpha * kappa * max(abs(delta), 1.0) * np.abs(scaled).sum()
        expected = alpha * delta * scaled / max(bound, 1.0)
        np.testing.assert_allclose(updates, expected, rtol=2e-5, atol=1e-7)
        assert int(state.count) == min(t, LAST)


def test_mountain_car_episode_time_saturates():
    env = MountainCar()
    _, state = env.reset(jax.random.key(0))
    state = state._replace(time=jnp.asarray(NEAR, jnp.int32))
    step = jax.jit(lambda key, state: env.step(key, state, jnp.asarray(1)))
    times = []
    for t in range(4):
        _, state, _, terminated, _, _ = step(jax.random.key(t), state)
        assert not bool(terminated)
        times.append(int(state.time))
    assert times == [LAST - 1, LAST, LAST, LAST]


def test_run_control_refuses_to_count_past_2_31():
    env = MountainCar()
    agent = SarsaLambda(book_tile_coder(), 3, 0.1 / 8, 0.9)
    run = eqx.filter_jit(start_control)(agent, env, jax.random.key(0))  # one program
    run = eqx.tree_at(lambda r: r.step, run, jnp.asarray(LAST - 4, jnp.int32))
    done = run_control(run, env, 4)
    assert int(done.step) == LAST
    # one step more, with the same compiled run
    run = eqx.tree_at(lambda r: r.step, run, jnp.asarray(LAST - 3, jnp.int32))
    with pytest.raises(Exception, match=r"run.step \+ num_steps must be at most 2\*\*31 - 1"):
        jax.block_until_ready(run_control(run, env, 4))
    with pytest.raises(ValueError, match="num_steps"):
        run_control(run, env, 2**31)


@pytest.mark.parametrize("normalizer", [EMANormalizer(1.0), WelfordNormalizer()])
def test_normalizer_counts_are_exact_past_2_31_in_float64(normalizer):
    """Float64 counts from 2**31 - 3 on, against the NumPy running mean (and
    variance) with the true count."""
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        n, mean, second = float(NEAR - 1), rng.normal(size=3), rng.uniform(1, 2, size=3)
        ema = isinstance(normalizer, EMANormalizer)
        stats = normalizer.init(3, jnp.float64)
        stats = eqx.tree_at(
            lambda s: (s.count, s.mean, s.variance if ema else s.m2),
            stats,
            (jnp.asarray(n), jnp.asarray(mean), jnp.asarray(second)),
        )
        update = jax.jit(lambda s, x: s.update(x)[0])
        for _ in range(6):
            x = rng.normal(size=3)
            stats = update(stats, jnp.asarray(x))
            n += 1
            if ema:  # d = min(decay, 1 - 1/(n + 1)) with decay 1
                d = 1 - 1 / (n + 1)
                new_mean = mean + (1 - d) * (x - mean)
                second = np.maximum(d * second + (1 - d) * (x - mean) * (x - new_mean), 1e-8)
            else:  # Welford
                new_mean = mean + (x - mean) / n
                second = second + (x - mean) * (x - new_mean)
            mean = new_mean
            assert float(stats.count) == n
            np.testing.assert_allclose(stats.mean, mean, rtol=1e-14)
            np.testing.assert_allclose(stats.variance if ema else stats.m2, second, rtol=1e-14)
        assert n > LAST
