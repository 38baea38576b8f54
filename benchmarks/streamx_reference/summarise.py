"""Summarises the runs of run_theirs.py and run_ours.py: returns (mean of the last 100
episodes per seed, then the mean over seeds with a 95% t confidence interval) at common
steps, a figure of both learning curves, and steps per second (median over windows after
warm-up; wall clock and process CPU time) with the ratios ours / theirs-per-process,
theirs measured over the same minutes as each of our runs.

    python benchmarks/streamx_reference/summarise.py \
        --theirs benchmarks/streamx_reference/theirs_breakout_100k.json \
        --returns benchmarks/streamx_reference/ours_breakout_100k_8.json \
        --speed benchmarks/streamx_reference/ours_breakout_20k_1.json ... \
        --figure benchmarks/streamx_reference/breakout_100k.png
"""

import argparse
import itertools
import json
import os
from pathlib import Path

import numpy as np
from scipy import stats

LAST = 100


def load(path: Path) -> dict:
    """The JSON, with `started` (Unix time of the run's start) where the file lacks it:
    its modification time less the wall seconds it had reached when written."""
    document = json.loads(path.read_text())
    if "started" not in document:
        if document["who"] == "theirs":
            elapsed = max(run["wall_seconds"] for run in document["runs"].values())
        else:
            elapsed = document["clock"][-1][1] if document["clock"] else 0.0
            elapsed = max(elapsed, document.get("wall_seconds", 0.0))
        document["started"] = os.path.getmtime(path) - elapsed
    return document


def label(document: dict) -> str:
    """Who ran it, and with which sticky actions: the authors' `minatar` runs have 0.1
    unless `run_theirs.py --sticky-action-prob` recorded another value; our runs record
    theirs, and had none (gymnax's games) before they did."""
    default = 0.1 if document["who"] == "theirs" else 0.0
    sticky = document.get("sticky_action_prob")
    return f"{document['who']}, sticky {default if sticky is None else sticky:g}"


def pooled(documents: list[dict]) -> dict:
    """The first document with the runs of all of them, as one set of seeds."""
    runs = {f"{i}/{k}": v for i, d in enumerate(documents) for k, v in d["runs"].items()}
    return {**documents[0], "runs": runs}


def last_mean(returns: list[float], ends: list[int], step: int) -> float:
    """The mean return of the last `LAST` episodes that ended at or before `step`."""
    done = [r for r, t in zip(returns, ends, strict=True) if t <= step]
    return float(np.mean(done[-LAST:])) if done else float("nan")


def interval(values: list[float]) -> str:
    """Mean and 95% t confidence interval over seeds."""
    values = np.asarray(values)
    mean = values.mean()
    if len(values) < 2:
        return f"{mean:6.2f}"
    half = stats.t.ppf(0.975, len(values) - 1) * values.std(ddof=1) / np.sqrt(len(values))
    spread = f"seeds {values.min():.2f}..{values.max():.2f}"
    return f"{mean:6.2f} ± {half:4.2f} (n={len(values)}, {spread})"


def returns_table(theirs: dict, ours: dict, figure: Path | None) -> list[str]:
    last_theirs = min(run["end_steps"][-1] for run in theirs["runs"].values())
    last_ours = min(run["end_steps"][-1] for run in ours["runs"].values())
    horizon = min(last_theirs, last_ours)
    checkpoints = [s for s in range(10_000, horizon + 1, 10_000)]
    if not checkpoints or checkpoints[-1] != horizon:
        checkpoints.append(horizon)
    lines = [
        f"returns: mean of the last {LAST} episodes ending at or before each step, "
        f"mean over seeds ± 95% t interval; {label(theirs)}: {len(theirs['runs'])} seeds "
        f"({'finished' if theirs.get('finished') else f'cut at step {last_theirs}'}), "
        f"{label(ours)}: {len(ours['runs'])} seeds ({ours['steps']}-step run, "
        f"{'finished' if ours.get('finished', True) else 'unfinished'})",
        f"{'step':>8}  {label(theirs):<48}  {label(ours)}",
    ]
    for step in checkpoints:
        a = [last_mean(r["returns"], r["end_steps"], step) for r in theirs["runs"].values()]
        b = [last_mean(r["returns"], r["end_steps"], step) for r in ours["runs"].values()]
        test = stats.ttest_ind(a, b, equal_var=False)
        lines.append(f"{step:>8}  {interval(a):<48}  {interval(b)}   Welch p={test.pvalue:.2f}")
    if figure is not None:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(7, 4))
        grid = np.linspace(2_000, horizon, 60).astype(int)
        for document, color in ((theirs, "C0"), (ours, "C1")):
            name = label(document)
            curves = np.array(
                [
                    [last_mean(r["returns"], r["end_steps"], s) for s in grid]
                    for r in document["runs"].values()
                ]
            )
            for curve in curves:
                ax.plot(grid, curve, color=color, alpha=0.25, lw=0.8)
            ax.plot(grid, curves.mean(0), color=color, lw=2, label=f"{name} ({len(curves)} seeds)")
        ax.set_xlabel("step")
        ax.set_ylabel(f"mean return, last {LAST} episodes")
        ax.set_title(f"Stream Q(λ), {theirs['env']}")
        ax.legend()
        fig.tight_layout()
        fig.savefig(figure, dpi=100)
        lines.append(f"figure: {figure.name}")
    return lines


