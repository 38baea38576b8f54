"""Mountain Car with SARSA(lambda), replacing traces and 8 tilings: the sweep of Sutton
and Barto (2018), Figure 12.10 — steps per episode averaged over the first 50 episodes,
by step-size and lambda — with every (alpha, lambda, run) one lane of one compiled,
vectorised loop.

The book's settings (Example 10.1, section 12.7): 8 tilings of 8 x 8 tiles over
position and velocity (`tiles(iht, 8, [8 x / (0.5 + 1.2), 8 xdot / (0.07 + 0.07)],
[A])`; dense indices here, a relabelling of the book's IHT(4096), see
`alberta_eqx.streams.tiles`), weights starting at 0, greedy actions (`epsilon = 0`: the
optimistic start explores), `gamma = 1`, no step limit, step-sizes given as `alpha`
times the number of tilings.

`MOUNTAIN_CAR` is what `alberta-eqx replicate mountain-car` runs:
the lines it prints beside the published numbers, the published checks and the figure.
"""

from collections.abc import Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.control import SarsaLambda, run_control, start_control
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.replications.verdicts import (
    Check,
    Replication,
    on_new_axes,
)
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.tiles import TileCoder

BOOK_LAMBDAS = (0.0, 0.68, 0.84, 0.92, 0.96, 0.98, 0.99)
"""The lambdas of Figure 12.10 (left)."""

BOOK_STEP_SIZES = (0.2, 0.6, 1.0, 1.4, 1.8)
"""`alpha x 8` (the figure's horizontal axis) swept here."""


def book_tile_coder() -> TileCoder:
    """The book's tiling: 8 tilings, 8 tiles across each of position and velocity,
    the action as an integer input."""
    low, high = np.array([-1.2, -0.07]), np.array([0.5, 0.07])
    return TileCoder(8, 8 / (high - low), low=low, high=high, int_sizes=(3,))


class MountainCarSweep(NamedTuple):
    """**Fields:**

    - `step_sizes`: `(S,)` alpha times 8; `lambdas`: `(L,)`.
    - `steps`: `(L, S, runs)` steps per episode averaged over the first
      `num_episodes` episodes (NaN where a run had not finished them within
      `max_steps`).
    - `mean`, `stderr`: `(L, S)` over the runs that finished (NaN if any did not).
    - `num_episodes`, `max_steps`: the settings.
    """

    step_sizes: np.ndarray
    lambdas: np.ndarray
    steps: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    num_episodes: int
    max_steps: int


def mountain_car_sweep(
    *,
    step_sizes: Sequence[float] = BOOK_STEP_SIZES,
    lambdas: Sequence[float] = BOOK_LAMBDAS,
    num_runs: int = 100,
    num_episodes: int = 50,
    max_steps: int = 15_000,
    segment_steps: int = 1000,
    seed: int = 0,
    progress: Progress | None = None,
) -> MountainCarSweep:
    """Figure 12.10's sweep: SARSA(lambda) for every `alpha x 8` in `step_sizes` and
    `lambda` in `lambdas`, `num_runs` runs each, for the first `num_episodes` episodes.
    All lanes run together in segments of `segment_steps` steps until every run has
    finished its episodes or `max_steps` steps have been taken (a run still short of
    its episodes then reads NaN: it averaged more than `max_steps / num_episodes`
    steps per episode, the top of the figure, 300 steps, with the defaults).

    **Arguments:**

    - `step_sizes`: `alpha x 8`; `lambdas`: the trace decays.
    - `num_runs`: runs per setting (the book: 100).
    - `num_episodes`: episodes averaged (the book: 50).
    - `max_steps`: the most steps a run is given.
    - `segment_steps`: steps per compiled call (progress is reported between them).
    - `seed`: the runs' root key; run `i` of every setting uses the same key.
    - `progress`: called with the number of steps after every segment.
    """
    env = MountainCar()
    coder = book_tile_coder()
    alphas = jnp.asarray(step_sizes) / 8
    lams = jnp.asarray(lambdas)
    keys = jax.random.split(jax.random.key(seed), num_runs)

    def start(lam, alpha, key):
        return start_control(
            SarsaLambda(coder, 3, alpha, lam), env, key, max_episodes=num_episodes
        )

    grid = eqx.filter_vmap(
        eqx.filter_vmap(eqx.filter_vmap(start, in_axes=(None, None, 0)), in_axes=(None, 0, None)),
        in_axes=(0, None, None),
    )
    runs = eqx.filter_jit(grid)(lams, alphas, keys)
    flat_shape = (len(lambdas) * len(step_sizes) * num_runs,)
    runs = jax.tree.map(
        lambda a: a.reshape(flat_shape + a.shape[3:]) if eqx.is_array(a) else a, runs
    )
    segment = eqx.filter_jit(eqx.filter_vmap(lambda r: run_control(r, env, segment_steps)))
    taken = 0
    while taken < max_steps and int(jnp.min(runs.num_episodes)) < num_episodes:
        runs = segment(runs)
        taken += segment_steps
        if progress is not None:
            progress(segment_steps)
    lengths = np.asarray(runs.lengths, np.float64)
    finished = np.asarray(runs.num_episodes) >= num_episodes
    steps = np.where(finished, lengths.mean(axis=-1), np.nan)
    steps = steps.reshape(len(lambdas), len(step_sizes), num_runs)
    return MountainCarSweep(
        step_sizes=np.asarray(step_sizes, np.float64),
        lambdas=np.asarray(lambdas, np.float64),
        steps=steps,
        mean=steps.mean(axis=-1),
        stderr=steps.std(axis=-1, ddof=1) / np.sqrt(num_runs)
        if num_runs > 1
        else np.zeros(steps.shape[:2]),
        num_episodes=num_episodes,
        max_steps=max_steps,
    )


