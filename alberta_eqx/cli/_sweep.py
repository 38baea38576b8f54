"""`alberta-eqx sweep FILE`: run (or resume) a sweep into a Zarr store, and
`alberta-eqx sweep --verify DIR`: read a store back through its checksums."""

import argparse
import logging
import math
import os
import sys
import time
from typing import Any

from alberta_eqx.cli._options import _Help, add_log_option, count, fail, open_loggers
from alberta_eqx.cli._output import _device, output_folder, pyplot, save_figure

METRIC = "squared_error"
"""The metric that ranks a store's configurations, lowest first, where the store names
none (`rank_by`: a control sweep ranks by its reward rate, highest first)."""
TOP = 5
PLOT = "sweep.png"


def _add_sweep(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep file into a resumable Zarr store",
        parents=parents,
        formatter_class=_Help,
        description="Run (or resume after a crash) the sweep a TOML file specifies into\n"
        "OUT/sweep.zarr, shard by shard; finished shards are never recomputed, but read\n"
        "back through their checksums first, and run again if damaged. At the end it\n"
        f"prints the {TOP} best configurations by final squared error (a control sweep:\n"
        "by final reward rate), writes run.json\n"
        f"and plots their learning curves in {PLOT} (docs/scale.md).\n"
        'A spec\'s `type = "module:attr"` imports and calls what it names, like a Python file.',
    )
    p.add_argument("spec", nargs="?", help="the sweep file (TOML; see docs/scale.md)")
    p.add_argument("--shard-size", type=count, default=None, help="configurations per shard")
    p.add_argument(
        "--verify",
        metavar="DIR",
        default=None,
        help="check the store in DIR (an output folder or its sweep.zarr) and exit: "
        "every shard marked completed is read through its checksums",
    )
    add_log_option(p)


def sweep(args: argparse.Namespace) -> None:
    if args.verify is not None:
        if args.spec is not None:
            fail("give a sweep file or --verify DIR, not both")
        _verify(args.verify)
        return
    if args.spec is None:
        fail("sweep needs a sweep file (or --verify DIR)")
    from alberta_eqx.experiments.record import finish_record, start_record
    from alberta_eqx.sweeps import (
        SweepError,
        check_sweep,
        load_spec,
        run_sweep,
        store,
    )
    from alberta_eqx.sweeps.store import STORE

    # Everything is checked before anything is written: a mistake leaves no folder.
    try:
        spec = load_spec(args.spec)
        check_sweep(spec, args.out)
    except OSError as error:
        fail(f"{args.spec}: {error.strerror or error}")
    except (ValueError, TypeError) as error:  # SpecError, SweepError, StoreError
        fail(f"{args.spec}: {error}")
    out = output_folder(args.out)
    settings = {"spec_file": os.path.abspath(args.spec), **spec.describe()}
    loggers = open_loggers(args.log)
    record = start_record(out, "sweep", settings, _device())
    log = logging.getLogger("alberta_eqx.sweep")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
    level = log.level
    log.addHandler(handler)
    log.setLevel(logging.INFO)
    began = time.perf_counter()
    try:
        for logger in loggers:
            logger.log_settings(settings)
        ds = run_sweep(
            spec,
            out,
            shard_size=args.shard_size,
            on_shard=lambda _, start, stop: _log_shard(loggers, out, start, stop),
        )
    except (store.StoreError, SweepError) as error:  # found before any shard ran
        fail(str(error))
    finally:
        log.removeHandler(handler)
        log.setLevel(level)
        for logger in loggers:
            logger.close()
    done = int(ds.completed.sum())
    print(
        f"{done}/{spec.num_configs} configurations x {ds.sizes['seed']} seeds x "
        f"{spec.num_steps} steps in {time.perf_counter() - began:.1f} s; the store: "
        f"{os.path.join(out, STORE)} (xarray.open_zarr)"
    )
    rows = best_rows(ds)
    lines = best_table(rows, ds, spec.num_configs)
    print("\n".join(lines))
    outputs: list[str] = []
    if not args.no_plot:
        save_figure(_figure(ds, rows), out, PLOT, outputs)
    results = {"store": STORE, "completed": done, "best": rows, "report": lines}
    finish_record(out, record, outputs, results)


def _log_shard(loggers: list, out: str, start: int, stop: int) -> None:
    """Log a finished shard's windows, read back from the store: per configuration
    (named by its index and hyperparameters, `config_3-step_size_0.01`) each
    metric's mean over the seeds."""
    if not loggers:
        return
    import xarray as xr

    from alberta_eqx.experiments.loggers import log_windows
    from alberta_eqx.sweeps.store import STORE

    ds = xr.open_zarr(os.path.join(out, STORE))
    table = {n: ds[n].values for n in ds.attrs["hyperparameters"]}
    shard = {m: ds[m].isel(config=slice(start, stop)).values for m in ds.attrs["metrics"]}
    for i, config in enumerate(range(start, stop)):
        # only letters, digits and `_-./`: TensorBoard replaces other characters in tags
        values = "".join(
            f"-{n}_{float(column[config]):.4g}".replace("+", "") for n, column in table.items()
        )
        log_windows(
            loggers,
            {m: array[i] for m, array in shard.items()},
            0,
            int(ds.attrs["metrics_window"]),
            prefix=f"config_{config}{values}",
        )


