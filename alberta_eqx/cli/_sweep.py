"""`alberta-eqx sweep FILE`: run (or resume) a sweep into a Zarr store."""

import argparse
from typing import Any

from alberta_eqx.cli._options import _Help, count


def _add_sweep(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep file into a resumable Zarr store",
        parents=parents,
        formatter_class=_Help,
        description="Run (or resume after a crash) the sweep a TOML file specifies into "
        "OUT/sweep.zarr, shard by shard; finished shards are never recomputed "
        "(docs/scale.md). A type written 'package.module:attr' is imported and called: a "
        "sweep file is code, like a Python file.",
    )
    p.add_argument("spec", help="the sweep file (TOML; see docs/scale.md)")
    p.add_argument("--shard-size", type=count, default=None, help="configurations per shard")


def sweep(args: argparse.Namespace) -> None:
    from alberta_eqx.experiments.sweep import sweep_command

    sweep_command(args.spec, args.out, args.shard_size)
