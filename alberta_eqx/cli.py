"""The `alberta-eqx` command line: reproduce the papers, or run any stream/optimizer.

alberta-eqx                                  # Sutton (1992) Experiment 1, 30 seeds
alberta-eqx replicate sutton1992-exp2
alberta-eqx run --stream random-walk --optimizer autostep --steps 100000 --seeds 10
"""

import argparse
import csv
import os
import sys
import time
from collections.abc import Callable, Sequence

import jax
import numpy as np

import alberta_eqx as ae
from alberta_eqx.experiments import replications

PAPER = {
    "sutton1992-exp1": "Sutton (1992), Fig. 3: best LMS ~3.5 (alpha ~0.04); IDBD ~1.5 over a "
    "broad range of theta; standard errors < 0.1",
    "sutton1992-exp2": "Sutton (1992), Fig. 4: relevant step-sizes 0.13 +- 0.015; irrelevant "
    "< 0.007",
    "autostep-scale": "Mahmood et al. (2012): Autostep's step-sizes do not depend on the "
    "target's scale; MSE 2.22 vs LMS 4.42 at scale 1 (float64, one seed)",
    "random-walk-19": "Sutton and Barto's 19-state random walk (Fig. 12.3's task): RMS error "
    "of TD(lambda) at its best step-size, TDIDBD() and AutoTDIDBD() against episodes",
    "mountain-car": "Sutton and Barto (2018), Fig. 12.10: SARSA(lambda), replacing traces, 8 "
    "tilings; steps per episode over the first 50 episodes, 100 runs, by alpha x 8 and lambda",
    "stream-ac-cartpole": "Elsayed et al. (2024): Stream AC(lambda) solves CartPole-v1; check: "
    "last-20-episode average >= 400 in >= 8 of 10 seeds within 500,000 steps",
}

STREAMS: dict[str, Callable[[int], ae.AbstractStream]] = {
    "random-walk": lambda d: ae.RandomWalkStream(d),
    "abrupt-change": lambda d: ae.AbruptChangeStream(d),
    "sutton1992": lambda d: ae.SuttonExperiment1Stream(),
    "cyclic": lambda d: ae.CyclicStream(d),
    "periodic": lambda d: ae.PeriodicChangeStream(d),
    "dynamic-scale-shift": lambda d: ae.DynamicScaleShiftStream(d),
    "scale-drift": lambda d: ae.ScaleDriftStream(d),
}


class _Parser(argparse.ArgumentParser):
    """Bad options end with one line on stderr, not a usage block or a traceback."""

    def error(self, message: str):
        self.exit(2, f"alberta-eqx: error: {message} (see --help)\n")


class Progress:
    """A one-line progress bar on stderr (steps done, rate, time left); silent when
    stderr is not a terminal or when disabled."""

    def __init__(self, total: int, label: str, enabled: bool):
        self.total, self.label, self.done = total, label, 0
        self.enabled = enabled and sys.stderr.isatty()
        self.start = time.perf_counter()

    def __call__(self, steps: int) -> None:
        self.done += steps
        if not self.enabled:
            return
        elapsed = time.perf_counter() - self.start
        rate = self.done / max(elapsed, 1e-9)
        left = (self.total - self.done) / max(rate, 1e-9)
        filled = int(30 * self.done / self.total)
        sys.stderr.write(
            f"\r{self.label} [{'#' * filled}{'.' * (30 - filled)}] {self.done:,}/{self.total:,}"
            f" {rate:,.0f} steps/s, {left:.0f}s left "
        )
        if self.done >= self.total:
            sys.stderr.write("\n")
        sys.stderr.flush()


def _output_dir(path: str) -> str:
    try:
        os.makedirs(path, exist_ok=True)
        probe = os.path.join(path, ".alberta-eqx-write-test")
        with open(probe, "w"):
            pass
        os.remove(probe)
    except OSError as error:
        message = f"alberta-eqx: error: cannot write to --out {path!r}: {error.strerror}"
        raise SystemExit(message) from None
    return path


def _plt():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise SystemExit(
            "alberta-eqx: error: plots need matplotlib: pip install 'alberta_eqx[plots]' "
            "(or pass --no-plot)"
        ) from None
    return plt


