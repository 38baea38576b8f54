"""`alberta-eqx run`: build a run from its options (a `--config` file, then the
options on top), check it fits the steps and the memory, and run it."""

import argparse
import math
from typing import Any

from alberta_eqx.cli import _learners
from alberta_eqx.cli._options import (
    _Help,
    add_log_option,
    count,
    fail,
    open_loggers,
    positive_float,
    seed,
)
from alberta_eqx.cli._output import Bar, _device
from alberta_eqx.cli._report import report_run
from alberta_eqx.experiments.record import start_record
from alberta_eqx.sweeps import spec
from alberta_eqx.sweeps.check import available_memory

_LEARNER_KEYS = {
    "name": str,
    "learner": str,
    "optimizer": str,
    "normalizer": str,
    "learner_args": dict,
    "optimizer_args": dict,
    "normalizer_args": dict,
}


def _check_learner_tables(data: dict[str, Any], path: str) -> None:
    """A specification file's `learners` is a list of tables whose values have the
    right types: refused in one line naming the key otherwise (not a traceback, not
    a message about the characters of a string)."""
    if "learners" not in data:
        return
    learners = data["learners"]
    if not isinstance(learners, list) or not all(isinstance(t, dict) for t in learners):
        fail(
            f"--config {path}: learners must be a list of tables ([[learners]] with "
            f"{', '.join(_LEARNER_KEYS)}), got {learners!r}"
        )
    for i, table in enumerate(learners):
        for key, kind in _LEARNER_KEYS.items():
            if key in table and not isinstance(table[key], kind):
                what = "a string" if kind is str else "a table of NAME = VALUE"
                fail(f"--config {path}: learners[{i}].{key} must be {what}, got {table[key]!r}")


def run_spec(args: argparse.Namespace) -> spec.RunSpec:
    """The `RunSpec` of `run`'s options: a `--config` file first, the options on top."""
    base = spec.RunSpec()
    data: dict[str, Any] = {}
    if args.config is not None:
        data = spec.read_toml(args.config)
        _check_learner_tables(data, args.config)
        base = spec.spec_from_dict(data)
    given = {k for k, v in vars(args).items() if v is not None}
    for key in ("stream", "steps", "seeds", "seed", "window"):
        if key in given:
            setattr(base, key, getattr(args, key))
    first = args.learner or (base.learners[0].learner if base.learners else "linear")
    if "stream" not in given and "stream" not in data and first in _learners.LEARNERS:
        # a learner of transitions (or of several targets) gets a stream it can learn
        base.stream, base.stream_args = _learners.default_stream(first, base.stream_args)
    base.stream_args = {
        **base.stream_args,
        **spec.parse_assignments("--stream-arg", args.stream_arg),
    }
    if args.feature_dim is not None:
        base.stream_args["feature_dim"] = args.feature_dim
    elif "feature_dim" not in base.stream_args:
        # streams that need a width get 10 features unless told otherwise
        parameters = spec._parameters(spec.resolve("stream", base.stream, _learners.STREAMS))
        parameters = parameters or {}
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
            key = option
            if option == "step_size":
                key = _learners.step_size_argument(learner.learner, learner.optimizer)
            function = _learners.optimizer_function(learner.learner, learner.optimizer)
            takes = spec._parameters(function)
            if takes is not None and key not in takes:
                fail(
                    f"--{option.replace('_', '-')}: optimizer {learner.optimizer!r} takes no "
                    f"{key} (it takes {', '.join(takes)})"
                )
            learner.optimizer_args[key] = value
    base.learners = _learners.expand_grid(base.learners, spec.parse_grid(args.grid))
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
        stream = _learners.build_stream(run_settings)
        factories = {
            learner.name: _learners.learner_factory(learner, stream, run_settings.stream)
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
    loggers = open_loggers(args.log)
    record = start_record(args.out, "run", settings, _device())
    total = len(factories) * run_settings.steps
    bar = Bar(total, f"{run_settings.stream}", not args.no_progress)
    try:
        for logger in loggers:
            logger.log_settings(settings)
        result = run_experiment(
            factories,
            stream,
            run_settings.steps,
            [run_settings.seed + i for i in range(run_settings.seeds)],
            metrics_window=run_settings.window,
            progress=bar if bar.enabled else None,
            loggers=loggers,
        )
    finally:
        bar.close()
        for logger in loggers:
            logger.close()
    report_run(result, args, record)


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
        "'package.module:Name' to your own; an import path is code: run imports the "
        "module and calls what it names, as running a Python file would. --config "
        "FILE.toml holds a whole specification (docs/cli.md). Options left unset take "
        "the config file's or the class's default.",
    )
    p.add_argument("--config", default=None, help="a TOML specification (docs/cli.md)")
    p.add_argument(
        "--stream",
        default=None,
        help=f"{', '.join(_learners.STREAMS)}, or module:Name (imported and called: code) "
        "(default: drifting-target)",
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
        help=f"{_learners.learner_help()}; or module:function (imported and called: code) "
        "(default: linear)",
    )
    p.add_argument(
        "--learner-arg",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="learner argument (mlp: hidden_sizes=[64,64]; td-linear: lambda_=0.9; "
        "horde: gammas=[0,0.9])",
    )
    p.add_argument(
        "--optimizer",
        default=None,
        help=f"{_learners.optimizer_help()}; or module:Name (imported and called: code); "
        "several, comma-separated, are compared; td-linear and horde take lms, idbd and "
        "autostep as TD(lambda), TD-IDBD and AutoTDIDBD (default: idbd)",
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
        help="the rule's own step-size: step_size (lms, obgd, adaptive-obgd, trace-sgd"
        ") or initial_step_size (idbd, autostep) (default: the "
        "rule's, listed under --optimizer)",
    )  # fmt: skip
    p.add_argument(
        "--meta-step-size", type=positive_float, default=None,
        help="IDBD's theta or Autostep's mu (default: the rule's, 0.01)",
    )  # fmt: skip
    p.add_argument(
        "--tau", type=positive_float, default=None,
        help="Autostep's tau (default: the rule's, 10000)",
    )  # fmt: skip
    add_log_option(p)
