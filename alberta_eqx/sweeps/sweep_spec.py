"""What a sweep runs, as data: a stream x a learner x a hyperparameter grid x seeds
(`SweepSpec`), from Python or from a TOML file (`load_spec`), checked as it is built."""

import dataclasses
import math
import numbers
import os
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments.runner import seed_numbers
from alberta_eqx.learners import AbstractLearner, LinearLearner
from alberta_eqx.streams import AbstractStream
from alberta_eqx.sweeps import store
from alberta_eqx.sweeps.labelled import describe
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


@dataclasses.dataclass(frozen=True)
class SweepSpec:
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

    def __post_init__(self):
        if not isinstance(self.stream, AbstractStream):
            raise TypeError(f"stream must be an AbstractStream, got {type(self.stream).__name__}")
        if not callable(self.learner):
            raise TypeError(f"learner must be a function, got {type(self.learner).__name__}")
        _check_grid(self.grid)
        positive_int("num_steps", self.num_steps)
        if self.num_steps > _MAX_STEPS:
            raise ValueError(
                f"num_steps must be at most 2**31 (step indices are int32), got {self.num_steps}"
            )
        window = positive_int("metrics_window", self.metrics_window)
        if self.num_steps % window:
            raise ValueError(
                f"num_steps ({self.num_steps}) must be a multiple of metrics_window ({window})"
            )
        if isinstance(self.seeds, int):
            positive_int("seeds", self.seeds)  # not listed: check_sweep refuses a huge one
        else:
            seed_numbers(self.seeds)

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

    def template(self) -> AbstractLearner:
        """The learner of the grid's first configuration."""
        return self.learner(**{name: values[0] for name, values in self.grid.items()})

    def describe(self) -> dict[str, Any]:
        """The specification as JSON-able data: what a store records, and what a
        resumed sweep must match."""
        return {
            "stream": describe(self.stream),
            "learner": describe(self.template()),
            "grid": {name: [float(v) for v in values] for name, values in self.grid.items()},
            "num_steps": self.num_steps,
            "seeds": list(seed_numbers(self.seeds)),
            "metrics_window": self.metrics_window,
        }


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


def spec_from_dict(data: Mapping[str, Any]) -> SweepSpec:
    """A `SweepSpec` from the contents of a sweep file (see `load_spec`)."""
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


def load_spec(path: str | os.PathLike) -> SweepSpec:
    """A `SweepSpec` from a TOML file:

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
