"""Control: SARSA(lambda) and Watkins's Q(lambda) with tile coding against a float64
transcription of the book's box (Sutton and Barto 2018, section 12.7; 12.10 for
Watkins's cut), the policies, the compiled loop, and the book's Figure 12.10 at
reduced seeds."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.control import (
    EpsilonGreedy,
    FixedPolicy,
    SarsaLambda,
    Softmax,
    StreamAC,
    StreamingWrapper,
    StreamQ,
    control_step,
    differential_q_learning,
    differential_sarsa,
    run_control,
    start_control,
    watkins_q_lambda,
)
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.tiles import TileCoder
from tests._reference.sarsa import sarsa_lambda as reference_sarsa
from tests._reference.stream import ObGD, Wrappers, mlp, stream_ac_update, stream_q_update
from tests.control._transitions import make_transition


@eqx.filter_jit
def _record(agent, env, key, num_steps):
    """`num_steps` steps from `start_control`, in one compiled program (run eagerly,
    the start alone is dozens of small ones): each step's `S, A`, end, `S', A'` and
    weights after it."""

    def body(run, _):
        following = control_step(run, env)
        ended = following.num_episodes > run.num_episodes
        return following, (
            run.observation,
            run.action,
            ended,
            following.observation,
            following.action,
            following.agent.weights,
        )

    return jax.lax.scan(body, start_control(agent, env, key), length=num_steps)[1]


@pytest.mark.parametrize("target", ["sarsa", "q"])
@pytest.mark.parametrize("environment", ["mountain-car", "cartpole"])
@pytest.mark.slow
def test_agent_equals_the_book_box_in_float64(environment, target):
    watkins = target == "q"
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
        agent = SarsaLambda(coder, num_actions, alpha, lam, gamma, policy, target=target)
        recorded = _record(agent, env, jax.random.key(3), num_steps)
        s, a, ended, s_next, a_next, w = (np.asarray(v) for v in recorded)
        assert ended.sum() >= (1 if environment == "mountain-car" else 10)
        trajectory = [
            (s[t], a[t], reward, ended[t], False, s_next[t], a_next[t]) for t in range(num_steps)
        ]
        want, greedy = reference_sarsa(trajectory, scale, 8, 1024, alpha, lam, gamma, watkins)
        np.testing.assert_allclose(w, want, rtol=1e-9, atol=1e-9)
        # the exploration happened, so Watkins's cut was exercised
        assert (~greedy[~ended]).sum() >= 3


def test_greedy_agent_breaks_ties_at_random_and_explores_optimistically():
    coder = TileCoder(
        8, 8 / np.array([1.7, 0.14]), low=[-1.2, -0.07], high=[0.5, 0.07], int_sizes=(3,)
    )
    agent = SarsaLambda(coder, 3, 0.5 / 8, 0.9)
    # all values 0: every action is greedy, each taken about a third of the time
    actions = jax.jit(
        lambda key: jax.vmap(lambda k: agent.act(k, jnp.array([-0.5, 0.0])))(
            jax.random.split(key, 3000)
        )
    )(jax.random.key(0))
    counts = np.bincount(np.asarray(actions), minlength=3)
    assert np.all(np.abs(counts - 1000) < 150)


def test_policies_probabilities():
    @jax.jit
    def probabilities_and_draws(q, key):
        # one compiled program: eagerly each operation is one
        return (
            EpsilonGreedy(0.2).probabilities(q),
            Softmax(0.5).probabilities(q),
            FixedPolicy([0.25, 0.75]).probabilities(jnp.zeros(2)),
            jax.vmap(lambda k: Softmax(1.0).sample(k, q))(jax.random.split(key, 20000)),
        )

    q = np.array([1.0, 3.0, 3.0, 0.0], np.float32)
    epsilon_greedy, softmax, fixed, draws = probabilities_and_draws(q, jax.random.key(1))
    np.testing.assert_allclose(epsilon_greedy, [0.05, 0.45, 0.45, 0.05])
    np.testing.assert_allclose(softmax, np.exp(2 * q) / np.exp(2 * q).sum(), rtol=1e-6)
    np.testing.assert_allclose(fixed, [0.25, 0.75])
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
    with pytest.raises(ValueError, match="lambda_"):
        SarsaLambda(coder, 3, 0.1, 1.5)
    with pytest.raises(ValueError, match="tile_coder must take the action"):
        SarsaLambda(TileCoder(4, [1.0], low=[0], high=[1]), 3, 0.1)
    with pytest.raises(ValueError, match="num_tilings"):
        TileCoder(0, [1.0], 256)


@pytest.mark.slow
def test_loop_records_episodes_and_continues_across_calls():
    env = MountainCar()
    coder = TileCoder(
        8, 8 / np.array([1.7, 0.14]), low=[-1.2, -0.07], high=[0.5, 0.07], int_sizes=(3,)
    )
    agent = watkins_q_lambda(coder, 3, 1.0 / 8, 0.9)
    # compiled, vmapped over 3 seeds: eagerly each operation is a program of its own
    start = eqx.filter_jit(eqx.filter_vmap(lambda k: start_control(agent, env, k, max_episodes=8)))
    runs = start(jax.random.split(jax.random.key(0), 3))
    run = eqx.filter_jit(eqx.filter_vmap(run_control))
    once = run(runs, env, 3000)
    twice = run(run(runs, env, 1500), env, 1500)
    np.testing.assert_array_equal(once.lengths, twice.lengths)
    np.testing.assert_array_equal(once.agent.weights, twice.agent.weights)
    for lengths, ends, n in zip(
        np.asarray(once.lengths),
        np.asarray(once.end_steps),
        np.asarray(once.num_episodes),
        strict=False,
    ):
        k = min(n, 8)
        assert k >= 2 and np.all(lengths[:k] > 0) and np.all(lengths[k:] == -1)
        np.testing.assert_array_equal(np.cumsum(lengths[:k]), ends[:k])
    returns, lengths = np.asarray(once.returns), np.asarray(once.lengths)
    np.testing.assert_array_equal(returns[lengths > 0], -lengths[lengths > 0])


class _LooselyTyped:
    """MountainCar with a reset state typed loosely (a weakly typed counter and a
    Python bool), as gymnax's Freeway resets its position; its step types them."""

    def __init__(self):
        self.inner = MountainCar()
        self.default_params = self.inner.default_params

    def reset(self, key, params):
        observation, state = self.inner.reset(key, params)
        return observation, (state, jnp.asarray(0), False)

    def step(self, key, state, action, params):
        inner, count, _ = state
        observation, inner, *rest = self.inner.step(key, inner, action, params)
        return observation, (inner, (count + 1).astype(jnp.int32), rest[1]), *rest


