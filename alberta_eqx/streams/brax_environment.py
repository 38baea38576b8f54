"""brax's environments (Freeman, Frey, Raichuk, Girgin, Mordatch and Bachem 2021) with
gymnax's interface, so that they run inside the compiled control loop as gymnax's do:
`BraxEnvironment("inverted_pendulum")`. Needs the `[brax]` extra.

A brax `Env` is `reset(rng) -> State` and `step(state, action) -> State`, with `done` a
float and neither an episode limit nor a reset of its own. This adapter adds what
gymnax's `step` does: an episode limit (`episode_length` steps, after which the episode
is truncated), the reset after an episode's end drawn from the step's key (a new
random start, where brax's training `AutoResetWrapper` restores the first one), and
`info["final_observation"]`. Actions are brax's, in `[-1, 1]` per actuator.
"""

import math
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx import _checks

__all__ = ["Box", "BraxEnvironment", "BraxState"]


class BraxState(NamedTuple):
    """**Fields:** brax's `State` and the steps taken in the episode."""

    env_state: PyTree
    time: Int[Array, ""]


class Box(NamedTuple):
    """A box of `shape` between `low` and `high`, as the agents read gymnax's spaces."""

    low: float
    high: float
    shape: tuple[int, ...]


class BraxEnvironment(eqx.Module):
    """A brax environment with gymnax's `reset(key, params)` and `step(key, state,
    action, params) -> (observation, state, reward, terminated, truncated, info)`
    (module docstring).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx.streams.brax_environment import BraxEnvironment

    env = BraxEnvironment("inverted_pendulum", episode_length=1000)
    observation, state = env.reset(jax.random.key(0))
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.zeros(env.action_space().shape)
    )
    ```

    **Arguments:**

    - `env`: a brax `Env`, or the name of one (`brax.envs.get_environment(env,
      **kwargs)`).
    - `episode_length`: the episode limit, in steps (brax's training default, 1,000).
    - `kwargs`: passed to `brax.envs.get_environment` with a name (`backend=...`).
    """

    env: Any = eqx.field(static=True)
    episode_length: int = eqx.field(static=True)

    def __init__(self, env: Any, episode_length: int = 1000, **kwargs: Any):
        if isinstance(env, str):
            try:
                from brax import envs
            except ImportError as error:
                raise ImportError(
                    "BraxEnvironment needs brax: pip install 'alberta_eqx[brax]'"
                ) from error
            env = envs.get_environment(env, **kwargs)
        self.env = env
        self.episode_length = _checks.positive_int("episode_length", episode_length)

    @property
    def default_params(self) -> None:
        """brax's environments take no parameters."""
        return None

    def action_space(self, params: PyTree = None) -> Box:
        return Box(-1.0, 1.0, (self.env.action_size,))

    def observation_space(self, params: PyTree = None) -> Box:
        return Box(-math.inf, math.inf, (self.env.observation_size,))

    def reset(
        self, key: PRNGKeyArray, params: PyTree = None
    ) -> tuple[Float[Array, " obs"], BraxState]:
        state = self.env.reset(key)
        return state.obs, BraxState(state, jnp.zeros((), jnp.int32))

    def step(
        self, key: PRNGKeyArray, state: BraxState, action: Array, params: PyTree = None
    ) -> tuple[Array, BraxState, Array, Array, Array, dict[str, Any]]:
        stepped = self.env.step(state.env_state, action)
        time = state.time + 1
        terminated = stepped.done > 0
        truncated = ~terminated & (time >= self.episode_length)
        done = terminated | truncated
        fresh = self.env.reset(key)
        if jax.tree.structure(fresh) != jax.tree.structure(stepped):
            raise TypeError(
                f"{type(self.env).__name__}: its reset and step return states of different "
                "structure, which BraxEnvironment cannot select between"
            )
        env_state = jax.tree.map(lambda a, b: jnp.where(done, a, b), fresh, stepped)
        info = {"final_observation": stepped.obs}
        new = BraxState(env_state, jnp.where(done, 0, time))
        reward = jnp.asarray(stepped.reward, stepped.obs.dtype)  # (a Python float in some)
        return env_state.obs, new, reward, terminated, truncated, info
