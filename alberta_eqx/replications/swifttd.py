"""SwiftTD's robustness to its initial step-size (Javed, Sharifnassab and Sutton 2024,
"SwiftTD: A Fast and Robust Algorithm for Temporal Difference Learning", RLC): the
prediction error after a run, against the initial step-size (9 values, `1e-4` to 1),
for TD(lambda) (`TDLinearLearner` with `LMS`), True Online TD(lambda)
(`TrueOnlineTDLearner`), TD-IDBD (`TDLinearLearner` with `IDBD`), AutoTDIDBD
(`TDLinearLearner` with `Autostep`) and SwiftTD (`SwiftTDLearner`), on three prediction
problems:

- **random walk**: the 19-state random walk with tabular features, `lambda = 0.8`,
  undiscounted, against its true values `(i - 10) / 10` (every state weighted alike);
- **mountain car**: the book's Mountain Car (`streams.MountainCar`) under the
  energy-pumping policy (throttle in the direction of the velocity: forward where
  `v >= 0`, reverse otherwise), tile coded (8 tilings of 8 x 8 tiles over position and
  velocity, numbered densely: 880 binary features), `gamma = 0.99`, `lambda = 0.9`;
- **cartpole**: gymnax's `CartPole-v1` (`GymnaxTDStream`) under the uniformly random
  policy, tile coded (8 tilings, 3 tiles across each of `x` in +-2.4, `x'` in +-3,
  `theta` in +-0.21 and `theta'` in +-3.5, hashed into 1,024 binary features),
  `gamma = 0.9`, `lambda = 0.9`.

The paper measures SwiftTD on prediction tasks derived from Atari games; these three
problems, the error measure and every setting here are our choices, not the paper's.
The error is the root-mean-square error of the learned values against the true values
on a fixed set of test states: the walk's 19 states, or 200 states visited by the
policy (every 25th state of a separate run of the stream), whose true values are
Monte Carlo returns (mountain car: one rollout, the dynamics and policy being
deterministic; cartpole: the mean of 100 rollouts). Every method runs with its
library defaults apart from the initial step-size (SwiftTD: `max_step_size` 0.1,
`step_size_decay` 0.999, `meta_step_size` 1e-3; IDBD's and Autostep's
`meta_step_size` 0.01), and no bias weight. Each method's sweep, 9 step-sizes by all
the seeds, is one compiled, vectorised program (`eqx.filter_vmap` over the
step-sizes, the seeds as the runner's batch), run in equal segments with the error
measured between them.

The claim tested, per problem: **SwiftTD's final error varies least across the
initial step-sizes** (its spread, the largest minus the smallest mean final error over
the step-sizes, is the smallest of the five methods; a run that diverged counts as an
infinite error).

`SWIFTTD` is what `alberta-eqx replicate swifttd` runs; the cartpole problem needs the
`[gymnax]` extra.
"""

import functools
from collections.abc import Callable, Sequence
from typing import Any, NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, PRNGKeyArray

from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress, in_segments
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.optimizers import IDBD, LMS, Autostep
from alberta_eqx.replications.random_walk import rms_error
from alberta_eqx.replications.verdicts import Check, Replication, mark_off_axes
from alberta_eqx.streams import AbstractTDStream
from alberta_eqx.streams.environments import GymnaxTDStream
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.random_walk import RandomWalkChainStream
from alberta_eqx.streams.tiles import TileCoder
from alberta_eqx.td import SwiftTDLearner, TDLinearLearner, TrueOnlineTDLearner

STEP_SIZES = tuple(float(a) for a in np.logspace(-4, 0, 9))
"""The initial step-sizes swept: `1e-4, 10**-3.5, ..., 1`."""

METHODS: dict[str, Callable[[int, float, Any], AbstractLearner]] = {
    "TD(lambda)": lambda d, lam, a: TDLinearLearner(d, LMS(a), lam, use_bias=False),
    "True Online TD(lambda)": lambda d, lam, a: TrueOnlineTDLearner(d, a, lam, use_bias=False),
    "TD-IDBD": lambda d, lam, a: TDLinearLearner(d, IDBD(a), lam, use_bias=False),
    "AutoTDIDBD": lambda d, lam, a: TDLinearLearner(d, Autostep(a), lam, use_bias=False),
    "SwiftTD": lambda d, lam, a: SwiftTDLearner(d, lam, initial_step_size=a),
}
"""name -> `make(feature_dim, lambda_, initial_step_size)`, each method's learner."""


