"""Reinforcement-learning environments as TD streams, for value prediction, and as
supervised streams (`PredictionStream`) for reward and next-observation prediction.

- `GymnaxTDStream`: a gymnax environment (pure JAX) stepped inside the compiled scan,
  so the runners can `vmap` it over seeds: thousands of environment copies learn in
  one `run_learning_loop_batched` call. Needs the `[gymnax]` extra.
- `collect_gymnasium` + `TrajectoryStream`: a Gymnasium environment is stepped on the
  host into arrays (collect), which `TrajectoryStream` then replays through the
  compiled runner (learn). Needs the `[gymnasium]` extra.

Both yield `TDTimeStep`s under a fixed policy (uniform random unless one is given;
`epsilon_greedy` makes one from a greedy choice):
the discount is 0 where the episode *terminates*, and `discount` where it is only
*truncated* (a time limit), whose transition bootstraps from the final observation.
The environment resets after either, and `truncated` marks a truncation, where TD
learners cut their traces.
"""

import importlib
from collections.abc import Callable
from types import ModuleType
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray, PyTree

from alberta_eqx import _checks
from alberta_eqx.streams._base import (
    AbstractStream,
    AbstractTDStream,
    TDTimeStep,
    TimeStep,
    step_keys,
)

__all__ = [
    "GymnaxState",
    "GymnaxTDStream",
    "PredictionStream",
    "TrajectoryStream",
    "collect_gymnasium",
    "epsilon_greedy",
]


