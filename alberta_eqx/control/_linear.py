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
         (Watkins's Q(lambda): also 0 when A' is not greedy)

`A'` is chosen in `S'` by the behaviour policy before the update, as in the box.
"""

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.control._loop import AbstractControlAgent, td_hyperparameters
from alberta_eqx.control._policies import AbstractPolicy, EpsilonGreedy, greedy_actions
from alberta_eqx.streams.tiles import TileCoder


class SarsaLambda(AbstractControlAgent):
    """SARSA(lambda) (or, with `watkins=True`, Watkins's Q(lambda)) on tile-coded
    state-action features, with replacing traces. Weights start at 0.

    **Arguments:**

    - `tile_coder`: a `TileCoder` with one integer input, the action
      (`int_sizes=(num_actions,)` for dense numbering).
    - `num_actions`: how many actions.
    - `step_size`: `alpha`, per weight (the book's `alpha = 0.5 / 8` for 8 tilings).
    - `trace_decay`: `lambda` in `[0, 1]`.
    - `discount`: `gamma` in `(0, 1]`.
    - `policy`: the behaviour policy over `q(s, .)` (default greedy, `epsilon = 0`, as
      the book's Mountain Car experiments).
    - `watkins`: Watkins's Q(lambda): bootstrap from `max_a q(S', a)` and cut the
      traces after a non-greedy action.
    """

    tile_coder: TileCoder
    weights: Float[Array, " size"]
    trace: Float[Array, " size"]
    step_size: Float[Array, ""]
    trace_decay: Float[Array, ""]
    discount: Float[Array, ""]
    policy: AbstractPolicy
    num_actions: int = eqx.field(static=True)
    watkins: bool = eqx.field(static=True)

    def __init__(
        self,
        tile_coder: TileCoder,
        num_actions: int,
        step_size: ArrayLike,
        trace_decay: ArrayLike = 0.9,
        discount: ArrayLike = 1.0,
        policy: AbstractPolicy | None = None,
        *,
        watkins: bool = False,
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
        self.step_size, self.discount, self.trace_decay = td_hyperparameters(
            step_size, discount, trace_decay, dtype
        )
        self.policy = EpsilonGreedy(0.0) if policy is None else policy
        if not isinstance(self.policy, AbstractPolicy):
            raise TypeError(f"policy must be an AbstractPolicy, got {type(policy).__name__}")
        self.watkins = bool(watkins)
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
        self,
        key: PRNGKeyArray,
        observation: Array,
        action: Int[Array, ""],
        reward: Float[Array, ""],
        terminated: Bool[Array, ""],
        next_observation: Array,
        episode_end: Bool[Array, ""],
    ) -> tuple["SarsaLambda", Int[Array, ""]]:
        active = self.active(observation, action)
        q_next = self.values(next_observation)
        next_action = self.policy.sample(key, q_next)
        greedy = greedy_actions(q_next)[next_action]
        bootstrap = jnp.max(q_next) if self.watkins else q_next[next_action]
        gamma = jnp.where(terminated, 0, self.discount)
        # the box's loops: delta <- R - sum_{F(S,A)} w_i + gamma sum_{F(S',A')} w_i
        delta = reward + gamma * bootstrap - jnp.sum(self.weights[active])
        trace = self.trace.at[active].set(1)  # replacing traces
        weights = self.weights + self.step_size * delta * trace
        keep = jnp.logical_not(episode_end)
        if self.watkins:
            keep = keep & greedy  # Watkins: cut after a non-greedy A'
        trace = jnp.where(keep, self.discount * self.trace_decay * trace, 0)
        new = eqx.tree_at(lambda s: (s.weights, s.trace), self, (weights, trace))
        return new, next_action


def watkins_q_lambda(
    tile_coder: TileCoder,
    num_actions: int,
    step_size: ArrayLike,
    trace_decay: ArrayLike = 0.9,
    discount: ArrayLike = 1.0,
    policy: AbstractPolicy | None = None,
) -> SarsaLambda:
    """Watkins's Q(lambda) with tile coding and replacing traces:
    `SarsaLambda(..., watkins=True)` (the same arguments)."""
    return SarsaLambda(
        tile_coder, num_actions, step_size, trace_decay, discount, policy, watkins=True
    )