class PredictionProblem(NamedTuple):
    """A policy-evaluation problem with known values on test states.

    **Fields:**

    - `name`: as printed.
    - `stream`: the transitions, a TD stream.
    - `lambda_`: every method's trace-decay parameter.
    - `features`: `(n, d)` the test states' features.
    - `true_values`: `(n,)` their true values.
    """

    name: str
    stream: AbstractTDStream
    lambda_: float
    features: Float[Array, "n d"]
    true_values: Float[Array, " n"]


def random_walk_problem() -> PredictionProblem:
    """The 19-state random walk, tabular, undiscounted; every state a test state."""
    stream = RandomWalkChainStream(19)
    return PredictionProblem("random walk", stream, 0.8, jnp.eye(19), stream.true_values())


def _energy_pumping(key: PRNGKeyArray, observation: Float[Array, " 2"]) -> Array:
    """Throttle in the direction of the velocity (actions 0 reverse, 2 forward)."""
    return jnp.where(observation[1] >= 0, 2, 0)


def _uniform_cartpole(key: PRNGKeyArray, observation: Float[Array, " 4"]) -> Array:
    return jax.random.randint(key, (), 0, 2)


@functools.cache
def _mountain_car_coder() -> TileCoder:
    low, high = np.array([-1.2, -0.07]), np.array([0.5, 0.07])
    with jax.ensure_compile_time_eval():  # cached: its arrays must not be tracers
        return TileCoder(8, 8 / (high - low), low=low, high=high)


@functools.cache
def _cartpole_coder() -> TileCoder:
    width = 2 * np.array([2.4, 3.0, 0.21, 3.5])
    with jax.ensure_compile_time_eval():
        return TileCoder(8, 3 / width, size=1024)


# Module-level functions, so that the streams' static fields hash.
def _mountain_car_features(observation: Float[Array, " 2"]) -> Float[Array, " d"]:
    return _mountain_car_coder().features(observation)


def _cartpole_features(observation: Float[Array, " 4"]) -> Float[Array, " d"]:
    return _cartpole_coder().features(observation)


def _test_states(
    env: Any,
    params: Any,
    policy: Callable,
    features: Callable,
    discount: float,
    key: PRNGKeyArray,
    *,
    num_states: int = 200,
    spacing: int = 25,
    num_rollouts: int = 1,
    horizon: int = 2000,
) -> tuple[Float[Array, "n d"], Float[Array, " n"]]:
    """`num_states` states visited by `policy` (every `spacing`-th of one run of `env`)
    with their features, and their values: the mean discounted return of
    `num_rollouts` rollouts of `horizon` steps (ending at the episode's end)."""
    states_key, rollouts_key = jax.random.split(key)

    def visit(carry, key):
        observation, state = carry
        action_key, step_key = jax.random.split(key)
        action = policy(action_key, observation)
        observation, state, *_ = env.step(step_key, state, action, params)
        return (observation, state), (observation, state)

    first = env.reset(states_key, params)
    keys = jax.random.split(jax.random.fold_in(states_key, 1), num_states * spacing)
    _, (observations, states) = jax.lax.scan(visit, first, keys)
    every = slice(spacing - 1, None, spacing)
    observations, states = jax.tree.map(lambda a: a[every], (observations, states))

    def rollout(observation, state, key):
        def step(carry, key):
            observation, state, weight, total = carry
            action_key, step_key = jax.random.split(key)
            action = policy(action_key, observation)
            observation, state, reward, terminated, truncated, _ = env.step(
                step_key, state, action, params
            )
            total = total + weight * reward
            weight = jnp.where(terminated | truncated, 0.0, weight * discount)
            return (observation, state, weight, total), None

        init = (observation, state, jnp.ones(()), jnp.zeros(()))
        (_, _, _, total), _ = jax.lax.scan(step, init, jax.random.split(key, horizon))
        return total

    def value(observation, state, key):
        keys = jax.random.split(key, num_rollouts)
        return jax.vmap(rollout, in_axes=(None, None, 0))(observation, state, keys).mean()

    keys = jax.random.split(rollouts_key, num_states)
    values = jax.jit(jax.vmap(value))(observations, states, keys)
    return jax.vmap(features)(observations), values