def test_a_run_starts_with_the_types_its_steps_keep():
    """A start typed otherwise than the step makes it compiles a run's segment
    program twice (the second segment's input types differ from the first's)."""
    env = _LooselyTyped()
    coder = TileCoder(
        4, 4 / np.array([1.7, 0.14]), low=[-1.2, -0.07], high=[0.5, 0.07], int_sizes=(3,)
    )
    run = start_control(watkins_q_lambda(coder, 3, 0.1, 0.9), env, jax.random.key(0))
    stepped = jax.eval_shape(lambda r: control_step(r, env), run)
    types = jax.tree.map(jax.typeof, eqx.filter(run, eqx.is_array))
    assert types == jax.tree.map(jax.typeof, stepped)


# --- Stream AC(lambda) and the streaming wrappers --------------------------------


@pytest.fixture(scope="module")
def cartpole_trajectory():
    """120 steps of `_cartpole_trajectory` in float64, made once for the module's
    tests (the Stream agents' read the first 70)."""
    with jax.enable_x64(True):
        return _cartpole_trajectory(120)


def _cartpole_trajectory(num_steps, seed=0):
    """Random actions on gymnax's CartPole through `StreamingWrapper`, and the same
    steps of the bare environment (the wrapper passes its key through): the first
    observation, the wrapped transitions `(S, A, R, done, final S', next S)` and the
    bare ones `(final S', R, done, next S)`."""
    import gymnax

    base, params = gymnax.make("CartPole-v1")
    env = StreamingWrapper(base, 0.99, 500)
    key = jax.random.key(seed)
    # compiled: eagerly the wrapper's every operation is a program of its own
    observation, state = eqx.filter_jit(env.reset)(key, params)
    raw_observation, raw_state = base.reset(key, params)
    step, raw_step = eqx.filter_jit(env.step), jax.jit(base.step)
    actions = np.random.default_rng(seed).integers(0, 2, num_steps)
    wrapped, raw = [], [np.asarray(raw_observation, np.float64)]
    first = np.asarray(observation)
    for t in range(num_steps):
        k = jax.random.fold_in(key, t)
        observation_next, state, reward, terminated, truncated, info = step(
            k, state, actions[t], params
        )
        raw_observation, raw_state, raw_reward, _, _, raw_info = raw_step(
            k, raw_state, actions[t], params
        )
        done = bool(terminated) or bool(truncated)
        wrapped.append(
            (
                np.asarray(observation),
                int(actions[t]),
                float(reward),
                done,
                np.asarray(info["final_observation"]),
                np.asarray(observation_next),
            )
        )
        raw.append(
            (
                np.asarray(raw_info["final_observation"], np.float64),
                float(raw_reward),
                done,
                np.asarray(raw_observation, np.float64),
            )
        )
        observation = observation_next
    return first, wrapped, raw