def sweep_table(result: MountainCarSweep) -> str:
    """The sweep as text: one row per lambda, one column per `alpha x 8`, mean steps
    per episode (+- standard error); `>M` where runs did not finish their episodes
    within `max_steps` (more than `M = max_steps / num_episodes` steps per episode)."""
    cutoff = result.max_steps / result.num_episodes
    lines = ["lambda \\ alpha*8 " + "".join(f"{a:>14g}" for a in result.step_sizes)]
    for lam, means, errors in zip(result.lambdas, result.mean, result.stderr, strict=True):
        cells = [
            f"{f'>{cutoff:g}':>14}" if np.isnan(m) else f"{m:>8.1f} +-{e:4.1f}"
            for m, e in zip(means, errors, strict=True)
        ]
        lines.append(f"{lam:<17g}" + "".join(cells))
    return "\n".join(lines)


def plot_sweep(result: MountainCarSweep, ax) -> None:
    """Figure 12.10's axes: steps per episode against `alpha x 8`, one line per lambda.
    A setting whose runs did not all finish their episodes, or whose mean lies above
    the axes, is drawn as a triangle on the top edge, not left out."""
    top = 300.0
    for i, (lam, means, errors) in enumerate(
        zip(result.lambdas, result.mean, result.stderr, strict=True)
    ):
        shown = np.where(np.isnan(means) | (means > top), np.nan, means)
        ax.errorbar(
            result.step_sizes, shown, yerr=errors, marker="o", ms=3, c=f"C{i}",
            label=f"lambda {lam:g}",
        )  # fmt: skip
        above = np.isnan(means) | (means > top)
        if above.any():
            ax.plot(np.asarray(result.step_sizes)[above], np.full(above.sum(), top), "^",
                    c=f"C{i}", ms=7, clip_on=False)  # fmt: skip
    ax.plot([], [], "^", c="gray", label="above the axes, or runs unfinished")
    ax.set(
        xlabel="alpha x number of tilings (8)",
        ylabel=f"steps per episode, first {result.num_episodes} episodes",
        ylim=(150, top),
    )
    ax.set_title(
        "Sutton and Barto (2018), Fig. 12.10: Mountain Car, SARSA(lambda), replacing traces",
        fontsize=9,
    )
    ax.legend(fontsize=7)


def _mountain_car_figure(result: MountainCarSweep, ax: Any) -> None:
    plot_sweep(result, ax)
    ax.text(
        0.02, 0.02,
        "the book's values are not shown (it prints none); see the cross-check table "
        "in docs/control.md",
        transform=ax.transAxes, fontsize=7, color="gray",
    )  # fmt: skip


