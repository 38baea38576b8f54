"""The random walk of Sutton and Barto (Reinforcement Learning: An Introduction, 2nd
ed., Example 6.2 and Figure 12.3's 19-state version) as a stream of TD transitions.

States `1 .. n` (n odd, 19 by default) in a row, terminal states `0` and `n + 1` at the
ends. Every episode starts in the middle state and moves left or right with
probability 1/2 each; the reward is -1 on reaching the left end, +1 on reaching the
right end and 0 otherwise. With discount 1 the true value of state `i` is
`(2 i - (n + 1)) / (n + 1)`, i.e. `(i - 10) / 10` for 19 states. The transition into a
terminal state has discount 0, and the next transition starts a new episode in the
middle.

The walk is sequential (each position depends on the last), so `chunk` draws a whole
chunk's coin flips from `fold_in(key, t)` at once and scans only the integer position
over them; the one-hot features are then built for the whole chunk.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractTDStream, TDTimeStep, step_keys


class WalkPosition(NamedTuple):
    """The random walk's state.

    **Fields:**

    - `key`: the stream's key; step `t` flips its coin with `fold_in(key, t)`.
    - `position`: the current non-terminal state, in `1 .. num_states`.
    """

    key: PRNGKeyArray
    position: Int[Array, ""]


class RandomWalkChainStream(AbstractTDStream[TDTimeStep]):
    """The n-state random-walk chain (Sutton and Barto's; not to be confused with
    `DriftingTargetStream`, whose target weights random-walk) with tabular (one-hot)
    features: state `i` has feature vector `e_i` (state 1 first). Terminal states have
    the zero vector.

    ```python
    import jax
    from alberta_eqx import RandomWalkChainStream

    stream = RandomWalkChainStream(num_states=5)  # one-hot features, one per state
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # a TDTimeStep: learn it with a TD learner
    timestep.observation  # e_3, the middle state: every walk starts there
    ```

    **Arguments:**

    - `num_states`: the number of non-terminal states, odd and >= 3 (default 19).
    - `discount`: `gamma` in `[0, 1]` for non-terminal transitions (default 1, the
      undiscounted task whose true values are `true_values()`).
    """

    num_states: int = eqx.field(static=True)
    discount: Float[Array, ""]

    def __init__(self, num_states: int = 19, discount: ArrayLike = 1.0):
        num_states = _checks.positive_int("num_states", num_states)
        if num_states < 3 or num_states % 2 == 0:
            raise ValueError(f"num_states must be odd and >= 3, got {num_states}")
        self.num_states = num_states
        self.discount = _checks.in_unit_interval("discount", discount)

    @property
    def feature_dim(self) -> int:
        return self.num_states

    @property
    def start(self) -> int:
        """The middle state, where every episode starts."""
        return (self.num_states + 1) // 2

    def init(self, key: PRNGKeyArray) -> WalkPosition:
        return WalkPosition(key, jnp.asarray(self.start, jnp.int32))

    def chunk(
        self, state: WalkPosition, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TDTimeStep, WalkPosition]:
        moves = jax.vmap(jax.random.bernoulli)(step_keys(state.key, t0, num_steps))
        moves = 2 * moves.astype(jnp.int32) - 1  # -1 (left) or +1 (right)
        end = self.num_states + 1

        def walk(position, move):
            arrived = position + move
            terminal = (arrived == 0) | (arrived == end)
            return jnp.where(terminal, self.start, arrived), (position, arrived)

        position, (here, there) = jax.lax.scan(walk, state.position, moves)
        terminal = (there == 0) | (there == end)
        dtype = self.discount.dtype
        timesteps = TDTimeStep(
            observation=_one_hot(here, self.num_states, dtype),
            reward=(there == end).astype(dtype) - (there == 0).astype(dtype),
            discount=jnp.where(terminal, 0, self.discount).astype(dtype),
            # one_hot of 0 or n + 1 (after the shift) is the zero vector: terminal states
            # have no features.
            next_observation=_one_hot(there, self.num_states, dtype),
        )
        return timesteps, WalkPosition(state.key, position)

    def true_values(self) -> Float[Array, " n"]:
        """The undiscounted values of states `1 .. n`: `(2 i - (n + 1)) / (n + 1)`
        (`(i - 10) / 10` for 19 states). Only for `discount = 1`."""
        if float(self.discount) != 1:
            raise ValueError(
                f"true_values() are those of the undiscounted walk; this stream has "
                f"discount {float(self.discount)}"
            )
        i = jnp.arange(1, self.num_states + 1, dtype=self.discount.dtype)
        return (2 * i - (self.num_states + 1)) / (self.num_states + 1)


def _one_hot(states: Int[Array, " steps"], n: int, dtype) -> Float[Array, "steps n"]:
    """State `i` in `1 .. n` as the unit vector `e_i`; anything else as zeros."""
    return jax.nn.one_hot(states - 1, n, dtype=dtype)


def episode_ends(discounts: ArrayLike) -> np.ndarray:
    """The steps whose transition ends an episode (where `discount == 0`), from a
    stack of transitions' discounts (`stream.chunk(...)[0].discount`). The episode
    count after step `t` is `np.searchsorted(ends, t, side="right")`."""
    return np.flatnonzero(np.asarray(discounts) == 0)