def test_streaming_wrapper_equals_the_authors_wrappers(cartpole_trajectory):
    first, wrapped, raw = cartpole_trajectory
    reference = Wrappers(0.99, 500)
    np.testing.assert_allclose(first, reference.reset(raw[0]), rtol=1e-9, atol=1e-9)
    ends = 0
    for (_, _, reward, done, final, following), (o, r, raw_done, o_next) in zip(
        wrapped, raw[1:], strict=True
    ):
        assert done == raw_done
        want_final, want_reward = reference.step(o, r, done)
        np.testing.assert_allclose(final, want_final, rtol=1e-9, atol=1e-9)
        np.testing.assert_allclose(reward, want_reward, rtol=1e-9)
        if done:
            ends += 1
            np.testing.assert_allclose(following, reference.reset(o_next), rtol=1e-9, atol=1e-9)
    assert ends >= 3


@eqx.filter_jit
def _stream_agent(agent_type, key, **kwargs):
    """A Stream agent on CartPole's wrapped observations with two hidden layers of 6,
    built in one compiled program (eagerly its sparse initialisation is dozens)."""
    return agent_type(5, 2, key=key, hidden_sizes=(6, 6), **kwargs)


@pytest.mark.slow
def test_stream_ac_equals_the_authors_update_in_float64(cartpole_trajectory):
    wrapped = cartpole_trajectory[1][:70]
    with jax.enable_x64(True):
        agent = _stream_agent(StreamAC, jax.random.key(2))
        agent = jax.tree.map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, agent
        )

        def leaves(net):
            return [
                np.array(a, np.float64).reshape(np.shape(a))
                for a in jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
            ]

        actor, critic = leaves(agent.policy_net), leaves(agent.value_net)
        update = eqx.filter_jit(lambda agent, t: agent.update(jax.random.key(0), t)[0])
        opt_pi = ObGD(actor, 1.0, 0.99, 0.8, 3.0)
        opt_v = ObGD(critic, 1.0, 0.99, 0.8, 2.0)
        ends = 0
        for s, a, r, done, s_next, _ in wrapped:
            # the wrapper's time feature makes a time limit terminal: done is terminated
            agent = update(agent, make_transition(s, a, r, s_next, done, False))
            stream_ac_update(actor, critic, opt_pi, opt_v, s, a, r, s_next, done, 0.99, 0.01)
            ends += done
            for got, want in zip(
                leaves(agent.policy_net) + leaves(agent.value_net), actor + critic, strict=False
            ):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert ends >= 2


