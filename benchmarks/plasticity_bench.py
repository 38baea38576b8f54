"""The plasticity transformations' cost inside a compiled run: microseconds per step of
`ClassifierLearner(64, 10, (300, 150))` (the UPGD paper's network widths) on
input-permuted digits, 10,000 steps per run, for SGD and SGD with each remedy; rounds
interleaved, the ratio to SGD is the median of the per-round ratios.

    python benchmarks/plasticity_bench.py [--rounds 5] [--out benchmarks/plasticity_bench.json]
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
LR = 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=STEPS, help="steps per timed run")
    parser.add_argument("--out", default="benchmarks/plasticity_bench.json")
    args = parser.parse_args()
    stream = ae.InputPermutedStream()
    optimizers = {
        "SGD": aeo.lms(LR),
        "UPGD": aeo.upgd(LR, 0, utility_decay=0.999, sigma=0.01),
        "SGD + shrink-and-perturb": optax.chain(
            aeo.lms(LR), aeo.shrink_and_perturb(1e-4, 1e-3, 0)
        ),
        "SGD + L2 Init": optax.chain(aeo.l2_init(1e-3), aeo.lms(LR)),
        "SGD + weight clipping": optax.chain(aeo.lms(LR), aeo.weight_clipping(2.0)),
    }
    runs = {}
    for name, tx in optimizers.items():
        learner = ae.ClassifierLearner(
            ae.MLP(
                64, 10, (300, 150), key=jax.random.key(1), activation=jax.nn.relu, layer_norm=False
            ),
            tx,
        )

        def run(learner=learner):
            result = ae.run_learning_loop(
                learner, stream, args.steps, jax.random.key(0), metrics_window=args.steps
            )
            return jax.block_until_ready(result.metrics.accuracy)

        run()  # compile
        runs[name] = run
    times: dict[str, list[float]] = {name: [] for name in runs}
    for _ in range(args.rounds):
        for name, run in runs.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    report = {}
    for name, ts in times.items():
        ratios = [t / s for t, s in zip(ts, times["SGD"], strict=True)]
        report[name] = {
            "us_per_step": 1e6 * statistics.median(ts) / args.steps,
            "ratio_to_sgd": statistics.median(ratios),
        }
        print(
            f"{name:28s} {report[name]['us_per_step']:8.1f} us/step  "
            f"x{report[name]['ratio_to_sgd']:.2f} SGD"
        )
    with open(args.out, "w") as f:
        json.dump(
            {"device": str(jax.devices()[0]), "steps": args.steps, "results": report}, f, indent=1
        )


if __name__ == "__main__":
    main()
