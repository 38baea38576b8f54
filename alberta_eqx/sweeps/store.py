"""A sweep's store: one Zarr group that `xarray.open_zarr` reads as a `Dataset`.

Layout (what `to_xarray` gives for a grid, written shard by shard):

- one float32 data variable per metric, dimensions `(config, seed, window)`,
  filled with NaN until its shard is written;
- `completed` (`config`): True once a configuration's shard is entirely written;
- coordinates `config`, one per hyperparameter along `config`, `seed`, `window` and
  `step` (the steps learned by the end of each window);
- attributes: the sweep's specification (`spec`, JSON), the grid's keys in order
  (`hyperparameters`: with the coordinates, the ordered configuration table a resume
  must match), the metrics (`metrics`), the stream's settings and the first
  configuration's learner (`stream`, `learner`, JSON: the grid's values are in the
  coordinates), the library and JAX versions.

Chunks are one device's block of one shard, so that every chunk has exactly one
writer, whichever process owns the device; a shard is marked `completed` only after
all of its chunks are written, so a sweep killed at any moment resumes from the
marks without trusting a half-written shard.

Every array's chunks end in a CRC-32C checksum (Zarr's `Crc32cCodec`), so a changed
byte fails to read instead of giving other numbers; `check_shard` reads a shard's
chunks back and finds missing ones, which Zarr would read as NaN. The store is built
in a folder beside its final one and renamed into place when whole, so a sweep
killed while creating it leaves no half-made store behind its name.
"""

import itertools
import json
import os
import shutil
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alberta_eqx.sweeps.labelled import CONFIG, SEED, WINDOW, Coords, _window_coords

STORE = "sweep.zarr"
"""The store's folder name inside a sweep's output folder."""
COMPLETED = "completed"
PARTIAL = ".creating"
"""The suffix of the folder a store is built in before it is renamed into place."""


class StoreError(ValueError):
    """A store that cannot be used as it is: the message names it and what to do."""


def _zarr():
    try:
        import zarr
    except ImportError:
        raise ImportError("the sweep store needs zarr: pip install 'alberta_eqx[sweep]'") from None
    return zarr


def configurations(grid: Mapping[str, Sequence[float]]) -> dict[str, np.ndarray]:
    """Each hyperparameter's value per configuration: the Cartesian product of the
    grid's values, the last hyperparameter varying fastest."""
    points = list(itertools.product(*grid.values()))
    return {name: np.asarray([p[i] for p in points], np.float64) for i, name in enumerate(grid)}


def _compressors() -> tuple[Any, ...]:
    """Zarr's default compression, then a CRC-32C checksum of each compressed chunk."""
    codecs = _zarr().codecs
    return (codecs.ZstdCodec(level=0), codecs.Crc32cCodec())


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
    """Create an empty store at `path` (which must not exist yet): built in
    `path + PARTIAL` (removing one that a killed sweep left there) and renamed to
    `path` once every array is in it."""
    xr_coords = _coords(hyperparameters, seeds, num_windows, metrics_window)
    import xarray as xr

    partial = path + PARTIAL
    if os.path.isdir(partial):
        shutil.rmtree(partial)  # a creation cut off by a kill: start it again
    # The coordinates and attributes through xarray (its encoding of them), the
    # data variables empty through zarr: nothing the size of the sweep is in memory.
    dataset = xr.Dataset(coords=xr_coords, attrs=dict(attrs))
    dataset.to_zarr(
        partial,
        mode="w-",
        consolidated=False,
        zarr_format=3,
        encoding={name: {"compressors": _compressors()} for name in dataset.variables},
    )
    zarr = _zarr()
    group = zarr.open_group(partial, mode="r+")
    num_configs = len(next(iter(hyperparameters.values())))
    shape = (num_configs, len(seeds), num_windows)
    for name in metrics:
        group.create_array(
            name,
            shape=shape,
            chunks=(*chunks, num_windows),
            dtype="float32",
            fill_value=np.nan,
            compressors=_compressors(),
            dimension_names=(CONFIG, SEED, WINDOW),
        )
    group.create_array(
        COMPLETED,
        shape=(num_configs,),
        chunks=(chunks[0],),
        dtype="bool",
        fill_value=False,
        compressors=_compressors(),
        dimension_names=(CONFIG,),
    )
    with warnings.catch_warnings():
        # zarr 3 warns that consolidated metadata is not yet in the v3 spec; xarray
        # reads it (and opens the store in one read), and falls back without it.
        warnings.simplefilter("ignore", UserWarning)
        zarr.consolidate_metadata(partial)
    os.rename(partial, path)
    directory = os.open(os.path.dirname(os.path.abspath(path)), os.O_RDONLY)
    try:
        os.fsync(directory)  # the rename itself survives a power cut
    finally:
        os.close(directory)