@pytest.mark.slow
@pytest.mark.optimized
def test_stream_ac_learns_cartpole_reduced():
    """A reduced version of the replication (`alberta-eqx replicate stream-ac-cartpole`:
    10 seeds, 500,000 steps): 4 seeds, 40,000 steps; in the full run every seed's
    last-20-episode average passed 400 by step 31,000."""
    from alberta_eqx.replications.stream_ac import first_reaching, stream_ac_cartpole

    result = stream_ac_cartpole(num_seeds=4, num_steps=40_000, segment_steps=2_000)
    assert (first_reaching(result) >= 0).sum() >= 3


@pytest.mark.parametrize("target", ["q", "sarsa"])
@pytest.mark.slow
def test_stream_q_and_sarsa_equal_the_authors_update_in_float64(target, cartpole_trajectory):
    sarsa = target == "sarsa"
    wrapped = cartpole_trajectory[1][:70]
    with jax.enable_x64(True):
        agent = _stream_agent(StreamQ, jax.random.key(4), target=target, exploration_steps=40)
        agent = jax.tree.map(
            lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, agent
        )

        def leaves(net):
            return [
                np.array(a, np.float64)
                for a in jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
            ]

        net = leaves(agent.q_net)
        opt = ObGD(net, 1.0, 0.99, 0.8, 2.0)
        update = eqx.filter_jit(lambda agent, key, t: agent.update(key, t))
        cuts = 0
        for t, (s, a, r, done, s_next, _) in enumerate(wrapped):
            nongreedy = a != int(np.argmax(mlp(net, s)))
            agent, a_next = update(
                agent, jax.random.key(t), make_transition(s, a, r, s_next, done, False)
            )
            stream_q_update(
                net,
                opt,
                s,
                a,
                r,
                s_next,
                done,
                0.99,
                a_next=int(a_next) if sarsa else None,
                is_nongreedy=not sarsa and nongreedy,
            )
            cuts += done or (not sarsa and nongreedy)
            for got, want in zip(leaves(agent.q_net), net, strict=True):
                np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
        assert cuts >= 2
        # the schedule: epsilon from 1 to 0.01 over the first 40 actions
        epsilon = eqx.filter_jit(agent.epsilon)
        np.testing.assert_allclose(epsilon(jnp.asarray(20)), 1 - 0.99 * 20 / 40)
        np.testing.assert_allclose(epsilon(jnp.asarray(60)), 0.01)


# --- terminated and truncated transitions, per agent --------------------------------

# An ordinary transition, then one with the flags under test, then an ordinary one (which
# shows whether the trace was reset); the three flag cases give three different runs.
FLAGS = [(False, False), (True, False), (False, True)]
_update = eqx.filter_jit(lambda agent, key, t: agent.update(key, t))


def _three_transitions(observations, num_actions, seed):
    rng = np.random.default_rng(seed)
    actions = rng.integers(0, num_actions, 3)
    rewards = rng.normal(size=3)
    return [(observations[i], actions[i], rewards[i], observations[i + 1]) for i in range(3)]


def _flagged(steps, flags):
    """`(S, A, R, S', terminated, truncated)`: the middle transition flagged."""
    return [(*step, *(flags if i == 1 else (False, False))) for i, step in enumerate(steps)]


LINEAR_AGENTS = {
    "sarsa": lambda coder: SarsaLambda(coder, 3, 0.3 / 8, 0.8, 0.9, EpsilonGreedy(0.3)),
    "watkins_q": lambda coder: watkins_q_lambda(coder, 3, 0.3 / 8, 0.8, 0.9, EpsilonGreedy(0.3)),
    "differential_sarsa": lambda coder: differential_sarsa(
        coder, 3, 0.3 / 8, 0.2, 0.8, EpsilonGreedy(0.3)
    ),
    "differential_q": lambda coder: differential_q_learning(
        coder, 3, 0.3 / 8, 2.0, EpsilonGreedy(0.3)
    ),
}


