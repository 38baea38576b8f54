"""Sweeps of control agents: an environment x an agent x a hyperparameter grid x seeds
(`ControlSweepSpec`), every shard run by the same compiled programs of the
agent-environment loop (`control_step`) over its configurations and seeds, into the
same resumable store as the learners' sweeps (`run_sweep`).

A run's metrics, per window of `metrics_window` steps:

- `reward_rate`: the mean undiscounted reward per step (what a continuing task is
  judged by, and defined whether or not an episode ended in the window);
- `episodes`: how many episodes ended in the window;
- `episode_return`: the mean undiscounted return of those episodes (NaN where none
  ended).

Configurations are ranked by their final `reward_rate`, highest first. A shard runs
in compiled calls of at most 100,000 steps (whole windows), each logged, so a long
shard shows its progress; a resumed sweep runs an unfinished shard again. Every
configuration of a seed starts from the same keys (the agent's initial weights, the
environment's draws), so that configurations differ by their hyperparameters only.
"""

import dataclasses
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, PRNGKeyArray, PyTree

from alberta_eqx._checks import default_float
from alberta_eqx.control import (
    AbstractControlAgent,
    ControlRun,
    control_step_with_reward,
    start_control,
    stream_x,
)
from alberta_eqx.experiments.runner import seed_numbers
from alberta_eqx.sweeps.labelled import describe
from alberta_eqx.sweeps.sharding import place
from alberta_eqx.sweeps.spec import SpecError, call
from alberta_eqx.sweeps.sweep_spec import (
    AbstractSweepSpec,
    _check_grid,
    _check_keys,
    _resolve,
    _table,
    check_run_fields,
    floats,
)

METRICS = ("reward_rate", "episodes", "episode_return")
_MAX_STEPS = (1 << 31) - 1  # a ControlRun counts its steps in int32
_STEPS_PER_CALL = 100_000
log = logging.getLogger("alberta_eqx.sweep")


