"""Forager (`continual-foragax`, the Alberta group's continual RL benchmark in gymnax)
inside the compiled control loop: Stream AC(lambda) and Stream Q(lambda), many seeds in
one vmapped program, the reward rate over time and the wall time.

Forager never ends (one unending episode), so the reward rate of a segment of
`--segment` steps is the growth of the loop's running return over it, divided by the
segment's length. Both agents see the aperture observation flattened (5 x 5 x 3 colour
channels: 75 inputs) through `StreamingWrapper` (observation normalisation and reward
scaling, no time feature: there is no episode), with the authors' defaults
(Elsayed, Vasan and Mahmood 2024); Stream Q explores over the first 5% of the run.
No published numbers exist for these agents on Forager: this records the first run.

`--centering none value` runs each agent without and with reward centering (Naik,
Wan, Tomar and Sutton 2024): a `RewardRate` `Rbar` of `--rate-step-size`, subtracted
from every reward in the TD errors, learned from the TD error (`value`, value-based
centering) or from the reward (`simple`); a centered agent's results are named
`AGENT+CENTERING` (`stream_ac+value`).

    PYTHONPATH=. python benchmarks/forager.py --steps 1000000 --seeds 10 \\
        --centering none value --out benchmarks/forager.json --figure docs/images/forager.png
"""

import argparse
import itertools
import json
import time
from typing import Any

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, PRNGKeyArray, PyTree

from alberta_eqx.control import StreamAC, StreamingWrapper, StreamQ, run_control, start_control
from alberta_eqx.td import RewardRate

ENV_ID = "ForagaxNeverEndingRelearning-v1"
# --centering: the source of `Rbar`'s update (`RewardRate.update_from`)
CENTERING = {"value": "td_error", "simple": "reward"}


class ContinuingAdapter(eqx.Module):
    """A continuing `foragax` environment with the control loop's gymnax interface:
    `step` returns `(observation, state, reward, terminated, truncated, info)` with
    `info["final_observation"]`, never terminated nor truncated, the observation
    flattened to float32.

    foragax 0.58's `step_env` calls gymnax's `discount`, which in gymnax 1.0 asks for
    `is_terminated`, a method foragax does not define (it defines the older
    `is_terminal`, always False): `make_env` gives the instance one that answers the
    same.

    **Arguments:**

    - `env`: a `foragax.registry.make(...)` environment.
    """

    env: Any = eqx.field(static=True)

    @property
    def default_params(self) -> PyTree:
        return self.env.default_params

    @property
    def num_actions(self) -> int:
        return self.env.num_actions

    def reset(self, key: PRNGKeyArray, params: PyTree = None) -> tuple[Array, PyTree]:
        observation, state = self.env.reset_env(key, params)
        return jnp.ravel(observation).astype(jnp.float32), state

    def step(self, key: PRNGKeyArray, state: PyTree, action: Array, params: PyTree = None):
        # foragax's own `step` does this and no more (no auto-reset: it never ends)
        observation, state, reward, _, _ = self.env.step_env(key, state, action, params)
        observation = jnp.ravel(observation).astype(jnp.float32)
        no = jnp.zeros((), bool)
        info = {"final_observation": observation}
        return observation, state, jnp.asarray(reward, jnp.float32), no, no, info


def make_env(env_id: str = ENV_ID, aperture_size: int = 5) -> ContinuingAdapter:
    """The foragax environment `env_id` with a square aperture, adapted."""
    from foragax.registry import make

    env = make(env_id, aperture_size=aperture_size)
    # gymnax 1.0's `discount` calls `is_terminated`; foragax 0.58 names it `is_terminal`
    env.is_terminated = env.is_terminal
    return ContinuingAdapter(env)


