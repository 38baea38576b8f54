r"""Stream AC(lambda) (Elsayed, Vasan and Mahmood 2024, "Streaming Deep Reinforcement
Learning Finally Works", Algorithm 4 and the authors' `stream_ac_discrete.py`): an
actor and a critic, each an MLP with parameterless LayerNorm and LeakyReLU,
sparse-initialised, each updated by ObGD from every transition with one TD error:

    delta = R + gamma (1 - done) v(S') - v(S)
    critic:  ObGD(kappa_value) on  grad v(S)
    actor:   ObGD(kappa_policy) on grad [log pi(A|S) + c sign(delta) H(pi(.|S))]
    traces:  z <- gamma lambda z + grad (in ObGD); z <- 0 after an episode's last update

`done` is the end of the episode, a time limit included, as in the authors' script
(their time-in-episode feature makes a time limit part of the state). ObGD is
`alberta_eqx._rules.obgd`, the one implementation `alberta_eqx.optax.obgd` uses too.
The next action is drawn from the updated policy, as the authors' loop draws it.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks, _rules
from alberta_eqx._rules import TraceState
from alberta_eqx.control._loop import AbstractControlAgent
from alberta_eqx.nn import MLP


def _params(net: eqx.Module):
    return eqx.filter(net, eqx.is_inexact_array)


class StreamAC(AbstractControlAgent):
    """Stream AC(lambda) for discrete actions, with the authors' defaults.

    **Arguments:**

    - `observation_size`: the length of the (wrapped) observation.
    - `num_actions`: how many actions.
    - `key`: initialises both networks.
    - `hidden_sizes`: the hidden layers' widths (the authors: two of 32).
    - `step_size`: ObGD's `alpha` (1.0).
    - `discount`: `gamma` (0.99).
    - `trace_decay`: `lambda` (0.8).
    - `kappa_policy`, `kappa_value`: ObGD's bounds (3 and 2).
    - `entropy_coefficient`: `c` (0.01).
    - `sparsity`: the sparse initialisation's fraction of zeroed weights (0.9).
    """

    policy_net: MLP
    value_net: MLP
    policy_trace: TraceState
    value_trace: TraceState
    step_size: Float[Array, ""]
    discount: Float[Array, ""]
    trace_decay: Float[Array, ""]
    kappa_policy: Float[Array, ""]
    kappa_value: Float[Array, ""]
    entropy_coefficient: Float[Array, ""]

    def __init__(
        self,
        observation_size: int,
        num_actions: int,
        *,
        key: PRNGKeyArray,
        hidden_sizes: tuple[int, ...] = (32, 32),
        step_size: ArrayLike = 1.0,
        discount: ArrayLike = 0.99,
        trace_decay: ArrayLike = 0.8,
        kappa_policy: ArrayLike = 3.0,
        kappa_value: ArrayLike = 2.0,
        entropy_coefficient: ArrayLike = 0.01,
        sparsity: float = 0.9,
    ):
        num_actions = _checks.positive_int("num_actions", num_actions)
        policy_key, value_key = jax.random.split(key)
        self.policy_net = MLP(
            observation_size, num_actions, hidden_sizes, key=policy_key, sparsity=sparsity
        )
        self.value_net = MLP(
            observation_size, "scalar", hidden_sizes, key=value_key, sparsity=sparsity
        )
        self.policy_trace = _rules.trace_init(_params(self.policy_net))
        self.value_trace = _rules.trace_init(_params(self.value_net))
        self.step_size = _checks.positive("step_size", step_size)
        self.discount = _checks.in_unit_interval("discount", discount)
        self.trace_decay = _checks.non_negative("trace_decay", trace_decay)
        _checks.ordered("trace_decay", self.trace_decay, "1", jnp.ones(()))
        self.kappa_policy = _checks.positive("kappa_policy", kappa_policy)
        self.kappa_value = _checks.positive("kappa_value", kappa_value)
        self.entropy_coefficient = _checks.non_negative("entropy_coefficient", entropy_coefficient)

    def act(self, key: PRNGKeyArray, observation: Array) -> Int[Array, ""]:
        return jax.random.categorical(key, self.policy_net(observation))

    def update(
        self,
        key: PRNGKeyArray,
        observation: Array,
        action: Int[Array, ""],
        reward: Float[Array, ""],
        terminated: Bool[Array, ""],
        next_observation: Array,
        episode_end: Bool[Array, ""],
    ) -> tuple["StreamAC", Int[Array, ""]]:
        params_v, static_v = eqx.partition(self.value_net, eqx.is_inexact_array)
        params_pi, static_pi = eqx.partition(self.policy_net, eqx.is_inexact_array)

        def value(params, x):
            return eqx.combine(params, static_v)(x)

        v, grad_v = jax.value_and_grad(value)(params_v, observation)
        v_next = value(params_v, next_observation)
        # the authors' done_mask: no bootstrap after the episode's last step
        delta = reward + self.discount * jnp.where(episode_end, 0, v_next) - v

        def objective(params):
            logits = eqx.combine(params, static_pi)(observation)
            log_pi = jax.nn.log_softmax(logits)
            entropy = -jnp.sum(jnp.exp(log_pi) * log_pi)
            return log_pi[action] + self.entropy_coefficient * jnp.sign(delta) * entropy

        grad_pi = jax.grad(objective)(params_pi)
        decay = self.discount * self.trace_decay
        # Algorithm 3 (ObGD) for both, with the same delta
        update_pi, policy_trace, _ = _rules.obgd(
            self.policy_trace, delta, grad_pi, decay, self.step_size, self.kappa_policy
        )
        update_v, value_trace, _ = _rules.obgd(
            self.value_trace, delta, grad_v, decay, self.step_size, self.kappa_value
        )
        cut = lambda trace: jax.tree.map(lambda z: jnp.where(episode_end, 0, z), trace)  # noqa: E731
        new = eqx.tree_at(
            lambda s: (s.policy_net, s.value_net, s.policy_trace, s.value_trace),
            self,
            (
                eqx.apply_updates(self.policy_net, update_pi),
                eqx.apply_updates(self.value_net, update_v),
                cut(policy_trace),
                cut(value_trace),
            ),
        )
        return new, new.act(key, next_observation)