def _require(module: str, extra: str) -> ModuleType:
    """Import an optional dependency, or say which extra installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as error:
        raise ImportError(
            f"{module} is not installed; it comes with the {extra} extra: "
            f"pip install 'alberta_eqx[{extra}]'"
        ) from error


class GymnaxState(NamedTuple):
    """A gymnax stream's state.

    **Fields:**

    - `key`: step `t` draws its action and environment randomness from
      `fold_in(key, t)`.
    - `env_state`: the environment's state.
    - `observation`: the current observation (before feature mapping).
    """

    key: PRNGKeyArray
    env_state: PyTree
    observation: Float[Array, "..."]


class GymnaxTDStream(AbstractTDStream[TDTimeStep]):
    """Transitions of a gymnax environment under a fixed policy, generated inside the
    compiled loop.

    **Arguments:**

    - `env`: a gymnax environment id (`"CartPole-v1"`) or environment object.
    - `env_params`: its parameters (default: the environment's defaults).
    - `discount`: `gamma` in `(0, 1]` for non-terminal transitions.
    - `policy`: `policy(key, observation) -> action`, a JAX function; default
      uniformly random actions.
    - `features`: `features(observation) -> feature vector`, a JAX function; default
      the observation itself, flattened.
    """

    env: Any = eqx.field(static=True)
    env_params: PyTree
    discount: Float[Array, ""]
    policy: Callable | None = eqx.field(static=True)
    features: Callable | None = eqx.field(static=True)
    feature_dim: int = eqx.field(static=True)

    def __init__(
        self,
        env: Any = "CartPole-v1",
        env_params: PyTree = None,
        *,
        discount: ArrayLike = 0.99,
        policy: Callable | None = None,
        features: Callable | None = None,
    ):
        gymnax = _require("gymnax", "gymnax")
        if isinstance(env, str):
            env, default_params = gymnax.make(env)
        else:
            default_params = env.default_params
        self.env = env
        self.env_params = default_params if env_params is None else env_params
        self.discount = _checks.in_unit_interval("discount", discount)
        self.policy = policy
        self.features = features
        observation = jax.eval_shape(lambda k: env.reset(k, self.env_params)[0], jax.random.key(0))
        mapped = observation if features is None else jax.eval_shape(features, observation)
        self.feature_dim = int(np.prod(mapped.shape))

    def _features(self, observation: Array) -> Float[Array, " n"]:
        x = observation if self.features is None else self.features(observation)
        return jnp.ravel(x).astype(self.discount.dtype)

    def _action(self, key: PRNGKeyArray, observation: Array) -> Array:
        if self.policy is None:
            return self.env.action_space(self.env_params).sample(key)
        return self.policy(key, observation)

    def init(self, key: PRNGKeyArray) -> GymnaxState:
        reset_key, key = jax.random.split(key)
        observation, env_state = self.env.reset(reset_key, self.env_params)
        return GymnaxState(key, env_state, observation)

    def chunk(
        self, state: GymnaxState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TDTimeStep, GymnaxState]:
        def body(carry, key):
            env_state, observation = carry
            action_key, step_key = jax.random.split(key)
            action = self._action(action_key, observation)
            # gymnax resets by itself after an episode ends: `following` is then the
            # new episode's first observation and `info["final_observation"]` the
            # state the transition reached.
            following, env_state, reward, terminated, truncated, info = self.env.step(
                step_key, env_state, action, self.env_params
            )
            timestep = TDTimeStep(
                observation=self._features(observation),
                reward=jnp.asarray(reward, self.discount.dtype),
                discount=jnp.where(terminated, 0, self.discount).astype(self.discount.dtype),
                next_observation=self._features(info["final_observation"]),
                truncated=jnp.asarray(truncated, bool),
            )
            return (env_state, following), timestep

        keys = step_keys(state.key, t0, num_steps)
        (env_state, observation), timesteps = jax.lax.scan(
            body, (state.env_state, state.observation), keys
        )
        return timesteps, GymnaxState(state.key, env_state, observation)


def epsilon_greedy(
    greedy: Callable[[Array], Array], epsilon: float, num_actions: int
) -> Callable[[PRNGKeyArray, Array], Array]:
    """An epsilon-greedy policy for `GymnaxTDStream`: with probability `epsilon` a
    uniformly random action among `num_actions`, otherwise `greedy(observation)` (a
    JAX function, for example the argmax of action values).

    **Returns:** `policy(key, observation) -> action`.
    """
    _checks.unit_interval_closed("epsilon", epsilon)
    num_actions = _checks.positive_int("num_actions", num_actions)

    def policy(key: PRNGKeyArray, observation: Array) -> Array:
        explore_key, action_key = jax.random.split(key)
        explore = jax.random.uniform(explore_key) < epsilon
        return jnp.where(
            explore, jax.random.randint(action_key, (), 0, num_actions), greedy(observation)
        )

    return policy


def collect_gymnasium(
    env: Any,
    num_steps: int,
    *,
    seed: int = 0,
    discount: float = 0.99,
    policy: Callable | None = None,
    features: Callable | None = None,
) -> TDTimeStep:
    """Step a Gymnasium environment `num_steps` times on the host and return the
    transitions as stacked NumPy float32 arrays (a `TDTimeStep`), ready for
    `TrajectoryStream`.

    **Arguments:**

    - `env`: a Gymnasium environment id (`"CartPole-v1"`) or environment.
    - `num_steps`: how many transitions to collect.
    - `seed`: seeds the first reset and the action space's sampler.
    - `discount`: `gamma` in `(0, 1]` for non-terminal transitions.
    - `policy`: `policy(observation) -> action`; default `env.action_space.sample()`.
    - `features`: `features(observation) -> feature vector` (NumPy); default the
      observation, flattened.
    """
    gymnasium = _require("gymnasium", "gymnasium")
    num_steps = _checks.positive_int("num_steps", num_steps)
    if not 0 < discount <= 1:
        raise ValueError(f"discount must be in (0, 1], got {discount}")
    if isinstance(env, str):
        env = gymnasium.make(env)

    def phi(observation) -> np.ndarray:
        x = observation if features is None else features(observation)
        return np.ravel(np.asarray(x, np.float32))

    env.action_space.seed(seed)
    observation, _ = env.reset(seed=seed)
    columns: tuple[list, ...] = ([], [], [], [], [])
    for _ in range(num_steps):
        action = env.action_space.sample() if policy is None else policy(observation)
        following, reward, terminated, truncated, _ = env.step(action)
        for column, value in zip(
            columns,
            (
                phi(observation),
                reward,
                0.0 if terminated else discount,
                phi(following),
                truncated and not terminated,
            ),
            strict=True,
        ):
            column.append(value)
        observation = env.reset()[0] if terminated or truncated else following
    *floats, truncations = columns
    # `_make`: NumPy arrays in fields annotated as JAX arrays (host data, by design).
    return TDTimeStep._make(
        [*(np.asarray(c, np.float32) for c in floats), np.asarray(truncations, bool)]
    )


class TrajectoryStream(AbstractTDStream[TDTimeStep]):
    """Replays a collected trajectory (for example from `collect_gymnasium`) through
    the compiled runners: step `t` is transition `t mod length`, whatever the key, so
    every seed sees the same data and runs longer than the trajectory replay it
    from the start.

    **Arguments:**

    - `trajectory`: a `TDTimeStep` of stacked arrays, leading axis the steps.
    """

    trajectory: TDTimeStep

    def __init__(self, trajectory: TDTimeStep):
        trajectory = TDTimeStep._make(None if a is None else jnp.asarray(a) for a in trajectory)
        length = trajectory.reward.shape[0] if trajectory.reward.ndim == 1 else 0
        if (
            length == 0
            or trajectory.observation.shape[:1] != (length,)
            or trajectory.observation.ndim != 2
            or trajectory.observation.shape != trajectory.next_observation.shape
            or trajectory.discount.shape != (length,)
            or (trajectory.truncated is not None and trajectory.truncated.shape != (length,))
        ):
            raise ValueError(
                "trajectory must hold steps on its leading axis: observation and "
                "next_observation (steps, n), reward, discount and truncated (steps,); got "
                f"shapes {[None if a is None else a.shape for a in trajectory]}"
            )
        self.trajectory = trajectory

    @property
    def feature_dim(self) -> int:
        return self.trajectory.observation.shape[1]

    def init(self, key: PRNGKeyArray) -> PRNGKeyArray:
        return key

    def chunk(
        self, state: PRNGKeyArray, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TDTimeStep, PRNGKeyArray]:
        length = self.trajectory.reward.shape[0]
        index = (jnp.asarray(t0) + jnp.arange(num_steps)) % length
        return jax.tree.map(lambda a: a[index], self.trajectory), state


class PredictionStream(AbstractStream[TimeStep]):
    """A TD stream seen as a supervised stream, for 0.2.x's other prediction modes:
    from each transition's observation, predict its reward (`target="reward"`) or one
    component of the next observation (`target=i`, the flattened index). Learn from it
    with any supervised learner (`LinearLearner`, `MLPLearner`).

    **Arguments:**

    - `stream`: a TD stream (`GymnaxTDStream`, `TrajectoryStream`, ...).
    - `target`: `"reward"`, or the index of the next observation's component.
    """

    stream: AbstractTDStream[TDTimeStep]
    target: str | int = eqx.field(static=True)

    def __init__(self, stream: AbstractTDStream, target: str | int = "reward"):
        if not isinstance(stream, AbstractTDStream):
            raise TypeError(f"stream must be a TD stream, got {type(stream).__name__}")
        if target != "reward" and not (
            isinstance(target, int) and 0 <= target < stream.feature_dim
        ):
            raise ValueError(
                f"target must be 'reward' or a component index in [0, {stream.feature_dim}), "
                f"got {target!r}"
            )
        self.stream = stream
        self.target = target

    @property
    def feature_dim(self) -> int:
        return self.stream.feature_dim

    def init(self, key: PRNGKeyArray) -> Any:
        return self.stream.init(key)

    def chunk(self, state: Any, t0: Int[ArrayLike, ""], num_steps: int) -> tuple[TimeStep, Any]:
        transitions, state = self.stream.chunk(state, t0, num_steps)
        if self.target == "reward":
            target = transitions.reward
        else:
            target = transitions.next_observation[:, self.target]
        return TimeStep(transitions.observation, target), state
