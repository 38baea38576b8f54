"""Results as labelled arrays: `RunResult` and `ExperimentResult` as `xarray.Dataset`s.

A dataset names its dimensions (`config`, `seed`, `window`), carries the
hyperparameters and seeds as coordinates and the stream's and learner's settings,
the library and JAX versions as attributes, so that a results folder can be read
years later without the code that wrote it. A sweep's store (`alberta_eqx.experiments.
run_sweep`) holds the same layout. Needs the `[sweep]` extra (xarray; zarr to store).
"""

import datetime
import json
import math
from collections.abc import Mapping, Sequence
from typing import Any

import equinox as eqx
import jax
import numpy as np

from alberta_eqx._checks import ArrayLike
from alberta_eqx.runners import RunResult

# The dimension names, outermost first: a grid's configurations, the seeds, and the
# windows of `metrics_window` steps that each metric was averaged over.
CONFIG, SEED, WINDOW = "config", "seed", "window"


def xarray_module() -> Any:
    """The `xarray` module, imported when results are labelled; a clear error without it."""
    try:
        import xarray
    except ImportError:
        raise ImportError(
            "labelled results need xarray: pip install 'alberta_eqx[sweep]'"
        ) from None
    return xarray


def describe(module: Any) -> Any:
    """A JSON-able description of a stream, learner or optimizer: its type and its
    settings (static fields and scalar array leaves, recursively), leaving out state
    arrays. Stored as an attribute so that a result names what produced it.

    **Arguments:**

    - `module`: an `eqx.Module` (or a scalar, string, tuple or None inside one).
    """
    if isinstance(module, eqx.Module):
        fields = {"type": f"{type(module).__module__}.{type(module).__qualname__}"}
        for name in getattr(module, "__dataclass_fields__", {}):
            value = describe(getattr(module, name, None))
            if value is not _SKIP:
                fields[name] = value
        return fields
    if module is None or isinstance(module, bool | int | str):
        return module
    if isinstance(module, float):
        return module if math.isfinite(module) else repr(module)
    if isinstance(module, jax.Array | np.ndarray | np.generic):
        if np.ndim(module) == 0 and not jax.dtypes.issubdtype(module.dtype, jax.dtypes.prng_key):
            return describe(np.asarray(module).item())
        return _SKIP  # a state array (weights, traces): not a setting
    if isinstance(module, tuple | list):
        items = [describe(m) for m in module]
        return [i for i in items if i is not _SKIP]
    if callable(module):
        return getattr(module, "__qualname__", type(module).__qualname__)
    return _SKIP


_SKIP = object()


def versions() -> dict[str, str]:
    """The versions a result was computed with, for its attributes."""
    import alberta_eqx

    return {
        "alberta_eqx_version": alberta_eqx.__version__,
        "jax_version": jax.__version__,
        "jax_backend": jax.default_backend(),
        "created": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
    }


def _settings_attrs(stream, learner, attrs) -> dict[str, Any]:
    out = versions()
    if stream is not None:
        out["stream"] = json.dumps(describe(stream))
    if learner is not None:
        out["learner"] = json.dumps(describe(learner))
    out.update(attrs or {})
    return out


Coords = dict[str, np.ndarray | tuple[str, np.ndarray]]
"""xarray coordinates: an index's values, or `(dimension, values)`."""


def _window_coords(num_windows: int, metrics_window: int, start_step: int) -> Coords:
    """`window` indices and `step`, the steps learned by the end of each window."""
    steps = start_step + (np.arange(num_windows) + 1) * metrics_window
    return {WINDOW: np.arange(num_windows), "step": (WINDOW, steps)}


def to_xarray(
    result: Any,
    *,
    metrics_window: int | None = None,
    start_step: int = 0,
    seeds: Sequence[int] | None = None,
    hyperparameters: Mapping[str, Sequence[float] | ArrayLike] | None = None,
    stream: Any = None,
    learner: Any = None,
    attrs: Mapping[str, Any] | None = None,
):
    """A `RunResult` or an `ExperimentResult` as an `xarray.Dataset`: one data
    variable per metric, with dimensions `(config, seed, window)` (as many of them as
    the result has: a single run has only `window`).

    **Arguments:**

    - `result`: what `run_learning_loop`, `run_learning_loop_batched` or
      `run_experiment` returned.
    - `metrics_window`: the window the run averaged its metrics over (an
      `ExperimentResult` knows its own; default 1 for a `RunResult`).
    - `start_step`: the first step of the run, for the `step` coordinate.
    - `seeds`: the seeds' labels (default `0 .. seeds - 1`; an `ExperimentResult`
      knows its own).
    - `hyperparameters`: for a grid, each hyperparameter's value per configuration,
      stored as coordinates along `config` (`ds.sel(config=ds.step_size == 0.01)`).
    - `stream`, `learner`: the (unbatched) stream and learner, described in the
      attributes `stream` and `learner` as JSON (types and settings).
    - `attrs`: more attributes. Versions and the creation time are always added.

    **Returns:** an `xarray.Dataset`.
    """
    from alberta_eqx.experiments.runner import ExperimentResult

    xr = xarray_module()
    if isinstance(result, ExperimentResult):
        if metrics_window not in (None, result.metrics_window):
            raise ValueError(
                f"metrics_window ({metrics_window}) differs from the result's "
                f"({result.metrics_window})"
            )
        names = result.configs
        metrics = {
            m: np.stack([result.curves[c][m] for c in names]) for m in result.curves[names[0]]
        }
        coords: Coords = {CONFIG: np.asarray(names), SEED: np.asarray(result.seeds)}
        window = result.metrics_window
        dims: tuple[str, ...] = (CONFIG, SEED, WINDOW)
    elif isinstance(result, RunResult):
        metrics = {m: np.asarray(v) for m, v in result.metrics._asdict().items() if v is not None}
        window = 1 if metrics_window is None else metrics_window
        shape = next(iter(metrics.values())).shape
        dims = ((CONFIG, SEED)[-(len(shape) - 1) :] if len(shape) > 1 else ()) + (WINDOW,)
        if len(shape) > 3:
            raise ValueError(f"a result with batch shape {shape[:-1]} has no labelled layout")
        coords = {}
        if SEED in dims:
            num_seeds = shape[dims.index(SEED)]
            seed_labels = np.arange(num_seeds) if seeds is None else np.asarray(seeds)
            if seed_labels.shape != (num_seeds,):
                raise ValueError(f"seeds has {len(seed_labels)} labels for {num_seeds} seeds")
            coords[SEED] = seed_labels
        if CONFIG in dims:
            coords[CONFIG] = np.arange(shape[0])
    else:
        raise TypeError(
            f"result must be a RunResult or an ExperimentResult, got {type(result).__name__}"
        )
    num_windows = next(iter(metrics.values())).shape[-1]
    coords.update(_window_coords(num_windows, window, start_step))
    for name, values in (hyperparameters or {}).items():
        values = np.asarray(values)
        if CONFIG not in dims or values.shape != (len(coords[CONFIG]),):
            raise ValueError(
                f"hyperparameters[{name!r}] must give one value per configuration, got "
                f"shape {values.shape}"
            )
        coords[name] = (CONFIG, values)
    all_attrs = _settings_attrs(stream, learner, attrs)
    all_attrs.update(metrics_window=window, start_step=start_step)
    return xr.Dataset({m: (dims, v) for m, v in metrics.items()}, coords=coords, attrs=all_attrs)
