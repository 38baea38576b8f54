"""Everything checked before a sweep writes anything (`check_sweep`): a learner that
refuses a grid value or cannot learn from the stream, runs too large for a device's
memory, a store that holds another sweep; and the sizes of shards and compiled
blocks, measured by shape only (nothing allocated)."""

import json
import math
import os
from collections.abc import Mapping
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.sweeps import store
from alberta_eqx.sweeps.store import STORE
from alberta_eqx.sweeps.sweep_spec import SweepError, SweepSpec


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