def _best_over_step_sizes(
    result: MountainCarSweep, lambdas: np.ndarray
) -> tuple[float, float, float, float]:
    """`(mean, stderr, lambda, alpha x 8)` of the setting with the fewest steps per
    episode among `lambdas`; NaN where every such setting has unfinished runs."""
    rows = np.flatnonzero(lambdas)
    means = np.where(np.isnan(result.mean[rows]), np.inf, result.mean[rows])
    if not np.isfinite(means).any():
        return (float("nan"),) * 4
    i, j = np.unravel_index(np.argmin(means), means.shape)
    row = rows[i]
    return (
        float(result.mean[row, j]),
        float(result.stderr[row, j]),
        float(result.lambdas[row]),
        float(result.step_sizes[j]),
    )


def _mountain_car_intermediate(result: MountainCarSweep) -> tuple[bool | None, str]:
    middle = (result.lambdas >= 0.84) & (result.lambdas <= 0.96)
    zero = result.lambdas == 0
    if not middle.any() or not zero.any():
        return None, "the sweep has no lambda 0 or none in 0.84 to 0.96"
    best, best_se, lam, alpha = _best_over_step_sizes(result, middle)
    base, base_se, _, base_alpha = _best_over_step_sizes(result, zero)
    apart = best + 3 * best_se < base - 3 * base_se
    return bool(apart), (
        f"{best:.1f} +- {best_se:.1f} s.e. (lambda {lam:g}, alpha x 8 {alpha:g}) against "
        f"lambda 0's {base:.1f} +- {base_se:.1f} (alpha x 8 {base_alpha:g})"
    )


def _mountain_car_large_lambda(result: MountainCarSweep) -> tuple[bool | None, str]:
    i, j = int(np.argmax(result.lambdas)), int(np.argmax(result.step_sizes))
    if result.lambdas[i] < 0.99 or result.step_sizes[j] < 1.8:
        return None, "the sweep has no lambda 0.99 at alpha x 8 = 1.8 to test"
    mean = result.mean[i, j]
    cutoff = result.max_steps / result.num_episodes
    failed = bool(np.isnan(mean) or mean > cutoff)
    shown = f"over {cutoff:g} or unfinished runs" if np.isnan(mean) else f"{mean:.1f}"
    return failed, (
        f"lambda {result.lambdas[i]:g}, alpha x 8 {result.step_sizes[j]:g}: {shown} steps "
        "per episode"
    )


_MOUNTAIN_CAR_CHECKS = (
    Check(
        "Sutton and Barto (2018), Fig. 12.10: intermediate lambda does best (the best "
        "setting with lambda 0.84 to 0.96 takes fewer steps per episode than lambda 0's "
        "best, 3 s.e. apart)",
        _mountain_car_intermediate,
    ),
    Check(
        "Sutton and Barto (2018), Fig. 12.10: the largest lambda (0.99) fails at the "
        "largest step-size (alpha x 8 = 1.8: its runs average over the figure's 300 "
        "steps per episode)",
        _mountain_car_large_lambda,
    ),
)


MOUNTAIN_CAR = Replication(
    title="Sutton and Barto (2018), Figure 12.10",
    paper="Sutton and Barto (2018), Fig. 12.10: SARSA(lambda), replacing traces, 8 tilings; "
    "steps per episode over the first 50 episodes by alpha x 8 and lambda, averaged over "
    "100 runs in the book (the run stops once every run has 50 episodes; --steps caps "
    "each run)",
    run=lambda seeds, steps, progress: mountain_car_sweep(
        num_runs=seeds, max_steps=steps, progress=progress
    ),
    seeds=100,
    steps=15_000,
    quick_steps=15_000,  # fewer steps than this cannot hold 50 episodes
    quick_seeds=10,
    steps_multiple=1_000,
    total=lambda steps: steps,
    report=lambda result: [
        *sweep_table(result).splitlines(),
        f"mean +- s.e. over this run's {result.steps.shape[-1]} runs per setting",
    ],
    figure=on_new_axes(_mountain_car_figure),
    filename="mountain_car_fig12_10.png",
    checks=_MOUNTAIN_CAR_CHECKS,
)
