"""What a sweep runs, as data: a stream x a learner x a hyperparameter grid x seeds
(`SweepSpec`; `ControlSweepSpec` for an environment x an agent), from Python or from
a TOML file (`load_spec`), checked as it is built; and what every kind of sweep
tells the runner (`AbstractSweepSpec`): its metrics, its memory, one shard's run."""

import abc
import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any, ClassVar

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments.runner import seed_numbers
from alberta_eqx.learners import AbstractLearner, LinearLearner
from alberta_eqx.runners import run_learning_loop_batched
from alberta_eqx.streams import AbstractStream
from alberta_eqx.sweeps import store
from alberta_eqx.sweeps.labelled import describe
from alberta_eqx.sweeps.sharding import shard_batch
from alberta_eqx.sweeps.spec import SpecError, _parameters, call, resolve

# Step indices are int32 (the runners refuse a run that ends past step 2**31).
_MAX_STEPS = 1 << 31


class SweepError(ValueError):
    """A sweep that cannot run, found before anything is written: the message names
    the setting and what it accepts."""


def _check_grid(grid: Any) -> None:
    if not isinstance(grid, Mapping) or not grid:
        raise ValueError(f"grid must be a non-empty dict name -> values, got {grid!r}")
    for name, values in grid.items():
        if isinstance(values, str) or not isinstance(values, Sequence) or not values:
            raise ValueError(f"grid[{name!r}] must be a non-empty list, got {values!r}")
        for i, value in enumerate(values):
            real = isinstance(value, numbers.Real) and not isinstance(value, bool)
            if not real or not math.isfinite(value):
                raise ValueError(f"grid[{name!r}][{i}] must be a finite number, got {value!r}")


def floats(tree: Any) -> int:
    """The floating-point numbers in a pytree of arrays or their shapes."""
    leaves = jax.tree.leaves(tree)
    return sum(
        math.prod(a.shape)
        for a in leaves
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.inexact)
    )


