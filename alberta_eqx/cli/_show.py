"""`alberta-eqx show FOLDER`: print the settings and results a run recorded, and for a
sweep's folder its specification, its progress and its best configurations."""

import argparse
import json
import os
from typing import Any

from alberta_eqx.cli._options import _Help, fail
from alberta_eqx.experiments.record import RECORD, read_record


def _field(record: dict, key: str, kind: type[dict] | type[list], default: Any) -> Any:
    """`record[key]`, refused in one line when it is not a `kind`."""
    value = record.get(key, default)
    if value is not None and not isinstance(value, kind):
        name = "an object" if kind is dict else "a list"
        fail(f"{RECORD} is malformed: {key!r} must be {name}, got {json.dumps(value)}")
    return default if value is None else value


def _read(folder: str) -> dict | None:
    """The folder's record; None when it has none but holds a sweep's store."""
    from alberta_eqx.sweeps.sweep import find_store

    try:
        record = read_record(folder)
    except FileNotFoundError as error:
        if os.path.isfile(os.path.join(find_store(folder), "zarr.json")):
            return None  # a sweep run from Python: its store only
        fail(str(error))
    except ValueError as error:  # not UTF-8, not JSON, or not an object
        fail(f"{folder!r}: {RECORD} is malformed ({error})")
    except OSError as error:
        fail(f"{folder!r}: cannot read {RECORD} ({error.strerror})")
    return record


def show(args: argparse.Namespace) -> None:
    record = _read(args.folder)
    if args.json:
        if record is None:
            fail(
                f"{args.folder!r} holds no {RECORD} (a sweep's store only: show it without --json)"
            )
        print(json.dumps(record, indent=2))
        return
    if record is not None:
        _show_record(record)
    if record is None or record.get("command") == "sweep":
        _show_sweep(args.folder, with_spec=record is None)


def _show_record(record: dict) -> None:
    status = record.get("status")
    if status != "complete":
        print(f"status: INCOMPLETE ({status}): the run was interrupted or is still going")
    else:
        print(f"status: complete, {record.get('started')} to {record.get('finished')}")
    print(f"command: {' '.join(map(str, _field(record, 'argv', list, [])))}")
    for key, value in _field(record, "settings", dict, {}).items():
        print(f"{key}: {json.dumps(value)}")
    versions = _field(record, "versions", dict, {})
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"device: {record.get('device')}")
    outputs = _field(record, "outputs", list, [])
    if outputs:
        print(f"outputs: {', '.join(map(str, outputs))}")
    results = _field(record, "results", dict, {})
    if record.get("command") == "sweep":
        return  # its results are read from the store itself, as it is now
    for line in _field(results, "report", list, []):
        print(line)
    for row in _field(results, "final", list, []):
        print(f"  {row}")


def _show_sweep(folder: str, with_spec: bool) -> None:
    """The store's progress and its best configurations, and its specification
    `with_spec` (a sweep's record already shows it)."""
    from alberta_eqx.cli._sweep import best_rows, best_table
    from alberta_eqx.sweeps import store
    from alberta_eqx.sweeps.labelled import xarray_module
    from alberta_eqx.sweeps.sweep import find_store

    path = find_store(folder)
    try:
        opened = store.open_store(path)
    except store.StoreError as error:
        fail(str(error))
    if opened is None:
        print(f"store: none yet ({path})")
        return
    spec, table = opened
    ds = xarray_module().open_zarr(path)
    num_configs = len(next(iter(table.values())))
    try:
        completed = ds.completed.values
        rows = best_rows(ds)
    except ValueError as error:  # a chunk that fails its checksum
        fail(f"{path}: results unreadable ({error}); see alberta-eqx sweep --verify {folder}")
    size = spec["shard_size"]
    shards = -(-num_configs // size)
    finished = sum(bool(completed[i : i + size].all()) for i in range(0, num_configs, size))
    print(f"store: {path}")
    if with_spec:
        for part in ("stream", "learner", "environment", "agent"):
            if part in spec:
                print(f"{part}: {json.dumps(spec[part])}")
    grid = ", ".join(f"{name} = {spec['grid'][name]}" for name in table)
    print(f"grid: {grid} ({num_configs} configurations)")
    print(
        f"runs: {len(spec['seeds'])} seeds x {spec['num_steps']} steps, metrics averaged over "
        f"{spec['metrics_window']}-step windows"
    )
    print(
        f"progress: {int(completed.sum())}/{num_configs} configurations completed "
        f"({finished}/{shards} shards of {size})"
    )
    for line in best_table(rows, ds, num_configs):
        print(line)


def _add_show(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show",
        help="print the settings and results recorded in an output folder (a sweep's too)",
        formatter_class=_Help,
    )
    p.add_argument("folder", help="an output folder (holding run.json, or a sweep's store)")
    p.add_argument("--json", action="store_true", help="print run.json as it is")
