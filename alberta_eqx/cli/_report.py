"""What `alberta-eqx run` prints and writes once a run is done: the metrics files,
the table of final errors, the diverged seeds, the paired comparisons and the
learning curves."""

import argparse
import os
from typing import Any

import numpy as np

from alberta_eqx.cli._output import pyplot, save_figure
from alberta_eqx.experiments.export import atomic_write, to_csv
from alberta_eqx.experiments.record import finish_record
from alberta_eqx.experiments.summary import curves_frame, final_performance, summary_table

# The final performance is the mean over the run's last tenth (a whole number of
# metrics windows, at least one): one 100-step window is mostly noise.
FINAL_FRACTION = 10


def final_windows(result: Any) -> int:
    """How many of the last metrics windows the final performance averages."""
    return max(1, result.num_steps // result.metrics_window // FINAL_FRACTION)


def _per_window(result: Any) -> tuple[Any, str]:
    """`result` with every curve `(seeds, windows)`: a Horde's per-question and a
    multi-head learner's per-head metrics averaged over their last axes (a NaN, a
    diverged question or a head without targets, stays NaN); and a note saying so
    ("" when nothing was averaged)."""
    curves = {
        config: {
            metric: values.mean(axis=tuple(range(2, values.ndim))) if values.ndim > 2 else values
            for metric, values in metrics.items()
        }
        for config, metrics in result.curves.items()
    }
    averaged = any(v.ndim > 2 for metrics in result.curves.values() for v in metrics.values())
    note = " (the mean over the Horde's questions or the heads)" if averaged else ""
    return result._replace(curves=curves), note


def describe_run(settings: dict[str, Any]) -> str:
    """The stream, learners, optimizers and normalizers of a run, for titles."""

    def names(key: str) -> str:
        return ", ".join(dict.fromkeys(str(learner[key]) for learner in settings["learners"]))

    return (
        f"stream {settings['stream']}; learner {names('learner')}; optimizer "
        f"{names('optimizer')}; normalizer {names('normalizer')}"
    )


def report_run(result: Any, args: argparse.Namespace, record: dict[str, Any]) -> None:
    from alberta_eqx.experiments.export import to_markdown

    outputs: list[str] = []
    full = result  # metrics.npz keeps every axis (per question, per head)
    result, averaged = _per_window(result)
    frame = curves_frame(result)
    to_csv(frame, os.path.join(args.out, "metrics.csv"))
    arrays = {
        f"{config}/{metric}": values
        for config, metrics in full.curves.items()
        for metric, values in metrics.items()
    }

    def savez(path: str) -> None:
        with open(path, "wb") as f:  # a file, not a name: savez would append ".npz"
            np.savez(f, **arrays, window=result.metrics_window)

    atomic_write(os.path.join(args.out, "metrics.npz"), savez)
    outputs += ["metrics.csv", "metrics.npz"]
    last = final_windows(result)
    finals = final_performance(result, last=last)
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
    print(
        f"final mean squared error{averaged} over {seeds} seed{'s' * (seeds > 1)}: the "
        f"mean over the last {last * result.metrics_window:,} of {result.num_steps:,} "
        f"steps (the final tenth; {last:,} window{'s' * (last > 1)} of "
        f"{result.metrics_window:,}):"
    )
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
            for c in compare(result, last=last):
                print(
                    f"  {c.config_a} vs {c.config_b}: p = {c.p_adjusted:.3g}, "
                    f"Cohen's d = {c.cohens_d:.2f}"
                )
        except ValueError as error:
            print(f"  no comparison: {error}")
    summary = summary_table(result, last=last, num_resamples=1000) if seeds > 1 else None
    if summary is not None:
        to_csv(summary, os.path.join(args.out, "summary.csv"))
        outputs.append("summary.csv")
    if not args.no_plot:
        title = describe_run(record["settings"])
        figure = run_figure(result, diverged, title)
        save_figure(figure, args.out, "learning_curve.png", outputs)
    print(f"wrote {os.path.join(args.out, 'metrics.csv')}, metrics.npz and run.json")
    final_steps = last * result.metrics_window
    finish_record(args.out, record, outputs, {"final": rows, "final_steps": final_steps})


def run_figure(result: Any, diverged: dict[str, np.ndarray], title: str = "") -> Any:
    """Mean squared error over seeds against steps, one line per configuration, on a
    log scale when every value is positive; a configuration whose every seed
    diverged is named in the legend instead of crashing the plot. `title` (the
    stream, learners, optimizers and normalizers) heads it."""
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
    seeds = f"mean over {len(result.seeds)} seeds (band: one standard error)"
    ax.set_title(f"{title}\n{seeds}" if title else seeds, fontsize=9)
    ax.legend(fontsize=8)
    return fig