@pytest.mark.parametrize("kind", LINEAR_AGENTS)
def test_linear_agents_read_terminated_and_truncated_as_the_book(kind):
    """A terminated transition bootstraps from nothing, a truncated one from `S'`; the
    traces are reset after either (the float64 box, from random weights)."""
    with jax.enable_x64(True):
        scale = 8 / np.array([1.7, 0.14])
        coder = TileCoder(8, jnp.asarray(scale, jnp.float64), 1024)
        start = LINEAR_AGENTS[kind](coder)
        w0 = np.random.default_rng(0).normal(size=1024)
        start = eqx.tree_at(lambda a: a.weights, start, jnp.asarray(w0))
        low, high = np.array([-1.2, -0.07]), np.array([0.5, 0.07])
        observations = low + (high - low) * np.random.default_rng(1).uniform(size=(4, 2))
        steps = _three_transitions(observations, 3, seed=2)
        watkins = start.target == "q"
        gamma, lam = float(start.discount), float(start.lambda_)
        beta = None if start.reward_rate is None else float(start.reward_rate.step_size)
        finals = []
        for flags in FLAGS:
            agent, trajectory, got = start, [], []
            for t, (s, a, r, s_next, terminated, truncated) in enumerate(_flagged(steps, flags)):
                transition = make_transition(s, a, r, s_next, terminated, truncated)
                agent, a_next = _update(agent, jax.random.key(t), transition)
                trajectory.append((s, a, r, terminated, truncated, s_next, int(a_next)))
                got.append(np.asarray(agent.weights))
            want, _ = reference_sarsa(
                trajectory, scale, 8, 1024, 0.3 / 8, lam, gamma, watkins, w=w0, beta=beta
            )
            np.testing.assert_allclose(got, want, rtol=1e-9, atol=1e-12)
            finals.append(got[-1])
        # each flag changes the run: the test tells bootstrapping and resetting apart
        # (at lambda = 0 no trace outlives a step, so truncation changes nothing)
        for i, j in [(0, 1), (1, 2)] + ([(0, 2)] if lam > 0 else []):
            assert np.abs(finals[i] - finals[j]).max() > 1e-6, (i, j)
        if lam == 0:
            np.testing.assert_array_equal(finals[0], finals[2])


def _float64_leaves(net):
    return [
        np.array(a, np.float64).reshape(np.shape(a))
        for a in jax.tree.leaves(eqx.filter(net, eqx.is_inexact_array))
    ]


def _as_float64(agent):
    return jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, agent)


