"""The `alberta-eqx` command line: reproduce the papers, or run any stream and learner.

alberta-eqx                                  # = alberta-eqx replicate sutton1992-exp1
alberta-eqx replicate sutton1992-exp2 --quick
alberta-eqx run --stream scale-drift --optimizer autostep --normalizer ema --steps 200000
alberta-eqx run --stream mypkg.streams:MyStream --learner mypkg:make_learner --config run.toml
alberta-eqx show alberta-eqx-out

Parsing and printing only: the science is in `alberta_eqx.experiments`. A new
replication is one entry in `REPLICATIONS`; a new command is one function and one
entry in `COMMANDS`.
"""

import argparse
import json
import math
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

import numpy as np

from alberta_eqx.experiments import reports, spec
from alberta_eqx.experiments._segments import Rate
from alberta_eqx.experiments.export import atomic_write, to_csv
from alberta_eqx.experiments.record import finish_record, read_record, start_record
from alberta_eqx.experiments.summary import curves_frame, summary_table

# name -> the published experiment; `alberta-eqx replicate NAME` runs it.
REPLICATIONS: dict[str, reports.Replication] = {
    "sutton1992-exp1": reports.SUTTON1992_EXP1,
    "sutton1992-exp2": reports.SUTTON1992_EXP2,
    "autostep-scale": reports.AUTOSTEP_SCALE,
    "random-walk-19": reports.RANDOM_WALK_19,
    "continual-backprop": reports.CONTINUAL_BACKPROP,
    "baird": reports.BAIRD,
    "mountain-car": reports.MOUNTAIN_CAR,
    "stream-ac-cartpole": reports.STREAM_AC_CARTPOLE,
}
DEFAULT_REPLICATION = "sutton1992-exp1"


class CommandError(Exception):
    """A user error found after parsing: printed as one line, exit status 2."""


def fail(message: str) -> NoReturn:
    raise CommandError(message)


# --- parsing numbers ----------------------------------------------------------------


def count(text: str) -> int:
    """A positive whole number: `100000`, `100_000` or `1e5`."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return int(value)


def seed(text: str) -> int:
    """A seed for `jax.random.key`: a whole number in [0, 2**32)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
    return value


# --- output ---------------------------------------------------------------------------


def output_folder(path: str) -> str:
    """Create `path` if needed and check it can be written; one line otherwise."""
    if os.path.exists(path) and not os.path.isdir(path):
        fail(f"--out {path!r} is a file, not a folder")
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".alberta-eqx-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        raise SystemExit(
            f"alberta-eqx: error: cannot write to --out {path!r}: {error.strerror}"
        ) from None
    return path


def pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        fail("plots need matplotlib: pip install 'alberta_eqx[plots]' (or pass --no-plot)")
    return plt


def save_figure(fig: Any, out: str, name: str, outputs: list[str]) -> None:
    path = os.path.join(out, name)
    atomic_write(path, lambda p: fig.savefig(p, dpi=120, format="png"))
    pyplot().close(fig)
    outputs.append(name)
    print(f"wrote {path}")


class Bar:
    """A tqdm bar on stderr whose time estimate counts only compiled segments (the
    first segments of each size compile; their time is left out of the rate)."""

    def __init__(self, total: int, label: str, enabled: bool):
        from tqdm import tqdm

        self.rate = Rate()
        self.enabled = enabled  # without a bar, a run is one compiled call
        self.total = total
        self.done = 0
        self.bar = tqdm(
            total=total,
            desc=label,
            unit=" steps",
            unit_scale=True,
            disable=not enabled,
            file=sys.stderr,
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n_fmt}/{total_fmt} "
            "[{elapsed}{postfix}]",
        )

    def __call__(self, steps: int) -> None:
        self.done += steps
        eta = self.rate.eta(self.total - self.done)
        if eta is not None:
            rate = self.rate.per_second or 0.0
            self.bar.set_postfix_str(f"{rate:,.0f} steps/s, ~{_duration(eta)} left", refresh=False)
        else:
            self.bar.set_postfix_str("compiling", refresh=False)
        self.bar.update(steps)

    def close(self) -> None:
        self.bar.close()


