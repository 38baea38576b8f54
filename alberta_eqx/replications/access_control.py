"""Access control with differential semi-gradient Sarsa: Sutton and Barto (2018),
Example 10.2 and Figure 10.5, with every seed one lane of one compiled, vectorised
loop.

The book's settings: tabular features (one tile per state and action), `alpha =
0.01`, `beta = 0.01`, epsilon-greedy with `epsilon = 0.1`, `Rbar` and the values
starting at 0, 2,000,000 steps. The figure shows the learned policy (accept every
priority when enough servers are free; reject the lowest priorities when few are),
the differential value of the best action against the free servers, one curve per
priority, and gives the learned `Rbar` in its caption.

`ZHANG` holds the same quantities from Shangtong Zhang's independent reproduction
(`chapter10/access_control.py`, run here unmodified: 8 tilings of hashed tile coding
instead of a table, 1,000,000 steps), for the side-by-side check.
"""

import time
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.control import EpsilonGreedy, control_step, differential_sarsa, start_control
from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.replications.verdicts import Check, Replication
from alberta_eqx.streams.access_control import AccessControl
from alberta_eqx.streams.tiles import TileCoder

PRIORITIES = (1, 2, 4, 8)
NUM_SERVERS = 10
BOOK_REWARD_RATE = 2.31
"""Figure 10.5's caption: "The value learned for Rbar was about 2.31"."""

WELL_VISITED = 0.005
"""A free-server count is judged where the run spent at least this fraction of its
steps (the book: "many of these states were never experienced")."""


def tabular_coder() -> TileCoder:
    """One tiling of one tile per (free servers, priority index), the action appended:
    a table of 11 x 4 x 2 action values, index `(free * 4 + priority) * 2 + action`."""
    return TileCoder(
        1, [1.0, 1.0], low=[0, 0], high=[NUM_SERVERS, len(PRIORITIES) - 1], int_sizes=(2,)
    )


class AccessControlResult(NamedTuple):
    """**Fields** (`S` seeds; priorities `1, 2, 4, 8` along the second axis, free
    servers `0 .. 10` along the last):

    - `policy`: `(S, 4, 11)` the greedy action, 1 accept, 0 reject (0 with no free
      server, where accepting is rejecting).
    - `values`: `(S, 4, 11)` the differential value of the best action.
    - `reward_rate`: `(S,)` the learned `Rbar`.
    - `average_reward`: `(S,)` the reward per step received over the run.
    - `occupancy`: `(S, 11)` the fraction of steps spent at each free-server count.
    - `num_steps`, `wall_seconds` (compilation included).
    """

    policy: np.ndarray
    values: np.ndarray
    reward_rate: np.ndarray
    average_reward: np.ndarray
    occupancy: np.ndarray
    num_steps: int
    wall_seconds: float


