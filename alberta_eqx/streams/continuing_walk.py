"""The continuing random walk of Naik and Sutton (2022), which Naik, Wan, Tomar and
Sutton (2024) use to compare simple and value-based reward centering (the authors'
`environments/random_walk_n.py` and `config_files/randomwalk5` in
`continuing-rl-exps`), in JAX with gymnax's `reset`/`step` interface.

`num_states = 2i + 1` states in a row, `0 .. 2i`, the run starting in the middle
one, `i`. Action 0 moves one state left, action 1 one state right, except at the
ends: action 0 in state 0 and action 1 in state `2i` jump back to the middle with
reward `r_left` and `r_right` (-1 and +1); every other transition has reward 0. A
constant `reward_offset` is added to every reward (the authors' `reward_offset`).
Under the uniformly random policy the reward rate is `(r_left + r_right) / (2 (i + 1)^2)`
plus the offset (0 for the defaults), and the task never ends: `terminated` and
`truncated` are always False. The observation is the state's one-hot vector.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import continuing_step


class ContinuingWalkParams(NamedTuple):
    """The rewards at the two ends, and the constant added to every reward."""

    r_left: float = -1.0
    r_right: float = 1.0
    reward_offset: float | Array = 0.0


class ContinuingRandomWalk(eqx.Module):
    """The continuing random walk, gymnax-style (module docstring); the state is the
    index of the current state.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import ContinuingRandomWalk

    env = ContinuingRandomWalk(5)  # gymnax-style: reset, then step with an action
    observation, state = env.reset(jax.random.key(0))  # the middle state
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(1)
    )  # action 1; the walk never ends (terminated and truncated are False)
    ```

    **Arguments:**

    - `num_states`: an odd number of states, at least 3 (the authors: 5).
    """

    num_states: int = eqx.field(static=True)
    num_actions: int = eqx.field(static=True, default=2)

    def __init__(self, num_states: int = 5):
        num_states = _checks.positive_int("num_states", num_states)
        if num_states < 3 or num_states % 2 == 0:
            raise ValueError(f"num_states must be odd and at least 3, got {num_states}")
        self.num_states = num_states

    @property
    def default_params(self) -> ContinuingWalkParams:
        return ContinuingWalkParams()

    def observation(self, state: Int[Array, ""]) -> Float[Array, " n"]:
        return jax.nn.one_hot(state, self.num_states, dtype=_checks.default_float())

    def reset(
        self, key: PRNGKeyArray, params: ContinuingWalkParams | None = None
    ) -> tuple[Float[Array, " n"], Int[Array, ""]]:
        del key, params  # the run starts in the middle state
        state = jnp.asarray(self.num_states // 2, jnp.int32)
        return self.observation(state), state

    def step(
        self,
        key: PRNGKeyArray,
        state: Int[Array, ""],
        action: Int[Array, ""],
        params: ContinuingWalkParams | None = None,
    ) -> tuple[
        Float[Array, " n"], Int[Array, ""], Float[Array, ""], Bool[Array, ""], Bool[Array, ""],
        dict[str, Any],
    ]:  # fmt: skip
        del key  # deterministic given the action
        params = self.default_params if params is None else params
        right = jnp.asarray(action) == 1
        middle = self.num_states // 2
        exit_left = (state == 0) & ~right
        exit_right = (state == self.num_states - 1) & right
        moved = jnp.where(right, state + 1, state - 1)
        reached = jnp.where(exit_left | exit_right, middle, moved).astype(jnp.int32)
        dtype = _checks.default_float()
        raw = jnp.where(exit_left, params.r_left, jnp.where(exit_right, params.r_right, 0.0))
        raw = jnp.asarray(raw, dtype)
        return continuing_step(
            self.observation(reached), reached, raw + params.reward_offset, raw_reward=raw
        )