def rank_by(ds: Any) -> tuple[str, bool]:
    """The metric that ranks a store's configurations, and whether higher is better."""
    metric, higher = ds.attrs.get("rank_by", (METRIC, False))
    return str(metric), bool(higher)


def best_rows(ds: Any) -> list[dict]:
    """The store's best configurations (`best_configurations` by `rank_by`)."""
    from alberta_eqx.sweeps import best_configurations

    metric, higher = rank_by(ds)
    if metric not in ds.data_vars:
        return []
    return best_configurations(ds, metric, TOP, higher_is_better=higher)


def best_table(rows: list[dict], ds: Any, num_configs: int) -> list[str]:
    """The best configurations as lines of text: a table, then the best one."""
    metric, _ = rank_by(ds)
    window = ds.attrs.get("metrics_window")
    title = (
        f"best {len(rows)} of {num_configs} configurations by final {metric} (the last "
        f"{window}-step window; mean over {ds.sizes['seed']} seeds, 95% bootstrap CI):"
    )
    if metric not in ds.data_vars:
        return [f"no {metric} in the store to rank the configurations by"]
    if not rows:
        return [f"no configuration is completed yet ({num_configs} in the grid)"]
    names = [k for k in rows[0] if k not in _COLUMNS]
    header = ["config", *names, f"final {metric} [95% CI]", "diverged seeds"]
    cells = [
        [
            str(row["config"]),
            *(f"{row[n]:.4g}" for n in names),
            _interval(row),
            str(row["diverged"]),
        ]
        for row in rows
    ]
    widths = [max(len(c) for c in column) for column in zip(header, *cells, strict=True)]
    table = [
        "  ".join(c.rjust(w) for c, w in zip(line, widths, strict=True))
        for line in (header, *cells)
    ]
    best = rows[0]
    settings = ", ".join(f"{n}={best[n]:.4g}" for n in names)
    return [
        title,
        *("  " + line for line in table),
        f"best: configuration {best['config']} ({settings}): final {metric} {_interval(best)}",
    ]


def _interval(row: dict) -> str:
    if math.isnan(row["final"]):
        return "every seed diverged"
    return f"{row['final']:.4g} [{row['low']:.4g}, {row['high']:.4g}]"


def _figure(ds: Any, rows: list[dict]) -> Any:
    """The best configurations' learning curves: the mean over the seeds that did not
    diverge, with a band of one standard error."""
    import numpy as np

    plt = pyplot()
    metric, _ = rank_by(ds)
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    steps = ds.step.values
    for i, row in enumerate(rows):
        curves = np.asarray(ds[metric].values[row["config"]], np.float64)
        curves = curves[np.isfinite(curves).all(axis=1)]
        if not curves.shape[0]:
            continue
        mean = curves.mean(axis=0)
        label = ", ".join(f"{k}={v:.3g}" for k, v in row.items() if k not in _COLUMNS)
        ax.plot(steps, mean, c=f"C{i}", label=f"{row['config']}: {label}")
        if curves.shape[0] > 1:
            err = curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])
            ax.fill_between(steps, mean - err, mean + err, color=f"C{i}", alpha=0.25, lw=0)
    ax.set(
        xlabel="step", ylabel=f"{metric} (mean of {ds.attrs.get('metrics_window')}-step windows)"
    )
    ax.set_title(f"the {len(rows)} best configurations, {ds.sizes['seed']} seeds (band: one SE)")
    if ax.get_lines():
        ax.legend(fontsize=8)
    return fig


_COLUMNS = ("config", "final", "low", "high", "diverged")


def _verify(folder: str) -> None:
    from alberta_eqx.sweeps import store
    from alberta_eqx.sweeps.sweep import SweepError, find_store, verify_store

    path = find_store(folder)
    try:
        problems = verify_store(path)
        done = store.completed(path)
    except (store.StoreError, SweepError) as error:
        fail(str(error))
    for problem in problems:
        print(f"DAMAGED {problem}")
    if problems:
        fail(
            f"{path}: {len(problems)} problem(s); resuming the sweep (alberta-eqx sweep SPEC "
            "--out DIR) runs the damaged shards again"
        )
    print(f"{path}: every checksum holds; {int(done.sum())}/{done.size} configurations completed")