def run_forager(
    agent_name: str,
    *,
    num_seeds: int = 10,
    num_steps: int = 1_000_000,
    segment_steps: int = 10_000,
    env_id: str = ENV_ID,
    aperture_size: int = 5,
    seed: int = 0,
    centering: str = "none",
    rate_step_size: float = 0.001,
) -> dict:
    """One agent on Forager, `num_seeds` seeds vmapped, in compiled segments.

    **Arguments:**

    - `agent_name`: `"stream_ac"` or `"stream_q"`.
    - `num_seeds`, `num_steps`, `segment_steps` (must divide `num_steps`): the size.
    - `env_id`, `aperture_size`: the environment.
    - `seed`: the root key.
    - `centering`: `"none"`, or reward centering updated from the TD error (`"value"`)
      or from the reward (`"simple"`), with step-size `rate_step_size`.

    Returns `{"steps", "reward_rate" (seeds x segments), "wall_seconds",
    "first_segment_seconds"}` (the first segment includes compilation), and with
    centering `"final_rbar"`, each seed's `Rbar` at the end (in the scaled rewards the
    agent learns from).
    """
    if num_steps % segment_steps:
        raise ValueError(f"segment_steps ({segment_steps}) must divide num_steps ({num_steps})")
    if centering not in ("none", *CENTERING):
        raise ValueError(
            f"centering must be 'none' or one of {tuple(CENTERING)}, got {centering!r}"
        )
    rate = (
        None
        if centering == "none"
        else RewardRate(rate_step_size, update_from=CENTERING[centering])
    )
    base = make_env(env_id, aperture_size)
    env = StreamingWrapper(base, 0.99, None)
    feature_dim = int(np.prod(base.env.observation_space(base.default_params).shape))

    def start(key):
        agent_key, run_key = jax.random.split(key)
        if agent_name == "stream_ac":
            agent = StreamAC(feature_dim, base.num_actions, key=agent_key, reward_rate=rate)
        elif agent_name == "stream_q":
            exploration = max(1, num_steps // 20)  # the authors: 5% of the run
            agent = StreamQ(
                feature_dim,
                base.num_actions,
                key=agent_key,
                exploration_steps=exploration,
                reward_rate=rate,
            )
        else:
            raise ValueError(f"agent_name must be 'stream_ac' or 'stream_q', got {agent_name!r}")
        return start_control(agent, env, run_key, max_episodes=1)

    start_time = time.perf_counter()
    runs = eqx.filter_jit(eqx.filter_vmap(start))(
        jax.random.split(jax.random.key(seed), num_seeds)
    )
    segment = eqx.filter_jit(eqx.filter_vmap(lambda r: run_control(r, env, segment_steps)))
    rates, first = [], None
    previous = np.asarray(runs.episode_return, np.float64)
    for _ in range(num_steps // segment_steps):
        runs = segment(runs)
        # the one unending episode's running return: its growth over the segment
        total = np.asarray(runs.episode_return, np.float64)
        rates.append((total - previous) / segment_steps)
        previous = total
        if first is None:
            first = time.perf_counter() - start_time
    result = {
        "steps": np.arange(segment_steps, num_steps + 1, segment_steps).tolist(),
        "reward_rate": np.stack(rates, axis=1).tolist(),
        "wall_seconds": time.perf_counter() - start_time,
        "first_segment_seconds": first,
    }
    if rate is not None:
        result["final_rbar"] = np.asarray(runs.agent.reward_rate.estimate).tolist()
    return result


def plot(results: dict, path: str) -> None:
    """Reward rate against steps, mean and per-seed range, one line per agent (dashed
    with centering)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, result in results["agents"].items():
        steps, rate = np.asarray(result["steps"]), np.asarray(result["reward_rate"])
        (line,) = ax.plot(
            steps,
            rate.mean(axis=0),
            "--" if "+" in name else "-",
            label=f"{name} (mean of {rate.shape[0]})",
        )
        ax.fill_between(
            steps, rate.min(axis=0), rate.max(axis=0), alpha=0.2, color=line.get_color()
        )
    ax.set(xlabel="steps", ylabel=f"reward per step (segments of {results['segment']:,})")
    ax.set_title(f"{results['env_id']}, aperture {results['aperture_size']}")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--segment", type=int, default=10_000)
    parser.add_argument("--agents", nargs="+", default=["stream_ac", "stream_q"])
    parser.add_argument("--centering", nargs="+", default=["none"], choices=["none", *CENTERING])
    parser.add_argument("--rate-step-size", type=float, default=0.001, help="Rbar's step-size")
    parser.add_argument("--env-id", default=ENV_ID)
    parser.add_argument("--aperture", type=int, default=5)
    parser.add_argument("--out", help="write the curves and times here (JSON)")
    parser.add_argument("--figure", help="save the reward-rate plot here")
    args = parser.parse_args()
    results = {
        "env_id": args.env_id,
        "aperture_size": args.aperture,
        "segment": args.segment,
        "rate_step_size": args.rate_step_size,
        "agents": {},
    }
    for agent, centering in itertools.product(args.agents, args.centering):
        name = agent if centering == "none" else f"{agent}+{centering}"
        result = run_forager(
            agent,
            num_seeds=args.seeds,
            num_steps=args.steps,
            segment_steps=args.segment,
            env_id=args.env_id,
            aperture_size=args.aperture,
            centering=centering,
            rate_step_size=args.rate_step_size,
        )
        results["agents"][name] = result
        rate = np.asarray(result["reward_rate"])
        rbar = (
            f"; final Rbar (scaled) {np.mean(result['final_rbar']):.4f}"
            if centering != "none"
            else ""
        )
        tenth = max(1, rate.shape[1] // 10)
        print(
            f"{name}: {args.seeds} seeds x {args.steps:,} steps in {result['wall_seconds']:.0f} s "
            f"(first segment, compilation included: {result['first_segment_seconds']:.0f} s); "
            f"reward rate, first tenth {rate[:, :tenth].mean():.4f}, last tenth "
            f"{rate[:, -tenth:].mean():.4f} [seeds {rate[:, -tenth:].mean(axis=1).min():.4f}, "
            f"{rate[:, -tenth:].mean(axis=1).max():.4f}]{rbar}",
            flush=True,
        )
    if args.out:
        with open(args.out, "w") as f:
            json.dump(results, f)
    if args.figure:
        plot(results, args.figure)


if __name__ == "__main__":
    main()