def _coords(hyperparameters, seeds, num_windows, metrics_window) -> Coords:
    num_configs = len(next(iter(hyperparameters.values())))
    coords: Coords = {CONFIG: np.arange(num_configs), SEED: np.asarray(seeds)}
    coords.update(_window_coords(num_windows, metrics_window, 0))
    for name, values in hyperparameters.items():
        coords[name] = (CONFIG, np.asarray(values))
    return coords


def _damaged(path: str, what: str) -> StoreError:
    return StoreError(
        f"{path} is damaged or was left half-made by an older version ({what}); its results "
        "cannot be trusted: move the folder away or remove it, and run again"
    )


def open_store(path: str) -> tuple[dict[str, Any], dict[str, np.ndarray]] | None:
    """The specification a store was created for and its ordered configuration table
    (each hyperparameter's value per configuration, read through their checksums),
    or None where there is no store. Raises `StoreError` for a store that is not
    whole, or whose metadata or coordinates fail to read or differ from its
    specification."""
    zarr = _zarr()
    try:
        group = zarr.open_group(path, mode="r")
    except (FileNotFoundError, zarr.errors.GroupNotFoundError):
        return None
    except ValueError as error:  # unreadable metadata
        raise _damaged(path, str(error)) from None
    try:
        spec = json.loads(group.attrs["spec"])
        names = group.attrs.get("hyperparameters", list(spec["grid"]))
        for name in [*_metrics(group), COMPLETED]:
            group[name]  # opening it checks it is there
        table = configurations({name: spec["grid"][name] for name in names})
        window = spec["metrics_window"]
        expected = _coords(table, spec["seeds"], spec["num_steps"] // window, window)
        for name, coord in expected.items():
            values = coord[1] if isinstance(coord, tuple) else coord
            if not np.array_equal(group[name][:], values):
                raise ValueError(f"its coordinate {name!r} is not its specification's")
    except (KeyError, ValueError, TypeError) as error:
        raise _damaged(path, f"{type(error).__name__}: {error}") from None
    return spec, table


def _metrics(group: Any) -> list[str]:
    """The data variables a store holds results in (named in its attributes; an
    older store's are its arrays of dimensions `(config, seed, window)`)."""
    if "metrics" in group.attrs:
        return list(group.attrs["metrics"])
    return sorted(name for name, array in group.arrays() if array.ndim == 3)


def metric_names(path: str) -> list[str]:
    """The data variables a store holds results in."""
    return _metrics(_zarr().open_group(path, mode="r"))


def _unreadable(error: ValueError) -> str:
    if "checksum" in str(error):
        return "checksum mismatch"
    return f"unreadable ({error})"


def check_shard(path: str, start: int, stop: int) -> tuple[bool, str | None]:
    """Whether configurations `start .. stop - 1` (one shard) are marked completed,
    and what is wrong with them if anything: marks or data chunks that fail their
    checksum, or data chunks that are missing (Zarr would read them as NaN). A
    shard with a problem counts as not completed."""
    group = _zarr().open_group(path, mode="r")
    try:
        marks = np.asarray(group[COMPLETED][start:stop])
    except ValueError as error:
        return False, f"its completion marks: {_unreadable(error)}"
    if not marks.all():
        return False, None if not marks.any() else "it is only partly marked completed"
    for name in _metrics(group):
        array = group[name]
        config_chunk, seed_chunk, _ = array.chunks
        for c in range(start // config_chunk, -(-stop // config_chunk)):
            for s in range(-(-array.shape[1] // seed_chunk)):
                key = array.metadata.encode_chunk_key((c, s, 0))
                where = f"{name}/{key}"
                if not os.path.isfile(os.path.join(path, name, *key.split("/"))):
                    return False, f"chunk {where}: missing"
                block = (
                    slice(c * config_chunk, (c + 1) * config_chunk),
                    slice(s * seed_chunk, (s + 1) * seed_chunk),
                )
                try:
                    array[block]
                except ValueError as error:
                    return False, f"chunk {where}: {_unreadable(error)}"
    return True, None


def completed(path: str) -> np.ndarray:
    """Per configuration, whether its shard is entirely written."""
    return np.asarray(_zarr().open_group(path, mode="r")[COMPLETED][:])


def write_block(path: str, name: str, index: tuple[slice, ...], values: np.ndarray) -> None:
    """Write `values` into data variable `name` at `index` (a device's block)."""
    _zarr().open_group(path, mode="r+")[name][index] = values


def mark_completed(path: str, start: int, stop: int, value: bool = True) -> None:
    """Mark configurations `start .. stop - 1` as written (or, with `value=False`,
    as to be written again)."""
    _zarr().open_group(path, mode="r+")[COMPLETED][start:stop] = value
