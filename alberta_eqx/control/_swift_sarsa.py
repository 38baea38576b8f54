r"""Swift-Sarsa (Javed and Sutton 2025, "Swift-Sarsa: Fast and Robust Linear Control",
arXiv 2507.19539): SwiftTD's per-feature step-size optimisation, its bound on the rate
of learning and its step-size decay (Javed, Sharifnassab and Sutton 2024) on top of
True Online Sarsa(lambda) (van Seijen et al. 2016; Sutton and Barto 2018, section
12.7, the box), for linear control with discrete actions and ε-greedy behaviour.

The action values are linear in the observation with one weight vector per action,
`q(s, a) = w_a . x(s)`: the state-action features `x(s, a)` are `x(s)` in the block of
action `a` and 0 elsewhere (the authors' `swiftsarsa` package lays its weights out the
same way, `action * feature_dim + i`). Swift-Sarsa is then SwiftTD over these
features, with the Sarsa target `R + gamma q(S', A')`, `A'` drawn by the behaviour
policy in `S'` before the update. This agent holds a `SwiftTDLearner` over the
`num_actions * feature_dim` state-action features and gives it, for every transition,
`TDTimeStep(x(S, A), R, gamma, x(S', A'))`: the rule is the one in
`alberta_eqx.td._swift_rule`, not a copy. Only the chosen action's block is active in a
step, so only its step-sizes take part in the rate of learning, decay when the bound
binds and take in new traces, while every action's traces decay and learn from the one
TD error, as the algorithm prescribes.

Where this follows one of the two forms of the SwiftTD rule: it is the dense form (the
`swifttd` package's `SwiftTDNonSparse`, `SwiftTDLearner`): every trace is kept until it
decays (no `epsilon` cut) and, when the bound binds, the meta-traces `h`, `h_old`,
`h_temp`, `z_bar` are reset after the traces take the features in, for every feature.
The authors' control package (`swiftsarsa` 0.1.6, `SwiftSarsa`) is the sparse form: it
drops a trace once it is at or below `epsilon` times its feature's last step-size, and
resets the meta-traces of the active features only, before the increment. The two
forms part the way SwiftTD's do (docs/swifttd.md); with `meta_step_size = 0` and a bound
that never binds they are both True Online Sarsa(lambda) with step-size
`initial_step_size`.

With a `RewardRate` `Rbar` (`reward_rate`, held by the `SwiftTDLearner`) the Sarsa
TD error uses `R - Rbar` and `Rbar` is updated after every transition from it (or
from the reward): differential Swift-Sarsa with `discount = 1` (Sutton and Barto 2018,
section 10.3), reward centering (Naik, Wan, Tomar and Sutton 2024) below it.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, Key, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.control._loop import (
    AbstractControlAgent,
    ControlTransition,
    check_transition,
    run_control,
    start_control,
)
from alberta_eqx.control._policies import EpsilonGreedy
from alberta_eqx.learners import UpdateResult
from alberta_eqx.streams import TDTimeStep
from alberta_eqx.td import RewardRate, SwiftTDLearner


class SwiftSarsa(AbstractControlAgent):
    """Swift-Sarsa (module docstring): linear action values `q(s, a) = w_a . x(s)` with
    SwiftTD's meta-learned step-sizes, ε-greedy behaviour. Weights start at 0.

    The observation is the feature vector `x(s)` itself (`feature_dim` floats).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import ControlTransition, SwiftSarsa

    agent = SwiftSarsa(3, num_actions=2, discount=0.9, exploration=0.1)
    x, x_next = jnp.array([1.0, 0.5, -1.0]), jnp.array([0.0, 1.0, 0.0])
    action = agent.act(jax.random.key(0), x)  # epsilon-greedy on q(x, .)
    no = jnp.asarray(False)
    transition = ControlTransition(x, action, jnp.asarray(1.0), x_next, no, no)  # (S, A, R, S')
    agent, next_action = agent.update(jax.random.key(1), transition)  # learn; A' for S'
    agent.weights  # w_a, one row per action: only the row of `action` moved
    ```

    **Arguments:**

    - `feature_dim`: the length of the observation `x(s)`.
    - `num_actions`: how many actions.
    - `discount`: `gamma` in `(0, 1]`.
    - `exploration`: ε-greedy's exploration probability in `[0, 1]` (named so to keep
      it apart from SwiftTD's `epsilon`, the trace threshold).
    - `lambda_`, `initial_step_size`, `max_step_size` (the bound `eta` on the rate of
      learning), `step_size_decay`, `meta_step_size`, `eta_min`, `epsilon`: SwiftTD's
      hyperparameters, as `SwiftTDLearner` takes them (`epsilon` is unused by this
      dense form).
    - `dtype`: the floating-point dtype of weights and state.
    - `reward_rate`: a `RewardRate` for differential learning or reward centering
      (module docstring), or None.
    """

    learner: SwiftTDLearner
    discount: Float[Array, ""]
    policy: EpsilonGreedy
    feature_dim: int = eqx.field(static=True)
    num_actions: int = eqx.field(static=True)

    def __init__(
        self,
        feature_dim: int,
        num_actions: int,
        discount: ArrayLike = 0.99,
        exploration: ArrayLike = 0.1,
        lambda_: ArrayLike = 0.95,
        initial_step_size: ArrayLike = 1e-2,
        max_step_size: ArrayLike = 0.1,
        step_size_decay: ArrayLike = 0.999,
        meta_step_size: ArrayLike = 1e-3,
        eta_min: ArrayLike = 1e-10,
        epsilon: ArrayLike = 1e-5,
        *,
        dtype=None,
        reward_rate: RewardRate | None = None,
    ):
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.num_actions = _checks.positive_int("num_actions", num_actions)
        self.learner = SwiftTDLearner(
            self.feature_dim * self.num_actions,
            lambda_,
            initial_step_size,
            max_step_size,
            step_size_decay,
            meta_step_size,
            eta_min,
            epsilon,
            dtype=dtype,
            reward_rate=reward_rate,
        )
        dtype = self.learner.weights.dtype
        self.discount = _checks.in_unit_interval("discount", discount, dtype)
        exploration = _checks.non_negative("exploration", exploration, dtype)
        _checks.ordered("exploration", exploration, "1", jnp.ones((), dtype))
        self.policy = EpsilonGreedy(exploration)

    def config_arguments(self) -> dict[str, Any]:
        """The constructor's arguments that live in the learner and the policy (for
        `alberta_eqx.config.to_config`)."""
        names = [
            "lambda_",
            "initial_step_size",
            "max_step_size",
            "step_size_decay",
            "meta_step_size",
            "eta_min",
            "epsilon",
            "reward_rate",
        ]
        return {"exploration": self.policy.epsilon} | {
            name: getattr(self.learner, name) for name in names
        }

    @property
    def reward_rate(self) -> RewardRate | None:
        """The learner's `RewardRate` (`Rbar`), or None."""
        return self.learner.reward_rate

    def _blocks(self, flat: Float[Array, "*batch An"]) -> Float[Array, "*batch A n"]:
        return flat.reshape(*flat.shape[:-1], self.num_actions, self.feature_dim)

    @property
    def weights(self) -> Float[Array, "*batch A n"]:
        """`w_a` for every action, one row per action (after any batch axes)."""
        return self._blocks(self.learner.weights)

    @property
    def step_sizes(self) -> Float[Array, "*batch A n"]:
        """The per-feature step-sizes `alpha = exp(beta)`, one row per action."""
        return self._blocks(self.learner.step_sizes)

    def features(self, observation: Array, action: Int[Array, ""]) -> Float[Array, " An"]:
        """`x(s, a)`: `x(s)` in the block of `action`, 0 elsewhere."""
        x = _checks.features(observation, self.feature_dim, self.learner.weights.dtype)
        blocks = jnp.zeros((self.num_actions, self.feature_dim), x.dtype)
        return jax.lax.dynamic_update_index_in_dim(blocks, x, action, 0).reshape(-1)

    def values(self, observation: Array) -> Float[Array, " A"]:
        """`q(s, a)` for every action."""
        x = _checks.features(observation, self.feature_dim, self.learner.weights.dtype)
        return self.weights @ x

    def act(self, key: PRNGKeyArray, observation: Array) -> Int[Array, ""]:
        return self.policy.sample(key, self.values(observation))

    def learn(
        self,
        observation: Array,
        action: Int[Array, ""],
        reward: Float[Array, ""],
        discount: Float[Array, ""],
        next_observation: Array,
        next_action: Int[Array, ""],
        truncated: Bool[Array, ""],
    ) -> tuple["SwiftSarsa", UpdateResult]:
        """One Swift-Sarsa step on the transition `(S, A, R, S', A')`: SwiftTD on
        `TDTimeStep(x(S, A), R, discount, x(S', A'), truncated)`. `discount` is
        `gamma`, or 0 where `S'` is terminal; `truncated` is True where a time limit cut
        the episode after this transition (it bootstraps, and the traces are cut)."""
        step = TDTimeStep(
            self.features(observation, action),
            reward,
            discount,
            self.features(next_observation, next_action),
            truncated,
        )
        learner, result = self.learner.learn(step)
        return eqx.tree_at(lambda s: s.learner, self, learner), result

    def update(
        self, key: PRNGKeyArray, transition: ControlTransition
    ) -> tuple["SwiftSarsa", Int[Array, ""]]:
        dtype = self.learner.weights.dtype
        transition = check_transition(transition, dtype)
        # A' is drawn in S' before the update, from q with the weights before it.
        next_action = self.act(key, transition.next_observation)
        # a terminal transition bootstraps from nothing; a truncated one from S'
        gamma = jnp.where(transition.terminated, 0, self.discount)
        new, _ = self.learn(
            transition.observation,
            transition.action,
            transition.reward,
            gamma,
            transition.next_observation,
            next_action,
            jnp.logical_and(transition.truncated, jnp.logical_not(transition.terminated)),
        )
        return new, next_action


class OperantResult(NamedTuple):
    """What `run_operant` returns. **Fields:** `rewards`, the average reward of each
    chunk of each run, shape `(seeds, chunks)`; `agent`, the agents at the end (batched
    over the seeds)."""

    rewards: Float[Array, "seeds chunks"]
    agent: AbstractControlAgent


def run_operant(
    agent: AbstractControlAgent,
    env: Any,
    keys: Key[Array, " seeds"],
    num_steps: int,
    num_chunks: int = 10,
) -> OperantResult:
    """Run `agent` on a continuing environment (the operant conditioning benchmark,
    `alberta_eqx.streams.operant.OperantConditioning`) for `num_steps` steps from each
    of `keys` (one run per key, vmapped), and return the average reward of each of
    `num_chunks` equal chunks of the run (the last chunk's is the learned policy's
    reward; the mean over chunks is the lifetime reward), with the final agents. Runs with the same
    structure share one compiled program (hyperparameters are array leaves).

    **Arguments:**

    - `agent`: a control agent (`SwiftSarsa`).
    - `env`: a continuing gymnax-style environment.
    - `keys`: a batch of keys, one run each.
    - `num_steps`: steps per run, a multiple of `num_chunks`.
    - `num_chunks`: how many averages to report per run.
    """
    num_chunks = _checks.positive_int("num_chunks", num_chunks)
    num_steps = _checks.positive_int("num_steps", num_steps)
    if num_steps % num_chunks:
        raise ValueError(
            f"num_steps must be a multiple of num_chunks = {num_chunks}, got {num_steps}"
        )
    chunk = num_steps // num_chunks
    runs = _start_runs(agent, env, keys)
    averages = []
    for _ in range(num_chunks):
        before = runs.episode_return
        runs = _run_chunk(runs, env, chunk)
        averages.append((runs.episode_return - before) / chunk)
    return OperantResult(jnp.stack(averages, axis=-1), runs.agent)


# One compiled program per structure: many seeds (vmapped) per call.
_start_runs = eqx.filter_jit(
    eqx.filter_vmap(
        lambda agent, env, key: start_control(agent, env, key, max_episodes=1),
        in_axes=(None, None, 0),
    )
)
_run_chunk = eqx.filter_jit(eqx.filter_vmap(run_control, in_axes=(0, None, None)))
