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

Everything that can be checked is checked before the store is created (`check_sweep`):
a learner that refuses a grid value, runs too large for memory. A resumed sweep must
match the store's specification and its configuration table, in order; its finished
shards are read back through their checksums first, and a damaged one is run again.
"""

import dataclasses
import json
import logging
import math
import numbers
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
from alberta_eqx.experiments.spec import SpecError, _parameters, call, resolve
from alberta_eqx.learners import AbstractLearner, LinearLearner
from alberta_eqx.runners import run_learning_loop_batched
from alberta_eqx.streams import AbstractStream

log = logging.getLogger("alberta_eqx.sweep")

STORE = "sweep.zarr"
"""The store's folder name inside a sweep's output folder."""
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
            _seed_list(self.seeds)

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
            "seeds": list(_seed_list(self.seeds)),
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


def _metric_names(spec: SweepSpec) -> list[str]:
    """The metrics the learner reports (the `StepMetrics` fields it fills)."""
    learner = eqx.filter_eval_shape(spec.template)
    stream_state = jax.eval_shape(spec.stream.init, jax.random.key(0))
    timesteps, _ = jax.eval_shape(lambda s: spec.stream.chunk(s, jnp.asarray(0), 1), stream_state)
    example = jax.tree.map(lambda a: jax.ShapeDtypeStruct(a.shape[1:], a.dtype), timesteps)
    metrics = eqx.filter_eval_shape(lambda lr, ts: lr.learn(ts)[1].metrics, learner, example)
    return [name for name, value in metrics._asdict().items() if value is not None]


def _floats(tree: Any) -> int:
    """The floating-point numbers in a pytree of arrays or their shapes."""
    leaves = jax.tree.leaves(tree)
    return sum(
        math.prod(a.shape)
        for a in leaves
        if hasattr(a, "dtype") and jnp.issubdtype(a.dtype, jnp.inexact)
    )


def _state_floats(spec: SweepSpec) -> int:
    """One run's state, by shape only (nothing allocated): its learner's and its
    stream's floats."""
    learner = eqx.filter_eval_shape(spec.template)
    return _floats(learner) + _floats(jax.eval_shape(spec.stream.init, jax.random.key(0)))


def _floats_per_run(spec: SweepSpec) -> int:
    """What one run (a configuration on a seed) holds at once: its results, a block's
    per-step metrics and a few copies of its state."""
    windows = spec.num_steps // spec.metrics_window
    block = _block(spec.metrics_window, spec.num_steps)
    return 3 * (windows + block) + 4 * _state_floats(spec)


def _block_floats(spec: SweepSpec) -> int:
    """A seed's generated block of examples, times the copies XLA holds of it: a
    200-step block of 10**7 features on 2 seeds asked for 7 copies (measured), so 8
    are counted."""
    stream_state = jax.eval_shape(spec.stream.init, jax.random.key(0))
    step = jax.eval_shape(lambda s: spec.stream.chunk(s, jnp.asarray(0), 1), stream_state)[0]
    return 8 * _block(spec.metrics_window, spec.num_steps) * _floats(step)