def block_size(window: int, num_steps: int) -> int:
    """Steps per compiled block: the largest multiple of the window that divides the
    run and is at most `max(window, 1000)`. Across a wide batch (a shard's
    configurations times its seeds) a few hundred steps make the per-block costs
    vanish, while the per-step metrics the block holds stay small."""
    units = num_steps // window
    k = max(d for d in range(1, max(1, 1000 // window) + 1) if units % d == 0)
    return window * k


def check_run_fields(spec: Any, max_steps: int, max_text: str) -> None:
    """Check the fields every sweep has: `grid`, `num_steps` (at most `max_steps`,
    written `max_text` in the message), `metrics_window` (dividing it) and `seeds`."""
    _check_grid(spec.grid)
    positive_int("num_steps", spec.num_steps)
    if spec.num_steps > max_steps:
        raise ValueError(
            f"num_steps must be at most {max_text} (step counts are int32), got {spec.num_steps}"
        )
    window = positive_int("metrics_window", spec.metrics_window)
    if spec.num_steps % window:
        raise ValueError(
            f"num_steps ({spec.num_steps}) must be a multiple of metrics_window ({window})"
        )
    if isinstance(spec.seeds, int):
        positive_int("seeds", spec.seeds)  # not listed: check_sweep refuses a huge one
    else:
        seed_numbers(spec.seeds)


class AbstractSweepSpec(abc.ABC):
    """What `run_sweep` and `check_sweep` need of a sweep: a grid of hyperparameters
    (`grid`), runs of `num_steps` steps on `seeds`, metrics averaged over windows of
    `metrics_window` steps; and, per kind of sweep, how to build one configuration,
    what a run holds and how a shard runs."""

    grid: Mapping[str, Sequence[float]]
    num_steps: int
    seeds: int | Sequence[int]
    metrics_window: int
    kind: ClassVar[str]
    """What a configuration builds, for messages: "learner", "agent"."""
    rank_by: ClassVar[tuple[str, bool]]
    """The metric that ranks configurations, and whether higher is better."""

    @property
    def configurations(self) -> dict[str, np.ndarray]:
        """Each hyperparameter's value per configuration, in the sweep's order."""
        return store.configurations(self.grid)

    @property
    def num_configs(self) -> int:
        return math.prod(len(v) for v in self.grid.values())

    @property
    def num_seeds(self) -> int:
        return self.seeds if isinstance(self.seeds, int) else len(self.seeds)

    @property
    def first_point(self) -> dict[str, float]:
        """The grid's first configuration: each hyperparameter's first value."""
        return {name: values[0] for name, values in self.grid.items()}

    @abc.abstractmethod
    def build(self, point: Mapping[str, Any]) -> Any:
        """The learner (agent) of one configuration `point` (traced under
        `eqx.filter_vmap` for a whole shard)."""

    @abc.abstractmethod
    def describe(self) -> dict[str, Any]:
        """The specification as JSON-able data: what a store records, and what a
        resumed sweep must match."""

    @abc.abstractmethod
    def metric_names(self) -> list[str]:
        """The metrics a run reports, by shape only."""

    @abc.abstractmethod
    def state_floats(self) -> int:
        """One run's state (a learner or agent and its stream or environment)."""

    @abc.abstractmethod
    def block_floats(self) -> int:
        """The generated data one seed holds at once, beyond its state."""

    @abc.abstractmethod
    def floats_per_run(self) -> int:
        """What one run (a configuration on a seed) holds at once."""

    @abc.abstractmethod
    def run_shard(
        self, points: Mapping[str, Array], keys: Array, mesh: jax.sharding.Mesh | None
    ) -> dict[str, Array]:
        """One shard: the configurations `points` (each hyperparameter's values) on
        every seed's key in `keys`, spread over `mesh` if given. Returns each metric
        as `(configurations, seeds, windows)`."""


@dataclasses.dataclass(frozen=True)
class SweepSpec(AbstractSweepSpec):
    """What a sweep runs.

    **Fields:**

    - `stream`: the stream every configuration learns from (one stream per seed,
      shared by all configurations).
    - `learner`: a function `learner(**hyperparameters) -> AbstractLearner`, called
      with one value of each hyperparameter of `grid` (traced: it builds the whole
      grid under `eqx.filter_vmap`), for example
      `lambda step_size: LinearLearner(10, LMS(step_size))`.
    - `grid`: each hyperparameter's values; the sweep runs their Cartesian product,
      the last hyperparameter varying fastest.
    - `num_steps`: steps per run (at most `2**31`: step indices are int32).
    - `seeds`: a count `k` (the seeds `0 .. k-1`) or a list of seeds; seed `s`'s
      stream key is `seed_keys(s)[0]`, as in `run_experiment`.
    - `metrics_window`: average the metrics over windows of this many steps (it must
      divide `num_steps`).
    """

    stream: AbstractStream
    learner: Callable[..., AbstractLearner]
    grid: Mapping[str, Sequence[float]]
    num_steps: int
    seeds: int | Sequence[int] = 30
    metrics_window: int = 1
    kind: ClassVar[str] = "learner"
    rank_by: ClassVar[tuple[str, bool]] = ("squared_error", False)

    def __post_init__(self):
        if not isinstance(self.stream, AbstractStream):
            raise TypeError(f"stream must be an AbstractStream, got {type(self.stream).__name__}")
        if not callable(self.learner):
            raise TypeError(f"learner must be a function, got {type(self.learner).__name__}")
        check_run_fields(self, _MAX_STEPS, "2**31")

    def build(self, point: Mapping[str, Any]) -> AbstractLearner:
        return self.learner(**point)

    def template(self) -> AbstractLearner:
        """The learner of the grid's first configuration."""
        return self.build(self.first_point)

    def describe(self) -> dict[str, Any]:
        return {
            "stream": describe(self.stream),
            "learner": describe(self.template()),
            "grid": {name: [float(v) for v in values] for name, values in self.grid.items()},
            "num_steps": self.num_steps,
            "seeds": list(seed_numbers(self.seeds)),
            "metrics_window": self.metrics_window,
        }

    def _example(self) -> Any:
        """One step's example, by shape."""
        stream_state = jax.eval_shape(self.stream.init, jax.random.key(0))
        timesteps, _ = jax.eval_shape(
            lambda s: self.stream.chunk(s, jnp.asarray(0), 1), stream_state
        )
        return jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), timesteps)

    def metric_names(self) -> list[str]:
        """The `StepMetrics` fields the learner fills."""
        learner = eqx.filter_eval_shape(self.template)
        metrics = eqx.filter_eval_shape(
            lambda lr, ts: lr.learn(ts)[1].metrics, learner, self._example()
        )
        return [name for name, value in metrics._asdict().items() if value is not None]

    def state_floats(self) -> int:
        learner = eqx.filter_eval_shape(self.template)
        return floats(learner) + floats(jax.eval_shape(self.stream.init, jax.random.key(0)))

    def block_floats(self) -> int:
        """A seed's generated block of examples, times the copies XLA holds of it: a
        200-step block of 10**7 features on 2 seeds asked for 7 copies (measured), so 8
        are counted."""
        return 8 * block_size(self.metrics_window, self.num_steps) * floats(self._example())

    def floats_per_run(self) -> int:
        """Its results, a block's per-step metrics and a few copies of its state."""
        windows = self.num_steps // self.metrics_window
        block = block_size(self.metrics_window, self.num_steps)
        return 3 * (windows + block) + 4 * self.state_floats()

    def run_shard(
        self, points: Mapping[str, Array], keys: Array, mesh: jax.sharding.Mesh | None
    ) -> dict[str, Array]:
        """Every seed's stream generated once and shared by the shard's learners."""
        learners = eqx.filter_vmap(self.build)(points)
        if mesh is not None:
            learners, keys = shard_batch(mesh, learners, keys)
        result = run_learning_loop_batched(
            learners,
            self.stream,
            self.num_steps,
            keys,
            metrics_window=self.metrics_window,
            block_size=block_size(self.metrics_window, self.num_steps),
        )
        return {k: v for k, v in result.metrics._asdict().items() if v is not None}


def _resolve(name: str, what: str) -> Any:
    """`name` in `alberta_eqx` (`DriftingTargetStream`, `IDBD`, ...), or
    `package.module:attribute` anywhere (the command line's `run` resolves alike)."""
    import alberta_eqx

    public = {n: getattr(alberta_eqx, n) for n in alberta_eqx.__all__}
    return resolve(what, name, public)


def _table(data: Mapping[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    table = data.get(name, {} if not required else None)
    if not isinstance(table, dict):
        raise ValueError(f"the sweep file needs a [{name}] table, got {table!r}")
    return dict(table)


def _check_keys(
    tables: Mapping[str, Mapping[str, Any]],
    function: Callable[..., Any],
    name: str,
    given: frozenset[str] = frozenset(),
) -> None:
    """Refuse a key of `tables` that `function` does not take, or one given twice,
    naming the table, the key and the keys it takes."""
    parameters = _parameters(function)
    seen = set(given)
    for table, keys in tables.items():
        for key in keys:
            if parameters is not None and key not in parameters:
                takes = ", ".join(p for p in parameters if p not in given) or "no arguments"
                raise SpecError(f"[{table}] key {key!r}: {name} takes {takes}")
            if key in seen:
                raise SpecError(f"[{table}] key {key!r} is given twice")
            seen.add(key)


def spec_from_dict(data: Mapping[str, Any]) -> AbstractSweepSpec:
    """A `SweepSpec` from the contents of a sweep file (see `load_spec`); with an
    `[environment]` table, a `ControlSweepSpec` (`control_spec_from_dict`)."""
    if "environment" in data:
        from alberta_eqx.sweeps.control_sweep import control_spec_from_dict

        return control_spec_from_dict(data)
    known = {"num_steps", "seeds", "metrics_window", "stream", "learner", "optimizer", "grid"}
    unknown = set(data) - known
    if unknown:
        raise ValueError(
            f"unknown keys in the sweep file: {sorted(unknown)}; known: {sorted(known)}"
        )
    if "num_steps" not in data:
        raise ValueError("the sweep file needs num_steps, the steps per run")
    stream_args = _table(data, "stream")
    stream_type = stream_args.pop("type", "DriftingTargetStream")
    stream = call("[stream] type", stream_type, _resolve(stream_type, "stream type"), stream_args)
    learner_args = _table(data, "learner", required=False)
    optimizer_args = _table(data, "optimizer", required=False)
    grid = _table(data, "grid")
    _check_grid(grid)
    learner_type = learner_args.pop("type", "LinearLearner")
    kind = _resolve(learner_type, "learner type")
    if kind is LinearLearner:
        optimizer_name = learner_args.pop("optimizer", "IDBD")
        optimizer = _resolve(optimizer_name, "optimizer")
        _check_keys({"optimizer": optimizer_args, "grid": grid}, optimizer, optimizer_name)
        normalizer = learner_args.pop("normalizer", None)
        normalizer = None if normalizer is None else _resolve(normalizer, "normalizer")()
        if learner_args:
            raise ValueError(
                f"unknown [learner] keys for LinearLearner: {sorted(learner_args)}; it takes "
                "type, optimizer, normalizer"
            )

        def learner(**hyperparameters):
            return LinearLearner(
                stream.feature_dim, optimizer(**optimizer_args, **hyperparameters), normalizer
            )

    else:  # a user's factory: factory(feature_dim=..., **[learner] settings, **grid point)
        if optimizer_args:
            raise ValueError("an [optimizer] table is for type = 'LinearLearner' only")
        _check_keys(
            {"learner": learner_args, "grid": grid}, kind, learner_type, frozenset({"feature_dim"})
        )

        def learner(**hyperparameters):
            return kind(feature_dim=stream.feature_dim, **learner_args, **hyperparameters)

    return SweepSpec(
        stream=stream,
        learner=learner,
        grid=grid,
        num_steps=data["num_steps"],
        seeds=data.get("seeds", 30),
        metrics_window=data.get("metrics_window", 1),
    )


def load_spec(path: str | os.PathLike) -> AbstractSweepSpec:
    """A `SweepSpec` from a TOML file (with an `[environment]` table: a
    `ControlSweepSpec`, see `control_spec_from_dict`):

    ```toml
    num_steps = 10000
    seeds = 30                 # a count, or a list of seeds
    metrics_window = 100

    [stream]
    type = "DriftingTargetStream"  # a name in alberta_eqx, or "package.module:Class"
    feature_dim = 10           # ... and the stream's keyword arguments

    [learner]
    type = "LinearLearner"     # default; or "package.module:factory", called as
    optimizer = "IDBD"         #   factory(feature_dim=..., **[learner], **grid point)
    normalizer = "EMANormalizer"  # optional

    [optimizer]                # fixed keyword arguments of the optimizer
    tau = 10000.0

    [grid]                     # the optimizer's (or factory's) swept arguments
    initial_step_size = [0.001, 0.01, 0.1]
    meta_step_size = [0.0001, 0.001, 0.01]
    ```
    """
    import tomllib

    with open(path, "rb") as f:
        return spec_from_dict(tomllib.load(f))
