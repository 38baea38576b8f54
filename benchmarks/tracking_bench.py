"""The cost of step-size tracking: one seed of IDBD on `DriftingTargetStream(10)`, run
untracked and tracked every `--interval` steps, in paired rounds; the median of the
per-round ratios (tracked / untracked).

    python benchmarks/tracking_bench.py [--steps 1000000] [--rounds 15] [--interval 100]

Both programs are compiled ahead of time, then called in alternation. `--clock
process` (the default) times the process's CPU time, which a shared machine's other
jobs disturb far less than the wall clock (`--clock wall`).
"""

import argparse
import json
import statistics
import time

import jax

import alberta_eqx as ae


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=1_000_000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--interval", type=int, default=100)
    parser.add_argument("--dim", type=int, default=10)
    parser.add_argument("--clock", choices=["process", "wall"], default="process")
    args = parser.parse_args()
    clock = time.process_time if args.clock == "process" else time.perf_counter
    learner = ae.LinearLearner(args.dim, ae.IDBD(0.01, meta_step_size=0.01))
    stream = ae.DriftingTargetStream(args.dim)
    key = jax.random.key(0)

    def compiled(interval):
        config = None if interval is None else ae.StepSizeTrackingConfig(interval)
        run = jax.jit(
            lambda k: ae.run_learning_loop(
                learner, stream, args.steps, k, step_size_tracking=config
            )
        )
        program = run.lower(key).compile()
        jax.block_until_ready(program(key))
        return program

    programs = {"untracked": compiled(None), "tracked": compiled(args.interval)}
    seconds: dict[str, list[float]] = {name: [] for name in programs}
    for _ in range(args.rounds):
        for name, program in programs.items():
            start = clock()
            jax.block_until_ready(program(key))
            seconds[name].append(clock() - start)
    ratios = [t / u for t, u in zip(seconds["tracked"], seconds["untracked"], strict=True)]
    print(
        json.dumps(
            {
                "settings": vars(args),
                "median_seconds": {n: statistics.median(s) for n, s in seconds.items()},
                "median_ratio": statistics.median(ratios),
                "ratios": [round(r, 4) for r in ratios],
            },
            indent=1,
        )
    )


if __name__ == "__main__":
    main()
