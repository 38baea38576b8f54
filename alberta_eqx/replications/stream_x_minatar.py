"""Stream Q(lambda), Stream SARSA(lambda) and Stream AC(lambda) on MinAtar (gymnax),
many seeds (and a small grid of hyperparameters) in one compiled program, with the
defaults of Elsayed, Vasan and Mahmood (2024) and their `stream_q_minatar.py`,
`stream_sarsa_minatar.py` and `stream_ac_discrete_minatar.py`: the MinAtar network
(`alberta_eqx.nn.MinAtarNetwork`), sparse initialisation, `alpha = 1`, `gamma = 0.99`,
`lambda = 0.8`, observation normalisation and reward scaling (`StreamingWrapper`, no
time feature: their MinAtar scripts add none), and

- Q: 5,000,000 steps, `kappa` 2, epsilon from 1 to 0.01 over the first 20% of the run;
- SARSA: 10,000,000 steps, `kappa` 2, epsilon from 1 to 0.01 over 50,000 steps: the
  script's `--exploration_fraction` (5%) of the agent's `total_steps`, which the script
  leaves at the class default of 1,000,000 (it does not pass its `--total_steps`);
- AC: 10,000,000 steps, `kappa` 3 (policy) and 2 (value), entropy 0.01.

And Stream AC(lambda) with a Gaussian policy on gymnax's `Pendulum-v1` and on brax's
inverted pendulum (`inverted_pendulum`, 1,000-step episodes; the `[brax]` extra)
(`stream_ac_continuous.py`: two hidden layers of 128, observation normalisation,
reward scaling and a time feature; 2,000,000 steps).

The environment: the `minatar` package the authors use (`MinAtar/*-v1`, minimal action
sets, as gymnax's) repeats the previous action with probability 0.1 (sticky actions),
and so do these runs (`STICKY_ACTION_PROB`, through gymnax's `StickyActionWrapper`,
the same rule: the previously executed action, 0 at first and kept across episodes,
replaces the chosen one with that probability; `stream_x(..., sticky_action_prob=0)`
for gymnax's games as they are). It matters: on Breakout, the authors' own script
scores 3.6 with them and 5.7 without after 50,000 steps
(`benchmarks/streamx_reference/README.md`). The difference that remains is that
`minatar` sets no episode limit, while gymnax's games end an episode after 1,000 steps
(Freeway 2,500): such an episode is truncated, and the agents bootstrap from its last
state.

The environments and agents are `alberta_eqx.control.stream_x`'s (`environment`,
`make_agent`). `stream_x(game, agent, ...)` runs one game and agent; `alberta-eqx replicate
stream-x-minatar --game breakout --agent q` runs it with verdict lines
(`STREAM_X_MINATAR`). On a GPU machine the full-size run is the same command
(`benchmarks/streamx_minatar_speed.py` documents it).
"""

import itertools
import time
from collections.abc import Mapping, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.control import run_control, start_control
from alberta_eqx.control.stream_x import (
    AGENTS,
    CONTINUOUS,
    DEFAULT_STEPS,
    GAMES,
    PENDULUM_STEPS,
    STICKY_ACTION_PROB,
    environment,
    make_agent,
)
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.replications.verdicts import Check, Replication, mean_stderr, on_new_axes

__all__ = [
    "AGENTS",
    "CONTINUOUS",
    "DEFAULT_STEPS",
    "GAMES",
    "PENDULUM_STEPS",
    "STICKY_ACTION_PROB",
    "STREAM_X_MINATAR",
    "StreamXResult",
    "curves",
    "early_average",
    "environment",
    "final_average",
    "make_agent",
    "plot_stream_x",
    "stream_x",
    "stream_x_table",
]


class StreamXResult(NamedTuple):
    """**Fields:**

    - `game`, `agent`: what ran.
    - `configs`: `(runs,)` each run's hyperparameters (the grid's point; `{}` without
      a grid); runs are the grid's points times the seeds, seeds fastest.
    - `returns`, `end_steps`: `(runs, episodes)` every completed episode's return and
      the step it ended at (NaN / -1 past a run's last episode).
    - `num_episodes`: `(runs,)`.
    - `num_steps`, `wall_seconds`: the run's length and its wall time (compilation
      included).
    - `runs`: the runs' final `ControlRun`s, stacked (the agents, to go on with
      `run_control`).
    """

    game: str
    agent: str
    configs: list[dict[str, float]]
    returns: np.ndarray
    end_steps: np.ndarray
    num_episodes: np.ndarray
    num_steps: int
    wall_seconds: float
    runs: Any = None


def _concatenate(trees: Sequence[Any]) -> Any:
    return jax.tree.map(lambda *xs: jnp.concatenate(xs), *trees)


def _empty_record(runs: Any) -> Any:
    """The runs with their episode records emptied (the host keeps the episodes of
    every segment, so that the record needs room for one segment's only)."""
    return eqx.tree_at(
        lambda r: (r.returns, r.lengths, r.end_steps, r.num_episodes),
        runs,
        (
            jnp.full_like(runs.returns, jnp.nan),
            jnp.full_like(runs.lengths, -1),
            jnp.full_like(runs.end_steps, -1),
            jnp.zeros_like(runs.num_episodes),
        ),
    )


