"""MLPLearner's `flatten` inside a compiled run: microseconds per step of a 64x64 MLP
(12 features) over 10,000 steps of `DriftingTargetStream(12)`, with the optimizer on the
parameters' pytree (the default) and on one raveled vector (`flatten=True`), rounds
interleaved; the ratio is the median of the per-round ratios (bench.py measures the
single-event side).

    python benchmarks/mlp_layout.py [--rounds 7] [--steps 10000] [--out benchmarks/mlp_layout.json]
"""

import argparse
import json
import statistics
import time

import jax
import optax

import alberta_eqx as ae
import alberta_eqx.optax as aeo

STEPS = 10_000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per timed run")
    parser.add_argument("--out", default="benchmarks/mlp_layout.json")
    args = parser.parse_args()
    stream = ae.DriftingTargetStream(12)
    optimizers = {
        "Autostep": aeo.autostep(meta_step_size=0.01),
        "IDBD": aeo.idbd(meta_step_size=0.01),
        "Adam": optax.adam(1e-3),
        "SGD": optax.sgd(1e-3),
    }
    relu = {"activation": jax.nn.relu, "layer_norm": False}  # the network measured so far
    network = ae.MLP(12, "scalar", (64, 64), key=jax.random.key(1), **relu)
    runs = {}
    for name, tx in optimizers.items():
        for flatten in (False, True):
            learner = ae.MLPLearner(network, tx, flatten=flatten)

            def run(learner=learner):
                result = ae.run_learning_loop(learner, stream, args.steps, jax.random.key(0))
                result.metrics.squared_error.block_until_ready()

            run()  # compile
            runs[name, flatten] = run
    times = {case: [] for case in runs}
    for _ in range(args.rounds):
        for case, run in runs.items():
            start = time.perf_counter()
            run()
            times[case].append((time.perf_counter() - start) / args.steps * 1e6)
    rows = []
    for name in optimizers:
        tree, flat = times[name, False], times[name, True]
        row = {
            "optimizer": name,
            "pytree_us_per_step": statistics.median(tree),
            "flatten_us_per_step": statistics.median(flat),
            "flatten_over_pytree": statistics.median(
                f / t for f, t in zip(flat, tree, strict=True)
            ),
        }
        rows.append(row)
        print(
            f"{name:9s} pytree {row['pytree_us_per_step']:5.1f} us/step  flatten=True "
            f"{row['flatten_us_per_step']:5.1f} us/step  ratio {row['flatten_over_pytree']:.2f}"
        )
    with open(args.out, "w") as f:
        json.dump(
            {"date": time.strftime("%Y-%m-%d"), "jax": jax.__version__, "rows": rows}, f, indent=2
        )


if __name__ == "__main__":
    main()
