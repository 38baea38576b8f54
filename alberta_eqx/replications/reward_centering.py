"""Reward centering (Naik, Wan, Tomar and Sutton, RLC 2024): discounted Q-learning
with and without value-based reward centering on two of the continuing tasks of their
experiments, at `gamma` in {0.9, 0.99, 0.999}, with every reward shifted by a constant
`c`:

- `task="access_control"`: tabular, on the access-control queuing task (Sutton and
  Barto 2018, Example 10.2; their csuite `AC`, `config_files/accesscontrol` in the
  authors' `continuing-rl-exps`), `c` in {-8, 0, 8} (their shifts run from -8 to 8);
- `task="catch"`: linear, on csuite's continuing Catch (`ContinuingCatch`, its
  continuous observation tile-coded with 16 tilings of 3 x 3 x 3 tiles over
  `[0, 1]^3`, as their `config_files/catch_linear`), `c` in {-4, 0, 4} (theirs: -4 to
  4), 20,000 steps (their `num_max_steps`), windows of 1,000 steps.

The paper's claims tested: centering learns at least as fast at every `gamma`, and
much faster as `gamma -> 1`; a constant added to every reward hurts the uncentered
learner, not the centered one.

Settings, chosen before any run and not changed after (the authors' configs where
they give one): tabular features (one tile per state and action) or the tile coding
above, values and `Rbar` starting at 0, epsilon-greedy with `epsilon = 0.1`, 100,000
steps (access control) or 20,000 (Catch), 30 seeds. Q-learning is `watkins_q_lambda`
at `lambda = 0`; centering adds `RewardRate(eta alpha)` updated from the TD error
(value-based, their Q-learning), `eta = 1/16`. With `T` tilings each weight's
step-size is `alpha / T` and `Rbar`'s `eta alpha` (the authors' tile-coded agents
divide `alpha` by the tilings and multiply the rate's step back). For each learner,
`gamma` and `c` the step-size `alpha` is the best of {1/32, 1/8, 1/2} by the seeds'
mean reward rate over the run (the authors sweep `alpha` and report the best; this is
a coarser sweep of their range), and the seeds and step-sizes of one (learner,
`gamma`, `c`) run as one compiled, vectorised program.

Measured: the reward per step *received during learning* (the unshifted rewards,
`info["raw_reward"]`), in windows (5,000 steps; Catch 1,000), and its mean over the run, the area
under the learning curve, which is how fast a learner learns. Differences from the
paper: the authors' code can re-weight `Rbar`'s step-size to be unbiased by its
initial value (`robust_to_initialization`); here it is constant, as in the paper's
equations; their curves are of a separate evaluation every 5,000 steps, these of the
rewards received while learning.
"""

import functools
import time
from collections.abc import Callable
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.control import EpsilonGreedy, control_step, start_control, watkins_q_lambda
from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.replications.access_control import tabular_coder
from alberta_eqx.replications.verdicts import Check, Replication, mean_stderr
from alberta_eqx.streams.access_control import AccessControl, AccessControlParams
from alberta_eqx.streams.continuing_catch import ContinuingCatch, ContinuingCatchParams
from alberta_eqx.streams.tiles import TileCoder
from alberta_eqx.td import RewardRate

DISCOUNTS = (0.9, 0.99, 0.999)
STEP_SIZES = (1 / 32, 1 / 8, 1 / 2)
ETA = 1 / 16
EPSILON = 0.1
LEARNERS = ("Q-learning", "centered Q-learning")


class Task(NamedTuple):
    """A continuing task of the paper's experiments, as this replication runs it.

    **Fields:** `title`; `environment()` and `params(c)` (every reward shifted by
    `c`); `coder()`, the tile coder of its observations, and `num_actions`;
    `offsets`, the shifts `c` (0 in the middle); `steps`, the paper's length;
    `window`, the learning curves' windows."""

    title: str
    environment: Callable[[], Any]
    params: Callable[[Any], Any]
    coder: Callable[[], TileCoder]
    num_actions: int
    offsets: tuple[float, ...]
    steps: int
    window: int


