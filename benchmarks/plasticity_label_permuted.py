"""A first look (not the replication: one seed, 100,000 steps, untuned step-sizes) at
SGD and each plasticity remedy on label-permuted digits (a new relabelling every 2,500
examples): online accuracy over the first and the last four tasks, and the network's
plasticity measures at the end on 256 probe inputs.

    python benchmarks/plasticity_label_permuted.py
"""

import argparse
import time

import jax
import numpy as np
import optax

import alberta_eqx as ae
import alberta_eqx.optax as aeo

STEPS, INTERVAL, LR = 100_000, 2500, 0.01


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--steps", type=int, default=STEPS, help="steps per method (a multiple of --interval)"
    )
    # smaller for a smoke run only: the protocol relabels every 2,500 examples
    parser.add_argument(
        "--interval", type=int, default=INTERVAL, help="examples per relabelling (a task)"
    )
    args = parser.parse_args()
    stream = ae.LabelPermutedStream(interval=args.interval)
    methods = {
        "SGD": aeo.lms(LR),
        "UPGD": aeo.upgd(LR, 0, utility_decay=0.999, sigma=0.01),
        "SGD + shrink-and-perturb": optax.chain(
            aeo.lms(LR), aeo.shrink_and_perturb(1e-4, 1e-3, 0)
        ),
        "SGD + L2 Init": optax.chain(aeo.l2_init(1e-2), aeo.lms(LR)),
        "SGD + weight clipping": optax.chain(aeo.lms(LR), aeo.weight_clipping(2.0)),
    }
    for name, tx in methods.items():
        learner = ae.ClassifierLearner(
            ae.MLP(
                64, 10, (128, 128), key=jax.random.key(1), activation=jax.nn.relu, layer_norm=False
            ),
            tx,
        )
        start = time.perf_counter()
        result = ae.run_learning_loop(
            learner, stream, args.steps, jax.random.key(0), metrics_window=args.interval
        )
        accuracy = np.asarray(result.metrics.accuracy)  # one entry per task
        d = ae.plasticity_diagnostics(result.learner.model, stream.inputs[:256])
        dormant = [round(float(x), 3) for x in d.dormant_fraction]
        print(
            f"{name:26s} accuracy first 4 tasks {accuracy[:4].mean():.3f}, last 4 "
            f"{accuracy[-4:].mean():.3f}; dormant {dormant}"
            f", effective rank {[round(float(x), 1) for x in d.effective_rank]}, weight norm "
            f"{float(d.weight_norm):.1f} ({time.perf_counter() - start:.0f} s)",
            flush=True,
        )


if __name__ == "__main__":
    main()
