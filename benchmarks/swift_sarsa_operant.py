"""Swift-Sarsa against True Online Sarsa(lambda) with a fixed step-size on the operant
conditioning benchmark (`alberta_eqx.streams.OperantConditioning`, whose details are
our choices: see its docstring), at full size by default: 30,000 signals, 2 actions.

For each initial step-size (the fixed one for Sarsa), `seeds` runs of `steps` steps;
prints the lifetime reward (the average over the run) and the last tenth's average
reward per method and step-size, mean and range over the seeds. The optimum under
ε-greedy behaviour with ε = 0.1 and 2 actions is 0.95 a step; chance is 0.5.

    PYTHONPATH=. python benchmarks/swift_sarsa_operant.py --signals 30000 --steps 200000
"""

import argparse
import time

import jax
import numpy as np

from alberta_eqx.control import SwiftSarsa, run_operant
from alberta_eqx.streams import OperantConditioning


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=int, default=30_000)
    parser.add_argument("--actions", type=int, default=2)
    parser.add_argument("--steps", type=int, default=200_000)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument(
        "--step-sizes", type=float, nargs="+", default=[1e-5, 1e-4, 1e-3, 1e-2, 1e-1]
    )
    args = parser.parse_args()
    env = OperantConditioning(args.signals, args.actions)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    methods = {
        "Swift-Sarsa": dict(max_step_size=0.1, step_size_decay=0.999, meta_step_size=1e-3),
        "True Online Sarsa(lambda), fixed step-size": dict(
            max_step_size=1e6, step_size_decay=1.0, meta_step_size=0.0
        ),
    }
    for name, kwargs in methods.items():
        for alpha in args.step_sizes:
            agent = SwiftSarsa(
                args.signals,
                args.actions,
                discount=0.9,
                exploration=0.1,
                lambda_=0.8,
                initial_step_size=alpha,
                **kwargs,
            )
            start = time.perf_counter()
            rewards = np.asarray(run_operant(agent, env, keys, args.steps, 10).rewards)
            seconds = time.perf_counter() - start
            lifetime, last = rewards.mean(axis=1), rewards[:, -1]
            print(
                f"{name:45s} alpha0={alpha:<7g} lifetime {lifetime.mean():.3f} "
                f"[{lifetime.min():.3f}, {lifetime.max():.3f}]  last tenth {last.mean():.3f} "
                f"[{last.min():.3f}, {last.max():.3f}]  ({seconds:.0f} s)",
                flush=True,
            )


if __name__ == "__main__":
    main()
