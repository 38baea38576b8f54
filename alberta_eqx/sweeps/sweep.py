"""Sweeps: a stream x a learner (or an environment x an agent) x a hyperparameter grid
x seeds, run in shards of configurations into a Zarr store, resumable after a crash.

A `SweepSpec` (`ControlSweepSpec`) says what to run (from Python, or from a TOML file
with `load_spec`); `run_sweep` runs the grid's configurations in shards sized to a
memory budget, each shard one compiled program over all seeds (`SweepSpec`:
`run_learning_loop_batched`, every seed's stream generated once and shared by the
shard's configurations; `ControlSweepSpec`: the agent-environment loop, in calls of
at most 100,000 steps), and writes every finished shard to the store before starting
the next. Started again on the same folder, it skips the shards the store marks
completed, and says so in its log.
Given a mesh (`make_mesh`), each shard is spread over its devices, in one process
or several (`jax.distributed.initialize`); each process writes its devices' blocks.

Everything that can be checked is checked before the store is created (`check_sweep`):
a learner that refuses a grid value, runs too large for memory. A resumed sweep must
match the store's specification and its configuration table, in order; its finished
shards are read back through their checksums first, and a damaged one is run again.
"""

import json
import logging
import math
import os
import time
from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments.runner import seed_keys
from alberta_eqx.sweeps import store
from alberta_eqx.sweeps.check import _check_resume, _shard_size, check_sweep
from alberta_eqx.sweeps.labelled import versions, xarray_module
from alberta_eqx.sweeps.sharding import CONFIGS, SEEDS
from alberta_eqx.sweeps.store import STORE
from alberta_eqx.sweeps.sweep_spec import AbstractSweepSpec, SweepError

log = logging.getLogger("alberta_eqx.sweep")


def _write_result(path: str, names: list[str], metrics, start: int, stop: int) -> None:
    """Write this process's blocks of a shard's metrics (padding configurations
    beyond `stop` are dropped)."""
    for name in names:
        array = metrics[name]
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
    spec: AbstractSweepSpec,
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

    - `spec`: the sweep (a `SweepSpec` or a `ControlSweepSpec`).
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
    xr = xarray_module()
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
    names = spec.metric_names()
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
            "rank_by": list(spec.rank_by),
            **{
                part: json.dumps(description[part])
                for part in ("stream", "learner", "environment", "agent")
                if part in description
            },
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
        metrics = spec.run_shard(points, stream_keys, mesh)
        _write_result(path, names, metrics, start, stop)
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


def best_configurations(
    ds: Any, metric: str = "squared_error", top: int = 5, *, higher_is_better: bool = False
) -> list[dict]:
    """The completed configurations with the lowest (`higher_is_better`: the highest)
    final `metric` (its last window), best first: per configuration its index, its
    hyperparameters, the mean over the seeds that did not diverge, a 95% bootstrap
    confidence interval of that mean (`summarize`), and how many seeds diverged (a
    non-finite final value). A configuration whose every seed diverged ranks last.

    **Arguments:**

    - `ds`: a sweep's store, as `run_sweep` returns it (or `xarray.open_zarr` reads it).
    - `metric`: a data variable of the store.
    - `top`: how many configurations to return, at most.
    - `higher_is_better`: rank the highest first (a reward rate) instead of the lowest
      (an error).
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
    ranked = -means if higher_is_better else means
    order = np.lexsort((ranked, counts == 0))[:top]  # every seed diverged: last
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