def catch_coder() -> TileCoder:
    """The authors' tile coding of Catch's continuous observation (paddle x, lowest
    ball x, its y, each in `[0, 1]`): 16 tilings of 3 x 3 x 3 tiles, the action (of
    3) appended."""
    return TileCoder(
        16, [3.0, 3.0, 3.0], low=[0.0, 0.0, 0.0], high=[1.0, 1.0, 1.0], int_sizes=(3,)
    )


TASKS: dict[str, Task] = {
    "access_control": Task(
        "access control, tabular",
        AccessControl,
        lambda c: AccessControlParams(reward_offset=c),
        tabular_coder,
        2,
        (-8.0, 0.0, 8.0),
        100_000,
        5_000,
    ),
    "catch": Task(
        "continuing Catch (csuite), 16 tilings of 3 x 3 x 3",
        ContinuingCatch,
        lambda c: ContinuingCatchParams(reward_offset=c),
        catch_coder,
        3,
        (-4.0, 0.0, 4.0),
        20_000,
        1_000,
    ),
}
OFFSETS = TASKS["access_control"].offsets
WINDOW = TASKS["access_control"].window
PAPER_STEPS = TASKS["access_control"].steps


class RewardCenteringResult(NamedTuple):
    """**Fields** (axes: learner (uncentered, centered), `gamma`, offset `c`,
    step-size, seed, window):

    - `curves`: `(2, 3, 3, A, S, W)` the reward per step received in each window of
      `window` steps (unshifted).
    - `reward_rate`: `(2, 3, 3, A, S)` the centered learners' final `Rbar` (NaN for
      the uncentered).
    - `num_steps`, `window`, `wall_seconds` (compilation included).
    - `task`: a key of `TASKS`.
    """

    curves: np.ndarray
    reward_rate: np.ndarray
    num_steps: int
    window: int
    wall_seconds: float
    task: str = "access_control"

    @property
    def offsets(self) -> tuple[float, ...]:
        return TASKS[self.task].offsets

    @property
    def learned(self) -> np.ndarray:
        """`(2, 3, 3, A, S)`: the mean reward per step over the run (the area under
        the learning curve)."""
        return self.curves.mean(axis=-1)

    def best(self) -> np.ndarray:
        """`(2, 3, 3)`: the index of the best step-size (highest mean over seeds)."""
        return self.learned.mean(axis=-1).argmax(axis=-1)

    def at_best(self) -> np.ndarray:
        """`(2, 3, 3, S)`: each seed's mean reward rate at the best step-size."""
        best = self.best()[..., None, None]
        return np.take_along_axis(self.learned, best, axis=3)[:, :, :, 0]


def _learner(task: Task, centered: bool, discount: float, step_size, *, epsilon: float):
    coder = task.coder()
    rate = RewardRate(ETA * step_size) if centered else None  # eta alpha, module docstring
    policy = EpsilonGreedy(epsilon)
    alpha = step_size / coder.num_tilings
    return watkins_q_lambda(
        coder, task.num_actions, alpha, 0.0, discount, policy, reward_rate=rate
    )


@eqx.filter_jit
def _start(agents, keys, env, params):
    """A run per (step-size, seed) lane: `agents` lead with the step-sizes."""

    def lane(agent, key):
        return start_control(agent, env, key, env_params=params, max_episodes=1)

    return eqx.filter_vmap(lambda agent: eqx.filter_vmap(lambda k: lane(agent, k))(keys))(agents)


@eqx.filter_jit
def _run(runs, env, params, num_windows: int, window: int):
    """Every lane `num_windows` windows of `window` steps: the raw reward of each."""

    def lane(run):
        def one_window(run, _):
            before = run.episode_return
            run = jax.lax.fori_loop(0, window, lambda _, r: control_step(r, env, params), run)
            return run, run.episode_return - before

        return jax.lax.scan(one_window, run, length=num_windows)

    return eqx.filter_vmap(eqx.filter_vmap(lane))(runs)