def mountain_car_problem(seed: int = 1_000_000) -> PredictionProblem:
    """Mountain Car under the energy-pumping policy, tile coded, `gamma = 0.99`."""
    env = MountainCar()
    stream = GymnaxTDStream(
        env, discount=0.99, policy=_energy_pumping, features=_mountain_car_features
    )
    features, values = _test_states(
        env,
        env.default_params,
        _energy_pumping,
        _mountain_car_features,
        0.99,
        jax.random.key(seed),
    )
    return PredictionProblem("mountain car", stream, 0.9, features, values)


def cartpole_problem(seed: int = 1_000_000) -> PredictionProblem:
    """gymnax's CartPole-v1 under the uniformly random policy, tile coded, `gamma = 0.9`."""
    stream = GymnaxTDStream(
        "CartPole-v1", discount=0.9, policy=_uniform_cartpole, features=_cartpole_features
    )
    features, values = _test_states(
        stream.env,
        stream.env_params,
        _uniform_cartpole,
        _cartpole_features,
        0.9,
        jax.random.key(seed),
        num_rollouts=100,
        horizon=200,
    )
    return PredictionProblem("cartpole", stream, 0.9, features, values)


PROBLEMS: dict[str, Callable[[], PredictionProblem]] = {
    "random walk": random_walk_problem,
    "mountain car": mountain_car_problem,
    "cartpole": cartpole_problem,
}
"""name -> the problem's constructor, in the order they run."""


class Sensitivity(NamedTuple):
    """**Fields:**

    - `problems`: the problems' names.
    - `step_sizes`: `(S,)` the initial step-sizes.
    - `steps`: `(P,)` the steps learned at each measurement.
    - `errors`: `errors[problem][method]`, `(S, seeds, P)` the RMS error of the
      values (NaN where the run diverged).
    """

    problems: tuple[str, ...]
    step_sizes: np.ndarray
    steps: np.ndarray
    errors: dict[str, dict[str, np.ndarray]]

    def final(self, problem: str, method: str) -> np.ndarray:
        """`(S,)` the mean final error over the seeds per step-size, infinite where a
        seed diverged (or its error overflowed)."""
        last = self.errors[problem][method][..., -1]
        return np.where(np.isfinite(last).all(axis=-1), last.mean(axis=-1), np.inf)

    def spread(self, problem: str, method: str) -> float:
        """The largest minus the smallest of `final` (infinite if any diverged)."""
        final = self.final(problem, method)
        return float(final.max() - final.min()) if np.isfinite(final).all() else np.inf


def swifttd_sensitivity(
    *,
    num_steps: int = 20_000,
    num_seeds: int = 30,
    step_sizes: Sequence[float] = STEP_SIZES,
    problems: Sequence[str] = tuple(PROBLEMS),
    num_points: int = 10,
    seed: int = 0,
    progress: Progress | None = None,
) -> Sensitivity:
    """Every method of `METHODS` on every problem of `PROBLEMS` at every initial
    step-size, `num_seeds` seeds of `num_steps` steps each; the RMS error measured
    `num_points` times, evenly.

    **Arguments:**

    - `num_steps`: steps per run, a multiple of `num_points` times the runner's
      block size (`steps_multiple` of the replication).
    - `num_seeds`: independent runs; every method sees the same streams.
    - `step_sizes`: the initial step-sizes.
    - `problems`: names from `PROBLEMS`.
    - `num_points`: measurements per run (equal segments: one compiled program).
    - `seed`: the runs' root key.
    - `progress`: called with the number of steps after every segment.
    """
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    alphas = jnp.asarray(step_sizes)
    segment = num_steps // num_points
    if segment * num_points != num_steps:
        raise ValueError(f"num_points ({num_points}) must divide num_steps ({num_steps})")
    errors: dict[str, dict[str, np.ndarray]] = {}
    for name in problems:
        problem = PROBLEMS[name]()
        errors[name] = {}
        for method, make in METHODS.items():
            learners = eqx.filter_vmap(
                lambda a, make=make, p=problem: make(p.stream.feature_dim, p.lambda_, a)
            )(alphas)
            results = in_segments(
                learners, problem.stream, num_steps, keys, progress, segment_steps=segment
            )
            errors[name][method] = np.stack(
                [
                    np.asarray(rms_error(r.learner, problem.true_values, problem.features))
                    for r in results
                ],
                axis=-1,
            )
    return Sensitivity(
        problems=tuple(problems),
        step_sizes=np.asarray(step_sizes, np.float64),
        steps=np.arange(1, num_points + 1) * segment,
        errors=errors,
    )


