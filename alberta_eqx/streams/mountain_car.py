"""The textbook's Mountain Car (Sutton and Barto 2018, Example 10.1) in JAX, with
gymnax's `reset`/`step` interface, so the control loop runs it and gymnax's
environments alike.

The car's position `x` and velocity `v` follow (Example 10.1):

    v_{t+1} = bound[v_t + 0.001 A_t - 0.0025 cos(3 x_t)]     v in [-0.07, 0.07]
    x_{t+1} = bound[x_t + v_{t+1}]                            x in [-1.2, 0.5]

with `A_t` in `{-1, 0, +1}` (full throttle reverse, zero throttle, full throttle
forward; the action indices 0, 1, 2). At the left bound `v` is reset to 0; reaching
the right bound ends the episode. Every step is rewarded -1. Episodes start at a
position drawn uniformly from `[-0.6, -0.4)` with zero velocity. There is no step
limit (gym's `MountainCar-v0` cuts episodes at 200 steps; the book does not).
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import optax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray


class MountainCarState(NamedTuple):
    """**Fields:** `position`, `velocity`, and `time`, the steps taken in the episode
    (an int32 that saturates at `2**31 - 1` rather than wrap)."""

    position: Float[Array, ""]
    velocity: Float[Array, ""]
    time: Int[Array, ""]


class MountainCarParams(NamedTuple):
    """The book's constants (Example 10.1)."""

    min_position: float = -1.2
    max_position: float = 0.5
    max_speed: float = 0.07
    force: float = 0.001
    gravity: float = 0.0025
    start_low: float = -0.6
    start_high: float = -0.4


class MountainCar(eqx.Module):
    """The book's Mountain Car, gymnax-style: `reset(key, params)` and
    `step(key, state, action, params)` returning
    `(observation, state, reward, terminated, truncated, info)`, resetting by itself
    when an episode ends (then `info["final_observation"]` is the state reached).
    The observation is `(position, velocity)`; `truncated` is always False.

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import MountainCar

    env = MountainCar()
    observation, state = env.reset(jax.random.key(0))  # (position, velocity)
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(2)
    )  # action 2: full throttle forward
    reward  # about -1.0 on every step
    ```
    """

    num_actions: int = eqx.field(static=True, default=3)

    @property
    def default_params(self) -> MountainCarParams:
        return MountainCarParams()

    def reset(
        self, key: PRNGKeyArray, params: MountainCarParams | None = None
    ) -> tuple[Float[Array, " 2"], MountainCarState]:
        params = self.default_params if params is None else params
        position = jax.random.uniform(key, (), minval=params.start_low, maxval=params.start_high)
        state = MountainCarState(position, jnp.zeros_like(position), jnp.zeros((), jnp.int32))
        return self.observation(state), state

    def observation(self, state: MountainCarState) -> Float[Array, " 2"]:
        return jnp.stack([state.position, state.velocity])

    def step(
        self,
        key: PRNGKeyArray,
        state: MountainCarState,
        action: Int[Array, ""],
        params: MountainCarParams | None = None,
    ) -> tuple[
        Float[Array, " 2"],
        MountainCarState,
        Float[Array, ""],
        Bool[Array, ""],
        Bool[Array, ""],
        dict[str, Any],
    ]:
        params = self.default_params if params is None else params
        throttle = jnp.asarray(action) - 1  # A_t in {-1, 0, +1}
        # Example 10.1: the velocity first, from the current position
        velocity = (
            state.velocity + params.force * throttle - params.gravity * jnp.cos(3 * state.position)
        )
        velocity = jnp.clip(velocity, -params.max_speed, params.max_speed)
        position = jnp.clip(state.position + velocity, params.min_position, params.max_position)
        # the inelastic left wall
        velocity = jnp.where(position == params.min_position, 0.0, velocity)
        time = optax.safe_increment(state.time)  # an episode may outlast int32
        reached = MountainCarState(position, velocity.astype(position.dtype), time)
        terminated = position == params.max_position
        reward = jnp.asarray(-1.0, position.dtype)
        reset_observation, reset_state = self.reset(key, params)
        following = jax.tree.map(lambda r, s: jnp.where(terminated, r, s), reset_state, reached)
        final_observation = self.observation(reached)
        observation = jnp.where(terminated, reset_observation, final_observation)
        info = {
            "terminated": terminated,
            "truncated": jnp.asarray(False),
            "final_observation": final_observation,
        }
        return observation, following, reward, terminated, jnp.asarray(False), info
