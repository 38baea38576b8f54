"""The Stream agents with networks given to them (the MinAtar network, an MLP for a
Gaussian policy): construction, configuration, trace cutting, and the Gaussian
Stream AC(lambda) against a float64 NumPy transcription of the authors' update."""

import json

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.config import from_config, to_config
from alberta_eqx.control import StreamAC, StreamQ
from alberta_eqx.nn import MLP, MinAtarNetwork
from tests._reference.minatar import gaussian_log_prob_entropy
from tests._reference.stream import ObGD, mlp, numerical_gradient
from tests.control._transitions import make_transition

SHAPE = (5, 5, 2)  # a small MinAtar-like observation: the programs stay small
HIDDEN = (5,)  # the MLP agents' hidden layer: one size, so that their programs are shared


def _net(out_size, seed=0):
    return MinAtarNetwork(SHAPE, out_size, key=jax.random.key(seed), hidden_size=8, channels=3)


def _arrays(module):
    return jax.tree.leaves(eqx.filter(module, eqx.is_array))


@pytest.mark.slow
def test_agents_take_networks_and_their_config_rebuilds_them():
    key = jax.random.key(7)
    # built and rebuilt in compiled programs: eagerly each operation of the networks'
    # sparse initialisation is one
    agents = eqx.filter_jit(
        lambda key: [
            StreamQ(key=key, network=_net(3), target="sarsa", exploration_steps=100),
            StreamAC(key=key, policy_network=_net(3), value_network=_net("scalar", 1)),
        ]
    )(key)
    for agent in agents:
        assert agent.num_actions == 3
        config = to_config(agent)
        loaded = json.loads(json.dumps(config))
        rebuilt = eqx.filter_jit(lambda key, loaded=loaded: from_config(loaded, key=key))(key)
        assert to_config(rebuilt) == config
        # the agent draws the weights from its key: the same agent again
        for a, b in zip(_arrays(agent), _arrays(rebuilt), strict=True):
            np.testing.assert_array_equal(a, b)
    q = agents[0].q_net
    assert isinstance(q, MinAtarNetwork)
    # sparse (the authors' initialize_weights), whatever weights the network came with
    np.testing.assert_array_equal(np.sum(np.asarray(q.conv.weight) == 0), 3 * 17)
    np.testing.assert_array_equal(q.output.bias, 0.0)
    # an MLP agent's config rebuilds it too
    mlp_agent = StreamQ(4, 2, key=key, hidden_sizes=HIDDEN)
    rebuilt = from_config(to_config(mlp_agent), key=key)
    for a, b in zip(_arrays(mlp_agent.q_net), _arrays(rebuilt.q_net), strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.slow
def test_bad_network_arguments_are_named():
    key = jax.random.key(0)
    with pytest.raises(ValueError, match="network must have out_size=2"):
        StreamQ(num_actions=2, key=key, network=_net(3))
    with pytest.raises(ValueError, match="value_network must have out_size='scalar'"):
        StreamAC(key=key, policy_network=_net(3), value_network=_net(3))
    with pytest.raises(ValueError, match="all of the networks"):
        StreamAC(key=key, policy_network=_net(3))
    with pytest.raises(ValueError, match="leave them out"):
        StreamQ(4, key=key, network=_net(3))
    with pytest.raises(ValueError, match="feature_dim"):
        StreamQ(num_actions=3, key=key)
    with pytest.raises(ValueError, match="even"):
        StreamAC(
            key=key,
            policy_network=MLP(3, 3, (), key=key),
            value_network=MLP(3, "scalar", (), key=key),
            distribution="gaussian",
        )
    with pytest.raises((ValueError, TypeError), match="distribution"):
        StreamAC(3, 2, key=key, distribution="beta")  # type: ignore[arg-type]


_update = eqx.filter_jit(lambda agent, key, t: agent.update(key, t))
_greedy = eqx.filter_jit(lambda net, observation: jnp.argmax(net(observation)))
_act = eqx.filter_jit(lambda agent, key, observation: agent.act(key, observation))


def _trace_size(trace):
    # in NumPy: eagerly in JAX each leaf's sum is a compiled program
    return sum(float(np.abs(np.asarray(z)).sum()) for z in jax.tree.leaves(trace))


def test_q_cuts_its_trace_after_an_exploratory_action_and_sarsa_does_not():
    """Stream Q sets its trace to 0 after updating on a non-greedy action (the authors'
    `is_nongreedy`), Stream SARSA keeps it; both set it to 0 after an episode's end,
    terminated or truncated."""
    s, s_next = np.linspace(-1, 1, 4), np.linspace(1, -1, 4)
    for target in ("q", "sarsa"):
        agent = StreamQ(4, 2, key=jax.random.key(1), hidden_sizes=HIDDEN, target=target)
        greedy = int(_greedy(agent.q_net, jnp.asarray(s)))
        for action, flags, kept in [
            (greedy, (False, False), True),
            (1 - greedy, (False, False), target == "sarsa"),
            (greedy, (True, False), False),
            (greedy, (False, True), False),
        ]:
            new, _ = _update(
                agent, jax.random.key(0), make_transition(s, action, 1.0, s_next, *flags)
            )
            assert (_trace_size(new.trace) > 0) == kept, (target, action, flags)


def test_gaussian_stream_ac_equals_the_authors_update_in_float64(x64):
    """`stream_ac_continuous.py`'s update: the actor's loss `-log N(a; mu, std).sum() -
    c sign(delta) H.sum()`, ObGD on both networks, the traces reset at an end."""
    d, n = 2, 3

    @eqx.filter_jit  # one compiled program: eagerly the initialisation is dozens
    def build(key):
        return StreamAC(
            key=key,
            policy_network=MLP(n, 2 * d, (5,), key=key, dtype=jnp.float64),
            value_network=MLP(n, "scalar", (5,), key=key, dtype=jnp.float64),
            distribution="gaussian",
            sparsity=0.0,
        )

    agent = build(jax.random.key(3))
    agent = jax.tree.map(lambda a: a.astype(jnp.float64) if eqx.is_inexact_array(a) else a, agent)

    def leaves(net):
        return [np.array(a, np.float64) for a in _arrays(net)]

    actor, critic = leaves(agent.policy_net), leaves(agent.value_net)
    opt_pi, opt_v = ObGD(actor, 1.0, 0.99, 0.8, 3.0), ObGD(critic, 1.0, 0.99, 0.8, 2.0)
    rng = np.random.default_rng(0)
    observations = rng.normal(size=(6, n))
    for t in range(5):
        s, s_next = observations[t], observations[t + 1]
        action = np.asarray(_act(agent, jax.random.key(t), jnp.asarray(s)))
        assert action.shape == (d,) and action.dtype == np.float64
        r, done = rng.normal(), t == 2
        agent, _ = _update(agent, jax.random.key(t), make_transition(s, action, r, s_next, done))
        v_s, v_next = mlp(critic, s)[0], mlp(critic, s_next)[0]
        delta = r + 0.99 * v_next * (0 if done else 1) - v_s

        def actor_loss(params, s=s, action=action, delta=delta):
            log_prob, entropy = gaussian_log_prob_entropy(mlp(params, s), action)
            return -log_prob - 0.01 * entropy * np.sign(delta)

        grads_pi = numerical_gradient(actor_loss, actor)
        grads_v = numerical_gradient(lambda p, s=s: -mlp(p, s)[0], critic)
        opt_pi.step(actor, grads_pi, delta, done)
        opt_v.step(critic, grads_v, delta, done)
        for got, want in zip(
            leaves(agent.policy_net) + leaves(agent.value_net), actor + critic, strict=True
        ):
            np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-7)