def reward_centering(
    *,
    task: str = "access_control",
    num_seeds: int = 30,
    num_steps: int | None = None,
    window: int | None = None,
    seed: int = 0,
    epsilon: float = EPSILON,
    progress: Progress | None = None,
) -> RewardCenteringResult:
    """Q-learning with and without reward centering on `task`, every `gamma`, offset
    and step-size of the module docstring, `num_seeds` seeds each.

    **Arguments:**

    - `task`: a key of `TASKS`: `"access_control"` or `"catch"`.
    - `num_seeds`, `num_steps` (a multiple of `window`), `window`: the learning
      curves' windows (default: the task's length and window).
    - `seed`: the root key (the same seeds for every configuration).
    - `epsilon`: the behaviour's exploration.
    - `progress`: called with the steps of each configuration when it is done.
    """
    if task not in TASKS:
        raise ValueError(f"task must be one of {sorted(TASKS)}, got {task!r}")
    spec = TASKS[task]
    num_steps = spec.steps if num_steps is None else num_steps
    window = spec.window if window is None else window
    if num_steps % window:
        raise ValueError(f"num_steps ({num_steps}) must be a multiple of window ({window})")
    env = spec.environment()
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    step_sizes = jnp.asarray(STEP_SIZES)
    start = time.perf_counter()
    shape = (2, len(DISCOUNTS), len(spec.offsets), len(STEP_SIZES), num_seeds)
    curves = np.zeros((*shape, num_steps // window))
    rates = np.full(shape, np.nan)
    for i, centered in enumerate((False, True)):
        for j, discount in enumerate(DISCOUNTS):
            make = functools.partial(_learner, spec, centered, discount, epsilon=epsilon)
            agents = eqx.filter_vmap(make)(step_sizes)
            for k, offset in enumerate(spec.offsets):
                # the offset a leaf, not a static float: one program for every offset
                params = spec.params(jnp.asarray(offset))
                runs = _start(agents, keys, env, params)
                runs, sums = _run(runs, env, params, num_steps // window, window)
                curves[i, j, k] = np.asarray(sums, np.float64) / window
                if centered:
                    rates[i, j, k] = np.asarray(runs.agent.reward_rate.estimate)
                if progress is not None:
                    progress(num_steps)
    took = time.perf_counter() - start
    return RewardCenteringResult(curves, rates, num_steps, window, took, task)


def _difference(result, a: tuple, b: tuple) -> tuple[float, float]:
    """The mean over seeds of `at_best()[a] - at_best()[b]` (paired: the same seeds)
    and its standard error."""
    at = result.at_best()
    return mean_stderr(at[a] - at[b])


def _text(mean: float, se: float) -> str:
    return f"{mean:+.3f} +- {se:.3f} se"


ZERO = 1
"""The index of `c = 0` among every task's offsets."""
assert all(task.offsets[ZERO] == 0 for task in TASKS.values())


def _at_least_as_fast(result: RewardCenteringResult) -> tuple[bool | None, str]:
    parts, ok = [], True
    for j, discount in enumerate(DISCOUNTS):
        mean, se = _difference(result, (1, j, ZERO), (0, j, ZERO))
        if not np.isfinite(se):
            return None, "one seed"
        ok &= mean >= -2 * se
        parts.append(f"gamma {discount}: {_text(mean, se)}")
    return bool(ok), "centered - uncentered reward rate: " + "; ".join(parts)


def _much_faster(result: RewardCenteringResult) -> tuple[bool | None, str]:
    low, low_se = _difference(result, (1, 0, ZERO), (0, 0, ZERO))
    high, high_se = _difference(result, (1, -1, ZERO), (0, -1, ZERO))
    if not np.isfinite(high_se):
        return None, "one seed"
    uncentered = result.at_best()[0, -1, ZERO].mean()
    relative = high / abs(uncentered) if uncentered else np.inf
    ok = high > 2 * high_se and high - low > 2 * np.hypot(low_se, high_se) and relative >= 0.1
    return bool(ok), (
        f"gain at gamma {DISCOUNTS[-1]}: {_text(high, high_se)} ({relative:.0%} of the "
        f"uncentered rate); at gamma {DISCOUNTS[0]}: {_text(low, low_se)}"
    )


def _shift_effects(result: RewardCenteringResult, learner: int) -> list[tuple[str, float, float]]:
    """For every `gamma` and nonzero offset: the learner's reward rate with the offset
    minus without it (paired over seeds), with its standard error."""
    effects = []
    for j, discount in enumerate(DISCOUNTS):
        for k, offset in enumerate(result.offsets):
            if k != ZERO:
                mean, se = _difference(result, (learner, j, k), (learner, j, ZERO))
                effects.append((f"gamma {discount}, c {offset:+g}", mean, se))
    return effects


def _shift_hurts_uncentered(result: RewardCenteringResult) -> tuple[bool | None, str]:
    effects = _shift_effects(result, 0)
    if not np.isfinite(effects[0][2]):
        return None, "one seed"
    ok = all(mean < -2 * se for _, mean, se in effects)
    return ok, "; ".join(f"{name}: {_text(mean, se)}" for name, mean, se in effects)


SHIFT_TOLERANCE = 0.05


def _shift_spares_centered(result: RewardCenteringResult) -> tuple[bool | None, str]:
    effects = _shift_effects(result, 1)
    if not np.isfinite(effects[0][2]):
        return None, "one seed"
    ok = all(mean >= -max(2 * se, SHIFT_TOLERANCE) for _, mean, se in effects)
    return ok, "; ".join(f"{name}: {_text(mean, se)}" for name, mean, se in effects)


def _paper_steps(result: RewardCenteringResult) -> int:
    return TASKS[result.task].steps


CHECKS = (
    Check(
        "centering learns at least as fast at every gamma: the centered learner's mean "
        "reward rate over the run is not below the uncentered one's by more than 2 "
        "standard errors (paired seeds), at gamma 0.9, 0.99 and 0.999",
        _at_least_as_fast,
        min_steps=_paper_steps,
    ),
    Check(
        "much faster as gamma -> 1: at gamma 0.999 centering's gain is above 2 standard "
        "errors and at least 10% of the uncentered rate, and larger than at gamma 0.9 "
        "by more than 2 standard errors",
        _much_faster,
        min_steps=_paper_steps,
    ),
    Check(
        "adding a constant to every reward hurts the uncentered learner: with the negative "
        "and the positive c (access control -8 and +8, Catch -4 and +4) its reward rate is "
        "lower than with c = 0 by more than 2 standard errors, at every gamma",
        _shift_hurts_uncentered,
        min_steps=_paper_steps,
        if_failed="on access control the full run (30 seeds x 100,000 steps, "
        "docs/average-reward.md) fails "
        "only at gamma 0.9 with c = -8, where the shift has no measurable effect; it holds "
        "at gamma 0.99 and 0.999 and for c = +8 at every gamma. The settings were fixed "
        "before the first run and not changed after it",
    ),
    Check(
        "but not the centered learner: with the negative and the positive c its reward rate "
        "is not "
        f"lower than with c = 0 by more than 2 standard errors (or {SHIFT_TOLERANCE}), "
        "at every gamma",
        _shift_spares_centered,
        min_steps=_paper_steps,
    ),
)


def report(result: RewardCenteringResult) -> list[str]:
    """The reward rate over the run at the best step-size, mean +- standard error over
    seeds, per learner, `gamma` and offset."""
    at = result.at_best()
    best = result.best()
    seeds = at.shape[-1]
    offsets = result.offsets
    lines = [
        f"{TASKS[result.task].title}: Q-learning (lambda = 0, epsilon = {EPSILON}) with and "
        f"without value-based centering (eta = {ETA:g}): 2 x {len(DISCOUNTS)} gammas x "
        f"{len(offsets)} offsets x {len(STEP_SIZES)} step-sizes x {seeds} seeds x "
        f"{result.num_steps:,} steps in {result.wall_seconds:.0f} s (compilation included)",
        "reward per step received during learning (unshifted), mean over the run at the "
        "best step-size alpha: mean +- standard error over seeds",
        f"{'learner':>20} {'gamma':>6}" + "".join(f"{f'c = {c:+g}':>33}" for c in offsets),
    ]
    for i, name in enumerate(LEARNERS):
        for j, discount in enumerate(DISCOUNTS):
            cells = [
                f"{at[i, j, k].mean():.3f} +- {_se(at[i, j, k]):.3f} "
                f"(alpha {STEP_SIZES[best[i, j, k]]:g})"
                for k in range(len(offsets))
            ]
            lines.append(f"{name:>20} {discount:>6g}" + "".join(f"{c:>33}" for c in cells))
    rbar = np.nanmean(result.reward_rate[1], axis=(-1, -2))
    lines.append(
        "centered learners' final Rbar, mean over step-sizes and seeds (gamma x c): "
        + "; ".join(
            f"{d:g}/{c:+g}: {rbar[j, k]:.2f}"
            for j, d in enumerate(DISCOUNTS)
            for k, c in enumerate(offsets)
        )
    )
    return lines


def _se(values: np.ndarray) -> float:
    return mean_stderr(values)[1]


def figure(result: RewardCenteringResult):
    """One panel per `gamma`: the learning curves at the best step-size (mean over
    seeds), uncentered and centered, solid without an offset, dotted with the negative
    `c` and dashed with the positive."""
    fig, axes = pyplot().subplots(
        1, len(DISCOUNTS), figsize=(12, 4), sharey=True, layout="constrained"
    )
    best = result.best()
    steps = (np.arange(result.curves.shape[-1]) + 1) * result.window
    styles = (":", "-", "--")  # by the sign of c
    for j, (ax, discount) in enumerate(zip(axes, DISCOUNTS, strict=True)):
        for i, name in enumerate(LEARNERS):
            for k, offset in enumerate(result.offsets):
                curve = result.curves[i, j, k, best[i, j, k]].mean(axis=0)
                label = f"{name}, c = {offset:+g}"
                style = styles[int(np.sign(offset)) + 1]
                ax.plot(steps, curve, c=f"C{i}", ls=style, label=label)
        ax.set(title=f"gamma = {discount}", xlabel="steps")
    axes[0].set_ylabel(f"reward per step received (windows of {result.window:,})")
    axes[0].legend(fontsize=7)
    fig.suptitle(
        "Naik, Wan, Tomar and Sutton (2024), reward centering: Q-learning on "
        f"{TASKS[result.task].title}",
        fontsize=9,
    )
    return fig


REWARD_CENTERING = Replication(
    title="Naik, Wan, Tomar and Sutton (2024), reward centering",
    paper="Naik et al. (RLC 2024): discounted Q-learning with reward centering learns at "
    "least as fast as without at every gamma, much faster as gamma -> 1, and is unaffected "
    "by a constant added to every reward, which hurts standard Q-learning (here: "
    "--task access_control, tabular, offsets -8/0/+8, 100,000 steps; --task catch, "
    "tile-coded, offsets -4/0/+4, 20,000 steps; gamma 0.9/0.99/0.999, 30 seeds)",
    run=lambda seeds, steps, progress, task: reward_centering(
        task=task, num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=30,
    steps=PAPER_STEPS,
    quick_steps=20_000,
    steps_multiple=WINDOW,
    total=lambda steps: 2 * len(DISCOUNTS) * len(OFFSETS) * steps,
    report=report,
    figure=figure,
    filename="reward_centering_{task}.png",
    checks=CHECKS,
    options=(("task", tuple(TASKS)),),
    steps_of=lambda task: TASKS[task].steps,
)