def stream_x(
    game: str = "breakout",
    agent: str = "q",
    *,
    num_seeds: int = 5,
    num_steps: int | None = None,
    segment_steps: int = 10_000,
    grid: Mapping[str, Sequence[float]] | None = None,
    seed: int = 0,
    progress: Progress | None = None,
    sticky_action_prob: float | None = None,
    **hyperparameters: Any,
) -> StreamXResult:
    """`agent` on `game` for `num_steps` steps, `num_seeds` seeds times every point
    of `grid` in one vmapped, compiled loop, in segments of `segment_steps` steps.

    **Arguments:**

    - `game`, `agent`: a key of `GAMES` and one of `AGENTS`.
    - `num_seeds`: seeds per point of the grid.
    - `num_steps`: steps per run (default: the script's, `DEFAULT_STEPS`).
    - `segment_steps`: steps per compiled call (must divide `num_steps`); the
      episodes of a segment are read out after it.
    - `grid`: hyperparameters by name, each a list of values (array hyperparameters
      of the agent: `step_size`, `lambda_`, `kappa`, ...); every combination runs.
    - `seed`: the root key; seed `i` of every grid point uses the same key.
    - `progress`: called with the number of steps after every segment.
    - `sticky_action_prob`: the probability that the previous action replaces the
      chosen one (default: the authors' `minatar` environments', `STICKY_ACTION_PROB`,
      on the MinAtar games; 0 is gymnax's games as they are).
    - `hyperparameters`: passed to the agent for every run.
    """
    start_time = time.perf_counter()
    if num_steps is None:
        num_steps = PENDULUM_STEPS if game in CONTINUOUS else DEFAULT_STEPS[agent]
    if num_steps % segment_steps:
        raise ValueError(f"segment_steps ({segment_steps}) must divide num_steps ({num_steps})")
    if sticky_action_prob is None:
        sticky_action_prob = 0.0 if game in CONTINUOUS else STICKY_ACTION_PROB
    base, params, env = environment(
        game, hyperparameters.get("discount", 0.99), sticky_action_prob
    )
    grid = dict(grid or {})
    configs = [
        dict(zip(grid, values, strict=True)) for values in itertools.product(*grid.values())
    ]
    keys = jax.random.split(jax.random.key(seed), num_seeds)

    def starter(config):
        def start(key):
            agent_key, run_key = jax.random.split(key)
            learner = make_agent(
                game,
                agent,
                agent_key,
                num_steps=num_steps,
                base=base,
                params=params,
                **hyperparameters,
                **config,
            )
            return start_control(learner, env, run_key, max_episodes=segment_steps)

        return eqx.filter_jit(eqx.filter_vmap(start))

    runs = _concatenate([starter(config)(keys) for config in configs])
    # every segment starts with an empty record: it holds that segment's episodes only
    segment = eqx.filter_jit(
        eqx.filter_vmap(lambda r: run_control(_empty_record(r), env, segment_steps))
    )
    returns: list[list[np.ndarray]] = [[] for _ in range(len(configs) * num_seeds)]
    end_steps: list[list[np.ndarray]] = [[] for _ in returns]
    for _ in range(num_steps // segment_steps):
        runs = segment(runs)
        count = np.asarray(runs.num_episodes)
        got_returns, got_ends = np.asarray(runs.returns), np.asarray(runs.end_steps)
        for i, n in enumerate(count):
            returns[i].append(got_returns[i, :n])
            end_steps[i].append(got_ends[i, :n])
        if progress is not None:
            progress(segment_steps)
    flat_returns = [np.concatenate([np.zeros(0), *r]) for r in returns]
    flat_ends = [np.concatenate([np.zeros(0, np.int64), *e]) for e in end_steps]
    width = max(1, max(len(r) for r in flat_returns))
    padded_returns = np.full((len(returns), width), np.nan)
    padded_ends = np.full((len(returns), width), -1, np.int64)
    for i, (r, e) in enumerate(zip(flat_returns, flat_ends, strict=True)):
        padded_returns[i, : len(r)], padded_ends[i, : len(e)] = r, e
    return StreamXResult(
        game=game,
        agent=agent,
        configs=[config for config in configs for _ in range(num_seeds)],
        returns=padded_returns,
        end_steps=padded_ends,
        num_episodes=np.array([len(r) for r in flat_returns]),
        num_steps=num_steps,
        wall_seconds=time.perf_counter() - start_time,
        runs=runs,
    )


def early_average(result: StreamXResult, fraction: float = 0.05) -> np.ndarray:
    """`(runs,)` each run's average return over the episodes that ended in the first
    `fraction` of its steps (NaN where none did)."""
    ended = (result.end_steps >= 0) & (result.end_steps <= fraction * result.num_steps)
    with np.errstate(invalid="ignore"):
        return np.where(ended, result.returns, 0).sum(1) / np.where(
            ended.any(1), ended.sum(1), np.nan
        )


def final_average(result: StreamXResult, episodes: int = 100) -> np.ndarray:
    """`(runs,)` each run's average return over its last `episodes` episodes (fewer
    where it had fewer; NaN where it had none)."""
    out = np.full(len(result.returns), np.nan)
    for i, (returns, n) in enumerate(zip(result.returns, result.num_episodes, strict=True)):
        if n:
            out[i] = returns[max(0, n - episodes) : n].mean()
    return out


def curves(result: StreamXResult, points: int = 50, episodes: int = 100):
    """`(steps, curve)`: `(points,)` steps and `(runs, points)` the average return of
    the last `episodes` episodes ended by each (NaN before the first)."""
    from alberta_eqx.replications.stream_ac import trailing_average

    steps = np.linspace(result.num_steps / points, result.num_steps, points).astype(np.int64)
    return steps, np.stack(
        [
            trailing_average(r, e, steps, episodes)
            for r, e in zip(result.returns, result.end_steps, strict=True)
        ]
    )


def _mean_ci(values: np.ndarray) -> str:
    mean, stderr = mean_stderr(values)
    return f"{mean:.2f} ± {1.96 * stderr:.2f}"


def stream_x_table(result: StreamXResult) -> list[str]:
    """Per run: episodes, the first-5% and last-100-episode averages; then their
    means with 95% intervals over the runs, the wall time and steps per second."""
    early, final = early_average(result), final_average(result)
    lines = [
        f"{GAMES[result.game]}, Stream {result.agent.upper()}, {result.num_steps:,} steps",
        f"{'run':>4} {'config':>24} {'episodes':>9} {'first 5%':>9} {'last 100':>9}",
    ]
    for i, (config, n, e, f) in enumerate(
        zip(result.configs, result.num_episodes, early, final, strict=True)
    ):
        name = ",".join(f"{k}={v:g}" for k, v in config.items()) or "-"
        lines.append(f"{i:>4} {name:>24} {n:>9} {e:>9.2f} {f:>9.2f}")
    total = result.num_steps * len(result.returns)
    lines.append(
        f"mean (95% interval over {len(final)} runs): first 5% {_mean_ci(early)}, "
        f"last 100 episodes {_mean_ci(final)}; wall time {result.wall_seconds:.0f} s "
        f"(compilation included), {total / result.wall_seconds:,.0f} steps/s in total"
    )
    return lines


def plot_stream_x(result: StreamXResult, ax) -> None:
    """The learning curves: the last-100-episode average return against steps."""
    steps, curve = curves(result)
    ax.plot(steps, curve.T, lw=0.8, alpha=0.5)
    ax.plot(steps, np.nanmean(curve, axis=0), c="k", lw=2, label="mean over runs")
    ax.axhline(
        np.nanmean(early_average(result)), ls="--", c="gray", label="first 5% of the run (ours)"
    )
    ax.set(xlabel="steps", ylabel="average return, last 100 episodes")
    ax.set_title(
        f"Elsayed et al. (2024): Stream {result.agent.upper()}(lambda), {GAMES[result.game]}"
    )
    ax.legend()


def _improves(result: StreamXResult) -> tuple[bool, str]:
    early, final = early_average(result), final_average(result)
    measured = f"last 100 episodes {_mean_ci(final)} vs first 5% {_mean_ci(early)}"
    return bool(np.nanmean(final) > np.nanmean(early)), measured


STREAM_X_CHECKS = (
    Check(
        "Elsayed et al. (2024): the agent learns: its mean return over the last 100 "
        "episodes exceeds its mean return in the first 5% of the run (mean over seeds)",
        _improves,
        min_steps=1_000_000,
    ),
)


def _run(seeds: int, steps: int, progress: Progress | None, *, game: str, agent: str):
    return stream_x(game, agent, num_seeds=seeds, num_steps=steps, progress=progress)


def _steps_of(*, game: str, agent: str) -> int:
    return PENDULUM_STEPS if game in CONTINUOUS else DEFAULT_STEPS[agent]


STREAM_X_MINATAR = Replication(
    title="Elsayed et al. (2024), Stream Q/SARSA/AC(lambda) on MinAtar",
    paper="Elsayed et al. (2024): Stream Q(lambda), SARSA(lambda) and AC(lambda) learn "
    "MinAtar with their scripts' settings (Q 5,000,000 steps, SARSA and AC 10,000,000); "
    "check: the return at the end exceeds the return in the first 5% of the run",
    run=_run,
    seeds=5,
    steps=DEFAULT_STEPS["q"],
    quick_steps=100_000,
    steps_multiple=10_000,
    total=lambda steps: steps,
    report=stream_x_table,
    figure=on_new_axes(plot_stream_x),
    filename="stream_x_minatar.png",
    quick_seeds=2,
    checks=STREAM_X_CHECKS,
    options=(("game", tuple(GAMES)), ("agent", AGENTS)),
    steps_of=_steps_of,
)
