"""Stream AC(lambda) on CartPole-v1 (gymnax), many seeds in one compiled call, with
the hyperparameters of Elsayed, Vasan and Mahmood (2024) and their
`stream_ac_discrete.py`: `alpha = 1`, `gamma = 0.99`, `lambda = 0.8`, `kappa` 3 (policy)
and 2 (value), entropy 0.01, two hidden layers of 32, sparse initialisation,
observation normalisation, reward scaling and a time-in-episode feature, 500,000 steps.

One difference from their script: gymnax's CartPole-v1 ends episodes at 500 steps
(so returns are at most 500, and the time feature's unit is 500 steps), where their
script raises gym's limit to 10,000 steps.

`STREAM_AC_CARTPOLE` is what `alberta-eqx replicate stream-ac-cartpole` runs:
the lines it prints beside the published numbers, the published checks and the figure.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np

from alberta_eqx.control import StreamAC, StreamingWrapper, run_control, start_control
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.replications.verdicts import (
    Check,
    Replication,
    on_new_axes,
)


class StreamACCartPole(NamedTuple):
    """**Fields:**

    - `returns`, `end_steps`: `(seeds, max_episodes)` every episode's return and the
      step at which it ended (NaN / -1 past the last episode).
    - `num_episodes`: `(seeds,)`.
    - `final_average`: `(seeds,)` the average return of each seed's last 20 episodes.
    - `curve_steps`, `curve`: `(points,)` and `(seeds, points)`: the average return of
      the last 20 episodes ended by each of the steps.
    - `num_steps`, `wall_seconds`: the run's length and its wall time (compilation
      included).
    """

    returns: np.ndarray
    end_steps: np.ndarray
    num_episodes: np.ndarray
    final_average: np.ndarray
    curve_steps: np.ndarray
    curve: np.ndarray
    num_steps: int
    wall_seconds: float


def trailing_average(
    returns: np.ndarray, end_steps: np.ndarray, steps: np.ndarray, window: int = 20
) -> np.ndarray:
    """For one seed, the average return of the last `window` episodes ended by each of
    `steps` (NaN before the first episode ends)."""
    ended = end_steps >= 0
    returns, end_steps = returns[ended], end_steps[ended]
    count = np.searchsorted(end_steps, steps, side="right")
    csum = np.concatenate([[0.0], np.cumsum(returns)])
    first = np.maximum(count - window, 0)
    with np.errstate(invalid="ignore"):
        return np.where(
            count > 0, (csum[count] - csum[first]) / np.maximum(count - first, 1), np.nan
        )


def stream_ac_cartpole(
    *,
    num_seeds: int = 10,
    num_steps: int = 500_000,
    segment_steps: int = 10_000,
    max_episodes: int = 20_000,
    seed: int = 0,
    progress: Progress | None = None,
    **hyperparameters,
) -> StreamACCartPole:
    """Stream AC(lambda) on gymnax's CartPole-v1 for `num_steps` steps, `num_seeds`
    seeds in one vmapped loop, in compiled segments of `segment_steps` steps.

    **Arguments:**

    - `num_seeds`, `num_steps`: the run's size (the paper's script: 500,000 steps).
    - `segment_steps`: steps per compiled call (must divide `num_steps`).
    - `max_episodes`: episodes recorded per seed.
    - `seed`: the root key.
    - `progress`: called with the number of steps after every segment.
    - `hyperparameters`: passed to `StreamAC` (default: the paper's).
    """
    import time

    import gymnax

    if num_steps % segment_steps:
        raise ValueError(f"segment_steps ({segment_steps}) must divide num_steps ({num_steps})")
    start_time = time.perf_counter()
    base, params = gymnax.make("CartPole-v1")
    gamma = hyperparameters.get("discount", 0.99)
    env = StreamingWrapper(base, gamma, int(params.max_steps_in_episode))
    observation_size = base.observation_space(params).shape[0] + 1  # and the time

    def start(key):
        agent_key, run_key = jax.random.split(key)
        agent = StreamAC(observation_size, base.num_actions, key=agent_key, **hyperparameters)
        return start_control(agent, env, run_key, max_episodes=max_episodes)

    runs = eqx.filter_jit(eqx.filter_vmap(start))(
        jax.random.split(jax.random.key(seed), num_seeds)
    )
    segment = eqx.filter_jit(eqx.filter_vmap(lambda r: run_control(r, env, segment_steps)))
    for _ in range(num_steps // segment_steps):
        runs = segment(runs)
        if progress is not None:
            jax.block_until_ready(runs.step)
            progress(segment_steps)
    returns, end_steps = np.asarray(runs.returns), np.asarray(runs.end_steps)
    curve_steps = np.arange(segment_steps, num_steps + 1, segment_steps)
    curve = np.stack(
        [trailing_average(r, e, curve_steps) for r, e in zip(returns, end_steps, strict=True)]
    )
    return StreamACCartPole(
        returns=returns,
        end_steps=end_steps,
        num_episodes=np.asarray(runs.num_episodes),
        final_average=curve[:, -1],
        curve_steps=curve_steps,
        curve=curve,
        num_steps=num_steps,
        wall_seconds=time.perf_counter() - start_time,
    )


def first_reaching(result: StreamACCartPole, level: float = 400.0) -> np.ndarray:
    """`(seeds,)` the first step (at the curve's resolution) at which each seed's
    last-20-episode average reached `level`; -1 if it never did."""
    reached = result.curve >= level
    return np.where(reached.any(axis=1), result.curve_steps[np.argmax(reached, axis=1)], -1)


def cartpole_table(result: StreamACCartPole) -> str:
    """Per seed: episodes, the step the last-20 average first reached 400, its final
    value; then the count of seeds that reached 400 and the wall time."""
    first = first_reaching(result)
    lines = [
        f"{'seed':>4} {'episodes':>9} {'first >= 400 at step':>21} {'final last-20 average':>22}"
    ]
    for i, (n, f, a) in enumerate(
        zip(result.num_episodes, first, result.final_average, strict=True)
    ):
        lines.append(f"{i:>4} {n:>9} {('never' if f < 0 else f'{f:,}'):>21} {a:>22.1f}")
    lines.append(
        f"reached 400 within {result.num_steps:,} steps: {(first >= 0).sum()} of {len(first)} "
        f"seeds; final average >= 400: {(result.final_average >= 400).sum()} of {len(first)}; "
        f"wall time {result.wall_seconds:.0f} s (compilation included)"
    )
    return "\n".join(lines)


def plot_curves(result: StreamACCartPole, ax) -> None:
    """The learning curves: the last-20-episode average return against steps."""
    ax.plot(result.curve_steps, result.curve.T, lw=0.8, alpha=0.6)
    ax.plot(result.curve_steps, np.nanmean(result.curve, axis=0), c="k", lw=2, label="mean")
    ax.axhline(400, ls="--", c="gray", label="400: the paper's check")
    ax.set(xlabel="steps", ylabel="average return, last 20 episodes", ylim=(0, 520))
    ax.set_title("Elsayed et al. (2024): Stream AC(lambda), CartPole-v1 (gymnax)")
    ax.legend()


def _cartpole_reached(result: StreamACCartPole) -> tuple[bool, str]:
    first = first_reaching(result)
    reached = int(((first >= 0) & (first <= 500_000)).sum())
    return reached >= int(np.ceil(0.8 * first.size)), f"{reached}/{first.size}"


_STREAM_AC_CHECKS = (
    Check(
        "Elsayed et al. (2024), Stream AC(lambda): at least 8 of 10 seeds (80%) reach a "
        "mean return of 400 over the last 20 episodes within 500,000 steps",
        _cartpole_reached,
        min_steps=500_000,
    ),
)


STREAM_AC_CARTPOLE = Replication(
    title="Elsayed et al. (2024), Stream AC(lambda) on CartPole",
    paper="Elsayed et al. (2024): Stream AC(lambda) solves CartPole-v1; check: "
    "last-20-episode average >= 400 in >= 8 of 10 seeds within 500,000 steps",
    run=lambda seeds, steps, progress: stream_ac_cartpole(
        num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=10,
    steps=500_000,
    quick_steps=100_000,
    steps_multiple=10_000,
    total=lambda steps: steps,
    report=lambda result: cartpole_table(result).splitlines(),
    figure=on_new_axes(plot_curves),
    filename="stream_ac_cartpole.png",
    checks=_STREAM_AC_CHECKS,
)
