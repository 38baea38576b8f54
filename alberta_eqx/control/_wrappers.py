"""The streaming-RL papers' environment wrappers (Elsayed, Vasan and Mahmood 2024; the
authors' `normalization_wrappers.py` and `time_wrapper.py`), gymnax-style, so that
their state is part of the compiled loop's state.

`StreamingWrapper(env)` applies, in the authors' order:

- **reward scaling**: a discounted return trace `tr <- gamma (1 - done) tr + r` (`done`
  the transition's own end, as their `ScaleReward` writes it) whose running variance
  (Welford, `WelfordNormalizer`) scales the reward: `r / sqrt(var(tr) + eps)`;
- **observation normalisation**: every observation, the final one of an episode and
  the next episode's first, is folded into running Welford statistics and then
  normalised, `(o - mean) / sqrt(var + eps)`;
- **a time-in-episode feature**, appended unnormalised: `-0.5` for the first two
  observations of an episode, then `1 / time_limit` more per step (their
  `AddTimeInfo` appends the time before incrementing it). With the time in the
  observation, the time limit is part of the state (Pardo, Tavakoli, Levdik and
  Kormushev 2018, "Time Limits in Reinforcement Learning"), so the wrapper reports an
  episode cut by the limit as terminated (and still truncated): the agents bootstrap
  from nothing there, as the authors' `done_mask` does.

The statistics are elementwise. Without a time feature an observation keeps its
shape (MinAtar's `(10, 10, C)` images stay images); with one it is flattened and the
time appended. The unscaled reward is in `info["raw_reward"]`, so that the loop records
true returns.
"""

from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, Float, PRNGKeyArray, PyTree

from alberta_eqx import _checks
from alberta_eqx._checks import ArrayLike
from alberta_eqx.normalizers import WelfordNormalizer


class StreamingWrapperState(NamedTuple):
    """**Fields:** the wrapped environment's state, the observation and return-trace
    statistics, the return trace and the time feature."""

    env_state: PyTree
    observation_stats: WelfordNormalizer
    return_stats: WelfordNormalizer
    return_trace: Float[Array, ""]
    time: Float[Array, ""]


def _select(condition, on_true, on_false):
    return jax.tree.map(lambda a, b: jnp.where(condition, a, b), on_true, on_false)


