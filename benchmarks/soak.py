"""Soak test: every stream with every optimizer, at default settings, for a long run.

    python benchmarks/soak.py                       # 10 million steps per pair
    python benchmarks/soak.py --steps 1_000_000     # shorter
    python benchmarks/soak.py --normalize           # learners with an EMANormalizer
    python benchmarks/soak.py --out soak.json       # also write the results as JSON

Each run is split into segments continued through `stream_state` and `start_step` (as
a long experiment with checkpoints would be), with metrics averaged over windows
(`metrics_window`), so memory stays bounded however long the run. Per pair, the script
reports any non-finite metric (the first step of the first window that has one) or
final weight, the last window's mean squared error, the throughput (compilation
included), and the resident memory after the first segment and after the last: memory
that grew from one to the other would be a leak. (Memory grows from pair to pair: each
pair compiles its own program.) It exits with status 1 if any run became non-finite.

Not part of the test suite: 10 million steps of 27 pairs take many minutes.
"""

import argparse
import json
import sys
import time

import jax
import numpy as np

import alberta_eqx as ae


def streams(feature_dim: int) -> dict[str, ae.AbstractStream]:
    """Every stream at its default settings."""
    d = feature_dim
    return {
        "DriftingTargetStream": ae.DriftingTargetStream(d),
        "AbruptChangeStream": ae.AbruptChangeStream(d),
        "CyclicStream": ae.CyclicStream(d),
        "PeriodicChangeStream": ae.PeriodicChangeStream(d),
        "SuttonExperiment1Stream": ae.SuttonExperiment1Stream(),
        "DynamicScaleShiftStream": ae.DynamicScaleShiftStream(d),
        "ScaleDriftStream": ae.ScaleDriftStream(d),
        "NonlinearTeacherStream": ae.NonlinearTeacherStream(d),
        "ScaledStreamWrapper(RandomWalk)": ae.ScaledStreamWrapper(
            ae.DriftingTargetStream(d), ae.make_scale_range(d)
        ),
    }


OPTIMIZERS = {"LMS": ae.LMS, "IDBD": ae.IDBD, "Autostep": ae.Autostep}


def rss_mb() -> float:
    """The process's resident memory now (Linux)."""
    with open("/proc/self/status") as f:
        line = next(line for line in f if line.startswith("VmRSS:"))
    return int(line.split()[1]) / 1024


def soak(learner: ae.LinearLearner, stream, steps: int, segment: int, window: int) -> dict:
    """One pair, `steps` steps in segments of `segment`; what became non-finite, if any."""
    key = jax.random.key(0)
    state, first_bad, rss = None, -1, []
    start = time.perf_counter()
    for t0 in range(0, steps, segment):
        result = ae.run_learning_loop(
            learner,
            stream,
            segment,
            key,
            metrics_window=window,
            stream_state=state,
            start_step=t0,
        )
        learner, state = result.learner, result.stream_state
        first = int(ae.find_divergence(result, metrics_window=window).first_step)
        if first_bad < 0 and first >= 0:
            first_bad = t0 + first
        rss.append(rss_mb())
    seconds = time.perf_counter() - start
    weights_finite = all(
        bool(np.all(np.isfinite(leaf)))
        for leaf in jax.tree.leaves(learner)
        if isinstance(leaf, jax.Array)
    )
    return {
        "finite": first_bad < 0 and weights_finite,
        "first_non_finite_step": first_bad,
        "weights_finite": weights_finite,
        "last_window_mse": float(result.metrics.squared_error[-1]),
        "steps_per_s": steps / seconds,
        "rss_after_first_segment_mb": rss[0],
        "rss_at_end_mb": rss[-1],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000_000, help="steps per pair")
    parser.add_argument("--segment", type=int, default=1_000_000, help="steps per call")
    parser.add_argument("--window", type=int, default=10_000, help="metrics_window")
    parser.add_argument("--feature-dim", type=int, default=10)
    parser.add_argument("--normalize", action="store_true", help="add an EMANormalizer")
    parser.add_argument("--out", help="write the results here as JSON")
    args = parser.parse_args()
    if args.steps % args.segment or args.segment % args.window:
        parser.error("--segment must divide --steps, and --window must divide --segment")

    print(
        f"{args.steps:,} steps per pair in segments of {args.segment:,}, metrics window "
        f"{args.window:,}, {'an EMANormalizer' if args.normalize else 'no normalizer'}"
    )
    columns = "{:<32} {:<9} {:<14} {:>10} {:>10} {:>16}"
    print(columns.format("stream", "optimizer", "finite", "last MSE", "steps/s", "RSS first/end"))
    rows = []
    for stream_name, stream in streams(args.feature_dim).items():
        for optimizer_name, optimizer in OPTIMIZERS.items():
            normalizer = ae.EMANormalizer() if args.normalize else None
            learner = ae.LinearLearner(stream.feature_dim, optimizer(), normalizer)
            row = {"stream": stream_name, "optimizer": optimizer_name}
            row |= soak(learner, stream, args.steps, args.segment, args.window)
            rows.append(row)
            finite = "yes" if row["finite"] else f"NO (t={row['first_non_finite_step']})"
            rss = f"{row['rss_after_first_segment_mb']:.0f}/{row['rss_at_end_mb']:.0f} MB"
            mse, speed = f"{row['last_window_mse']:.4g}", f"{row['steps_per_s']:,.0f}"
            print(columns.format(stream_name, optimizer_name, finite, mse, speed, rss), flush=True)
    bad = [f"{r['stream']} + {r['optimizer']}" for r in rows if not r["finite"]]
    growth = max(r["rss_at_end_mb"] - r["rss_after_first_segment_mb"] for r in rows)
    print(f"non-finite: {', '.join(bad) if bad else 'none'}")
    print(f"largest memory growth within a pair: {growth:.0f} MB; at the end {rss_mb():.0f} MB")
    if args.out:
        summary = {
            "args": vars(args),
            "jax": jax.__version__,
            "alberta_eqx": ae.__version__,
            "devices": [str(d) for d in jax.devices()],
            "rows": rows,
        }
        with open(args.out, "w") as f:
            json.dump(summary, f, indent=2)
    sys.exit(1 if bad else 0)


if __name__ == "__main__":
    main()
