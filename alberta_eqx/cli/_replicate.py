"""`alberta-eqx replicate NAME`: reproduce a published experiment, print its numbers
beside the paper's, a verdict on each of the paper's claims (PASS, FAIL, or not tested
at this length) and write its figure."""

import argparse
import os
from typing import Any

from alberta_eqx.cli._options import _Help, add_log_option, count, fail, open_loggers
from alberta_eqx.cli._output import Bar, _device, save_figure
from alberta_eqx.experiments.export import atomic_write
from alberta_eqx.experiments.record import finish_record, start_record
from alberta_eqx.replications.registry import DEFAULT_REPLICATION, REPLICATIONS


def steps_for(
    name: str, steps: int | None, quick: bool, options: dict[str, str] | None = None
) -> int:
    """The run's steps: `--steps` (a multiple of the experiment's unit, else an
    error naming the nearest valid values), `--quick`'s, or the paper's (for the
    experiment's `options`, where its length depends on them)."""
    replication = REPLICATIONS[name]
    if steps is None:
        if quick:
            return replication.quick_steps
        if replication.steps_of is not None:
            return replication.steps_of(**(options or {}))
        return replication.steps
    multiple = replication.steps_multiple
    if steps % multiple:
        low = max(multiple, steps // multiple * multiple)
        fail(
            f"--steps for {name} must be a multiple of {multiple:,}; the nearest are "
            f"{low:,} and {low + multiple:,}"
        )
    return steps


def replicate(args: argparse.Namespace) -> None:
    name = getattr(args, "name", DEFAULT_REPLICATION)
    replication = REPLICATIONS[name]
    options = replication_options(name, args)
    steps = steps_for(name, getattr(args, "steps", None), getattr(args, "quick", False), options)
    quick_seeds = replication.quick_seeds if getattr(args, "quick", False) else None
    seeds = getattr(args, "seeds", None) or quick_seeds or replication.seeds
    settings = {"replication": name, "seeds": seeds, "steps": steps, "float64": args.float64}
    settings.update(options)
    loggers = open_loggers(getattr(args, "log", None) or [])
    record = start_record(args.out, "replicate", settings, _device())
    print(replication.paper)
    bar = Bar(replication.total(steps), name, not args.no_progress)
    try:
        for logger in loggers:
            logger.log_settings(settings)
        result = replication.run(seeds, steps, bar if bar.enabled else None, **options)
        verdicts = replication.verdicts(result, steps)
        _log_verdicts(loggers, verdicts, steps)
    finally:
        bar.close()
        for logger in loggers:
            logger.close()
    lines = replication.report(result) + [verdict.line() for verdict in verdicts]
    for line in lines:
        print(line)
    outputs: list[str] = []
    if not args.no_plot:
        filename = replication.filename.format(**options)
        save_figure(replication.figure(result), args.out, filename, outputs)
    atomic_write(os.path.join(args.out, "report.txt"), lambda p: _write_lines(p, lines))
    outputs.append("report.txt")
    finish_record(
        args.out,
        record,
        outputs,
        {"report": lines, "verdicts": [verdict.record() for verdict in verdicts]},
    )


def _log_verdicts(loggers: list, verdicts: list, steps: int) -> None:
    """Give the trackers each claim's verdict: its line among the settings
    (`verdicts`), and at the run's last step the metric `verdict/N` (the N-th claim,
    from 1) as 1 for PASS and 0 for FAIL; a claim not tested has no number."""
    passed = {
        f"verdict/{i}": float(verdict.passed)
        for i, verdict in enumerate(verdicts, start=1)
        if verdict.passed is not None
    }
    for logger in loggers:
        logger.log_settings({"verdicts": [verdict.line() for verdict in verdicts]})
        if passed:
            logger.log_metrics(steps, passed)


def replication_options(name: str, args: argparse.Namespace) -> dict[str, str]:
    """The experiment's own options (`Replication.options`) from the command line,
    each checked against its choices (another experiment's option is an error)."""
    replication = REPLICATIONS[name]
    own = dict(replication.options)
    for option in sorted(_all_options()):
        if option not in own and getattr(args, option, None) is not None:
            fail(f"--{option} is not an option of {name}")
    chosen = {}
    for option, choices in own.items():
        value = getattr(args, option, None) or choices[0]
        if value not in choices:
            fail(f"--{option} for {name} must be one of {', '.join(choices)}, got {value!r}")
        chosen[option] = value
    return chosen


def _all_options() -> dict[str, set[str]]:
    """Every experiment's options with the union of their choices."""
    options: dict[str, set[str]] = {}
    for replication in REPLICATIONS.values():
        for option, choices in replication.options:
            options.setdefault(option, set()).update(choices)
    return options


def _write_lines(path: str, lines: list[str]) -> None:
    with open(path, "w") as f:
        f.write("\n".join(lines) + "\n")


def _add_replicate(sub: Any, parents: list[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "replicate",
        help="reproduce a published experiment",
        parents=parents,
        formatter_class=_Help,
        description="Reproduce a published experiment; print its numbers beside the "
        "paper's, one verdict per claim of the paper (PASS, FAIL, or not tested at this "
        "length; also in run.json) and write its figure.\n\n"
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
    p.add_argument(
        "--quick",
        action="store_true",
        help="a short run for a first look (claims it is too short to test say so)",
    )
    add_log_option(p, "each claim's verdict (verdict/N: 1 PASS, 0 FAIL)")
    for option, choices in sorted(_all_options().items()):
        users = ", ".join(n for n, r in REPLICATIONS.items() if option in dict(r.options))
        p.add_argument(
            f"--{option}",
            default=None,
            help=f"({users}) one of {', '.join(sorted(choices))}",
        )
