"""`alberta-eqx show FOLDER`: print the settings and results a run recorded."""

import argparse
import json
from typing import Any

from alberta_eqx.cli._options import _Help, fail
from alberta_eqx.experiments.record import read_record


def show(args: argparse.Namespace) -> None:
    try:
        record = read_record(args.folder)
    except FileNotFoundError as error:
        fail(str(error))
    except json.JSONDecodeError as error:
        fail(f"{args.folder!r}: run.json is not valid JSON ({error})")
    if args.json:
        print(json.dumps(record, indent=2))
        return
    status = record.get("status")
    if status != "complete":
        print(f"status: INCOMPLETE ({status}): the run was interrupted or is still going")
    else:
        print(f"status: complete, {record.get('started')} to {record.get('finished')}")
    print(f"command: {' '.join(record.get('argv', []))}")
    for key, value in record.get("settings", {}).items():
        print(f"{key}: {json.dumps(value)}")
    versions = record.get("versions", {})
    print("versions: " + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"device: {record.get('device')}")
    if record.get("outputs"):
        print(f"outputs: {', '.join(record['outputs'])}")
    results = record.get("results") or {}
    for line in results.get("report", []):
        print(line)
    for row in results.get("final", []):
        print(f"  {row}")


def _add_show(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show",
        help="print the settings and results recorded in an output folder",
        formatter_class=_Help,
    )
    p.add_argument("folder", help="an output folder (holding run.json)")
    p.add_argument("--json", action="store_true", help="print run.json as it is")