def _report(result: Sensitivity) -> list[str]:
    lines = []
    for problem in result.problems:
        lines.append(
            f"{problem}: final RMS error (mean over seeds) by initial step-size "
            + " ".join(f"{a:.2g}" for a in result.step_sizes)
        )
        for method in METHODS:
            cells = " ".join(f"{e:7.3g}" for e in result.final(problem, method))
            diverged = (~np.isfinite(result.errors[problem][method][..., -1])).sum(axis=-1)
            counts = ", ".join(
                f"{n} at {a:.2g}" for a, n in zip(result.step_sizes, diverged, strict=True) if n
            )
            lines.append(
                f"  {method:24} {cells}  spread {result.spread(problem, method):.3g}"
                + (f"  (seeds diverged: {counts})" if counts else "")
            )
    lines.append("inf: a seed diverged at that step-size")
    return lines


def _figure(result: Sensitivity) -> Any:
    plt = pyplot()
    n = len(result.problems)
    fig, axes = plt.subplots(1, n, figsize=(5 * n, 4.2), layout="constrained", squeeze=False)
    for ax, problem in zip(axes[0], result.problems, strict=True):
        finite = np.concatenate([result.final(problem, m) for m in METHODS])
        finite = finite[np.isfinite(finite)]
        top = 2 * float(finite.max()) if finite.size else 1.0
        for i, method in enumerate(METHODS):
            final = result.final(problem, method)
            shown = np.where(final > top, np.nan, final)
            ax.plot(result.step_sizes, shown, "o-", ms=4, c=f"C{i}", label=method)
            # diverged: a cross per method, stacked down from the top so none hides another
            diverged = ~np.isfinite(final)
            height = np.full(diverged.sum(), top * (0.95 - 0.05 * i))
            ax.plot(result.step_sizes[diverged], height, "x", c=f"C{i}", ms=7, clip_on=False)
            mark_off_axes(ax, result.step_sizes, np.where(diverged, np.nan, final), top, f"C{i}")
        ax.plot([], [], "x", c="gray", label="diverged (a seed or more)")
        ax.set(
            xscale="log",
            xlabel="initial step-size",
            ylabel=f"RMS value error after {result.steps[-1]:,} steps",
            ylim=(0, top),
            title=problem,
        )
        ax.legend(fontsize=7)
    fig.suptitle(
        "Javed, Sharifnassab and Sutton (2024), SwiftTD: sensitivity to the initial "
        "step-size (our problems, mean over seeds)",
        fontsize=10,
    )
    return fig


def _smallest_spread(problem: str) -> Check:
    def measure(result: Sensitivity) -> tuple[bool | None, str]:
        if problem not in result.problems:
            return None, f"{problem} was not run"
        spreads = {m: result.spread(problem, m) for m in METHODS}
        others = [s for m, s in spreads.items() if m != "SwiftTD"]
        passed = spreads["SwiftTD"] < min(others)
        return bool(passed), ", ".join(f"{m} {s:.3g}" for m, s in spreads.items())

    return Check(
        f"Javed et al. (2024): SwiftTD is robust to its initial step-size — on {problem}, "
        "SwiftTD's spread of the final error across the 9 initial step-sizes is the "
        "smallest of the five methods",
        measure,
        min_steps=20_000,
    )


SWIFTTD = Replication(
    title="Javed, Sharifnassab and Sutton (2024), SwiftTD's sensitivity to the step-size",
    paper="Javed, Sharifnassab and Sutton (2024), SwiftTD: robust to its hyperparameters "
    "where TD(lambda) and True Online TD(lambda) are not; measured here as the final RMS "
    "value error against the initial step-size on our three problems (random walk, "
    "Mountain Car, gymnax CartPole), not the paper's Atari tasks",
    run=lambda seeds, steps, progress: swifttd_sensitivity(
        num_steps=steps, num_seeds=seeds, progress=progress
    ),
    seeds=30,
    steps=20_000,
    quick_steps=5_000,
    quick_seeds=5,
    steps_multiple=10 * 500,
    total=lambda steps: len(PROBLEMS) * len(METHODS) * steps,
    report=_report,
    figure=_figure,
    filename="swifttd_sensitivity.png",
    checks=tuple(_smallest_spread(p) for p in PROBLEMS),
)
