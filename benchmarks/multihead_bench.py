"""Per-event latency of a 5-head learner with a 64x64 trunk under ObGD, one event at a
time: alberta_eqx's MultiHeadLearner through OnlineLearner against alberta-framework
0.17.1's MultiHeadMLPLearner.update (step_size=1.0, ObGDBounding(kappa=2.0)), side by
side in one process, in interleaved rounds; medians and their ratio.

    cd <repo> && PYTHONPATH=$PWD /work/main/.venv-anchor17/bin/python \\
        benchmarks/multihead_bench.py [--rounds 15] [--events 1000] [--features 16]
"""

import argparse
import json
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import alberta_eqx.optax as aeo
from alberta_eqx import MultiHeadLearner, OnlineLearner
from alberta_eqx.nn import MLP


def events(n, features, heads, seed=0):
    rng = np.random.default_rng(seed)
    xs = rng.normal(size=(n, features)).astype(np.float32)
    ys = rng.normal(size=(n, heads)).astype(np.float32)
    ys[rng.random((n, heads)) < 0.3] = np.nan  # some heads without a target
    return [jnp.asarray(x) for x in xs], [jnp.asarray(y) for y in ys]


def ours(features, heads):
    learner = MultiHeadLearner(
        MLP(features, heads, (64, 64), key=jax.random.split(jax.random.key(0))[0], sparsity=0.9),
        aeo.obgd(1.0, kappa=2.0),
    )
    online = OnlineLearner(learner)

    def run(xs, ys):
        for x, y in zip(xs, ys, strict=True):
            result = online.update(x, y)
        # OnlineLearner hands back NumPy arrays: the step has finished when it returns
        np.asarray(result.prediction)

    return run


def theirs(features, heads):
    from alberta_framework import MultiHeadMLPLearner, ObGDBounding

    learner = MultiHeadMLPLearner(
        n_heads=heads, hidden_sizes=(64, 64), step_size=1.0, bounder=ObGDBounding(kappa=2.0)
    )
    state = [learner.init(features, jax.random.key(0))]

    def run(xs, ys):
        for x, y in zip(xs, ys, strict=True):
            result = learner.update(state[0], x, y)
            state[0] = result.state
        result.predictions.block_until_ready()

    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--events", type=int, default=1000)
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--heads", type=int, default=5)
    args = parser.parse_args()
    xs, ys = events(args.events, args.features, args.heads)
    runners = {"alberta_eqx": ours(args.features, args.heads)}
    try:
        runners["alberta_framework_0.17"] = theirs(args.features, args.heads)
    except ImportError:
        print("alberta-framework is not installed here: timing alberta_eqx only")
    for run in runners.values():  # compile
        run(xs[:5], ys[:5])
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run(xs, ys)
            times[name].append((time.perf_counter() - start) / args.events * 1e6)
    result = {name: statistics.median(t) for name, t in times.items()}
    out = {"us_per_event": result, "events_per_s": {k: 1e6 / v for k, v in result.items()}}
    if len(result) == 2:
        ratios = [a / b for a, b in zip(*times.values(), strict=True)]
        out["ratio_ours_to_theirs_median_of_rounds"] = statistics.median(ratios)
    out["settings"] = vars(args)
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
