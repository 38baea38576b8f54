r"""Stream AC(lambda) (Elsayed, Vasan and Mahmood 2024, "Streaming Deep Reinforcement
Learning Finally Works", Algorithm 4 and the authors' `stream_ac_discrete.py`): an
actor and a critic, each an MLP with parameterless LayerNorm and LeakyReLU,
sparse-initialised, each updated by ObGD from every transition with one TD error:

    delta = R + gamma (1 - terminated) v(S') - v(S)
    critic:  ObGD(kappa_value) on  grad v(S)
    actor:   ObGD(kappa_policy) on grad [log pi(A|S) + c sign(delta) H(pi(.|S))]
    traces:  z <- gamma lambda z + grad (in ObGD); z <- 0 after an episode's last update

A truncated transition bootstraps from `S'` (`ControlTransition`). The authors' script
bootstraps from nothing after a time limit too (`done` in their `done_mask`): their
time-in-episode feature makes the limit part of the state, and `StreamingWrapper` with
a time feature says so by reporting the limit as a termination. ObGD is
`alberta_eqx._rules.obgd`, the one implementation `alberta_eqx.optax.obgd` uses too.
The next action is drawn from the updated policy, as the authors' loop draws it.

**Reward centering** (Naik, Wan, Tomar and Sutton 2024): with a `RewardRate` `Rbar`
(`reward_rate`) every TD error of both agents uses `R - Rbar` in place of `R`, and
`Rbar` is updated after every transition, from that TD error (value-based centering)
or from the reward (simple centering), with its own step-size:

    delta = R - Rbar + gamma (1 - terminated) v(S') - v(S)      (Q: q, as below)
    Rbar <- Rbar + beta delta            (or Rbar + beta (R - Rbar))

Every agent takes its networks as arguments (an `alberta_eqx.nn.MLP` for vector
observations, `alberta_eqx.nn.MinAtarNetwork` for MinAtar's images) or builds MLPs from
`feature_dim` and `hidden_sizes`; either way it draws their weights from its own `key`
with `sparse_network`, as the authors' `initialize_weights` does: a network given is an
architecture, and `to_config` writes it (without weights) so that `from_config` with
the same key rebuilds the same agent.
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks, _rules
from alberta_eqx._checks import ArrayLike
from alberta_eqx._rules import TraceState
from alberta_eqx.control._loop import (
    AbstractControlAgent,
    ControlTransition,
    check_target,
    check_transition,
    td_hyperparameters,
)
from alberta_eqx.nn import MLP, sparse_network
from alberta_eqx.td import RewardRate, centered_reward, check_reward_rate, with_updated_rate

_DEFAULT_HIDDEN = (32, 32)


def _params(net: eqx.Module):
    return eqx.filter(net, eqx.is_inexact_array)


def _network(
    name: str,
    network: object,
    out_size: int | Literal["scalar"] | None,
    *,
    key: PRNGKeyArray,
    sparsity: float,
) -> eqx.Module:
    """The network argument `name`, checked (a callable `eqx.Module` with an
    `out_size`, equal to `out_size` when given) and sparse-initialised from `key`."""
    if not isinstance(network, eqx.Module) or not callable(network):
        raise TypeError(
            f"{name} must be a network (a callable eqx.Module such as alberta_eqx.nn.MLP "
            f"or alberta_eqx.nn.MinAtarNetwork), got {type(network).__name__}"
        )
    if not hasattr(network, "out_size"):
        raise TypeError(f"{name} must have an out_size, got a {type(network).__name__}")
    if out_size is not None and network.out_size != out_size:
        raise ValueError(f"{name} must have out_size={out_size!r}, got {network.out_size!r}")
    return sparse_network(network, key=key, sparsity=sparsity)


def _networks(
    given: dict[str, object | None],
    feature_dim: int | None,
    hidden_sizes: tuple[int, ...] | None,
    out_sizes: dict[str, int | Literal["scalar"]],
    *,
    key: PRNGKeyArray,
    sparsity: float,
) -> dict[str, eqx.Module]:
    """The agent's networks: the ones given (all of them, then without `feature_dim`
    and `hidden_sizes`), or MLPs of `feature_dim` inputs and `hidden_sizes` (default
    two of 32); sparse-initialised from `key`, one key per network."""
    names = list(given)
    if all(net is None for net in given.values()):
        if feature_dim is None:
            raise ValueError(f"give feature_dim (for MLPs) or the networks ({', '.join(names)})")
        hidden = _DEFAULT_HIDDEN if hidden_sizes is None else hidden_sizes
        built: dict[str, object] = {
            name: MLP(feature_dim, out_sizes[name], hidden, key=key) for name in names
        }
    elif any(net is None for net in given.values()):
        raise ValueError(f"give all of the networks ({', '.join(names)}) or none")
    elif feature_dim is not None or hidden_sizes is not None:
        raise ValueError(
            "feature_dim and hidden_sizes build MLPs: leave them out when giving the networks"
        )
    else:
        built = dict(given)
    keys = jax.random.split(key, len(names))
    return {
        name: _network(name, built[name], out_sizes[name], key=k, sparsity=sparsity)
        for name, k in zip(names, keys, strict=True)
    }


class _AbstractStreamAgent(AbstractControlAgent):
    """What the Stream agents share: ObGD along eligibility traces with the same
    `alpha`, `gamma` and `lambda`."""

    step_size: eqx.AbstractVar[Float[Array, ""]]
    discount: eqx.AbstractVar[Float[Array, ""]]
    lambda_: eqx.AbstractVar[Float[Array, ""]]
    reward_rate: eqx.AbstractVar[RewardRate | None]
    sparsity: eqx.AbstractVar[float]

    def _centered(self, reward: Float[Array, ""]) -> Float[Array, ""]:
        """The reward a TD error uses: `R`, or `R - Rbar` with reward centering."""
        return centered_reward(self.reward_rate, reward)

    def _with_rate(
        self, reward: Float[Array, ""], delta: Float[Array, ""]
    ) -> "_AbstractStreamAgent":
        """This agent with `Rbar` updated after a transition (module docstring)."""
        return with_updated_rate(self, reward, delta)

    def _obgd(
        self,
        net: eqx.Module,
        trace: TraceState,
        delta: Float[Array, ""],
        grad: eqx.Module,
        kappa: Float[Array, ""],
        *,
        cut: Bool[Array, ""],
    ) -> tuple[eqx.Module, TraceState]:
        """One ObGD update of `net` along its trace (Algorithm 3, `_rules.obgd`, with
        `z <- gamma lambda z + grad`), and the trace set to 0 where `cut` (after an
        episode's last update; Stream Q also after an exploratory action)."""
        decay = self.discount * self.lambda_
        updates, trace, _ = _rules.obgd(trace, delta, grad, decay, self.step_size, kappa)
        trace = jax.tree.map(lambda z: jnp.where(cut, 0, z), trace)
        return eqx.apply_updates(net, updates), trace


_DISTRIBUTIONS = ("categorical", "gaussian")


class StreamAC(_AbstractStreamAgent):
    """Stream AC(lambda), with the authors' defaults: for discrete actions a softmax
    policy (`stream_ac_discrete.py`, `stream_ac_discrete_minatar.py`), for continuous
    ones a Gaussian policy (`stream_ac_continuous.py`).

    The Gaussian policy's network has `2 * num_actions` outputs: the means, and the
    standard deviations through softplus (the authors' two heads `linear_mu` and
    `linear_std` on the same hidden layer, as one layer). The action drawn is not
    clipped: the environment clips it (gymnax's Pendulum does; the authors'
    `ClipAction`), and the update reads the action drawn. Log-probabilities and
    entropies of the action's dimensions are summed.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import ControlTransition, StreamAC

    agent = StreamAC(3, 2, key=jax.random.key(0), hidden_sizes=(8,))  # 3 features, 2 actions
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    action = agent.act(jax.random.key(1), x)  # drawn from the softmax policy
    no = jnp.asarray(False)
    transition = ControlTransition(x, action, jnp.asarray(1.0), x_next, no, no)  # (S, A, R, S')
    agent, next_action = agent.update(jax.random.key(2), transition)  # ObGD steps; A' for S'
    ```

    **Arguments:**

    - `feature_dim`: the length of the (wrapped) observation, the MLPs' input; leave
      it out when giving the networks.
    - `num_actions`: how many actions (categorical), or the action's dimension
      (Gaussian); with networks given, read from the policy network (and checked
      against it when given).
    - `key`: initialises both networks.
    - `policy_network`, `value_network`: the networks (e.g.
      `alberta_eqx.nn.MinAtarNetwork`), with `num_actions` (categorical) or
      `2 * num_actions` (Gaussian) outputs and a scalar output; their weights are
      drawn again from `key` (`sparse_network`). None (the default): MLPs.
    - `hidden_sizes`: the MLPs' hidden layers (default two of 32, the authors'
      CartPole script; their continuous-control script uses two of 128).
    - `step_size`: ObGD's `alpha` (1.0).
    - `discount`: `gamma` (0.99).
    - `lambda_`: `lambda` (0.8).
    - `kappa_policy`, `kappa_value`: ObGD's bounds (3 and 2).
    - `entropy_coefficient`: `c` (0.01).
    - `sparsity`: the sparse initialisation's fraction of zeroed weights (0.9).
    - `reward_rate`: a `RewardRate` for reward centering (module docstring), or None
      (the authors' agent).
    - `distribution`: `"categorical"` (discrete actions) or `"gaussian"`.
    """

    policy_net: eqx.Module
    value_net: eqx.Module
    policy_trace: TraceState
    value_trace: TraceState
    step_size: Float[Array, ""]
    discount: Float[Array, ""]
    lambda_: Float[Array, ""]
    kappa_policy: Float[Array, ""]
    kappa_value: Float[Array, ""]
    entropy_coefficient: Float[Array, ""]
    reward_rate: RewardRate | None
    num_actions: int = eqx.field(static=True)
    sparsity: float = eqx.field(static=True)
    distribution: Literal["categorical", "gaussian"] = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int | None = None,
        num_actions: int | None = None,
        *,
        key: PRNGKeyArray,
        policy_network: eqx.Module | None = None,
        value_network: eqx.Module | None = None,
        hidden_sizes: tuple[int, ...] | None = None,
        step_size: ArrayLike = 1.0,
        discount: ArrayLike = 0.99,
        lambda_: ArrayLike = 0.8,
        kappa_policy: ArrayLike = 3.0,
        kappa_value: ArrayLike = 2.0,
        entropy_coefficient: ArrayLike = 0.01,
        sparsity: float = 0.9,
        distribution: Literal["categorical", "gaussian"] = "categorical",
        reward_rate: RewardRate | None = None,
    ):
        if distribution not in _DISTRIBUTIONS:
            raise ValueError(f"distribution must be one of {_DISTRIBUTIONS}, got {distribution!r}")
        self.distribution = distribution
        per_action = 2 if distribution == "gaussian" else 1
        if num_actions is None:
            if policy_network is None:
                raise ValueError("give num_actions (for MLPs) or the networks")
            out = getattr(policy_network, "out_size", None)
            if not isinstance(out, int) or out % per_action:
                raise ValueError(
                    f"policy_network must have {'an even' if per_action == 2 else 'an'} "
                    f"integer out_size, got {out!r}"
                )
            num_actions = out // per_action
        self.num_actions = _checks.positive_int("num_actions", num_actions)
        nets = _networks(
            {"policy_network": policy_network, "value_network": value_network},
            feature_dim,
            hidden_sizes,
            {"policy_network": per_action * self.num_actions, "value_network": "scalar"},
            key=key,
            sparsity=sparsity,
        )
        self.sparsity = float(sparsity)
        self.policy_net, self.value_net = nets["policy_network"], nets["value_network"]
        self.policy_trace = _rules.trace_init(_params(self.policy_net))
        self.value_trace = _rules.trace_init(_params(self.value_net))
        self.step_size, self.discount, self.lambda_ = td_hyperparameters(
            step_size, discount, lambda_
        )
        self.kappa_policy = _checks.positive("kappa_policy", kappa_policy)
        self.kappa_value = _checks.positive("kappa_value", kappa_value)
        self.entropy_coefficient = _checks.non_negative("entropy_coefficient", entropy_coefficient)
        self.reward_rate = check_reward_rate(reward_rate, self.discount.dtype)

    def config_arguments(self) -> dict:
        """The networks (their architectures: the agent draws their weights from its
        key) in place of `feature_dim` and `hidden_sizes` (`alberta_eqx.config`)."""
        return {
            "feature_dim": None,
            "hidden_sizes": None,
            "policy_network": self.policy_net,
            "value_network": self.value_net,
        }

    def _log_prob_entropy(
        self, outputs: Array, action: Array
    ) -> tuple[Float[Array, ""], Float[Array, ""]]:
        """`log pi(action)` and the policy's entropy from the policy network's outputs."""
        if self.distribution == "categorical":
            log_pi = jax.nn.log_softmax(outputs)
            return log_pi[action], -jnp.sum(jnp.exp(log_pi) * log_pi)
        mean, std = outputs[: self.num_actions], jax.nn.softplus(outputs[self.num_actions :])
        log_std = jnp.log(std)
        log_2pi = jnp.log(2 * jnp.pi)
        log_prob = -((action - mean) ** 2) / (2 * std**2) - log_std - 0.5 * log_2pi
        return jnp.sum(log_prob), jnp.sum(0.5 + 0.5 * log_2pi + log_std)

    def act(self, key: PRNGKeyArray, observation: Array) -> Array:
        outputs = self.policy_net(observation)
        if self.distribution == "categorical":
            return jax.random.categorical(key, outputs)
        mean, std = outputs[: self.num_actions], jax.nn.softplus(outputs[self.num_actions :])
        return mean + std * jax.random.normal(key, mean.shape, mean.dtype)

    def update(self, key: PRNGKeyArray, transition: ControlTransition) -> tuple["StreamAC", Array]:
        t = check_transition(
            transition, self.discount.dtype, continuous=self.distribution == "gaussian"
        )
        params_v, static_v = eqx.partition(self.value_net, eqx.is_inexact_array)
        params_pi, static_pi = eqx.partition(self.policy_net, eqx.is_inexact_array)

        def value(params, x):
            return eqx.combine(params, static_v)(x)

        v, grad_v = jax.value_and_grad(value)(params_v, t.observation)
        v_next = value(params_v, t.next_observation)
        # the authors' done_mask: no bootstrap from a terminal state; centered: R - Rbar
        delta = self._centered(t.reward) + self.discount * jnp.where(t.terminated, 0, v_next) - v

        def objective(params):
            outputs = eqx.combine(params, static_pi)(t.observation)
            log_pi, entropy = self._log_prob_entropy(outputs, t.action)
            return log_pi + self.entropy_coefficient * jnp.sign(delta) * entropy

        grad_pi = jax.grad(objective)(params_pi)
        # Algorithm 3 (ObGD) for both, with the same delta
        policy_net, policy_trace = self._obgd(
            self.policy_net,
            self.policy_trace,
            delta,
            grad_pi,
            self.kappa_policy,
            cut=t.episode_end,
        )
        value_net, value_trace = self._obgd(
            self.value_net, self.value_trace, delta, grad_v, self.kappa_value, cut=t.episode_end
        )
        new = eqx.tree_at(
            lambda s: (s.policy_net, s.value_net, s.policy_trace, s.value_trace),
            self,
            (policy_net, value_net, policy_trace, value_trace),
        )._with_rate(t.reward, delta)
        return new, new.act(key, t.next_observation)