def _replicate(name: str, seeds: int | None, out: str, plot: bool, progress: bool) -> None:
    print(PAPER[name])
    if name == "sutton1992-exp1":
        bar = Progress(30_000, "Experiment 1", progress)
        result = replications.sutton1992_experiment1(num_seeds=seeds or 30, progress=bar)
        print(f"{'':6}{'value':>8} {'MSE':>8} {'+- s.e.':>8} {'diverged':>9}")
        for label, sweep in (("LMS", result.lms), ("IDBD", result.idbd)):
            for v, m, e, d in zip(
                sweep.values, sweep.mean, sweep.stderr, sweep.diverged, strict=True
            ):
                print(f"{label:6}{v:8.3g} {m:8.3f} {e:8.3f} {d:9d}")
        print(
            f"best LMS {result.lms.best[1]:.2f} (alpha {result.lms.best[0]:g}); "
            f"best IDBD {result.idbd.best[1]:.2f} (theta {result.idbd.best[0]:g})"
        )
        if plot:
            plt = _plt()
            fig, axes = plt.subplots(1, 2, figsize=(9, 3.5), sharey=True)
            for ax, sweep, xlabel, paper in (
                (axes[0], result.lms, "LMS step-size alpha", 3.5),
                (axes[1], result.idbd, "IDBD meta step-size theta", 1.5),
            ):
                ax.errorbar(sweep.values, sweep.mean, yerr=sweep.stderr, marker="o")
                ax.axhline(paper, ls="--", c="gray", label=f"paper ~{paper}")
                ax.set_xlabel(xlabel)
                ax.tick_params(axis="x", labelrotation=45)
                ax.legend()
            axes[0].set_ylabel("MSE, steps 20,000-30,000")
            axes[0].set_ylim(0, 6)
            _save(fig, out, "sutton1992_exp1.png")
    elif name == "sutton1992-exp2":
        bar = Progress(250_000, "Experiment 2", progress)
        result = replications.sutton1992_experiment2(num_seeds=seeds or 4, progress=bar)
        print(
            f"relevant step-sizes:   mean {result.relevant.mean():.4f}, range "
            f"[{result.relevant.min():.4f}, {result.relevant.max():.4f}]"
        )
        print(
            f"irrelevant step-sizes: mean {result.irrelevant.mean():.4f}, max "
            f"{result.irrelevant.max():.4f}"
        )
        if plot:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(6, 4))
            steps = np.asarray(result.history.recording_indices[0]) + 1
            alphas = np.asarray(result.history.step_sizes).mean(axis=0)
            ax.plot(steps, alphas[:, :5], c="C0", lw=1)
            ax.plot(steps, alphas[:, 5:], c="C1", lw=1)
            ax.set(xlabel="examples", ylabel="step-size (mean over seeds)", yscale="log")
            ax.set_title("IDBD step-sizes: relevant (blue), irrelevant (orange)")
            _save(fig, out, "sutton1992_exp2.png")
    elif name == "random-walk-19":
        from alberta_eqx.experiments.random_walk import random_walk_19

        num_episodes = 1000
        # three learner groups (the TD(lambda) sweep, TDIDBD, AutoTDIDBD), 100 steps
        # per episode on average
        bar = Progress(3 * 100 * num_episodes, "random walk", progress)
        result = random_walk_19(num_episodes=num_episodes, num_seeds=seeds or 30, progress=bar)
        for alpha, error in zip(result.step_sizes, result.sweep_error, strict=True):
            print(f"TD(lambda) alpha {alpha:<6g} RMS error over the run {error:.3f}")
        for label, curve in (
            (f"TD(lambda) alpha {result.best_step_size:g}", result.td_lambda),
            ("TDIDBD()", result.tdidbd),
            ("AutoTDIDBD()", result.autotdidbd),
        ):
            print(
                f"{label:20} RMS error after {result.episodes[-1]:.0f} episodes "
                f"{curve[:, -1].mean():.3f}"
            )
        if plot:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(6, 4))
            ax.plot(
                result.episodes,
                result.td_lambda.mean(0),
                label=f"TD(lambda), alpha {result.best_step_size:g}",
            )
            ax.plot(result.episodes, result.tdidbd.mean(0), label="TDIDBD()")
            ax.plot(result.episodes, result.autotdidbd.mean(0), label="AutoTDIDBD()")
            ax.set(xlabel="episodes", ylabel="RMS error (mean over seeds)", yscale="log")
            ax.set_title(f"19-state random walk, lambda = {result.lambda_:g}")
            ax.legend()
            _save(fig, out, "random_walk_19.png")
    elif name in ("mountain-car", "stream-ac-cartpole"):
        _replicate_control(name, seeds, out, plot, progress)
    else:
        result = replications.autostep_scale(num_seeds=seeds or 4)
        for scale, a, lms in zip(result.scales, result.autostep, result.lms, strict=True):
            print(
                f"target x{scale:g}: Autostep MSE / scale^2 {a.mean() / scale**2:.3f}, "
                f"LMS {lms.mean() / scale**2:.3f}"
            )
        spread = np.max(np.abs(result.step_sizes / result.step_sizes[1:2] - 1))
        print(f"largest relative difference between the scales' step-sizes: {spread:.1e}")
        if plot:
            plt = _plt()
            fig, ax = plt.subplots(figsize=(6, 4))
            # seed 0's relevant and irrelevant inputs; every scale is drawn, and the
            # lines should lie on top of one another
            for i, scale in enumerate(result.scales):
                style = ("-", "--", ":", "-.")[i % 4]
                alphas, steps = result.step_sizes[i, 0], result.recording_steps
                ax.plot(steps, alphas[:, :5], c="C0", ls=style, lw=1)
                ax.plot(steps, alphas[:, 5:20], c="C1", ls=style, lw=1)
                ax.plot([], [], c="k", ls=style, label=f"target x{scale:g}")
            ax.set(xlabel="examples", ylabel="Autostep step-size (seed 0)", yscale="log")
            ax.set_title("relevant (blue), irrelevant (orange): one curve per scale")
            ax.legend()
            _save(fig, out, "autostep_scale.png")