class StreamingWrapper(eqx.Module):
    """Observation normalisation, reward scaling and a time feature around a
    gymnax-style environment (module docstring).

    ```python
    import jax
    import jax.numpy as jnp
    from alberta_eqx import MountainCar
    from alberta_eqx.control import StreamingWrapper

    env = StreamingWrapper(MountainCar(), discount=0.99, time_limit=1000)
    observation, state = env.reset(jax.random.key(0))
    observation.shape  # (3,): the normalised (position, velocity), then the time feature
    observation, state, reward, terminated, truncated, info = env.step(
        jax.random.key(1), state, jnp.asarray(2)
    )  # reward scaled; info["raw_reward"] is MountainCar's -1
    ```

    **Arguments:**

    - `env`: the environment.
    - `discount`: `gamma` of the return trace (the agent's discount).
    - `time_limit`: the environment's episode step limit, the time feature's unit
      (CartPole-v1: 500); None for no time feature. With a time feature a truncated
      episode is reported as terminated too (module docstring).
    - `normalize_observation`, `scale_reward`: each piece on or off.
    - `epsilon`: added to the variances.
    """

    env: Any = eqx.field(static=True)
    discount: Float[Array, ""]
    epsilon: Float[Array, ""]
    time_limit: int | None = eqx.field(static=True)
    normalize_observation: bool = eqx.field(static=True)
    scale_reward: bool = eqx.field(static=True)

    def __init__(
        self,
        env: Any,
        discount: ArrayLike = 0.99,
        time_limit: int | None = None,
        *,
        normalize_observation: bool = True,
        scale_reward: bool = True,
        epsilon: ArrayLike = 1e-8,
    ):
        self.env = env
        self.discount = _checks.in_unit_interval("discount", discount)
        self.epsilon = _checks.positive("epsilon", epsilon)
        self.time_limit = (
            None if time_limit is None else _checks.positive_int("time_limit", time_limit)
        )
        self.normalize_observation = bool(normalize_observation)
        self.scale_reward = bool(scale_reward)

    @property
    def default_params(self) -> PyTree:
        return self.env.default_params

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def _normalized(self, stats: WelfordNormalizer, o: Array) -> tuple[WelfordNormalizer, Array]:
        if not self.normalize_observation:
            return stats, o
        stats, _ = stats.update(o)
        return stats, (o - stats.mean) / jnp.sqrt(stats.var + self.epsilon)

    def _with_time(self, o: Array, time: Array, shape: tuple[int, ...]) -> Array:
        """The flat normalised `o` in the observation's `shape`, or flat with the time."""
        if self.time_limit is None:
            return jnp.reshape(o, shape)
        return jnp.append(o, time.astype(o.dtype))

    def reset(
        self, key: PRNGKeyArray, params: PyTree = None
    ) -> tuple[Array, StreamingWrapperState]:
        params = self.default_params if params is None else params
        observation, env_state = self.env.reset(key, params)
        flat = jnp.ravel(observation).astype(self.discount.dtype)
        dtype = self.discount.dtype
        stats = WelfordNormalizer(self.epsilon).init(flat.shape[0], dtype)
        stats, normalized = self._normalized(stats, flat)
        time = jnp.asarray(-0.5, dtype)
        state = StreamingWrapperState(
            env_state,
            stats,
            WelfordNormalizer(self.epsilon).init(1, dtype),
            jnp.zeros((), dtype),
            time,
        )
        return self._with_time(normalized, time, jnp.shape(observation)), state

    def step(
        self, key: PRNGKeyArray, state: StreamingWrapperState, action: Array, params: PyTree = None
    ) -> tuple[Array, StreamingWrapperState, Array, Array, Array, dict[str, Any]]:
        params = self.default_params if params is None else params
        observation, env_state, reward, terminated, truncated, info = self.env.step(
            key, state.env_state, action, params
        )
        dtype = self.discount.dtype
        done = jnp.logical_or(terminated, truncated)
        raw_reward = jnp.asarray(reward, dtype)
        # ScaleReward: tr <- gamma (1 - done) tr + r; r / sqrt(var(tr) + eps)
        trace = state.return_trace * self.discount * (1 - done.astype(dtype)) + raw_reward
        return_stats = state.return_stats
        scaled = raw_reward
        if self.scale_reward:
            return_stats, _ = return_stats.update(trace[None])
            scaled = raw_reward / jnp.sqrt(return_stats.var[0] + self.epsilon)
        # NormalizeObservation: the observation the step returns (the final one at an
        # episode's end), then, after a reset, the new episode's first
        final = jnp.ravel(info["final_observation"]).astype(dtype)
        stats, final = self._normalized(state.observation_stats, final)
        reset_stats, first = self._normalized(stats, jnp.ravel(observation).astype(dtype))
        stats = _select(done, reset_stats, stats)
        # AddTimeInfo: the time appended before it is incremented
        shape = jnp.shape(observation)
        final = self._with_time(final, state.time, shape)
        first = self._with_time(first, jnp.asarray(-0.5, dtype), shape)
        time = jnp.where(done, -0.5, state.time + (1 / self.time_limit if self.time_limit else 0))
        observation = jnp.where(done, first, final)
        info = {**info, "final_observation": final, "raw_reward": raw_reward}
        state = StreamingWrapperState(env_state, stats, return_stats, trace, time.astype(dtype))
        if self.time_limit is not None:  # the limit is in the state: a terminal state
            terminated = done
        return observation, state, scaled, terminated, truncated, info