class StreamQ(_AbstractStreamAgent):
    """Stream Q(lambda) and, with `target="sarsa"`, Stream SARSA(lambda) (Elsayed et al.
    2024; the authors' `stream_q.py` and `stream_sarsa.py`): one MLP `q(s, .)`
    (parameterless LayerNorm, LeakyReLU, sparse initialisation) updated by ObGD on
    `grad q(S, A)` with

        delta = R + gamma (1 - terminated) max_a q(S', a) - q(S, A)     (Q)
        delta = R + gamma (1 - terminated) q(S', A') - q(S, A)          (SARSA)

    epsilon-greedy actions (`argmax` for the greedy one) with epsilon falling linearly
    from `epsilon_start` to `epsilon_end` over the first `exploration_steps` actions;
    the trace is set to 0 after an episode's last update and, for Q, after the update
    of an exploratory action (`A` not the argmax, the authors' `is_nongreedy`). SARSA
    draws `A'` before its update, Q draws the next action after it, as their loops do.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import ControlTransition, StreamQ

    # Stream Q(lambda): epsilon falls from 1 to 0.01 over the first 100 actions
    agent = StreamQ(3, 2, key=jax.random.key(0), hidden_sizes=(8,), exploration_steps=100)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    action = agent.act(jax.random.key(1), x)
    no = jnp.asarray(False)
    transition = ControlTransition(x, action, jnp.asarray(1.0), x_next, no, no)  # (S, A, R, S')
    agent, next_action = agent.update(jax.random.key(2), transition)  # an ObGD step; A' for S'
    ```

    **Arguments:**

    - `feature_dim`, `num_actions`, `key`, `hidden_sizes`, `step_size`,
      `discount`, `lambda_`, `kappa`, `sparsity`: as `StreamAC`'s (`kappa` 2).
    - `network`: the network `q(s, .)` with `num_actions` outputs (e.g.
      `alberta_eqx.nn.MinAtarNetwork`), its weights drawn again from `key`
      (`sparse_network`); None (the default): an MLP of `feature_dim` inputs and
      `hidden_sizes`. With a network, `num_actions` is read from it.
    - `exploration_steps`: the schedule's length (the authors: 5% of the run), at
      most `2**30`: the agent's action count `steps` saturates at `2**31 - 1`
      rather than wrapping, and epsilon stays at `epsilon_end` from there on.
    - `epsilon_start`, `epsilon_end`: 1.0 and 0.01.
    - `target`: `"q"` (Stream Q(lambda)) or `"sarsa"` (Stream SARSA(lambda)).
    - `reward_rate`: a `RewardRate` for reward centering (module docstring), or None
      (the authors' agent).
    """

    q_net: eqx.Module
    trace: TraceState
    steps: Int[Array, ""]
    step_size: Float[Array, ""]
    discount: Float[Array, ""]
    lambda_: Float[Array, ""]
    kappa: Float[Array, ""]
    epsilon_start: Float[Array, ""]
    epsilon_end: Float[Array, ""]
    exploration_steps: Float[Array, ""]
    reward_rate: RewardRate | None
    num_actions: int = eqx.field(static=True)
    sparsity: float = eqx.field(static=True)
    target: Literal["sarsa", "q"] = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int | None = None,
        num_actions: int | None = None,
        *,
        key: PRNGKeyArray,
        network: eqx.Module | None = None,
        exploration_steps: ArrayLike = 25_000,
        hidden_sizes: tuple[int, ...] | None = None,
        step_size: ArrayLike = 1.0,
        discount: ArrayLike = 0.99,
        lambda_: ArrayLike = 0.8,
        kappa: ArrayLike = 2.0,
        epsilon_start: ArrayLike = 1.0,
        epsilon_end: ArrayLike = 0.01,
        sparsity: float = 0.9,
        target: Literal["sarsa", "q"] = "q",
        reward_rate: RewardRate | None = None,
    ):
        if num_actions is None:
            out = getattr(network, "out_size", None)
            if not isinstance(out, int):
                raise ValueError(
                    f"give num_actions (for an MLP) or a network with an integer out_size, "
                    f"got {type(network).__name__} with out_size {out!r}"
                )
            num_actions = out
        self.num_actions = _checks.positive_int("num_actions", num_actions)
        self.q_net = _networks(
            {"network": network},
            feature_dim,
            hidden_sizes,
            {"network": self.num_actions},
            key=key,
            sparsity=sparsity,
        )["network"]
        self.sparsity = float(sparsity)
        self.trace = _rules.trace_init(_params(self.q_net))
        self.steps = jnp.zeros((), jnp.int32)
        self.step_size, self.discount, self.lambda_ = td_hyperparameters(
            step_size, discount, lambda_
        )
        self.kappa = _checks.positive("kappa", kappa)
        self.epsilon_start = _checks.non_negative("epsilon_start", epsilon_start)
        self.epsilon_end = _checks.non_negative("epsilon_end", epsilon_end)
        _checks.ordered("epsilon_end", self.epsilon_end, "epsilon_start", self.epsilon_start)
        _checks.ordered("epsilon_start", self.epsilon_start, "1", jnp.ones(()))
        self.exploration_steps = _checks.positive("exploration_steps", exploration_steps)
        # `steps` saturates at 2**31 - 1 (an int32 that never wraps); epsilon is then
        # exactly `epsilon_end` as long as the schedule ended well before that.
        _checks.ordered("exploration_steps", self.exploration_steps, "2**30", jnp.asarray(2.0**30))
        self.target = check_target(target)
        self.reward_rate = check_reward_rate(reward_rate, self.discount.dtype)

    def config_arguments(self) -> dict:
        """The network (its architecture: the agent draws its weights from its key) in
        place of `feature_dim` and `hidden_sizes` (`alberta_eqx.config`)."""
        return {"feature_dim": None, "hidden_sizes": None, "network": self.q_net}

    def epsilon(self, t: ArrayLike) -> Float[Array, ""]:
        """The authors' `linear_schedule` at action number `t` (from 1)."""
        # t in floating point: `steps + 2` would wrap in int32 at the counter's end
        t = jnp.asarray(t, self.epsilon_start.dtype)
        slope = (self.epsilon_end - self.epsilon_start) / self.exploration_steps
        return jnp.maximum(slope * t + self.epsilon_start, self.epsilon_end)

    def _sample(self, key: PRNGKeyArray, observation: Array, t: ArrayLike) -> Int[Array, ""]:
        explore_key, action_key = jax.random.split(key)
        random_action = jax.random.randint(action_key, (), 0, self.num_actions)
        greedy = jnp.argmax(self.q_net(observation))
        return jnp.where(jax.random.uniform(explore_key) < self.epsilon(t), random_action, greedy)

    def act(self, key: PRNGKeyArray, observation: Array) -> Int[Array, ""]:
        return self._sample(key, observation, self.steps + 1.0)

    def update(
        self, key: PRNGKeyArray, transition: ControlTransition
    ) -> tuple["StreamQ", Int[Array, ""]]:
        t = check_transition(transition, self.discount.dtype)
        params, static = eqx.partition(self.q_net, eqx.is_inexact_array)

        def q_sa(params):
            q = eqx.combine(params, static)(t.observation)
            return q[t.action], q

        (q, q_all), grad = jax.value_and_grad(q_sa, has_aux=True)(params)
        q_next = self.q_net(t.next_observation)
        if self.target == "sarsa":
            # their loop draws A' before the update (the next action's number, steps + 2)
            next_action = self._sample(key, t.next_observation, self.steps + 2.0)
            bootstrap = q_next[next_action]
            cut = t.episode_end
        else:
            bootstrap = jnp.max(q_next)
            cut = t.episode_end | (t.action != jnp.argmax(q_all))  # is_nongreedy
        # no bootstrap from a terminal state; a truncated transition bootstraps;
        # centered: R - Rbar
        delta = (
            self._centered(t.reward) + self.discount * jnp.where(t.terminated, 0, bootstrap) - q
        )
        q_net, trace = self._obgd(self.q_net, self.trace, delta, grad, self.kappa, cut=cut)
        # the count only drives the schedule: it saturates at 2**31 - 1 instead of wrapping
        steps = optax.safe_increment(self.steps)
        new = eqx.tree_at(lambda s: (s.q_net, s.trace, s.steps), self, (q_net, trace, steps))
        new = new._with_rate(t.reward, delta)
        if self.target == "q":
            next_action = new._sample(key, t.next_observation, new.steps + 1.0)
        return new, next_action
