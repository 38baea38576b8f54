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
from alberta_eqx.experiments.summary import curves_frame, summary_table


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
