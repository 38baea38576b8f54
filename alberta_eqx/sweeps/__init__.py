"""Sweeps at scale: a stream x a learner (or an environment x a control agent) x a
hyperparameter grid x seeds, run in shards into a resumable Zarr store, spread over
devices and processes.

`SweepSpec` / `ControlSweepSpec` / `load_spec` say what to run (`sweep_spec`,
`control_sweep`); `check_sweep` refuses what
cannot run before anything is written (`check`); `run_sweep` runs it into the store
(`sweep`, `store`); `make_mesh` / `shard_batch` spread a batch over devices
(`sharding`); `to_xarray` / `describe` label results (`labelled`); `spec` is what
`alberta-eqx run` runs, as data; `enable_compilation_cache` keeps compiled programs
between processes (`cache`).
"""

from alberta_eqx.sweeps.cache import enable_compilation_cache
from alberta_eqx.sweeps.check import check_sweep
from alberta_eqx.sweeps.control_sweep import ControlSweepSpec
from alberta_eqx.sweeps.labelled import describe, to_xarray
from alberta_eqx.sweeps.sharding import make_mesh, shard_batch
from alberta_eqx.sweeps.sweep import best_configurations, run_sweep, verify_store
from alberta_eqx.sweeps.sweep_spec import AbstractSweepSpec, SweepError, SweepSpec, load_spec

__all__ = [
    "AbstractSweepSpec",
    "ControlSweepSpec",
    "SweepError",
    "SweepSpec",
    "best_configurations",
    "check_sweep",
    "describe",
    "enable_compilation_cache",
    "load_spec",
    "make_mesh",
    "run_sweep",
    "shard_batch",
    "to_xarray",
    "verify_store",
]
