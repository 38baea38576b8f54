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
"""

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.control import SarsaLambda, run_control, start_control
from alberta_eqx.experiments._segments import Progress
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
