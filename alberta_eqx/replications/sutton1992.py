"""Sutton (1992)'s experiments, each one compiled program over all configurations and
seeds. The test suite and the command line both call these.

- Sutton (1992), Experiment 1 (Figure 3): tracking error of LMS and IDBD.
- Sutton (1992), Experiment 2 (Figure 4): the step-sizes IDBD learns.

Each with its run, the lines `alberta-eqx replicate` prints beside the paper's numbers,
its published checks and its figure.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress, in_segments
from alberta_eqx.learners import LinearLearner
from alberta_eqx.optimizers import IDBD
from alberta_eqx.replications.verdicts import (
    Check,
    Replication,
    mark_off_axes,
    mean_stderr,
)
from alberta_eqx.runners import (
    StepSizeHistory,
    StepSizeTrackingConfig,
)
from alberta_eqx.streams import SuttonExperiment1Stream

# A seed is unstable when its final-window error is more than this many times the
# median of its configuration's seeds (far above the others), or more than this many
# times its own previous window's (growing). Stable seeds of Experiment 1 stay within
# 10% of both; the seeds past IDBD's edge of stability sit at 3x to 80x.
UNSTABLE_FACTOR = 2.0


class Sweep(NamedTuple):
    """Final-window mean squared error over a swept hyperparameter.

    **Fields:**

    - `values`: the swept hyperparameter, shape `(configurations,)`.
    - `per_seed`: the error of each configuration on each seed, `(configurations, seeds)`;
      non-finite where a run diverged.
    - `mean`, `stderr`: over the seeds whose run stayed finite, `(configurations,)`.
    - `diverged`: how many seeds' runs became non-finite, `(configurations,)`.
    - `unstable`: `(configurations, seeds)`, whether each seed's run is unstable:
      non-finite, or its final error more than `UNSTABLE_FACTOR` times the median of
      its configuration's seeds, or more than `UNSTABLE_FACTOR` times its own error
      one window earlier (still growing). A meta step-size past the edge of stability
      shows up here long before it shows up as NaN.
    """

    values: np.ndarray
    per_seed: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    diverged: np.ndarray
    unstable: np.ndarray

    @property
    def num_unstable(self) -> np.ndarray:
        """How many seeds are unstable, per configuration."""
        return self.unstable.sum(axis=1)

    @property
    def best(self) -> tuple[float, float]:
        """`(value, mean error)` of the configuration with the lowest mean error among
        those with no unstable seed (a mean over the stable seeds of an unstable
        configuration would flatter it); NaN when every configuration has one."""
        mean = np.where(self.unstable.any(axis=1), np.nan, self.mean)
        if np.all(np.isnan(mean)):
            return float("nan"), float("nan")
        i = int(np.nanargmin(mean))
        return float(self.values[i]), float(self.mean[i])


def _sweep(values, per_seed, previous) -> Sweep:
    per_seed = np.asarray(per_seed, dtype=np.float64)
    previous = np.asarray(previous, dtype=np.float64)
    finite = np.isfinite(per_seed)
    count = finite.sum(axis=1)
    masked = np.where(finite, per_seed, 0.0)
    mean = np.where(count > 0, masked.sum(axis=1) / np.maximum(count, 1), np.nan)
    var = np.where(finite, (per_seed - mean[:, None]) ** 2, 0.0).sum(axis=1)
    stderr = np.where(
        count > 1, np.sqrt(var / np.maximum(count - 1, 1) / np.maximum(count, 1)), np.nan
    )
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(np.where(finite, per_seed, np.nan), axis=1, keepdims=True)
        unstable = (
            ~finite
            | (per_seed > UNSTABLE_FACTOR * median)
            | (per_seed > UNSTABLE_FACTOR * previous)
        )
    return Sweep(np.asarray(values), per_seed, mean, stderr, per_seed.shape[1] - count, unstable)


def _final_windows(learners, stream, num_steps, eval_steps, keys, progress=None):
    """Each run's error over the last `eval_steps` and over the `eval_steps` before."""
    if num_steps % eval_steps or num_steps < 2 * eval_steps:
        raise ValueError(
            f"num_steps ({num_steps}) must be a multiple of eval_steps ({eval_steps}), "
            "at least two windows"
        )
    results = in_segments(learners, stream, num_steps, keys, progress, metrics_window=eval_steps)
    errors = np.concatenate([np.asarray(r.metrics.squared_error) for r in results], axis=-1)
    return errors[..., -1], errors[..., -2]


class Experiment1(NamedTuple):
    """Sutton (1992) Experiment 1: `lms` over step-sizes, `idbd` over meta step-sizes."""

    lms: Sweep
    idbd: Sweep