def access_control(
    *,
    num_seeds: int = 4,
    num_steps: int = 2_000_000,
    segment_steps: int = 100_000,
    seed: int = 0,
    step_size: float = 0.01,
    reward_rate_step_size: float = 0.01,
    epsilon: float = 0.1,
    progress: Progress | None = None,
) -> AccessControlResult:
    """Figure 10.5: differential semi-gradient one-step Sarsa on access control,
    `num_seeds` seeds in one program, in compiled segments of `segment_steps` steps.

    **Arguments:**

    - `num_seeds`: independent runs; `num_steps`: steps per run (a multiple of
      `segment_steps`).
    - `step_size`, `reward_rate_step_size`, `epsilon`: the book's `alpha`, `beta` and
      `epsilon`.
    - `seed`: the runs' root key.
    - `progress`: called with the number of steps after every segment.
    """
    if num_steps % segment_steps:
        raise ValueError(
            f"num_steps ({num_steps}) must be a multiple of segment_steps ({segment_steps})"
        )
    env = AccessControl(NUM_SERVERS)
    agent = differential_sarsa(
        tabular_coder(), 2, step_size, reward_rate_step_size, policy=EpsilonGreedy(epsilon)
    )
    start = time.perf_counter()
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    runs = eqx.filter_vmap(lambda k: start_control(agent, env, k, max_episodes=1))(keys)
    counts = jnp.zeros((num_seeds, NUM_SERVERS + 1), jnp.int32)

    @eqx.filter_jit
    @eqx.filter_vmap
    def segment(run, count):
        def body(carry, _):
            run, count = carry
            count = count.at[run.env_state.free].add(1)  # the state the step leaves
            return (control_step(run, env), count), None

        return jax.lax.scan(body, (run, count), length=segment_steps)[0]

    for _ in range(num_steps // segment_steps):
        runs, counts = segment(runs, counts)
        if progress is not None:
            progress(segment_steps)
    weights = np.asarray(runs.agent.weights, np.float64)
    q = weights.reshape(num_seeds, NUM_SERVERS + 1, len(PRIORITIES), 2).transpose(0, 2, 1, 3)
    policy = (q[..., 1] > q[..., 0]).astype(np.int64)
    policy[..., 0] = 0
    return AccessControlResult(
        policy=policy,
        values=np.where(np.arange(NUM_SERVERS + 1) == 0, q[..., 0], q.max(-1)),
        reward_rate=np.asarray(runs.agent.reward_rate.estimate, np.float64),
        average_reward=np.asarray(runs.episode_return, np.float64) / num_steps,
        occupancy=np.asarray(counts, np.float64) / num_steps,
        num_steps=num_steps,
        wall_seconds=time.perf_counter() - start,
    )


class ZhangReference(NamedTuple):
    """Shangtong Zhang's reproduction, as printed by running it here (module
    docstring; `docs/average-reward.md` gives the command): `policy` and `values`
    `(4, 11)` as `AccessControlResult`'s, `reward_rate` his learned `Rbar`."""

    policy: np.ndarray
    values: np.ndarray
    reward_rate: float


def thresholds(policy: np.ndarray, visited: np.ndarray) -> np.ndarray:
    """Per priority (`policy` `(4, 11)`), the fewest free servers `k >= 1` from which
    it is accepted at every well-visited count `>= k` (`visited` `(11,)`); `inf` when
    it is rejected at the most-free well-visited count."""
    counts = np.flatnonzero(visited & (np.arange(policy.shape[-1]) >= 1))
    result = np.full(policy.shape[0], np.inf)
    for p, row in enumerate(policy):
        rejected = counts[row[counts] == 0]
        if not rejected.size:
            result[p] = 1
        elif rejected.max() < counts.max():
            result[p] = rejected.max() + 1
    return result


VALUE_ORDER_TOLERANCE = 0.5
ZHANG_VALUE_TOLERANCE = 1.5
# The figure is after 2,000,000 steps; Zhang's run, beside it, is 1,000,000 steps.
BOOK_STEPS = 2_000_000
ZHANG_STEPS = 1_000_000


class _Judged(NamedTuple):
    """What the claims are judged on: the free-server counts every seed visited in at
    least `WELL_VISITED` of its steps (`visited`; `counts` those with a server free),
    each seed's acceptance thresholds and the seeds' mean values."""

    visited: np.ndarray
    counts: np.ndarray
    thresholds: np.ndarray
    mean_values: np.ndarray


def _judged(result: AccessControlResult) -> _Judged:
    visited: np.ndarray = np.asarray((result.occupancy >= WELL_VISITED).all(axis=0))
    counts = np.flatnonzero(visited & (np.arange(NUM_SERVERS + 1) >= 1))
    thr = np.stack([thresholds(p, visited) for p in result.policy])  # (S, 4)
    return _Judged(visited, counts, thr, result.values.mean(axis=0))


def _free(judged: _Judged) -> str:
    return f"judged at 1..{int(judged.counts.max())} free"


def _accepts_8(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    ok = bool((result.policy[:, 3, j.counts] == 1).all())
    return ok, f"{_free(j)}, {result.policy.shape[0]} seeds"


def _rejects_1(result: AccessControlResult) -> tuple[bool, str]:
    accepted = int(result.policy[:, 0, 1:3].sum())
    return accepted == 0, f"accepted at {accepted} of {result.policy[:, 0, 1:3].size} seed-states"


def _thresholds_measured(result: AccessControlResult) -> str:
    j = _judged(result)
    return ", ".join(
        f"priority {p}: from {_thresholds_text(j.thresholds[:, i])}"
        for i, p in enumerate(PRIORITIES)
    )


def _all_accepted(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    return bool(np.isfinite(j.thresholds).all()), f"{_free(j)}; {_thresholds_measured(result)}"


def _ordered_thresholds(result: AccessControlResult) -> tuple[bool, str]:
    thr = _judged(result).thresholds
    ok = bool((np.diff(thr, axis=1) <= 0).all() and (thr[:, 0] > thr[:, 3]).all())
    return ok, _thresholds_measured(result)


def _values_rise(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    steps = np.diff(j.mean_values[:, j.visited], axis=1)
    return bool((steps > 0).all()), f"smallest rise {steps.min():.2f}, {_free(j)}"


def _values_ordered(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    v = j.mean_values[:, j.counts]
    gaps = np.diff(v, axis=0)
    ok = bool((gaps > -VALUE_ORDER_TOLERANCE).all() and (v[3] > v[:3].max(axis=0)).all())
    return ok, f"largest inversion {max(0.0, -gaps.min()):.2f}, {_free(j)}"


def _book_rate(result: AccessControlResult) -> tuple[bool | None, str]:
    if result.reward_rate.size < 2:
        return None, _rate_text(result)
    return bool(abs(result.reward_rate.mean() - BOOK_REWARD_RATE) <= _spread(result)), (
        _rate_text(result)
    )


def _zhang_thresholds(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    zhang_thr = thresholds(ZHANG.policy, j.visited)
    ok = bool((np.abs(j.thresholds - zhang_thr) <= 1).all())
    his = ", ".join(f"{p}: {t:g}" for p, t in zip(PRIORITIES, zhang_thr, strict=True))
    return ok, f"ours {_thresholds_measured(result)}; his {his}"


def _zhang_values(result: AccessControlResult) -> tuple[bool, str]:
    j = _judged(result)
    difference = float(np.abs(j.mean_values - ZHANG.values)[:, j.visited].max())
    return difference <= ZHANG_VALUE_TOLERANCE, f"largest difference {difference:.2f}"


def _zhang_rate(result: AccessControlResult) -> tuple[bool | None, str]:
    if result.reward_rate.size < 2:
        return None, _rate_text(result)
    ok = abs(result.reward_rate.mean() - ZHANG.reward_rate) <= _spread(result)
    return bool(ok), f"ours {_rate_text(result)}, his {ZHANG.reward_rate:.3f}"


# The figure's claims, judged over the free-server counts every seed visited in at
# least `WELL_VISITED` of its steps, and the side-by-side checks against Zhang's
# reproduction. The book prints no tolerances: each claim states the one used.
CHECKS = (
    Check(
        "priority 8 is accepted whenever a server is free (all seeds)",
        _accepts_8,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "the lowest priority (1) is rejected when few (1 or 2) servers are free (all seeds)",
        _rejects_1,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "every priority is accepted when enough servers are free (all seeds)",
        _all_accepted,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "the fewer servers are free, the higher the priority needed: acceptance thresholds "
        "ordered 1 >= 2 >= 4 >= 8, 1 > 8 (all seeds)",
        _ordered_thresholds,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "lower panel: the value of the best action rises with the free servers, for every "
        "priority (mean over seeds)",
        _values_rise,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "lower panel: the curves are ordered by priority, 8 highest (within "
        f"{VALUE_ORDER_TOLERANCE} where both reject and the values are equal in expectation)",
        _values_ordered,
        min_steps=BOOK_STEPS,
    ),
    Check(
        f"Rbar: the book's {BOOK_REWARD_RATE} lies within two standard deviations of the "
        "seeds' learned Rbar",
        _book_rate,
        min_steps=BOOK_STEPS,
    ),
    Check(
        "Zhang's reproduction: every seed's acceptance threshold within one server of his",
        _zhang_thresholds,
        min_steps=ZHANG_STEPS,
    ),
    Check(
        f"Zhang's reproduction: the values agree within {ZHANG_VALUE_TOLERANCE} where judged "
        "(his are 8 tilings after 1,000,000 steps)",
        _zhang_values,
        min_steps=ZHANG_STEPS,
    ),
    Check(
        "Zhang's reproduction: his Rbar lies within two standard deviations of the seeds'",
        _zhang_rate,
        min_steps=ZHANG_STEPS,
    ),
)


def _spread(result: AccessControlResult) -> float:
    """Two standard deviations of the seeds' `Rbar` (`beta = 0.01` keeps it noisy)."""
    return 2 * float(result.reward_rate.std(ddof=1)) if result.reward_rate.size > 1 else 0.0


def _rate_text(result: AccessControlResult) -> str:
    return (
        f"{result.reward_rate.mean():.3f} +- {result.reward_rate.std(ddof=1):.3f} sd"
        if result.reward_rate.size > 1
        else f"{result.reward_rate[0]:.3f}"
    )


def _thresholds_text(values: np.ndarray) -> str:
    low, high = values.min(), values.max()
    return f"{low:g}" if low == high else f"{low:g}-{high:g}"


def report(result: AccessControlResult, zhang: "ZhangReference | None" = None) -> list[str]:
    """The figure as text: the policy (fraction of seeds accepting), the values (mean
    over seeds) beside Zhang's, `Rbar` and the time taken (`replicate` prints the
    verdicts of `CHECKS` after it)."""
    zhang = ZHANG if zhang is None else zhang
    header = "priority \\ free " + "".join(f"{k:>7}" for k in range(NUM_SERVERS + 1))
    lines = [
        f"access control, differential semi-gradient Sarsa, tabular, alpha = beta = 0.01, "
        f"epsilon = 0.1: {result.policy.shape[0]} seeds x {result.num_steps:,} steps in "
        f"{result.wall_seconds:.0f} s (compilation included)",
        "fraction of steps at each free-server count (mean over seeds): "
        + " ".join(f"{f:.4f}" for f in result.occupancy.mean(axis=0)),
        "policy: fraction of seeds accepting (Zhang's: 1 accept, 0 reject)",
        header,
    ]
    accepted = result.policy.mean(axis=0)
    for i in reversed(range(len(PRIORITIES))):
        lines.append(f"{PRIORITIES[i]:>16}" + "".join(f"{a:>7.2f}" for a in accepted[i]))
        lines.append(f"{'Zhang':>16}" + "".join(f"{a:>7d}" for a in zhang.policy[i]))
    lines += ["differential value of the best action: mean over seeds (Zhang's)", header]
    values = result.values.mean(axis=0)
    for i in reversed(range(len(PRIORITIES))):
        lines.append(f"{PRIORITIES[i]:>16}" + "".join(f"{v:>7.2f}" for v in values[i]))
        lines.append(f"{'Zhang':>16}" + "".join(f"{v:>7.2f}" for v in zhang.values[i]))
    lines.append(
        f"Rbar learned: {_rate_text(result)} (per seed "
        + ", ".join(f"{r:.3f}" for r in result.reward_rate)
        + f"); reward per step received: {result.average_reward.mean():.3f}; the book: "
        f"about {BOOK_REWARD_RATE}; Zhang's: {zhang.reward_rate:.3f}"
    )
    return lines


def figure(result: AccessControlResult, zhang: "ZhangReference | None" = None):
    """Figure 10.5's two panels: the policy (fraction of seeds accepting) and the
    values (mean over seeds, Zhang's dashed)."""
    zhang = ZHANG if zhang is None else zhang
    fig, (top, bottom) = pyplot().subplots(2, 1, figsize=(6.5, 8), layout="constrained")
    image = top.imshow(
        result.policy.mean(axis=0)[::-1], cmap="Blues", vmin=0, vmax=1, aspect="auto"
    )
    top.set(
        yticks=range(4), yticklabels=PRIORITIES[::-1], xticks=range(NUM_SERVERS + 1),
        xlabel="number of free servers", ylabel="priority",
        title="policy: fraction of seeds accepting (1 accept, 0 reject)",
    )  # fmt: skip
    fig.colorbar(image, ax=top)
    for i, p in enumerate(PRIORITIES):
        bottom.plot(result.values.mean(axis=0)[i], c=f"C{i}", label=f"priority {p}")
        bottom.plot(zhang.values[i], c=f"C{i}", ls="--", lw=0.8)
    bottom.plot([], [], c="gray", ls="--", label="Zhang's reproduction")
    bottom.set(xlabel="number of free servers", ylabel="differential value of best action")
    bottom.legend(fontsize=8)
    fig.suptitle(
        f"Sutton and Barto (2018), Fig. 10.5: access control, {result.num_steps:,} steps",
        fontsize=9,
    )
    return fig


# Zhang's `chapter10/access_control.py` (commit 96bc203617a70eba6b7784a8f876aaf218b2c914),
# unmodified, its `differential_semi_gradient_sarsa(ValueFunction(8), 1_000_000)` after
# `np.random.seed(0)`, then its `value` / `state_value` read at every state (the
# driver in docs/average-reward.md); rows priority 1, 2, 4, 8, columns 0..10 free.
ZHANG = ZhangReference(
    policy=np.array(
        [
            [0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1],
            [0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 0],
            [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
            [0, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1],
        ]
    ),
    values=np.array(
        [
            [-9.545, -5.2, -2.617, -0.551, 0.713, 2.077, 3.456, 3.608, 0.619, 0.074, 0.002],
            [-9.023, -5.573, -2.32, -0.41, 1.066, 2.554, 4.463, 4.544, 1.018, 0.131, 0.0],
            [-9.183, -5.434, -1.225, 1.099, 3.308, 4.639, 6.287, 6.535, 2.128, 0.385, 0.041],
            [-9.069, -1.182, 2.694, 5.33, 7.077, 8.749, 10.161, 9.966, 3.261, 0.574, 0.08],
        ]
    ),
    reward_rate=2.5870517014780647,
)

ACCESS_CONTROL = Replication(
    title="Sutton and Barto (2018), Figure 10.5",
    paper="Sutton and Barto (2018), Fig. 10.5: differential semi-gradient Sarsa on access "
    "control (alpha = beta = 0.01, epsilon = 0.1, tabular, 2,000,000 steps): accept every "
    "priority when enough servers are free, reject the lowest when few are; Rbar about "
    f"{BOOK_REWARD_RATE}; beside Shangtong Zhang's reproduction",
    run=lambda seeds, steps, progress: access_control(
        num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=4,
    steps=2_000_000,
    quick_steps=200_000,
    steps_multiple=100_000,
    total=lambda steps: steps,
    report=report,
    figure=figure,
    filename="access_control_fig10_5.png",
    checks=CHECKS,
)
