"""Time per step of every method of `alberta-eqx replicate plasticity` with all its seeds
in one compiled program (`eqx.filter_vmap` over seeds), as the replication runs them:
`ClassifierLearner` on input-permuted digits, the UPGD paper's (300, 150) ReLU network,
the replication's settings. Per method: the first call (tracing and compilation
included), then the median of `--rounds` further calls of `--steps` steps each.

    python benchmarks/plasticity_methods.py [--seeds 10] [--steps 10000] [--rounds 3]
        [--methods SGD UPGD ...] [--out benchmarks/plasticity_methods.json]
"""

import argparse
import json
import os
import platform
import statistics
import time

import equinox as eqx
import jax

from alberta_eqx.replications.plasticity import METHODS, Settings, _builder
from alberta_eqx.runners import run_learning_loop_batched
from alberta_eqx.streams.permuted import InputPermutedStream


def _block(tree):
    return jax.tree.map(lambda a: a.block_until_ready() if isinstance(a, jax.Array) else a, tree)


def _write(args, rows) -> None:
    record = {
        "args": vars(args),
        "machine": {
            "platform": platform.platform(),
            "cpus": os.cpu_count(),
            "load_average": os.getloadavg(),
            "jax": jax.__version__,
            "device": str(jax.devices()[0]),
        },
        "methods": rows,
    }
    with open(args.out, "w") as f:
        json.dump(record, f, indent=1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--steps", type=int, default=10_000, help="steps per timed call")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--hidden", type=int, nargs="*", default=[300, 150])
    parser.add_argument("--methods", nargs="*", default=list(METHODS), choices=METHODS)
    parser.add_argument("--out", default="benchmarks/plasticity_methods.json")
    args = parser.parse_args()
    stream = InputPermutedStream(interval=5000)
    keys = jax.random.split(jax.random.key(0), args.seeds)
    states = eqx.filter_vmap(stream.init)(keys)
    rows = {}
    for method in args.methods:
        build = _builder(
            method, Settings(), tuple(args.hidden), stream.inputs.shape[1], stream.num_classes
        )
        learners = eqx.filter_vmap(eqx.filter_vmap(build))(keys[None])

        def call(learners=learners):
            return _block(
                run_learning_loop_batched(
                    learners,
                    stream,
                    args.steps,
                    keys,
                    stream_states=states,
                    metrics_window=stream.interval
                    if args.steps % stream.interval == 0
                    else args.steps,
                )
            )

        start = time.perf_counter()
        call()
        first = time.perf_counter() - start
        times = []
        for _ in range(args.rounds):
            start = time.perf_counter()
            call()
            times.append(time.perf_counter() - start)
        median = statistics.median(times)
        rows[method] = {
            "first_call_s": first,
            "median_s": median,
            "us_per_step_all_seeds": 1e6 * median / args.steps,
            "steps_per_s_per_seed": args.steps / median,
            "seed_steps_per_s": args.seeds * args.steps / median,
            "seconds_for_1M_steps_all_seeds": 1e6 * median / args.steps,
        }
        row = rows[method]
        print(
            f"{method:16} first call {first:7.1f} s  {row['us_per_step_all_seeds']:8.1f} us/step"
            f" ({args.seeds} seeds together)  {row['steps_per_s_per_seed']:8.0f} steps/s per"
            f" seed  1M steps: {row['seconds_for_1M_steps_all_seeds']:6.0f} s",
            flush=True,
        )
        _write(args, rows)  # after every method: a run cut short keeps what it measured


if __name__ == "__main__":
    main()