def available_memory() -> tuple[int, str]:
    """The bytes one device can hold: an accelerator's own memory, else the host's."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{device.device_kind} memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def check_sweep(
    spec: SweepSpec, out: str | os.PathLike | None = None, *, seed_devices: int = 1
) -> None:
    """Refuse, before anything is written, a sweep that cannot run, with a
    `SweepError` naming the setting: a learner that cannot be built at some grid
    value (each value of each hyperparameter is tried, the others at their first
    value), one that cannot learn from the stream, runs too large for a device's
    memory (one configuration's seeds, split over `seed_devices` devices), or a store
    in `out` that holds another sweep. `run_sweep` calls it first.

    **Arguments:**

    - `spec`: the sweep.
    - `out`: the output folder, whose store (if any) the sweep would resume.
    - `seed_devices`: the devices the seeds are spread over (the mesh's `seeds` axis).
    """
    first = {name: values[0] for name, values in spec.grid.items()}
    try:
        per_seed = _floats_per_run(spec) + _block_floats(spec)
    except (TypeError, ValueError) as error:
        raise SweepError(f"the learner at grid point {first} cannot be built: {error}") from None
    seeds_per_device = -(-spec.num_seeds // seed_devices)
    need = 4 * seeds_per_device * per_seed + 8 * spec.num_configs * len(spec.grid)
    available, where = available_memory()
    if need > available:
        raise SweepError(
            f"too large: one configuration's {spec.num_seeds} seeds need about {need / 1e9:.3g} "
            f"GB ({spec.num_steps // spec.metrics_window} windows, {_state_floats(spec)} "
            f"floats of state and {_block_floats(spec) // 8} of examples per seed; "
            f"{spec.num_configs} configurations), more than the {available / 1e9:.3g} GB of "
            f"{where}: lower seeds, num_steps (or raise metrics_window), the stream's "
            "feature_dim or the grid"
        )
    for name, values in spec.grid.items():
        for value in dict.fromkeys(values):
            try:
                spec.learner(**{**first, name: value})
            except (TypeError, ValueError) as error:
                raise SweepError(f"grid {name} = {value!r}: {error}") from None
    try:
        _metric_names(spec)
    except (TypeError, ValueError) as error:
        raise SweepError(f"the learner cannot learn from the stream: {error}") from None
    if out is not None:
        path = os.path.join(os.fspath(out), STORE)
        opened = store.open_store(path)
        if opened is not None:
            _check_resume(spec, path, *opened)


def _check_resume(
    spec: SweepSpec, path: str, existing: dict[str, Any], table: Mapping[str, np.ndarray]
) -> None:
    """Refuse to resume the store at `path` (its specification `existing` and its
    configuration table) with another sweep, or with the same grid in another order."""
    description = spec.describe()
    stored = {k: v for k, v in existing.items() if k != "shard_size"}
    if stored != json.loads(json.dumps(description)):
        changed = sorted(k for k in description if stored.get(k) != description[k])
        raise SweepError(
            f"{path} holds a different sweep (its {', '.join(changed)} differ): give another "
            "folder, or delete it to start afresh"
        )
    # The same grid in another order numbers the configurations differently (the
    # store's table matches its own grid: `open_store` checks it).
    if list(table) != list(spec.grid):
        raise SweepError(
            f"{path} numbers its configurations with the grid's keys in the order "
            f"{list(table)}, this sweep in the order {list(spec.grid)}: give the [grid] "
            "keys in the store's order, or another folder"
        )


def _shard_size(spec: SweepSpec, num_seeds: int, budget_bytes: int, multiple: int) -> int:
    """Configurations per shard: as many as the memory budget holds (the results, a
    block's per-step metrics and a few copies of the learners), a multiple of the
    mesh's `configs` axis, at most the whole grid (rounded up to that multiple)."""
    fits = max(1, budget_bytes // (4 * num_seeds * _floats_per_run(spec)))
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

    Nothing is written before `check_sweep` has passed. Resuming, the store must hold
    this sweep (its specification and its configuration table, in order); every
    shard it marks completed is read back through its checksums, and one that fails
    (a changed byte, a missing chunk) is logged and run again.

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

    **Raises:** `SweepError` for a sweep that cannot run or does not match the store;
    `store.StoreError` for a store whose metadata or coordinates are damaged.
    """
    xr = _xarray()
    config_devices = 1 if mesh is None else mesh.shape[CONFIGS]
    seed_devices = 1 if mesh is None else mesh.shape[SEEDS]
    if spec.num_seeds % seed_devices:
        raise SweepError(
            f"the {spec.num_seeds} seeds must be a multiple of the mesh's 'seeds' axis "
            f"({seed_devices} devices)"
        )
    if shard_size is not None:
        positive_int("shard_size", shard_size)
        if shard_size % config_devices:
            raise SweepError(
                f"shard_size ({shard_size}) must be a multiple of the mesh's 'configs' axis "
                f"({config_devices} devices)"
            )
    check_sweep(spec, seed_devices=seed_devices)
    out = os.fspath(out)
    os.makedirs(out, exist_ok=True)
    path = os.path.join(out, STORE)
    description = spec.describe()
    seeds = description["seeds"]
    names = _metric_names(spec)
    # Process 0 creates the store; the others wait for it, whatever they would see.
    if jax.process_index() == 0 and store.open_store(path) is None:
        size = (
            _shard_size(spec, len(seeds), memory_budget, config_devices)
            if shard_size is None
            else shard_size
        )
        attrs = {
            "spec": json.dumps({**description, "shard_size": size}),
            "hyperparameters": list(spec.grid),
            "metrics": names,
            "stream": json.dumps(description["stream"]),
            "learner": json.dumps(description["learner"]),
            "num_steps": spec.num_steps,
            "metrics_window": spec.metrics_window,
            "start_step": 0,
            **versions(),
        }
        store.create(
            path,
            metrics=names,
            hyperparameters=spec.configurations,
            seeds=seeds,
            num_windows=spec.num_steps // spec.metrics_window,
            metrics_window=spec.metrics_window,
            chunks=(size // config_devices, len(seeds) // seed_devices),
            attrs=attrs,
        )
        log.info("created %s: %d configurations in shards of %d", path, spec.num_configs, size)
    _barrier("alberta_eqx.sweep.created")
    opened = store.open_store(path)
    assert opened is not None  # process 0 created it
    existing, table = opened
    _check_resume(spec, path, existing, table)
    size = existing["shard_size"]
    configurations = spec.configurations
    if size % config_devices:
        raise SweepError(
            f"the store's shards of {size} configurations do not divide over the mesh's "
            f"'configs' axis ({config_devices} devices)"
        )
    num_shards = -(-spec.num_configs // size)
    bounds = [(i * size, min(spec.num_configs, (i + 1) * size)) for i in range(num_shards)]
    # Every process reads the finished shards back before any mark changes.
    status = [store.check_shard(path, start, stop) for start, stop in bounds]
    _barrier("alberta_eqx.sweep.verified")
    stream_keys = jnp.stack([seed_keys(s)[0] for s in seeds])
    block = _block(spec.metrics_window, spec.num_steps)
    for index, ((start, stop), (done, problem)) in enumerate(zip(bounds, status, strict=True)):
        if done:
            log.info(
                "shard %d/%d (configurations %d-%d) is already in the store: skipped",
                index + 1, num_shards, start, stop - 1,
            )  # fmt: skip
            continue
        if problem is not None:
            log.warning(
                "shard %d/%d (configurations %d-%d) fails verification (%s): running it again",
                index + 1, num_shards, start, stop - 1, problem,
            )  # fmt: skip
            if jax.process_index() == 0:
                store.mark_completed(path, start, stop, False)
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


def find_store(path: str | os.PathLike) -> str:
    """The store a path names: an output folder's `sweep.zarr`, or the path itself."""
    path = os.fspath(path)
    inside = os.path.join(path, STORE)
    return inside if os.path.isdir(inside) else path


def verify_store(path: str | os.PathLike) -> list[str]:
    """Read a sweep's store back through its checksums: its metadata and coordinates
    (damage there raises `store.StoreError`), and every shard marked completed.
    Returns one line per damaged shard (empty when the store is whole); `run_sweep`
    runs those shards again.

    **Arguments:**

    - `path`: the store, or the output folder holding it (`sweep.zarr`).
    """
    path = find_store(path)
    opened = store.open_store(path)
    if opened is None:
        raise SweepError(f"{path} holds no sweep store")
    spec, table = opened
    problems = []
    size = spec["shard_size"]
    num_configs = len(next(iter(table.values())))
    for index, start in enumerate(range(0, num_configs, size)):
        stop = min(num_configs, start + size)
        _, problem = store.check_shard(path, start, stop)
        if problem is not None:
            problems.append(f"shard {index + 1} (configurations {start}-{stop - 1}): {problem}")
    return problems


def best_configurations(ds: Any, metric: str = "squared_error", top: int = 5) -> list[dict]:
    """The completed configurations with the lowest final `metric` (its last window),
    best first: per configuration its index, its hyperparameters, the mean over the
    seeds that did not diverge, a 95% bootstrap confidence interval of that mean
    (`summarize`), and how many seeds diverged (a non-finite final value). A
    configuration whose every seed diverged ranks last.

    **Arguments:**

    - `ds`: a sweep's store, as `run_sweep` returns it (or `xarray.open_zarr` reads it).
    - `metric`: a data variable of the store.
    - `top`: how many configurations to return, at most.
    """
    from alberta_eqx.experiments.summary import summarize

    positive_int("top", top)
    if metric not in ds.data_vars or ds[metric].dims != ("config", "seed", "window"):
        raise ValueError(f"metric must be a metric of the store, got {metric!r}")
    names = ds.attrs.get("hyperparameters") or list(json.loads(ds.attrs["spec"])["grid"])
    done = np.flatnonzero(np.asarray(ds.completed.values))
    final = np.asarray(ds[metric].isel(window=-1).values, np.float64)[done]
    finite = np.isfinite(final)
    counts = finite.sum(axis=1)
    means = np.where(finite, final, 0.0).sum(axis=1) / np.maximum(counts, 1)
    order = np.lexsort((means, counts == 0))[:top]  # every seed diverged: last
    rows = []
    for i in order:
        config = int(done[i])
        values = final[i][finite[i]]
        row: dict[str, Any] = {"config": config}
        row.update({name: float(ds[name].values[config]) for name in names})
        if values.size:
            summary = summarize(values)
            row.update(
                final=float(summary.mean),
                low=float(summary.ci_low),
                high=float(summary.ci_high),
            )
        else:
            row.update(final=math.nan, low=math.nan, high=math.nan)
        row["diverged"] = int(final.shape[1] - values.size)
        rows.append(row)
    return rows
