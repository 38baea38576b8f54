"""Swift-Sarsa against True Online Sarsa(lambda) with a fixed step-size on the operant
conditioning benchmark (`alberta_eqx.streams.OperantConditioning`, whose details are
our choices: see its docstring), at full size by default: 30,000 signals, 2 actions.
The sweep, the agents and their settings are `alberta_eqx.replications.swift_sarsa`'s
(what `alberta-eqx replicate swift-sarsa` runs); this script runs them at any size.

For each initial step-size (the fixed one for Sarsa), `seeds` runs of `steps` steps;
prints the lifetime reward (the average over the run) and the last tenth's average
reward per method and step-size, mean and range over the seeds. The optimum under
ε-greedy behaviour with ε = 0.1 and 2 actions is 0.95 a step; chance is 0.5.

    PYTHONPATH=. python benchmarks/swift_sarsa_operant.py --signals 30000 --steps 200000
"""

import argparse

import numpy as np

from alberta_eqx.replications.swift_sarsa import OPERANT_STEP_SIZES, operant_sweep


def _line(method: str, alpha: float, rewards: np.ndarray, seconds: float) -> None:
    lifetime, last = rewards.mean(axis=1), rewards[:, -1]
    print(
        f"{method:45s} alpha0={alpha:<7g} lifetime {lifetime.mean():.3f} "
        f"[{lifetime.min():.3f}, {lifetime.max():.3f}]  last tenth {last.mean():.3f} "
        f"[{last.min():.3f}, {last.max():.3f}]  ({seconds:.0f} s)",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--actions", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--step-sizes", type=float, nargs="+", default=list(OPERANT_STEP_SIZES))
    args = parser.parse_args()
    operant_sweep(
        num_signals=args.signals,
        num_actions=args.actions,
        num_steps=args.steps,
        num_seeds=args.seeds,
        step_sizes=args.step_sizes,
        log=_line,
    )


if __name__ == "__main__":
    main()