def _duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f}s"
    if seconds < 5400:
        return f"{seconds / 60:.0f}min"
    return f"{seconds / 3600:.1f}h"


def steps_for(name: str, steps: int | None, quick: bool) -> int:
    """The run's steps: `--steps` (a multiple of the experiment's unit, else an
    error naming the nearest valid values), `--quick`'s, or the paper's."""
    replication = REPLICATIONS[name]
    if steps is None:
        return replication.quick_steps if quick else replication.steps
    multiple = replication.steps_multiple
    if steps % multiple:
        low = max(multiple, steps // multiple * multiple)
        fail(
            f"--steps for {name} must be a multiple of {multiple:,}; the nearest are "
            f"{low:,} and {low + multiple:,}"
        )
    return steps


# --- replicate -----------------------------------------------------------------------


def replicate(args: argparse.Namespace) -> None:
    name = getattr(args, "name", DEFAULT_REPLICATION)
    replication = REPLICATIONS[name]
    steps = steps_for(name, getattr(args, "steps", None), getattr(args, "quick", False))
    quick_seeds = replication.quick_seeds if getattr(args, "quick", False) else None
    seeds = getattr(args, "seeds", None) or quick_seeds or replication.seeds
    settings = {"replication": name, "seeds": seeds, "steps": steps, "float64": args.float64}
    record = start_record(args.out, "replicate", settings, _device())
    print(replication.paper)
    bar = Bar(replication.total(steps), name, not args.no_progress)
    try:
        result = replication.run(seeds, steps, bar if bar.enabled else None)
    finally:
        bar.close()
    lines = replication.report(result)
    for line in lines:
        print(line)
    outputs: list[str] = []
    if not args.no_plot:
        save_figure(replication.figure(result), args.out, replication.filename, outputs)
    atomic_write(os.path.join(args.out, "report.txt"), lambda p: _write_lines(p, lines))
    outputs.append("report.txt")
    finish_record(args.out, record, outputs, {"report": lines})


def _write_lines(path: str, lines: list[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _device() -> str:
    import jax

    return str(jax.devices()[0].device_kind)


# --- run -----------------------------------------------------------------------------

# The shortcuts' parameter names per built-in optimizer.
_SHORTCUTS = {
    "step_size": {"lms": "step_size", "td-lms": "step_size"},
    "meta_step_size": {},
    "tau": {"autostep": "tau", "autotdidbd": "tau"},
}


def run_spec(args: argparse.Namespace) -> spec.RunSpec:
    """The `RunSpec` of `run`'s options: a `--config` file first, the options on top."""
    base = spec.RunSpec()
    if args.config is not None:
        base = spec.spec_from_dict(spec.read_toml(args.config))
    given = {k for k, v in vars(args).items() if v is not None}
    for key in ("stream", "steps", "seeds", "seed", "window"):
        if key in given:
            setattr(base, key, getattr(args, key))
    base.stream_args = {
        **base.stream_args,
        **spec.parse_assignments("--stream-arg", args.stream_arg),
    }
    if args.feature_dim is not None:
        base.stream_args["feature_dim"] = args.feature_dim
    elif "feature_dim" not in base.stream_args:
        # streams that need a width get 10 features unless told otherwise
        parameters = spec._parameters(spec.resolve("stream", base.stream, spec.STREAMS)) or {}
        width = parameters.get("feature_dim")
        if width is not None and width.default is width.empty:
            base.stream_args["feature_dim"] = 10
    if args.optimizer is not None or not base.learners:
        base.learners = [
            spec.LearnerSpec(
                name=name.rsplit(":", 1)[-1],
                learner=args.learner or "linear",
                optimizer=name,
                normalizer=args.normalizer or "none",
            )
            for name in (args.optimizer or "idbd").split(",")
        ]
    for learner in base.learners:
        if args.learner is not None:
            learner.learner = args.learner
        if args.normalizer is not None:
            learner.normalizer = args.normalizer
        learner.learner_args.update(spec.parse_assignments("--learner-arg", args.learner_arg))
        learner.optimizer_args.update(
            spec.parse_assignments("--optimizer-arg", args.optimizer_arg)
        )
        for option, value in (
            ("step_size", args.step_size),
            ("meta_step_size", args.meta_step_size),
            ("tau", args.tau),
        ):
            if value is None:
                continue
            if option == "step_size":
                key = _SHORTCUTS["step_size"].get(learner.optimizer, "initial_step_size")
            else:
                key = option
            function = spec.resolve("optimizer", learner.optimizer, spec.OPTIMIZERS)
            takes = spec._parameters(function)
            if learner.learner != "mlp" and takes is not None and key not in takes:
                fail(
                    f"--{option.replace('_', '-')}: optimizer {learner.optimizer!r} takes no "
                    f"{key} (it takes {', '.join(takes)})"
                )
            learner.optimizer_args[key] = value
    base.learners = spec.expand_grid(base.learners, spec.parse_grid(args.grid))
    names = [learner.name for learner in base.learners]
    if len(set(names)) != len(names):
        fail(f"the configurations' names must differ, got {names}")
    return base


def check_window(steps: int, window: int) -> None:
    """Refuse a window that does not divide the steps, naming the nearest valid
    windows and step counts (a run never changes its window silently)."""
    if steps % window == 0:
        return
    divisors = [d for d in range(1, math.isqrt(steps) + 1) if steps % d == 0]
    divisors = sorted({*divisors, *(steps // d for d in divisors)})
    below = max(d for d in divisors if d < window)
    above = min((d for d in divisors if d > window), default=None)
    windows = f"{below:,}" + (f" or {above:,}" if above is not None else "")
    low = steps // window * window
    fail(
        f"--window {window:,} does not divide --steps {steps:,}: use --window {windows}, "
        f"or --steps {max(window, low):,} or {low + window:,}"
    )


def memory_estimate(run: spec.RunSpec, feature_dim: int) -> int:
    """Bytes a run holds at once, roughly: the metrics kept (configurations x seeds x
    steps / window x 4 metrics, twice: on the device and on the host), the learners
    (configurations x seeds x features x 8 arrays) and one block of generated
    examples (bounded by the runner's budget)."""
    configs = len(run.learners)
    windows = run.steps // run.window
    metrics = 2 * configs * run.seeds * windows * 4 * 4
    learners = configs * run.seeds * (feature_dim + 1) * 8 * 4
    block = run.seeds * (feature_dim + 1) * min(run.steps, 10_000) * 4
    return metrics + learners + min(block, 1 << 24)


def available_memory() -> tuple[int, str]:
    """The memory the computation can use: the accelerator's, else the host's."""
    import jax

    device = jax.devices()[0]
    stats = device.memory_stats() if device.platform != "cpu" else None
    if stats and "bytes_limit" in stats:
        return int(stats["bytes_limit"]), f"{device.device_kind} memory"
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"), "host memory"


def _bytes(n: int | float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000:
            return f"{n:.3g} {unit}"
        n /= 1000
    return f"{n:.3g} EB"


def run(args: argparse.Namespace) -> None:
    from alberta_eqx.experiments import run_experiment

    try:
        run_settings = run_spec(args)
        stream = spec.build_stream(run_settings)
        factories = {
            learner.name: spec.learner_factory(learner, stream)
            for learner in run_settings.learners
        }
    except spec.SpecError as error:
        fail(str(error))
    check_window(run_settings.steps, run_settings.window)
    needed, (available, where) = (
        memory_estimate(run_settings, stream.feature_dim),
        available_memory(),
    )
    if needed > 0.8 * available:
        fail(
            f"this run needs about {_bytes(needed)} ({len(factories)} configuration(s) x "
            f"{run_settings.seeds:,} seeds x {run_settings.steps // run_settings.window:,} "
            f"windows of metrics, {stream.feature_dim} features), more than the "
            f"{_bytes(available)} of {where}: use fewer --seeds, a larger --window, or "
            "split the run (docs/memory.md)"
        )
    settings = run_settings.to_dict()
    settings["float64"] = args.float64
    record = start_record(args.out, "run", settings, _device())
    total = len(factories) * run_settings.steps
    bar = Bar(total, f"{run_settings.stream}", not args.no_progress)
    try:
        result = run_experiment(
            factories,
            stream,
            run_settings.steps,
            [run_settings.seed + i for i in range(run_settings.seeds)],
            metrics_window=run_settings.window,
            progress=bar if bar.enabled else None,
        )
    finally:
        bar.close()
    report_run(result, args, record)


def report_run(result: Any, args: argparse.Namespace, record: dict[str, Any]) -> None:
    from alberta_eqx.experiments.export import to_markdown

    outputs: list[str] = []
    frame = curves_frame(result)
    to_csv(frame, os.path.join(args.out, "metrics.csv"))
    arrays = {
        f"{config}/{metric}": values
        for config, metrics in result.curves.items()
        for metric, values in metrics.items()
    }

    def savez(path: str) -> None:
        with open(path, "wb") as f:  # a file, not a name: savez would append ".npz"
            np.savez(f, **arrays, window=result.metrics_window)

    atomic_write(os.path.join(args.out, "metrics.npz"), savez)
    outputs += ["metrics.csv", "metrics.npz"]
    finals = {c: result.curve(c)[:, -1] for c in result.configs}
    diverged = {
        c: np.flatnonzero(~np.isfinite(result.curve(c)).all(axis=1)) for c in result.configs
    }
    seeds = len(result.seeds)
    rows = []
    for config in result.configs:
        finite = np.isfinite(finals[config])
        values = finals[config][finite]
        rows.append(
            {
                "config": config,
                "final MSE": float(values.mean()) if values.size else float("nan"),
                "s.e.": float(values.std(ddof=1) / np.sqrt(values.size))
                if values.size > 1
                else float("nan"),
                "seeds": seeds,
                "diverged": int(diverged[config].size),
            }
        )
    print(f"final-window mean squared error over {seeds} seed{'s' * (seeds > 1)} "
          f"(the last {result.metrics_window:,} of {result.num_steps:,} steps):")  # fmt: skip
    table = to_markdown(rows)
    if seeds == 1:  # one seed has no standard error: no column of NaN
        table = to_markdown([{k: v for k, v in row.items() if k != "s.e."} for row in rows])
    print(table, end="")
    for config in result.configs:
        bad = diverged[config]
        if bad.size:
            first = [
                int(np.argmax(~np.isfinite(result.curve(config)[s]))) * result.metrics_window
                for s in bad
            ]
            which = "every seed" if bad.size == seeds else f"{bad.size} of {seeds} seeds"
            print(
                f"{config}: {which} diverged (seeds {', '.join(map(str, bad))}; the first "
                f"non-finite window starts at step {min(first):,})"
                + ("" if bad.size == seeds else "; the means leave them out")
            )
    if len(result.configs) > 1 and seeds > 1:
        try:
            from alberta_eqx.experiments import compare

            print("paired comparisons (same seeds, paired t-test, Holm-corrected):")
            for c in compare(result):
                print(
                    f"  {c.config_a} vs {c.config_b}: p = {c.p_adjusted:.3g}, "
                    f"Cohen's d = {c.cohens_d:.2f}"
                )
        except ValueError as error:
            print(f"  no comparison: {error}")
    summary = summary_table(result, num_resamples=1000) if seeds > 1 else None
    if summary is not None:
        to_csv(summary, os.path.join(args.out, "summary.csv"))
        outputs.append("summary.csv")
    if not args.no_plot:
        save_figure(run_figure(result, diverged), args.out, "learning_curve.png", outputs)
    print(f"wrote {os.path.join(args.out, 'metrics.csv')}, metrics.npz and run.json")
    finish_record(args.out, record, outputs, {"final": rows})


def run_figure(result: Any, diverged: dict[str, np.ndarray]) -> Any:
    """Mean squared error over seeds against steps, one line per configuration, on a
    log scale when every value is positive; a configuration whose every seed
    diverged is named in the legend instead of crashing the plot."""
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    steps = result.steps
    positive = True
    for i, config in enumerate(result.configs):
        curves = result.curve(config)
        keep = np.isfinite(curves).all(axis=1)
        if not keep.any():
            ax.plot([], [], c=f"C{i}", label=f"{config}: every seed diverged")
            continue
        curves = curves[keep]
        mean = curves.mean(axis=0)
        positive &= bool((mean > 0).all())
        label = config if keep.all() else f"{config} ({(~keep).sum()} diverged seeds left out)"
        ax.plot(steps, mean, c=f"C{i}", label=label)
        if curves.shape[0] > 1:
            err = curves.std(axis=0, ddof=1) / np.sqrt(curves.shape[0])
            ax.fill_between(steps, mean - err, mean + err, color=f"C{i}", alpha=0.25, lw=0)
    has_data = any(line.get_xdata().size for line in ax.get_lines())
    if has_data and positive:
        ax.set_yscale("log")
    if not has_data:
        ax.text(0.5, 0.5, "every seed diverged: nothing to draw", ha="center",
                transform=ax.transAxes)  # fmt: skip
    ax.set(xlabel="step", ylabel=f"squared error (mean of {result.metrics_window}-step windows)")
    ax.set_title(f"mean over {len(result.seeds)} seeds (band: one standard error)")
    ax.legend(fontsize=8)
    return fig


# --- show ----------------------------------------------------------------------------


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


# --- the parser ------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """Bad options end with one line on stderr, not a usage block or a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"alberta-eqx: error: {message} (see --help)\n")


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows every default (an option whose default depends on others says so in its
    help), and keeps the description's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default in (None, [], False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"


def _common(suppress: bool) -> argparse.ArgumentParser:
    # the same options before or after the subcommand
    p = argparse.ArgumentParser(add_help=False)
    default = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument(
        "--out",
        default=default("alberta-eqx-out"),
        help="output folder (default: alberta-eqx-out)",
    )
    p.add_argument(
        "--no-progress", action="store_true", default=default(False), help="no progress bar"
    )
    p.add_argument("--no-plot", action="store_true", default=default(False), help="write no PNG")
    p.add_argument(
        "--float64",
        action="store_true",
        default=default(False),
        help="compute in float64 (jax_enable_x64)",
    )
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        default=default(False),
        help="do not use JAX's persistent compilation cache (~/.cache/alberta_eqx/jax)",
    )
    return p


def _add_replicate(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replicate",
        help="reproduce a published experiment",
        parents=parents,
        formatter_class=_Help,
        description="Reproduce a published experiment; print its numbers beside the "
        "paper's and write its figure.\n\n"
        + "\n".join(f"  {n}: {r.title}" for n, r in REPLICATIONS.items()),
    )
    p.add_argument("name", choices=sorted(REPLICATIONS), help="which experiment")
    p.add_argument("--seeds", type=count, help="seeds (default: the experiment's)", default=None)
    p.add_argument(
        "--steps",
        type=count,
        default=None,
        help="steps per seed (default: the paper's; random-walk-19: 100 per episode)",
    )
    p.add_argument("--quick", action="store_true", help="a short run for a first look")


def _add_run(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "run",
        help="run streams and learners over many seeds",
        parents=parents,
        formatter_class=_Help,
        description="Run one or more learner configurations on a stream over many seeds "
        "(paired: every configuration of a seed sees the same stream); print a table, "
        "write metrics.csv, metrics.npz, summary.csv, learning_curve.png and run.json.\n"
        "STREAM, LEARNER, OPTIMIZER and NORMALIZER are built-in names or import paths "
        "'package.module:Name' to your own; --config FILE.toml holds a whole "
        "specification (docs/cli.md). Options left unset take the config file's or "
        "the class's default.",
    )
    p.add_argument("--config", default=None, help="a TOML specification (docs/cli.md)")
    p.add_argument(
        "--stream",
        default=None,
        help=f"{', '.join(spec.STREAMS)} or module:Name (default: random-walk)",
    )
    p.add_argument(
        "--stream-arg", action="append", default=[], metavar="NAME=VALUE", help="stream argument"
    )
    p.add_argument(
        "--feature-dim",
        type=count,
        default=None,
        help="the stream's feature_dim (default: 10, for streams that take one)",
    )
    p.add_argument(
        "--learner",
        default=None,
        help="linear, td-linear, mlp or module:function (default: linear)",
    )
    p.add_argument(
        "--learner-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="learner argument (mlp: hidden_sizes=[64,64]; td-linear: lambda_=0.9)",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        help=f"{', '.join(spec.OPTIMIZERS)} or module:Name; several, comma-separated, "
        "are compared (default: idbd)",
    )
    p.add_argument(
        "--optimizer-arg", action="append", default=[], metavar="NAME=VALUE",
        help="optimizer argument",
    )  # fmt: skip
    p.add_argument(
        "--normalizer", default=None, help="none, ema, welford or module:Name (default: none)"
    )
    p.add_argument(
        "--grid",
        action="append",
        default=[],
        metavar="NAME=V1,V2,...",
        help="sweep a hyperparameter: one configuration per value (repeat for a grid)",
    )
    p.add_argument("--steps", type=count, default=None, help="steps per seed (default: 100000)")
    p.add_argument("--seeds", type=count, default=None, help="seeds (default: 10)")
    p.add_argument("--seed", type=seed, default=None, help="the first seed (default: 0)")
    p.add_argument(
        "--window", type=count, default=None, help="steps per metrics entry (default: 100)"
    )
    p.add_argument(
        "--step-size", type=positive_float, default=None,
        help="LMS's step-size or the initial step-size (default: the optimizer's, 0.01)",
    )  # fmt: skip
    p.add_argument(
        "--meta-step-size", type=positive_float, default=None,
        help="IDBD's theta or Autostep's mu (default: the optimizer's, 0.01)",
    )  # fmt: skip
    p.add_argument(
        "--tau", type=positive_float, default=None,
        help="Autostep's tau (default: the optimizer's, 10000)",
    )  # fmt: skip


def _add_show(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "show",
        help="print the settings and results recorded in an output folder",
        formatter_class=_Help,
    )
    p.add_argument("folder", help="an output folder (holding run.json)")
    p.add_argument("--json", action="store_true", help="print run.json as it is")


def _add_sweep(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "sweep",
        help="run a sweep file into a resumable Zarr store",
        parents=parents,
        formatter_class=_Help,
        description="Run (or resume after a crash) the sweep a TOML file specifies into "
        "OUT/sweep.zarr, shard by shard; finished shards are never recomputed "
        "(docs/scale.md).",
    )
    p.add_argument("spec", help="the sweep file (TOML; see docs/scale.md)")
    p.add_argument("--shard-size", type=count, default=None, help="configurations per shard")


def sweep(args: argparse.Namespace) -> None:
    from alberta_eqx.experiments.sweep import sweep_command

    sweep_command(args.spec, args.out, args.shard_size)


# command -> (add its parser, run it)
COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], None]]] = {
    "replicate": (_add_replicate, replicate),
    "run": (_add_run, run),
    "show": (_add_show, show),
    "sweep": (_add_sweep, sweep),
}


def parser() -> _Parser:
    main_parser = _Parser(
        prog="alberta-eqx",
        description=__doc__.split("\n\n")[0]
        + f"\n\nWith no command: alberta-eqx replicate {DEFAULT_REPLICATION}.",
        parents=[_common(False)],
        formatter_class=_Help,
    )
    sub = main_parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub, [_common(True)])
    for action in sub.choices.values():
        action.error = main_parser.error  # type: ignore[method-assign]
    return main_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    try:
        if args.float64:
            import jax

            jax.config.update("jax_enable_x64", True)
        if not args.no_compile_cache:
            from alberta_eqx.experiments.cache import enable_compilation_cache

            enable_compilation_cache()
        if args.command != "show":
            args.out = output_folder(args.out)
        command = COMMANDS[args.command][1] if args.command else replicate
        command(args)
    except CommandError as error:
        print(f"alberta-eqx: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("alberta-eqx: interrupted; the output folder is marked incomplete", file=sys.stderr)
        raise SystemExit(130) from None


if __name__ == "__main__":
    main()
