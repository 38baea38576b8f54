"""Run a sweep file into a store, timing each shard (the issue-14 sweep's record).

    python benchmarks/sweep.py benchmarks/sweep-10k.toml --out /tmp/sweep-10k --shard-size 500

Run it under `/usr/bin/time -v` for the peak resident memory.
"""

import argparse
import logging
import time

from alberta_eqx.sweeps import load_spec, run_sweep


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("spec")
    parser.add_argument("--out", required=True)
    parser.add_argument("--shard-size", type=int)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    spec = load_spec(args.spec)
    start = time.perf_counter()
    ds = run_sweep(spec, args.out, shard_size=args.shard_size)
    seconds = time.perf_counter() - start
    steps = spec.num_configs * ds.sizes["seed"] * spec.num_steps
    print(
        f"{spec.num_configs} configurations x {ds.sizes['seed']} seeds x {spec.num_steps} steps "
        f"= {steps:.3g} learner-steps in {seconds:.0f} s ({steps / seconds:.3g} per second); "
        f"completed: {int(ds.completed.sum())}/{spec.num_configs}"
    )


if __name__ == "__main__":
    main()