def _replicate_control(name: str, seeds: int | None, out: str, plot: bool, progress: bool) -> None:
    if name == "mountain-car":
        from alberta_eqx.experiments import mountain_car as experiment

        bar = Progress(15_000, "Mountain Car (stops when every run has 50 episodes)", progress)
        result = experiment.mountain_car_sweep(num_runs=seeds or 100, progress=bar)
        print(experiment.sweep_table(result))
        draw, png = experiment.plot_sweep, "mountain_car_fig12_10.png"
    else:
        from alberta_eqx.experiments import stream_ac as experiment

        bar = Progress(500_000, "Stream AC(lambda) CartPole", progress)
        result = experiment.stream_ac_cartpole(num_seeds=seeds or 10, progress=bar)
        print(experiment.cartpole_table(result))
        draw, png = experiment.plot_curves, "stream_ac_cartpole.png"
    if plot:
        fig, ax = _plt().subplots(figsize=(6, 4))
        draw(result, ax)
        _save(fig, out, png)


def _save(fig, out: str, name: str) -> None:
    path = os.path.join(out, name)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


def _run(args) -> None:
    stream = STREAMS[args.stream](args.feature_dim)
    optimizer = {
        "lms": lambda: ae.LMS(args.step_size),
        "idbd": lambda: ae.IDBD(args.step_size, args.meta_step_size),
        "autostep": lambda: ae.Autostep(args.step_size, args.meta_step_size, args.tau),
    }[args.optimizer]()
    normalizer = {"none": None, "ema": ae.EMANormalizer(), "welford": ae.WelfordNormalizer()}[
        args.normalizer
    ]
    learner = ae.LinearLearner(stream.feature_dim, optimizer, normalizer)
    keys = jax.random.split(jax.random.key(args.seed), args.seeds)
    window = args.window if args.steps % args.window == 0 else 1
    segments = max(1, min(20, args.steps // max(window, 1)))
    while args.steps % segments or (args.steps // segments) % window:
        segments -= 1
    bar = Progress(args.steps, f"{args.stream}/{args.optimizer}", not args.no_progress)
    parts, states, start = [], None, 0
    for _ in range(segments):
        n = args.steps // segments
        result = ae.run_learning_loop_batched(
            learner, stream, n, keys, metrics_window=window, stream_states=states, start_step=start
        )
        learner, states, start = result.learner, result.stream_state, start + n
        parts.append(result.metrics)
        bar(n)
    metrics = jax.tree.map(lambda *a: np.concatenate(a, axis=-1), *parts)
    columns = {k: np.asarray(v) for k, v in metrics._asdict().items() if v is not None}
    np.savez(os.path.join(args.out, "metrics.npz"), **columns, window=window)
    steps = (np.arange(columns["squared_error"].shape[-1]) + 1) * window
    with open(os.path.join(args.out, "metrics.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["step", "seed", *columns])
        for s in range(args.seeds):
            for i, step in enumerate(steps):
                writer.writerow([int(step), s, *(float(v[s, i]) for v in columns.values())])
    diverged = ae.find_divergence(result._replace(metrics=metrics), window)
    where = "the window starting at step" if window > 1 else "step"
    for s in np.flatnonzero(np.asarray(diverged.diverged)):
        print(
            f"seed {s} diverged: first non-finite metrics in {where} "
            f"{int(diverged.first_step[s])} (its numbers are NaN/inf from there)"
        )
    mse = columns["squared_error"]
    final = mse[:, -1]
    print(
        f"final-window MSE over {args.seeds} seeds: {final.mean():.4g} +- "
        f"{final.std(ddof=1) / np.sqrt(args.seeds) if args.seeds > 1 else float('nan'):.2g}"
    )
    print(f"wrote {os.path.join(args.out, 'metrics.npz')} and metrics.csv")
    if not args.no_plot:
        plt = _plt()
        fig, ax = plt.subplots(figsize=(6, 4))
        mean = mse.mean(axis=0)
        err = mse.std(axis=0, ddof=1) / np.sqrt(args.seeds) if args.seeds > 1 else 0 * mean
        ax.plot(steps, mean)
        ax.fill_between(steps, mean - err, mean + err, alpha=0.3)
        ax.set(
            xlabel="step", ylabel=f"squared error (mean of {window}-step windows)", yscale="log"
        )
        ax.set_title(f"{args.optimizer} on {args.stream}")
        _save(fig, args.out, "learning_curve.png")


def _positive(kind):
    def parse(text: str):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__
    return parse


def main(argv: Sequence[str] | None = None) -> None:
    def common(suppress: bool) -> argparse.ArgumentParser:
        # the same options before or after the subcommand
        p = argparse.ArgumentParser(add_help=False)
        default = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
        p.add_argument("--out", default=default("alberta-eqx-out"), help="output folder")
        p.add_argument(
            "--no-progress", action="store_true", default=default(False), help="no progress bar"
        )
        p.add_argument(
            "--no-plot", action="store_true", default=default(False), help="write no PNG"
        )
        return p

    parser = _Parser(
        prog="alberta-eqx", description=__doc__.splitlines()[0], parents=[common(False)]
    )
    sub = parser.add_subparsers(dest="command")
    rep = sub.add_parser(
        "replicate", help="reproduce a published experiment", parents=[common(True)]
    )
    rep.error = parser.error
    rep.add_argument("name", choices=sorted(PAPER), help="which experiment")
    rep.add_argument(
        "--seeds",
        type=_positive(int),
        help="seeds (default: 30 for sutton1992-exp1 and random-walk-19, 100 runs for "
        "mountain-car, 10 for stream-ac-cartpole, 4 otherwise)",
    )
    run = sub.add_parser(
        "run", help="run one stream/optimizer pair over many seeds", parents=[common(True)]
    )
    run.error = parser.error
    run.add_argument("--stream", choices=sorted(STREAMS), default="random-walk")
    run.add_argument("--optimizer", choices=["lms", "idbd", "autostep"], default="idbd")
    run.add_argument(
        "--feature-dim", type=_positive(int), default=10, help="features (not for sutton1992)"
    )
    run.add_argument("--steps", type=_positive(int), default=100_000)
    run.add_argument("--seeds", type=_positive(int), default=10)
    run.add_argument("--seed", type=int, default=0, help="the first key's seed")
    run.add_argument(
        "--step-size", type=_positive(float), default=0.01, help="(initial) step-size"
    )
    run.add_argument("--meta-step-size", type=_positive(float), default=0.01)
    run.add_argument("--tau", type=_positive(float), default=1e4, help="Autostep's tau")
    run.add_argument("--normalizer", choices=["none", "ema", "welford"], default="none")
    run.add_argument("--window", type=_positive(int), default=100, help="steps per metrics entry")
    args = parser.parse_args(argv)
    args.out = _output_dir(args.out)
    if args.command == "run":
        _run(args)
    else:
        name = args.name if args.command == "replicate" else "sutton1992-exp1"
        _replicate(
            name, getattr(args, "seeds", None), args.out, not args.no_plot, not args.no_progress
        )


if __name__ == "__main__":
    main()
