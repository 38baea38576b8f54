r"""Linear control with tile coding and replacing traces: SARSA(lambda) and Watkins's
Q(lambda) (Sutton and Barto 2018, sections 12.7 and 12.10).

`q(s, a) = sum_{i in F(s, a)} w_i`, the weights of the active tiles of `(s, a)`
(tile coding with the action as an integer input). Per transition
`(S, A, R, S')`, as in the book's box "Sarsa(lambda) with binary features and linear
function approximation" with replacing traces:

    z_i <- 1 for i in F(S, A)                                   # replacing trace
    delta <- R + gamma q(S', A') - q(S, A)     (SARSA: A' the next action;
                                                Q: max_a q(S', a); 0 after S' terminal)
    w <- w + alpha delta z
    z <- gamma lambda z, or 0 at an episode's end
         (Watkins's Q(lambda), `target="q"`: also 0 when A' is not greedy)

`A'` is chosen in `S'` by the behaviour policy before the update, as in the box.
A terminated transition bootstraps from nothing (`S'` terminal); a truncated one
(a time limit) bootstraps from `S'`, and the traces are reset after either.

With a `RewardRate` `Rbar` the reward in `delta` is `R - Rbar`, and `Rbar` is updated
after every transition (`alberta_eqx.control.RewardRate`): with `gamma = 1` this is
differential semi-gradient Sarsa(lambda) (section 10.3's box, with the traces above)
and, with `target="q"` and `lambda = 0`, differential Q-learning (Wan, Naik and Sutton 2021);
with `gamma < 1` it is reward centering (Naik, Wan, Tomar and Sutton 2024).
"""

from typing import Literal

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.control._loop import (
    AbstractControlAgent,
    ControlTransition,
    check_target,
    check_transition,
    td_hyperparameters,
)
from alberta_eqx.control._policies import AbstractPolicy, EpsilonGreedy, greedy_actions
from alberta_eqx.streams.tiles import TileCoder
from alberta_eqx.td import RewardRate, centered_reward, check_reward_rate, with_updated_rate


class SarsaLambda(AbstractControlAgent):
    """SARSA(lambda) (or, with `target="q"`, Watkins's Q(lambda)) on tile-coded
    state-action features, with replacing traces. Weights start at 0.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.control import ControlTransition, SarsaLambda
    from alberta_eqx.streams import TileCoder

    # 4 tilings of the box [0, 1]^2, 4 tiles per unit; the action is the integer input
    tiles = TileCoder(4, [4.0, 4.0], low=[0.0, 0.0], high=[1.0, 1.0], int_sizes=(2,))
    agent = SarsaLambda(tiles, num_actions=2, step_size=0.5 / 4, lambda_=0.9, discount=0.9)
    s, s_next = jnp.array([0.2, 0.7]), jnp.array([0.3, 0.6])
    action = agent.act(jax.random.key(0), s)  # greedy (ties broken at random)
    no = jnp.asarray(False)
    transition = ControlTransition(s, action, jnp.asarray(1.0), s_next, no, no)  # (S, A, R, S')
    agent, next_action = agent.update(jax.random.key(1), transition)  # learn; A' for S'
    agent.values(s)[action]  # about 0.5 = 4 tilings * alpha delta = 4 * (0.5 / 4) * 1.0
    ```

    **Arguments:**

    - `tile_coder`: a `TileCoder` with one integer input, the action
      (`int_sizes=(num_actions,)` for dense numbering).
    - `num_actions`: how many actions.
    - `step_size`: `alpha`, per weight (the book's `alpha = 0.5 / 8` for 8 tilings).
    - `lambda_`: `lambda` in `[0, 1]`.
    - `discount`: `gamma` in `(0, 1]`.
    - `policy`: the behaviour policy over `q(s, .)` (default greedy, `epsilon = 0`, as
      the book's Mountain Car experiments).
    - `target`: `"sarsa"` bootstraps from `q(S', A')`; `"q"` is Watkins's Q(lambda):
      bootstrap from `max_a q(S', a)` and cut the traces after a non-greedy action.
    - `reward_rate`: a `RewardRate` to subtract from every reward and learn
      (differential learning, reward centering; module docstring), or None.
    """

    tile_coder: TileCoder
    weights: Float[Array, " size"]
    trace: Float[Array, " size"]
    step_size: Float[Array, ""]
    lambda_: Float[Array, ""]
    discount: Float[Array, ""]
    policy: AbstractPolicy
    reward_rate: RewardRate | None
    num_actions: int = eqx.field(static=True)
    target: Literal["sarsa", "q"] = eqx.field(static=True)

    def __init__(
        self,
        tile_coder: TileCoder,
        num_actions: int,
        step_size: ArrayLike,
        lambda_: ArrayLike = 0.9,
        discount: ArrayLike = 1.0,
        policy: AbstractPolicy | None = None,
        *,
        target: Literal["sarsa", "q"] = "sarsa",
        reward_rate: RewardRate | None = None,
    ):
        if not isinstance(tile_coder, TileCoder):
            raise TypeError(f"tile_coder must be a TileCoder, got {type(tile_coder).__name__}")
        self.num_actions = _checks.positive_int("num_actions", num_actions)
        if not tile_coder.hashed and tile_coder.int_sizes != (self.num_actions,):
            raise ValueError(
                f"tile_coder must take the action as its one integer input "
                f"(int_sizes=({self.num_actions},)), got int_sizes={tile_coder.int_sizes}"
            )
        self.tile_coder = tile_coder
        dtype = tile_coder.scale.dtype
        self.step_size, self.discount, self.lambda_ = td_hyperparameters(
            step_size, discount, lambda_, dtype
        )
        self.policy = EpsilonGreedy(0.0) if policy is None else policy
        if not isinstance(self.policy, AbstractPolicy):
            raise TypeError(f"policy must be an AbstractPolicy, got {type(policy).__name__}")
        self.target = check_target(target)
        self.reward_rate = check_reward_rate(reward_rate, dtype)
        self.weights = jnp.zeros(tile_coder.size, dtype)
        self.trace = jnp.zeros(tile_coder.size, dtype)

    def active(self, observation: Array, action: Int[Array, ""]) -> Int[Array, " T"]:
        """`F(s, a)`: the active tiles' indices."""
        return self.tile_coder.indices(observation, jnp.reshape(action, (1,)))

    def values(self, observation: Array) -> Float[Array, " A"]:
        """`q(s, a)` for every action."""
        actions = jnp.arange(self.num_actions)
        return jax.vmap(lambda a: jnp.sum(self.weights[self.active(observation, a)]))(actions)

    def act(self, key: PRNGKeyArray, observation: Array) -> Int[Array, ""]:
        return self.policy.sample(key, self.values(observation))

    def update(
        self, key: PRNGKeyArray, transition: ControlTransition
    ) -> tuple["SarsaLambda", Int[Array, ""]]:
        t = check_transition(transition, self.weights.dtype)
        active = self.active(t.observation, t.action)
        q_next = self.values(t.next_observation)
        next_action = self.policy.sample(key, q_next)
        greedy = greedy_actions(q_next)[next_action]
        bootstrap = jnp.max(q_next) if self.target == "q" else q_next[next_action]
        gamma = jnp.where(t.terminated, 0, self.discount)  # truncated: bootstrap
        # the box's loops: delta <- R - sum_{F(S,A)} w_i + gamma sum_{F(S',A')} w_i;
        # differential / centered (section 10.3's box): R - Rbar in place of R
        centered = centered_reward(self.reward_rate, t.reward)
        delta = centered + gamma * bootstrap - jnp.sum(self.weights[active])
        trace = self.trace.at[active].set(1)  # replacing traces
        weights = self.weights + self.step_size * delta * trace
        keep = jnp.logical_not(t.episode_end)
        if self.target == "q":
            keep = keep & greedy  # Watkins: cut after a non-greedy A'
        trace = jnp.where(keep, self.discount * self.lambda_ * trace, 0)
        new = eqx.tree_at(lambda s: (s.weights, s.trace), self, (weights, trace))
        # Rbar <- Rbar + beta delta (or beta (R - Rbar))
        return with_updated_rate(new, t.reward, delta), next_action


