"""Sweeps: a stream x a learner x a hyperparameter grid x seeds, run in shards of
configurations into a Zarr store, resumable after a crash.

A `SweepSpec` says what to run (from Python, or from a TOML file with `load_spec`);
`run_sweep` runs the grid's configurations in shards sized to a memory budget, each
shard one compiled call of `run_learning_loop_batched` over all seeds (every seed's
stream generated once and shared by the shard's configurations), and writes every
finished shard to the store before starting the next. Started again on the same
folder, it skips the shards the store marks completed, and says so in its log.
Given a mesh (`make_mesh`), each shard is spread over its devices, in one process
or several (`jax.distributed.initialize`); each process writes its devices' blocks.
"""

import dataclasses
import itertools
import json
import logging
import math
import os
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments import store
from alberta_eqx.experiments.labelled import _xarray, describe, versions
from alberta_eqx.experiments.runner import _seed_list, seed_keys
from alberta_eqx.experiments.sharding import CONFIGS, SEEDS, shard_batch
from alberta_eqx.experiments.spec import resolve
from alberta_eqx.learners import AbstractLearner, LinearLearner
from alberta_eqx.runners import run_learning_loop_batched
from alberta_eqx.streams import AbstractStream

log = logging.getLogger("alberta_eqx.sweep")

STORE = "sweep.zarr"
"""The store's folder name inside a sweep's output folder."""


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
    - `num_steps`: steps per run.
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
        if not isinstance(self.grid, Mapping) or not self.grid:
            raise ValueError(f"grid must be a non-empty dict name -> values, got {self.grid!r}")
        for name, values in self.grid.items():
            if isinstance(values, str) or not isinstance(values, Sequence) or not values:
                raise ValueError(f"grid[{name!r}] must be a non-empty list, got {values!r}")
        positive_int("num_steps", self.num_steps)
        window = positive_int("metrics_window", self.metrics_window)
        if self.num_steps % window:
            raise ValueError(
                f"num_steps ({self.num_steps}) must be a multiple of metrics_window ({window})"
            )
        _seed_list(self.seeds)

    @property
    def configurations(self) -> dict[str, np.ndarray]:
        """Each hyperparameter's value per configuration, in the sweep's order."""
        points = list(itertools.product(*self.grid.values()))
        return {
            name: np.asarray([p[i] for p in points], np.float64)
            for i, name in enumerate(self.grid)
        }

    @property
    def num_configs(self) -> int:
        return math.prod(len(v) for v in self.grid.values())

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
            "seeds": list(_seed_list(self.seeds)),
            "metrics_window": self.metrics_window,
        }


def _resolve(name: str, what: str) -> Any:
    """`name` in `alberta_eqx` (`RandomWalkStream`, `IDBD`, ...), or
    `package.module:attribute` anywhere (the command line's `run` resolves alike)."""
    import alberta_eqx

    public = {n: getattr(alberta_eqx, n) for n in alberta_eqx.__all__}
    return resolve(what, name, public)


def _table(data: Mapping[str, Any], name: str, required: bool = True) -> dict[str, Any]:
    table = data.get(name, {} if not required else None)
    if not isinstance(table, dict):
        raise ValueError(f"the sweep file needs a [{name}] table, got {table!r}")
    return dict(table)


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
    stream = _resolve(stream_args.pop("type", "RandomWalkStream"), "stream type")(**stream_args)
    learner_args = _table(data, "learner", required=False)
    optimizer_args = _table(data, "optimizer", required=False)
    grid = _table(data, "grid")
    kind = _resolve(learner_args.pop("type", "LinearLearner"), "learner type")
    if kind is LinearLearner:
        optimizer = _resolve(learner_args.pop("optimizer", "IDBD"), "optimizer")
        normalizer = learner_args.pop("normalizer", None)
        normalizer = None if normalizer is None else _resolve(normalizer, "normalizer")()
        if learner_args:
            raise ValueError(f"unknown [learner] keys for LinearLearner: {sorted(learner_args)}")

        def learner(**hyperparameters):
            return LinearLearner(
                stream.feature_dim, optimizer(**optimizer_args, **hyperparameters), normalizer
            )

    else:  # a user's factory: factory(feature_dim=..., **[learner] settings, **grid point)
        if optimizer_args:
            raise ValueError("an [optimizer] table is for type = 'LinearLearner' only")

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
    type = "RandomWalkStream"  # a name in alberta_eqx, or "package.module:Class"
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


