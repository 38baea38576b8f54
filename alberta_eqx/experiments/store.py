"""A sweep's store: one Zarr group that `xarray.open_zarr` reads as a `Dataset`.

Layout (what `to_xarray` gives for a grid, written shard by shard):

- one float32 data variable per metric, dimensions `(config, seed, window)`,
  filled with NaN until its shard is written;
- `completed` (`config`): True once a configuration's shard is entirely written;
- coordinates `config`, one per hyperparameter along `config`, `seed`, `window` and
  `step` (the steps learned by the end of each window);
- attributes: the sweep's specification (`spec`, JSON), the stream's settings and
  the first configuration's learner (`stream`, `learner`, JSON: the grid's values
  are in the coordinates), the library and JAX versions.

Chunks are one device's block of one shard, so that every chunk has exactly one
writer, whichever process owns the device; a shard is marked `completed` only after
all of its chunks are written, so a sweep killed at any moment resumes from the
marks without trusting a half-written shard.
"""

import json
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alberta_eqx.experiments.labelled import CONFIG, SEED, WINDOW, Coords, _window_coords

COMPLETED = "completed"


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("the sweep store needs zarr: pip install 'alberta_eqx[sweep]'") from None
    return zarr


def create(
    path: str,
    *,
    metrics: Sequence[str],
    hyperparameters: Mapping[str, np.ndarray],
    seeds: Sequence[int],
    num_windows: int,
    metrics_window: int,
    chunks: tuple[int, int],
    attrs: Mapping[str, Any],
) -> None:
    """Create an empty store at `path` (which must not exist yet)."""
    xr_coords = _coords(hyperparameters, seeds, num_windows, metrics_window)
    import xarray as xr

    # The coordinates and attributes through xarray (its encoding of them), the
    # data variables empty through zarr: nothing the size of the sweep is in memory.
    xr.Dataset(coords=xr_coords, attrs=dict(attrs)).to_zarr(
        path, mode="w-", consolidated=False, zarr_format=3
    )
    zarr = _zarr()
    group = zarr.open_group(path, mode="r+")
    num_configs = len(next(iter(hyperparameters.values())))
    shape = (num_configs, len(seeds), num_windows)
    for name in metrics:
        group.create_array(
            name,
            shape=shape,
            chunks=(*chunks, num_windows),
            dtype="float32",
            fill_value=np.nan,
            dimension_names=(CONFIG, SEED, WINDOW),
        )
    group.create_array(
        COMPLETED,
        shape=(num_configs,),
        chunks=(chunks[0],),
        dtype="bool",
        fill_value=False,
        dimension_names=(CONFIG,),
    )
    with warnings.catch_warnings():
        # zarr 3 warns that consolidated metadata is not yet in the v3 spec; xarray
        # reads it (and opens the store in one read), and falls back without it.
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(path)


def _coords(hyperparameters, seeds, num_windows, metrics_window) -> Coords:
    num_configs = len(next(iter(hyperparameters.values())))
    coords: Coords = {CONFIG: np.arange(num_configs), SEED: np.asarray(seeds)}
    coords.update(_window_coords(num_windows, metrics_window, 0))
    for name, values in hyperparameters.items():
        coords[name] = (CONFIG, np.asarray(values))
    return coords


def spec_of(path: str) -> dict | None:
    """The specification a store was created for, or None where there is no store."""
    zarr = _zarr()
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    return json.loads(group.attrs["spec"])


def completed(path: str) -> np.ndarray:
    """Per configuration, whether its shard is entirely written."""
    return np.asarray(_zarr().open_group(path, mode="r")[COMPLETED][:])


def write_block(path: str, name: str, index: tuple[slice, ...], values: np.ndarray) -> None:
    """Write `values` into data variable `name` at `index` (a device's block)."""
    _zarr().open_group(path, mode="r+")[name][index] = values


def mark_completed(path: str, start: int, stop: int) -> None:
    """Mark configurations `start .. stop - 1` as written."""
    _zarr().open_group(path, mode="r+")[COMPLETED][start:stop] = True
