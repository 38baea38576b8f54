"""Everything checked before a sweep writes anything (`check_sweep`): a learner (or
agent) that refuses a grid value or cannot learn from its stream (or environment),
runs too large for a device's memory, a store that holds another sweep; and the size
of shards, measured by shape only (nothing allocated)."""

import json
import os
from collections.abc import Mapping
from typing import Any

import jax
import numpy as np

from alberta_eqx.sweeps import store
from alberta_eqx.sweeps.store import STORE
from alberta_eqx.sweeps.sweep_spec import AbstractSweepSpec, SweepError


def available_memory() -> tuple[int, str]:
    """The bytes one device can hold: an accelerator's own memory, else the host's."""
    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{device.device_kind} memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def check_sweep(
    spec: AbstractSweepSpec, out: str | os.PathLike | None = None, *, seed_devices: int = 1
) -> None:
    """Refuse, before anything is written, a sweep that cannot run, with a
    `SweepError` naming the setting: a learner (an agent) that cannot be built at some
    grid value (each value of each hyperparameter is tried, the others at their first
    value), one that cannot learn from the stream (act in the environment), runs too
    large for a device's memory (one configuration's seeds, split over `seed_devices`
    devices), or a store in `out` that holds another sweep. `run_sweep` calls it first.

    **Arguments:**

    - `spec`: the sweep (a `SweepSpec` or a `ControlSweepSpec`).
    - `out`: the output folder, whose store (if any) the sweep would resume.
    - `seed_devices`: the devices the seeds are spread over (the mesh's `seeds` axis).
    """
    first = spec.first_point
    try:
        per_seed = spec.floats_per_run() + spec.block_floats()
    except (TypeError, ValueError) as error:
        raise SweepError(
            f"the {spec.kind} at grid point {first} cannot be built: {error}"
        ) from None
    seeds_per_device = -(-spec.num_seeds // seed_devices)
    need = 4 * seeds_per_device * per_seed + 8 * spec.num_configs * len(spec.grid)
    available, where = available_memory()
    if need > available:
        raise SweepError(
            f"too large: one configuration's {spec.num_seeds} seeds need about {need / 1e9:.3g} "
            f"GB ({spec.num_steps // spec.metrics_window} windows, {spec.state_floats()} "
            f"floats of state and {spec.block_floats() // 8} of examples per seed; "
            f"{spec.num_configs} configurations), more than the {available / 1e9:.3g} GB of "
            f"{where}: lower seeds, num_steps (or raise metrics_window), the stream's "
            "feature_dim or the grid"
        )
    for name, values in spec.grid.items():
        for value in dict.fromkeys(values):
            try:
                spec.build({**first, name: value})
            except (TypeError, ValueError) as error:
                raise SweepError(f"grid {name} = {value!r}: {error}") from None
    try:
        spec.metric_names()
    except (TypeError, ValueError) as error:
        raise SweepError(f"the {spec.kind} cannot run: {error}") from None
    if out is not None:
        path = os.path.join(os.fspath(out), STORE)
        opened = store.open_store(path)
        if opened is not None:
            _check_resume(spec, path, *opened)


def _check_resume(
    spec: AbstractSweepSpec, path: str, existing: dict[str, Any], table: Mapping[str, np.ndarray]
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


def _shard_size(spec: AbstractSweepSpec, num_seeds: int, budget_bytes: int, multiple: int) -> int:
    """Configurations per shard: as many as the memory budget holds (the results, a
    block's per-step metrics and a few copies of the learners), a multiple of the
    mesh's `configs` axis, at most the whole grid (rounded up to that multiple)."""
    fits = max(1, budget_bytes // (4 * num_seeds * spec.floats_per_run()))
    whole = -(-spec.num_configs // multiple) * multiple
    return min(whole, max(multiple, fits // multiple * multiple))