def windows(clock: list, first_step: int):
    """Rates (steps per wall second, steps per CPU second) between consecutive clock
    readings after `first_step`."""
    rates = []
    for (s0, w0, c0), (s1, w1, c1) in itertools.pairwise(clock):
        if s0 < first_step or w1 <= w0 or c1 <= c0:
            continue
        rates.append(((s1 - s0) / (w1 - w0), (s1 - s0) / (c1 - c0)))
    return rates


def thin(clock: list, every: int) -> list:
    """The clock readings at least `every` steps apart (theirs has one per episode)."""
    kept = [clock[0]]
    for reading in clock[1:]:
        if reading[0] - kept[-1][0] >= every:
            kept.append(reading)
    return kept


def speed_table(theirs: dict, ours_runs: list[dict]) -> list[str]:
    def theirs_rates():
        rates = []
        for run in theirs["runs"].values():
            rates += windows(thin(run["clock"], 1000), 2000)
        return rates

    def theirs_over(span):
        """Each process's rate between its first and last episode end inside `span`
        (Unix times), then the median over processes."""
        rates = []
        for run in theirs["runs"].values():
            inside = [r for r in run["clock"] if span[0] <= theirs["started"] + r[1] <= span[1]]
            if len(inside) >= 2 and inside[0][0] >= 2000:
                (s0, w0, c0), (s1, w1, c1) = inside[0], inside[-1]
                if w1 > w0 and c1 > c0:
                    rates.append(((s1 - s0) / (w1 - w0), (s1 - s0) / (c1 - c0)))
        return rates

    everything = theirs_rates()
    wall, cpu = np.median(everything, axis=0)
    lines = [
        "speed: median over windows after warm-up; theirs: 1,000-step windows after step "
        "2,000, per process; ours: compiled segments after the first (it includes the "
        "compilation), all seeds' steps together",
        f"theirs, whole run, {len(everything)} windows: {wall:.0f} steps/s wall, "
        f"{cpu:.0f} steps per CPU second (one thread per process)",
    ]
    for ours in ours_runs:
        clock = ours["clock"]
        seeds = ours["num_seeds"]
        if len(clock) < 3:
            lines.append(f"ours {seeds} seeds: too few segments ({len(clock)})")
            continue
        span = (ours["started"] + clock[0][1], ours["started"] + clock[-1][1])
        rates = np.array(windows(clock, clock[0][0])) * seeds
        ours_wall, ours_cpu = np.median(rates, axis=0)
        near = theirs_over(span)
        if near:
            t_wall, t_cpu = np.median(near, axis=0)
            minutes = (span[1] - span[0]) / 60
            where = f"theirs over the same {minutes:.1f} minutes (median of {len(near)} processes)"
        else:
            t_wall, t_cpu = wall, cpu
            where = "theirs over its whole run (no window inside this run's minutes)"
        lines.append(
            f"ours {seeds:>2} seeds ({len(rates)} segments of {clock[1][0] - clock[0][0]} "
            f"steps): {ours_wall:7.0f} steps/s wall, {ours_cpu:7.0f} per CPU second; "
            f"{where}: {t_wall:.0f} wall, {t_cpu:.0f} per CPU second; ratio ours/theirs "
            f"{ours_wall / t_wall:5.1f}x wall, {ours_cpu / t_cpu:5.1f}x CPU"
        )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--theirs", type=Path, required=True)
    parser.add_argument("--returns", type=Path, help="our run to compare returns with")
    parser.add_argument("--speed", type=Path, nargs="*", default=[], help="our runs to time")
    parser.add_argument("--figure", type=Path)
    parser.add_argument(
        "--more-seeds",
        type=Path,
        nargs=2,
        action="append",
        default=[],
        metavar=("THEIRS", "OURS"),
        help="runs of more seeds with the same settings, added to the returns (not to the "
        "speeds); may be repeated",
    )
    args = parser.parse_args()
    theirs = load(args.theirs)
    lines = [f"{theirs['env']}, upstream commit {theirs['upstream_commit']}"]
    if args.returns is not None:
        more = [tuple(load(p) for p in pair) for pair in args.more_seeds]
        sides = [[theirs, *(t for t, _ in more)], [load(args.returns), *(o for _, o in more)]]
        for side in sides:
            if len({label(d) for d in side}) > 1:
                raise SystemExit(f"--more-seeds: settings differ: {[label(d) for d in side]}")
        lines += returns_table(pooled(sides[0]), pooled(sides[1]), args.figure)
    lines += speed_table(theirs, [load(p) for p in args.speed])
    print("\n".join(lines))


if __name__ == "__main__":
    main()