@pytest.mark.parametrize("kind", ["ac", "q", "sarsa"])
def test_stream_agents_read_terminated_and_truncated_as_the_authors(kind):
    """Stream AC, Q and SARSA against the authors' updates with Gymnasium's flags: no
    bootstrap from a terminal `S'`, a bootstrap from a truncated one, and the traces
    reset after either."""
    with jax.enable_x64(True):
        # dense weights: with the sparse ones only the output bias learns here, and
        # ObGD's bounded step along one direction does not depend on the trace's size
        if kind == "ac":
            start = _stream_agent(StreamAC, jax.random.key(2), sparsity=0.0)
        else:
            # a key whose greedy actions are the recorded ones: Q cuts no trace early
            start = _stream_agent(StreamQ, jax.random.key(8), target=kind, sparsity=0.0)
        start = _as_float64(start)
        observations = np.random.default_rng(3).normal(size=(4, 5))
        steps = _three_transitions(observations, 2, seed=4)
        finals = []
        for flags in FLAGS:
            agent = start
            if kind == "ac":
                actor, critic = _float64_leaves(agent.policy_net), _float64_leaves(agent.value_net)
                opt_pi, opt_v = ObGD(actor, 1.0, 0.99, 0.8, 3.0), ObGD(critic, 1.0, 0.99, 0.8, 2.0)
            else:
                net = _float64_leaves(agent.q_net)
                opt = ObGD(net, 1.0, 0.99, 0.8, 2.0)
            for t, (s, a, r, s_next, terminated, truncated) in enumerate(_flagged(steps, flags)):
                transition = make_transition(s, a, r, s_next, terminated, truncated)
                if kind == "ac":
                    agent, _ = _update(agent, jax.random.key(t), transition)
                    stream_ac_update(
                        actor,
                        critic,
                        opt_pi,
                        opt_v,
                        s,
                        a,
                        r,
                        s_next,
                        terminated,
                        0.99,
                        0.01,
                        truncated=truncated,
                    )
                    got, want = (
                        _float64_leaves(agent.policy_net) + _float64_leaves(agent.value_net),
                        actor + critic,
                    )
                else:
                    nongreedy = a != int(np.argmax(mlp(net, s)))
                    agent, a_next = _update(agent, jax.random.key(t), transition)
                    stream_q_update(
                        net,
                        opt,
                        s,
                        a,
                        r,
                        s_next,
                        terminated,
                        0.99,
                        a_next=int(a_next) if kind == "sarsa" else None,
                        is_nongreedy=kind == "q" and nongreedy,
                        truncated=truncated,
                    )
                    got, want = _float64_leaves(agent.q_net), net
                for g, w in zip(got, want, strict=True):
                    np.testing.assert_allclose(g, w, rtol=1e-6, atol=1e-7)
            finals.append(np.concatenate([g.ravel() for g in got]))
        for i, j in [(0, 1), (0, 2), (1, 2)]:
            assert np.abs(finals[i] - finals[j]).max() > 1e-6, (i, j)


def test_bad_transition_fields_are_named():
    coder = TileCoder(4, [1.0, 1.0], 256)
    agent = SarsaLambda(coder, 3, 0.1)
    good = make_transition([0.1, 0.2], 1, 1.0, [0.2, 0.3], False, False)
    bad = {
        "action": (jnp.asarray(1.0), TypeError),
        "reward": (jnp.ones(2), ValueError),
        "terminated": (jnp.asarray(0.0), TypeError),
        "truncated": (jnp.asarray([False, True]), TypeError),
    }
    for field, (value, error) in bad.items():
        with pytest.raises(error, match=f"^{field} must"):
            agent.update(jax.random.key(0), good._replace(**{field: value}))
    with pytest.raises(TypeError, match="transition"):
        # (the runtime type checker of the test suite, or the agent, refuses it)
        agent.update(jax.random.key(0), tuple(good))  # type: ignore[arg-type]
    # a bad target: the agent's ValueError, or the suite's runtime type checker's
    with pytest.raises((ValueError, TypeError), match="target"):
        SarsaLambda(coder, 3, 0.1, target="watkins")  # type: ignore[arg-type]
    with pytest.raises((ValueError, TypeError), match="target"):
        StreamQ(5, 2, key=jax.random.key(0), target="expected_sarsa")  # type: ignore[arg-type]


def test_streaming_wrapper_reports_its_time_limit_as_terminal():
    """With the time in the observation the limit is part of the state, so a truncated
    episode is terminated too; without a time feature it stays only truncated."""
    import gymnax

    base, params = gymnax.make("CartPole-v1")
    params = params.replace(max_steps_in_episode=3)
    for time_limit, terminal in [(3, True), (None, False)]:
        env = StreamingWrapper(base, 0.99, time_limit)
        _, state = eqx.filter_jit(env.reset)(jax.random.key(0), params)
        step = eqx.filter_jit(env.step)  # one program: eagerly each operation is one
        flags = []
        for t in range(3):
            _, state, _, terminated, truncated, _ = step(
                jax.random.key(t), state, jnp.asarray(t % 2), params
            )
            flags.append((bool(terminated), bool(truncated)))
        assert flags == [(False, False), (False, False), (terminal, True)]