def sutton1992_experiment1(
    *,
    num_seeds: int = 30,
    lms_step_sizes: Sequence[float] = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07),
    idbd_meta_step_sizes: Sequence[float] = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02),
    initial_step_size: float = 0.05,
    num_steps: int = 30_000,
    eval_steps: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Experiment1:
    """Sutton (1992), Experiment 1 (Figure 3): 20 N(0, 1) inputs, the target the sum of
    the first five with signs in {+1, -1}, one sign flipping every 20 examples. After
    `num_steps - eval_steps` examples, the mean squared error over the last
    `eval_steps`. No bias, as in the paper. Paper: best LMS about 3.5 (near
    alpha = 0.04); IDBD about 1.5 over a broad range of theta. `eval_steps` defaults
    to `num_steps // 3` (the paper's 10,000 of 30,000). A seed is `unstable` (see
    `Sweep`) when its final error is far above its configuration's others' or still
    growing: past theta = 0.01 some seeds leave IDBD's region of stability.
    """
    eval_steps = num_steps // 3 if eval_steps is None else eval_steps
    stream = SuttonExperiment1Stream()
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    # One compiled program for the whole figure: each LMS step-size runs as IDBD with
    # theta = 0, which is exactly LMS (beta never moves; a test holds them equal).
    alphas = jnp.concatenate(
        [jnp.asarray(lms_step_sizes), jnp.full(len(idbd_meta_step_sizes), initial_step_size)]
    )
    thetas = jnp.concatenate([jnp.zeros(len(lms_step_sizes)), jnp.asarray(idbd_meta_step_sizes)])
    learners = eqx.filter_vmap(
        lambda alpha, theta: LinearLearner(
            stream.feature_dim, IDBD(alpha, meta_step_size=theta), use_bias=False
        )
    )(alphas, thetas)
    final, previous = _final_windows(learners, stream, num_steps, eval_steps, keys, progress)
    k = len(lms_step_sizes)
    return Experiment1(
        lms=_sweep(lms_step_sizes, final[:k], previous[:k]),
        idbd=_sweep(idbd_meta_step_sizes, final[k:], previous[k:]),
    )


class Experiment2(NamedTuple):
    """Sutton (1992) Experiment 2: the step-sizes IDBD ends with.

    **Fields:**

    - `relevant`: `(seeds, 5)` final step-sizes of the five relevant inputs.
    - `irrelevant`: `(seeds, 15)` final step-sizes of the fifteen irrelevant inputs.
    - `history`: the step-sizes recorded along the way, `(seeds, recordings, 20)`.
    """

    relevant: np.ndarray
    irrelevant: np.ndarray
    history: StepSizeHistory