@dataclasses.dataclass(frozen=True)
class ControlSweepSpec(AbstractSweepSpec):
    """What a sweep of control agents runs.

    **Fields:**

    - `environment`: a gymnax-style environment (wrappers included), shared by every
      run.
    - `agent`: a function `agent(key, **hyperparameters) -> AbstractControlAgent`,
      called with the run's agent key and one value of each hyperparameter of
      `grid` (traced: a shard's agents are built under `eqx.filter_vmap`).
    - `grid`, `seeds`, `metrics_window`: as `SweepSpec`'s; seed `s` runs from the
      key `seed_keys(s)[0]`, split into the agent's key and the loop's.
    - `num_steps`: steps per run (at most `2**31 - 1`).
    - `env_params`: the environment's parameters (default its `default_params`).
    - `settings`: how the environment was made, for the store's record (default:
      `describe(environment)`).
    """

    environment: Any
    agent: Callable[..., AbstractControlAgent]
    grid: Mapping[str, Sequence[float]]
    num_steps: int
    seeds: int | Sequence[int] = 30
    metrics_window: int = 1
    env_params: PyTree = None
    settings: Mapping[str, Any] | None = None
    kind: ClassVar[str] = "agent"
    rank_by: ClassVar[tuple[str, bool]] = ("reward_rate", True)

    def __post_init__(self):
        for method in ("reset", "step"):
            if not callable(getattr(self.environment, method, None)):
                raise TypeError(
                    f"environment must be a gymnax-style environment (reset, step), got "
                    f"{type(self.environment).__name__}"
                )
        if not callable(self.agent):
            raise TypeError(f"agent must be a function, got {type(self.agent).__name__}")
        check_run_fields(self, _MAX_STEPS, "2**31 - 1")

    @property
    def params(self) -> PyTree:
        """The environment's parameters."""
        return self.environment.default_params if self.env_params is None else self.env_params

    def build(self, point: Mapping[str, Any]) -> AbstractControlAgent:
        return self.agent(jax.random.key(0), **point)

    def _start(self, point: Mapping[str, Any], key: PRNGKeyArray) -> ControlRun:
        agent_key, run_key = jax.random.split(key)
        agent = self.agent(agent_key, **point)
        if not isinstance(agent, AbstractControlAgent):
            raise TypeError(f"agent must return an AbstractControlAgent, got {type(agent)}")
        # the windows count episodes themselves: the run's own record is not read
        return start_control(
            agent, self.environment, run_key, env_params=self.params, max_episodes=1
        )

    def describe(self) -> dict[str, Any]:
        environment = self.settings
        if environment is None:
            environment = describe(self.environment)
            if not isinstance(environment, dict):  # not an eqx.Module: named by its type
                kind = type(self.environment)
                environment = {"type": f"{kind.__module__}.{kind.__qualname__}"}
        return {
            "environment": dict(environment),
            "agent": describe(self.build(self.first_point)),
            "grid": {name: [float(v) for v in values] for name, values in self.grid.items()},
            "num_steps": self.num_steps,
            "seeds": list(seed_numbers(self.seeds)),
            "metrics_window": self.metrics_window,
        }

    def metric_names(self) -> list[str]:
        """`METRICS`, once one window of a run has been traced (by shape only)."""
        first = self.first_point
        key = jax.random.key(0)
        eqx.filter_eval_shape(lambda k: _windows(self, self._start(first, k), 1, 1)[1], key)
        return list(METRICS)

    def state_floats(self) -> int:
        return floats(eqx.filter_eval_shape(self._start, self.first_point, jax.random.key(0)))

    def block_floats(self) -> int:
        return 0  # the environment is stepped in the loop: nothing is generated ahead

    def floats_per_run(self) -> int:
        """Its results and a few copies of its state."""
        return 3 * len(METRICS) * (self.num_steps // self.metrics_window) + 4 * (
            self.state_floats()
        )

    def run_shard(
        self, points: Mapping[str, Array], keys: Array, mesh: jax.sharding.Mesh | None
    ) -> dict[str, Array]:
        if mesh is not None:
            points, keys = place(mesh, dict(points), keys)
        start, segment = self._programs
        runs = start(points, keys)
        windows = self.num_steps // self.metrics_window
        per_call = _windows_per_call(windows, self.metrics_window)
        parts = []
        for done in range(per_call, windows + 1, per_call):
            runs, metrics = segment(runs)
            parts.append(metrics)
            if windows > per_call:
                log.info("    %d/%d steps", done * self.metrics_window, self.num_steps)
        return {
            name: jnp.concatenate([part[i] for part in parts], axis=-1)
            for i, name in enumerate(METRICS)
        }

    @functools.cached_property
    def _programs(self) -> tuple[Callable[..., ControlRun], Callable[..., Any]]:
        """`start(points, keys)`, every configuration's run on every seed's key, and
        `segment(runs)`, their next windows and each metric `(configs, seeds,
        windows)`: compiled once for every shard of the sweep."""
        windows = _windows_per_call(self.num_steps // self.metrics_window, self.metrics_window)
        over_seeds = eqx.filter_vmap(self._start, in_axes=(None, 0))
        start = eqx.filter_jit(eqx.filter_vmap(over_seeds, in_axes=(0, None)))

        def one(run):
            return _windows(self, run, windows, self.metrics_window)

        return start, eqx.filter_jit(eqx.filter_vmap(eqx.filter_vmap(one)))


def _windows_per_call(num_windows: int, window: int) -> int:
    """Windows per compiled call: the most that divide the run and span at most
    `max(window, 100_000)` steps, so that a long shard reports its progress."""
    most = max(1, _STEPS_PER_CALL // window)
    return max(d for d in range(1, min(most, num_windows) + 1) if num_windows % d == 0)


def _windows(spec: ControlSweepSpec, run: ControlRun, num_windows: int, window: int):
    """`num_windows` windows of `window` steps of one run: the run after them, and per
    window its reward rate, the episodes that ended in it and their mean return."""
    dtype = default_float()

    def step(carry, _):
        run, reward, episodes, returns = carry
        new, raw = control_step_with_reward(run, spec.environment, spec.params)
        ended = new.num_episodes != run.num_episodes
        returns = returns + jnp.where(ended, run.episode_return + raw, 0)
        return (new, reward + raw, episodes + ended, returns), None

    def one_window(run, _):
        zero = jnp.zeros((), dtype)
        start = (run, zero, jnp.zeros((), jnp.int32), zero)
        (run, reward, episodes, returns), _ = jax.lax.scan(step, start, length=window)
        mean_return = jnp.where(episodes > 0, returns / jnp.maximum(episodes, 1), jnp.nan)
        return run, (reward / window, episodes.astype(dtype), mean_return)

    return jax.lax.scan(one_window, run, length=num_windows)


def control_spec_from_dict(data: Mapping[str, Any]) -> ControlSweepSpec:
    """A `ControlSweepSpec` from the contents of a sweep file with an `[environment]`
    table (see `load_spec`):

    ```toml
    num_steps = 100000
    seeds = 5
    metrics_window = 10000

    [environment]
    game = "breakout"          # a key of alberta_eqx.control.stream_x.GAMES, in the
    sticky_action_prob = 0.1   #   authors' wrappers (optional: the default is theirs)
    # or: type = a name in alberta_eqx ("MountainCar") or "package.module:factory",
    # called with this table's other keys, returning a gymnax-style environment

    [agent]
    type = "q"                 # with a game: "q", "sarsa" or "ac", as the authors
    kappa = 2.0                #   build them (make_agent); fixed keyword arguments
    # or: type = a name in alberta_eqx or "package.module:factory", called as
    # factory(key, environment, **[agent], **grid point) -> AbstractControlAgent

    [grid]
    step_size = [0.3, 1.0]
    lambda_ = [0.8]
    ```
    """
    known = {"num_steps", "seeds", "metrics_window", "environment", "agent", "grid"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(
            f"unknown keys in the sweep file: {sorted(unknown)}; known with an [environment]: "
            f"{sorted(known)}"
        )
    if "num_steps" not in data:
        raise ValueError("the sweep file needs num_steps, the steps per run")
    num_steps = data["num_steps"]
    env_args = _table(data, "environment")
    agent_args = _table(data, "agent")
    grid = _table(data, "grid")
    _check_grid(grid)
    agent_type = agent_args.pop("type", None)
    if not isinstance(agent_type, str):
        raise SpecError(f"[agent] needs type, a string, got {agent_type!r}")
    if "game" in env_args:
        environment, agent, settings = _game(env_args, agent_type, agent_args, grid, num_steps)
    else:
        env_type = env_args.pop("type", None)
        if not isinstance(env_type, str):
            raise SpecError(
                f"[environment] needs game (one of {sorted(stream_x.GAMES)}) or type "
                f"('package.module:factory'), got {env_type!r}"
            )
        settings = {"type": env_type, **env_args}
        make = _resolve(env_type, "environment type")
        environment = call("[environment] type", env_type, make, env_args)
        factory = _resolve(agent_type, "agent type")
        _check_keys(
            {"agent": agent_args, "grid": grid},
            factory,
            agent_type,
            frozenset({"key", "environment"}),
        )

        def agent(key, **point):
            return factory(key, environment, **agent_args, **point)

    return ControlSweepSpec(
        environment=environment,
        agent=agent,
        grid=grid,
        num_steps=num_steps,
        seeds=data.get("seeds", 30),
        metrics_window=data.get("metrics_window", 1),
        settings=settings,
    )


def _game(
    env_args: dict[str, Any],
    agent_type: str,
    agent_args: dict[str, Any],
    grid: Mapping[str, Any],
    num_steps: Any,
) -> tuple[Any, Callable[..., AbstractControlAgent], dict[str, Any]]:
    """A game of `stream_x.GAMES` and the authors' agent for it."""
    game = env_args.pop("game")
    if game not in stream_x.GAMES:
        raise SpecError(
            f"[environment] game must be one of {sorted(stream_x.GAMES)}, got {game!r}"
        )
    default_sticky = 0.0 if game in stream_x.CONTINUOUS else stream_x.STICKY_ACTION_PROB
    sticky = env_args.pop("sticky_action_prob", default_sticky)
    if env_args:
        raise SpecError(
            f"unknown [environment] keys for a game: {sorted(env_args)}; it takes game, "
            "sticky_action_prob"
        )
    if agent_type not in stream_x.AGENTS:
        raise SpecError(
            f"[agent] type for a game must be one of {stream_x.AGENTS}, got {agent_type!r}"
        )
    if "discount" in grid:  # the wrapper's reward scaling holds one discount
        raise SpecError(
            "grid discount: a game's wrapper scales rewards with one discount; give "
            "[agent] discount instead"
        )
    discount = agent_args.get("discount", 0.99)
    base, params, environment = stream_x.environment(game, discount, sticky)
    steps = num_steps if isinstance(num_steps, int) else 1  # (the spec refuses a bad one)

    def agent(key, **point):
        return stream_x.make_agent(
            game, agent_type, key, num_steps=steps, base=base, params=params, **agent_args, **point
        )

    return environment, agent, {"game": game, "sticky_action_prob": sticky, "discount": discount}