def _metric_names(spec: SweepSpec) -> list[str]:
    """The metrics the learner reports (the `StepMetrics` fields it fills)."""
    learner = spec.template()
    stream_state = spec.stream.init(jax.random.key(0))
    timesteps, _ = jax.eval_shape(lambda s: spec.stream.chunk(s, jnp.asarray(0), 1), stream_state)
    example = jax.tree.map(lambda a: jnp.zeros(a.shape[1:], a.dtype), timesteps)
    metrics = eqx.filter_eval_shape(lambda lr, ts: lr.learn(ts)[1].metrics, learner, example)
    return [name for name, value in metrics._asdict().items() if value is not None]


def _shard_size(spec: SweepSpec, num_seeds: int, budget_bytes: int, multiple: int) -> int:
    """Configurations per shard: as many as the memory budget holds (the results, a
    block's per-step metrics and a few copies of the learners), a multiple of the
    mesh's `configs` axis, at most the whole grid (rounded up to that multiple)."""
    windows = spec.num_steps // spec.metrics_window
    state = sum(a.size for a in jax.tree.leaves(eqx.filter(spec.template(), eqx.is_inexact_array)))
    floats_per_run = 3 * (windows + _block(spec.metrics_window, spec.num_steps)) + 4 * state
    fits = max(1, budget_bytes // (4 * num_seeds * floats_per_run))
    whole = -(-spec.num_configs // multiple) * multiple
    return min(whole, max(multiple, fits // multiple * multiple))


def _block(window: int, num_steps: int) -> int:
    """Steps per compiled block: the largest multiple of the window that divides the
    run and is at most `max(window, 1000)`. Across a wide batch (a shard's
    configurations times its seeds) a few hundred steps make the per-block costs
    vanish, while the per-step metrics the block holds stay small."""
    units = num_steps // window
    k = max(d for d in range(1, max(1, 1000 // window) + 1) if units % d == 0)
    return window * k


def _write_result(path: str, names: list[str], metrics, start: int, stop: int) -> None:
    """Write this process's blocks of a shard's metrics (padding configurations
    beyond `stop` are dropped)."""
    for name in names:
        array = getattr(metrics, name)
        for block in array.addressable_shards:
            if block.replica_id:
                continue  # another device holds the same block; it writes it
            configs, seeds, windows = block.index
            lo = start + (configs.start or 0)
            hi = min(stop, start + (configs.stop if configs.stop is not None else array.shape[0]))
            if lo >= hi:
                continue
            values = np.asarray(block.data)[: hi - lo]
            store.write_block(path, name, (slice(lo, hi), seeds, windows), values)


def _barrier(name: str) -> None:
    if jax.process_count() > 1:
        from jax.experimental import multihost_utils

        multihost_utils.sync_global_devices(name)


def run_sweep(
    spec: SweepSpec,
    out: str | os.PathLike,
    *,
    shard_size: int | None = None,
    memory_budget: int = 256 * 2**20,
    mesh: jax.sharding.Mesh | None = None,
    on_shard: Callable[[int, int, int], None] | None = None,
):
    """Run `spec` into the store `out/sweep.zarr`, resuming a sweep already there.

    **Arguments:**

    - `spec`: the sweep.
    - `out`: the output folder (created if needed).
    - `shard_size`: configurations per shard; by default as many as fit
      `memory_budget`. A resumed sweep keeps the store's shards.
    - `memory_budget`: bytes a shard's results and learners may take.
    - `mesh`: spread every shard over this mesh's devices (`make_mesh`): its
      configurations over `configs`, its seeds over `seeds` (the number of seeds
      must be a multiple of that axis). With several processes, every process calls
      `run_sweep` with the same arguments and writes its own devices' blocks.
    - `on_shard`: called as `on_shard(index, start, stop)` after shard `index`
      (configurations `start .. stop - 1`) is written.

    **Returns:** the store, opened with `xarray.open_zarr`.
    """
    xr = _xarray()
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, STORE)
    description = spec.describe()
    seeds = description["seeds"]
    config_devices = 1 if mesh is None else mesh.shape[CONFIGS]
    seed_devices = 1 if mesh is None else mesh.shape[SEEDS]
    if len(seeds) % seed_devices:
        raise ValueError(
            f"the {len(seeds)} seeds must be a multiple of the mesh's 'seeds' axis "
            f"({seed_devices} devices)"
        )
    # Process 0 creates the store; the others wait for it, whatever they would see.
    if jax.process_index() == 0 and store.spec_of(path) is None:
        size = (
            _shard_size(spec, len(seeds), memory_budget, config_devices)
            if shard_size is None
            else positive_int("shard_size", shard_size)
        )
        if size % config_devices:
            raise ValueError(
                f"shard_size ({size}) must be a multiple of the mesh's 'configs' axis "
                f"({config_devices} devices)"
            )
        attrs = {
            "spec": json.dumps({**description, "shard_size": size}),
            "stream": json.dumps(description["stream"]),
            "learner": json.dumps(description["learner"]),
            "num_steps": spec.num_steps,
            "metrics_window": spec.metrics_window,
            "start_step": 0,
            **versions(),
        }
        store.create(
            path,
            metrics=_metric_names(spec),
            hyperparameters=spec.configurations,
            seeds=seeds,
            num_windows=spec.num_steps // spec.metrics_window,
            metrics_window=spec.metrics_window,
            chunks=(size // config_devices, len(seeds) // seed_devices),
            attrs=attrs,
        )
        log.info("created %s: %d configurations in shards of %d", path, spec.num_configs, size)
    _barrier("alberta_eqx.sweep.created")
    existing = store.spec_of(path)
    size = existing.pop("shard_size")
    if existing != json.loads(json.dumps(description)):
        changed = sorted(k for k in description if existing.get(k) != description[k])
        raise ValueError(
            f"{path} holds a different sweep (its {', '.join(changed)} differ): give another "
            "folder, or delete it to start afresh"
        )
    if size % config_devices:
        raise ValueError(
            f"the store's shards of {size} configurations do not divide over the mesh's "
            f"'configs' axis ({config_devices} devices)"
        )
    names = _metric_names(spec)
    done = store.completed(path)
    configurations = spec.configurations
    stream_keys = jnp.stack([seed_keys(s)[0] for s in seeds])
    block = _block(spec.metrics_window, spec.num_steps)
    num_shards = -(-spec.num_configs // size)
    for index in range(num_shards):
        start, stop = index * size, min(spec.num_configs, (index + 1) * size)
        if done[start:stop].all():
            log.info(
                "shard %d/%d (configurations %d-%d) is already in the store: skipped",
                index + 1, num_shards, start, stop - 1,
            )  # fmt: skip
            continue
        began = time.perf_counter()
        # Pad the last shard with copies of its last configuration: every shard is
        # then the same compiled program, and divides over the mesh.
        picks = np.minimum(np.arange(start, start + size), spec.num_configs - 1)
        points = {name: jnp.asarray(values[picks]) for name, values in configurations.items()}
        learners = eqx.filter_vmap(lambda p: spec.learner(**p))(points)
        keys = stream_keys
        if mesh is not None:
            learners, keys = shard_batch(mesh, learners, keys)
        result = run_learning_loop_batched(
            learners,
            spec.stream,
            spec.num_steps,
            keys,
            metrics_window=spec.metrics_window,
            block_size=block,
        )
        _write_result(path, names, result.metrics, start, stop)
        _barrier(f"alberta_eqx.sweep.shard{index}")
        if jax.process_index() == 0:
            store.mark_completed(path, start, stop)
        _barrier(f"alberta_eqx.sweep.marked{index}")
        log.info(
            "shard %d/%d (configurations %d-%d) written in %.1f s",
            index + 1, num_shards, start, stop - 1, time.perf_counter() - began,
        )  # fmt: skip
        if on_shard is not None:
            on_shard(index, start, stop)
    return xr.open_zarr(path)


def sweep_command(spec_path: str, out: str, shard_size: int | None = None) -> None:
    """`alberta-eqx sweep SPEC.toml --out DIR`: run (or resume) the sweep file's sweep
    into `DIR/sweep.zarr`, logging each shard, and print where the store is."""
    import sys

    try:
        spec = load_spec(spec_path)
    except (OSError, ValueError, TypeError) as error:
        raise SystemExit(f"alberta-eqx: error: {spec_path}: {error}") from None
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    began = time.perf_counter()
    try:
        ds = run_sweep(spec, out, shard_size=shard_size)
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
    done = int(ds.completed.sum())
    print(
        f"{done}/{spec.num_configs} configurations x {ds.sizes['seed']} seeds x "
        f"{spec.num_steps} steps in {time.perf_counter() - began:.1f} s; the store: "
        f"{os.path.join(out, STORE)} (xarray.open_zarr)"
    )