def sutton1992_experiment2(
    *,
    num_seeds: int = 4,
    meta_step_size: float = 0.001,
    initial_step_size: float = 0.05,
    num_steps: int = 250_000,
    record_every: int = 1_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> Experiment2:
    """Sutton (1992), Experiment 2 (Figure 4): IDBD with theta = 0.001 on the
    Experiment 1 task for 250,000 examples. Paper: the relevant step-sizes come to
    0.13 +- 0.015, the irrelevant ones below 0.007. A float64 NumPy transcription of
    the paper's algorithm ends with the irrelevant ones at 0.0075 to 0.0078 after
    250,000 examples, still falling, as this does. (`num_steps` must be a multiple of
    `record_every`.)
    """
    stream = SuttonExperiment1Stream()
    learner = LinearLearner(
        stream.feature_dim, IDBD(initial_step_size, meta_step_size=meta_step_size), use_bias=False
    )
    results = in_segments(
        learner,
        stream,
        num_steps,
        jax.random.split(jax.random.key(seed), num_seeds),
        progress,
        step_size_tracking=StepSizeTrackingConfig(record_every, include_bias=False),
        metrics_window=record_every,
    )
    final = results[-1].learner
    assert isinstance(final, LinearLearner)
    alphas = np.asarray(final.step_sizes)
    history = jax.tree.map(
        lambda *parts: jnp.concatenate(parts, axis=1), *(r.step_size_history for r in results)
    )
    return Experiment2(alphas[:, :5], alphas[:, 5:], history)


# --- Sutton (1992), Experiment 1 -------------------------------------------------

_EXP1_PAPER = {"LMS": 3.5, "IDBD": 1.5}


def _exp1_rows(label: str, sweep: Sweep) -> list[str]:
    lines = []
    for i, value in enumerate(sweep.values):
        unstable = np.flatnonzero(sweep.unstable[i])
        names = f"  seeds {', '.join(map(str, unstable))}" if unstable.size else ""
        lines.append(
            f"{label:6}{value:8.3g} {sweep.mean[i]:8.3f} {sweep.stderr[i]:8.3f} "
            f"{sweep.diverged[i]:9d} {unstable.size:9d}{names}"
        )
    return lines


def _exp1_report(result: Experiment1) -> list[str]:
    lines = [f"{'':6}{'value':>8} {'MSE':>8} {'+- s.e.':>8} {'diverged':>9} {'unstable':>9}"]
    lines += _exp1_rows("LMS", result.lms) + _exp1_rows("IDBD", result.idbd)
    (lms_value, lms_error), (idbd_value, idbd_error) = result.lms.best, result.idbd.best
    lines.append(
        f"best stable LMS {lms_error:.2f} (alpha {lms_value:g}), paper ~3.5; "
        f"best stable IDBD {idbd_error:.2f} (theta {idbd_value:g}), paper ~1.5"
    )
    unstable = result.idbd.num_unstable
    if unstable.any():
        edge = ", ".join(
            f"theta {v:g}: {n} of {result.idbd.unstable.shape[1]}"
            for v, n in zip(result.idbd.values, unstable, strict=True)
            if n
        )
        lines.append(
            f"unstable seeds ({edge}): a seed is unstable when its final MSE is over "
            f"{UNSTABLE_FACTOR:g}x its configuration's median or over {UNSTABLE_FACTOR:g}x "
            "its own previous window. Past theta ~0.01 IDBD nears its edge of stability: "
            "on some seeds the step-sizes grow until the updates overshoot, and the error "
            "rises by orders of magnitude instead of settling. The means above count "
            "those seeds (only non-finite ones are left out), so read them with the "
            "counts; 'best stable' ignores configurations with an unstable seed."
        )
    return lines


def _exp1_figure(result: Experiment1) -> Any:
    plt = pyplot()
    fig, axes = plt.subplots(1, 2, figsize=(9, 4), sharey=True, layout="constrained")
    top = 6.0
    for ax, label, sweep, xlabel in (
        (axes[0], "LMS", result.lms, r"LMS step-size $\alpha$"),
        (axes[1], "IDBD", result.idbd, r"IDBD meta step-size $\theta$"),
    ):
        stable = ~sweep.unstable.any(axis=1)
        mean = np.where(np.isfinite(sweep.mean), sweep.mean, np.inf)
        shown = stable & (mean <= top)
        ax.errorbar(
            sweep.values[shown],
            sweep.mean[shown],
            yerr=sweep.stderr[shown],
            marker="o",
            c="C0",
            label=f"{label}, this run (mean +- s.e.)",
        )
        partly = ~stable & (mean <= top)
        if partly.any():
            ax.plot(
                sweep.values[partly], sweep.mean[partly], "x", c="C3", ms=8,
                label="with unstable seeds",
            )  # fmt: skip
        mark_off_axes(ax, sweep.values, np.where(mean > top, mean, np.nan), top, "C3")
        if (mean > top).any():
            ax.plot([], [], "^", c="C3", label="off the axis (value printed)")
        ax.axhline(_EXP1_PAPER[label], ls="--", c="gray", label=f"paper ~{_EXP1_PAPER[label]}")
        ax.set(xlabel=xlabel, ylim=(0, top))
        ax.tick_params(axis="x", labelrotation=45)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("MSE over the last 10,000 examples")
    fig.suptitle("Sutton (1992), Figure 3: tracking error of LMS and IDBD")
    return fig


def _exp1_best(sweep: Sweep, low: float, high: float, symbol: str) -> tuple[bool, str]:
    """Whether the best configuration with no unstable seed has its MSE in
    `[low, high]`, and that MSE with its standard error."""
    value, error = sweep.best
    if np.isnan(error):
        return False, "every configuration has an unstable seed"
    i = int(np.flatnonzero(sweep.values == value)[0])
    return bool(
        low <= error <= high
    ), f"{error:.2f} +- {sweep.stderr[i]:.2f} s.e. at {symbol} {value:g}"


_EXP1_CHECKS = (
    Check(
        "Sutton (1992), Fig. 3: the best LMS step-size's MSE is about 3.5 (3.1 to 3.9)",
        lambda result: _exp1_best(result.lms, 3.1, 3.9, "alpha"),
        min_steps=30_000,
    ),
    Check(
        "Sutton (1992), Fig. 3: IDBD's MSE is about 1.5 (its best theta with no unstable "
        "seed: 1.2 to 1.8)",
        lambda result: _exp1_best(result.idbd, 1.2, 1.8, "theta"),
        min_steps=30_000,
    ),
)


SUTTON1992_EXP1 = Replication(
    title="Sutton (1992), Figure 3",
    paper="Sutton (1992), Fig. 3: best LMS ~3.5 (alpha ~0.04); IDBD ~1.5 over a broad "
    "range of theta; standard errors < 0.1",
    run=lambda seeds, steps, progress: sutton1992_experiment1(
        num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=30,
    steps=30_000,
    quick_steps=6_000,
    steps_multiple=3,
    total=lambda steps: steps,
    report=_exp1_report,
    figure=_exp1_figure,
    filename="sutton1992_exp1.png",
    checks=_EXP1_CHECKS,
)


# --- Sutton (1992), Experiment 2 -------------------------------------------------


def _exp2_report(result: Experiment2) -> list[str]:
    relevant, irrelevant = result.relevant, result.irrelevant
    steps = int(np.asarray(result.history.recording_indices)[0, -1]) + 1
    lines = [
        f"relevant step-sizes:   mean {relevant.mean():.4f}, range "
        f"[{relevant.min():.4f}, {relevant.max():.4f}]   paper 0.13 +- 0.015",
        f"irrelevant step-sizes: mean {irrelevant.mean():.4f}, max "
        f"{irrelevant.max():.4f}   paper < 0.007",
    ]
    history = np.asarray(result.history.step_sizes)[:, :, 5:].mean(axis=(0, 2))
    falling = history.size > 1 and history[-1] < history[max(0, history.size - 50)]
    trend = "still falling" if falling else "no longer falling"
    if steps < 250_000:
        lines.append(
            f"note: a shorter run than the paper's 250,000 examples ({steps:,}); the "
            f"irrelevant step-sizes are {trend}."
        )
    elif irrelevant.max() >= 0.007:
        lines.append(
            f"note: the irrelevant step-sizes end at {irrelevant.max():.4f}, above the paper's "
            "< 0.007, and are " + trend + " here. A float64 NumPy transcription of the "
            "paper's algorithm (Figure 2) gives the same, 0.0075 to 0.0078 at 250,000 "
            "examples, still falling: this is the algorithm's value at that length, not "
            "float32 rounding."
        )
    return lines


def _exp2_figure(result: Experiment2) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    steps = np.asarray(result.history.recording_indices[0]) + 1
    alphas = np.asarray(result.history.step_sizes).mean(axis=0)
    ax.plot(steps, alphas[:, :5], c="C0", lw=1)
    ax.plot(steps, alphas[:, 5:], c="C1", lw=1)
    ax.plot([], [], c="C0", label="relevant inputs (mean over seeds)")
    ax.plot([], [], c="C1", label="irrelevant inputs (mean over seeds)")
    ax.axhspan(0.115, 0.145, color="C0", alpha=0.15, label="paper: relevant 0.13 +- 0.015")
    ax.axhline(0.007, c="C1", ls="--", label="paper: irrelevant < 0.007")
    low = min(float(alphas[-1].min()), 0.007) / 2
    ax.set(xlabel="examples", ylabel="step-size", yscale="log", ylim=(low, 1.0))
    ax.set_title("Sutton (1992), Figure 4: the step-sizes IDBD learns")
    ax.legend(fontsize=8)
    return fig


def _exp2_relevant(result: Experiment2) -> tuple[bool, str]:
    mean, stderr = mean_stderr(result.relevant.mean(axis=1))  # over seeds
    return bool(abs(mean - 0.13) <= 0.015), (
        f"{mean:.4f} +- {stderr:.4f} s.e. over seeds, range "
        f"[{result.relevant.min():.4f}, {result.relevant.max():.4f}]"
    )


def _exp2_irrelevant(result: Experiment2) -> tuple[bool, str]:
    largest = float(result.irrelevant.max())
    return largest < 0.007, f"largest {largest:.4f}, mean {result.irrelevant.mean():.4f}"


_EXP2_CHECKS = (
    Check(
        "Sutton (1992), Fig. 4: the relevant inputs' step-sizes come to 0.13 +- 0.015",
        _exp2_relevant,
        min_steps=250_000,
    ),
    Check(
        "Sutton (1992), Fig. 4: the irrelevant inputs' step-sizes fall below 0.007",
        _exp2_irrelevant,
        min_steps=250_000,
        if_failed="a float64 NumPy transcription of the paper's algorithm (Figure 2) "
        "ends at 0.0075 to 0.0078 after 250,000 examples, still falling: the "
        "algorithm's value at that length, not float32 rounding",
    ),
)


SUTTON1992_EXP2 = Replication(
    title="Sutton (1992), Figure 4",
    paper="Sutton (1992), Fig. 4: relevant step-sizes 0.13 +- 0.015; irrelevant < 0.007",
    run=lambda seeds, steps, progress: sutton1992_experiment2(
        num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=4,
    steps=250_000,
    quick_steps=50_000,
    steps_multiple=1_000,
    total=lambda steps: steps,
    report=_exp2_report,
    figure=_exp2_figure,
    filename="sutton1992_exp2.png",
    checks=_EXP2_CHECKS,
)