def watkins_q_lambda(
    tile_coder: TileCoder,
    num_actions: int,
    step_size: ArrayLike,
    lambda_: ArrayLike = 0.9,
    discount: ArrayLike = 1.0,
    policy: AbstractPolicy | None = None,
    reward_rate: RewardRate | None = None,
) -> SarsaLambda:
    """Watkins's Q(lambda) with tile coding and replacing traces:
    `SarsaLambda(..., target="q")` (the same arguments)."""
    return SarsaLambda(
        tile_coder,
        num_actions,
        step_size,
        lambda_,
        discount,
        policy,
        target="q",
        reward_rate=reward_rate,
    )


def differential_sarsa(
    tile_coder: TileCoder,
    num_actions: int,
    step_size: ArrayLike,
    reward_rate_step_size: ArrayLike,
    lambda_: ArrayLike = 0.0,
    policy: AbstractPolicy | None = None,
) -> SarsaLambda:
    """Differential semi-gradient Sarsa(lambda) (Sutton and Barto 2018, section 10.3,
    the box "Differential semi-gradient Sarsa" at `lambda = 0`):
    `SarsaLambda(..., discount=1, reward_rate=RewardRate(beta))`, `Rbar` starting at 0.

    **Arguments:**

    - `tile_coder`, `num_actions`, `step_size` (`alpha`), `lambda_`, `policy`: as
      for `SarsaLambda`.
    - `reward_rate_step_size`: the book's `beta > 0`.
    """
    return SarsaLambda(
        tile_coder,
        num_actions,
        step_size,
        lambda_,
        1.0,
        policy,
        reward_rate=RewardRate(reward_rate_step_size),
    )


def differential_q_learning(
    tile_coder: TileCoder,
    num_actions: int,
    step_size: ArrayLike,
    eta: ArrayLike,
    policy: AbstractPolicy | None = None,
) -> SarsaLambda:
    """Differential Q-learning (Wan, Naik and Sutton 2021, equations 5 and 6):
    `delta = R - Rbar + max_a q(S', a) - q(S, A)`, `w += alpha delta grad q(S, A)`,
    `Rbar += eta alpha delta`; `SarsaLambda(..., target="q")` at `lambda = 0`, `gamma = 1`,
    with `RewardRate(eta * alpha)`, `Rbar` starting at 0. Tabular with one tiling of
    one tile per state.

    **Arguments:**

    - `tile_coder`, `num_actions`, `step_size` (`alpha`), `policy`: as for
      `SarsaLambda`.
    - `eta`: `> 0`, the reward rate's step-size relative to `alpha`.
    """
    eta = _checks.positive("eta", eta)
    return SarsaLambda(
        tile_coder,
        num_actions,
        step_size,
        0.0,
        1.0,
        policy,
        target="q",
        reward_rate=RewardRate(eta * jnp.asarray(step_size)),
    )
