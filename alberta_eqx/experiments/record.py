"""The record a run leaves in its output folder: `run.json`, what produced the results
beside it (the command, every setting, the library and JAX versions, the command
line), and whether the run completed.

The record is written atomically when a run starts, with `"status": "running"`, and
again when every output has been written, with `"status": "complete"` and the list
of outputs. A folder whose run was interrupted therefore never looks complete, and
outputs left from an earlier run in the same folder are removed when the new run
starts.
"""

import datetime
import json
import math
import os
import platform
import sys
from collections.abc import Mapping
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from alberta_eqx.experiments.export import atomic_open

RECORD = "run.json"


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for package in ("alberta_eqx", "jax", "jaxlib", "equinox", "optax", "numpy"):
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = "not installed"
    return versions


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _json_default(value: Any) -> Any:
    if hasattr(value, "tolist"):  # NumPy and JAX scalars and arrays
        return value.tolist()
    if isinstance(value, tuple | set):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _write(path: str, record: Mapping[str, Any]) -> None:
    with atomic_open(path, "w") as f:
        json.dump(record, f, indent=2, default=_json_default, allow_nan=False)
        f.write("\n")


def read_record(folder: str | os.PathLike) -> dict[str, Any]:
    """The `run.json` of `folder`; raises `FileNotFoundError` naming the folder when
    there is none, and `ValueError` when it is not JSON or not a JSON object."""
    path = os.path.join(folder, RECORD)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{os.fspath(folder)!r} holds no {RECORD}: not an output folder")
    with open(path, encoding="utf-8") as f:
        record = json.load(f)
    if not isinstance(record, dict):
        raise ValueError(f"it must be a JSON object, got {type(record).__name__}")
    return record


def start_record(
    folder: str | os.PathLike, command: str, settings: Mapping[str, Any], device: str
) -> dict[str, Any]:
    """Write `run.json` with `"status": "running"`, after removing the outputs an
    earlier complete run listed there. Returns the record, for `finish_record`."""
    folder = os.fspath(folder)
    try:
        previous = read_record(folder)
    except (FileNotFoundError, ValueError):  # none, or not a record
        previous = {}
    for name in previous.get("outputs", []):
        path = os.path.join(folder, os.path.basename(name))
        if os.path.isfile(path):
            os.remove(path)
    record = {
        "status": "running",
        "command": command,
        "settings": dict(settings),
        "versions": _versions(),
        "device": device,
        "argv": ["alberta-eqx", *sys.argv[1:]],
        "started": _now(),
    }
    _write(os.path.join(folder, RECORD), record)
    return record


def finish_record(
    folder: str | os.PathLike,
    record: Mapping[str, Any],
    outputs: list[str],
    results: Mapping[str, Any],
) -> None:
    """Rewrite `run.json` with `"status": "complete"`, the outputs written and a
    summary of the results (`results`, JSON-serialisable; NaN is written as null)."""
    complete = dict(
        record,
        status="complete",
        finished=_now(),
        outputs=sorted(outputs),
        results=_finite(results),
    )
    _write(os.path.join(os.fspath(folder), RECORD), complete)


def _finite(value: Any) -> Any:
    """NaN and infinities as None: JSON has no NaN."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, Mapping):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_finite(v) for v in value]
    return value
