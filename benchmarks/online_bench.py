"""One event at a time: `OnlineLearner` and `DurableLearner` against alberta-framework
0.17.1's `jax.jit`-compiled updates, in one process.

Per-event latency (each call's result waited for, as a daemon does) of:

- the linear learner (12 features, IDBD): `OnlineLearner` with the default
  `nonfinite="raise"` and with `"allow"` (no check), and 0.17.1's
  `jax.jit(LinearLearner.update)`;
- the 64x64 MLP (12 features, Autostep through optax, `flatten=True`): the same two
  `OnlineLearner`s, and 0.17.1's `MLPLearner.update` (jitted by the library; its MLP
  has layer norm and traces, so it is a reference, not the same computation);
- `DurableLearner` for both learners under each fsync policy (every event, every 100
  events, every second): the median event's latency, the mean rate of events per
  second over a round, and the journal's bytes per event.

Cases run in interleaved rounds; each round's figure is the median over its events,
and the reported figure the median over rounds. Ratios are taken within a round.

    PYTHONPATH=$PWD /work/main/.venv-anchor17/bin/python benchmarks/online_bench.py \\
        --events 2000 --rounds 5 --out benchmarks/online-2026-11-30.json
"""

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np

import alberta_eqx as ae
import alberta_eqx.optax as aeo

try:
    import alberta_framework as af
except ImportError:  # alberta_eqx alone
    af = None

FSYNC = {
    "fsync every event": {"fsync_events": 1},
    "fsync every 100 events": {"fsync_events": 100},
    "fsync every 1 s": {"fsync_events": None, "fsync_seconds": 1.0},
}


def linear():
    return ae.LinearLearner(12, ae.IDBD(0.01, meta_step_size=0.01))


def mlp():
    return ae.MLPLearner(
        ae.MLP(
            12, "scalar", (64, 64), key=jax.random.key(1), activation=jax.nn.relu, layer_norm=False
        ),
        aeo.autostep(meta_step_size=0.01),
        flatten=True,
    )


def _time(step, events) -> list[float]:
    (x0, y0), *rest = events
    step(x0, y0)  # compile (or warm up)
    times = []
    for x, y in rest:  # every step returns once its result is ready
        start = time.perf_counter()
        step(x, y)
        times.append(time.perf_counter() - start)
    return times


def _af_linear():
    learner = af.LinearLearner(optimizer=af.IDBD(0.01, 0.01))
    update = jax.jit(learner.update)
    state = [learner.init(12)]

    def step(x, y):
        result = update(state[0], x, y)
        state[0] = result.state
        return result.error.block_until_ready()

    return step


def _af_mlp():
    learner = af.MLPLearner(hidden_sizes=(64, 64), optimizer=af.Autostep())
    state = [learner.init(12, jax.random.key(1))]

    def step(x, y):
        result = learner.update(state[0], x, y)
        state[0] = result.state
        return result.error.block_until_ready()

    return step


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--durable-events", type=int, default=1000)
    parser.add_argument("--out")
    args = parser.parse_args()

    rng = np.random.default_rng(0)
    xs = rng.normal(size=(args.events + 1, 12)).astype(np.float32)
    ys = xs.sum(-1)
    # what each library is given: NumPy for ours (it converts), JAX arrays for 0.17.1
    events = list(zip(xs, ys, strict=True))
    jax_events = [(jnp.asarray(x), jnp.asarray(y)[None]) for x, y in events]

    cases = {
        "linear, OnlineLearner (nonfinite='raise')": lambda: (ae.OnlineLearner(linear()), events),
        "linear, OnlineLearner (nonfinite='allow')": lambda: (
            ae.OnlineLearner(linear(), nonfinite="allow"),
            events,
        ),
        "MLP 64x64, OnlineLearner (nonfinite='raise')": lambda: (ae.OnlineLearner(mlp()), events),
        "MLP 64x64, OnlineLearner (nonfinite='allow')": lambda: (
            ae.OnlineLearner(mlp(), nonfinite="allow"),
            events,
        ),
    }
    if af is not None:
        cases["linear, alberta-framework 0.17.1, jax.jit"] = lambda: (_af_linear(), jax_events)
        cases["MLP 64x64, alberta-framework 0.17.1 (jitted update)"] = lambda: (
            _af_mlp(),
            jax_events,
        )
    latency = {name: [] for name in cases}
    ratios = {"linear": [], "MLP 64x64": []}
    durable = {
        f"{kind}, DurableLearner, {p}": [] for kind in ("linear", "MLP 64x64") for p in FSYNC
    }
    throughput = {name: [] for name in durable}
    journal_bytes = {}
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as root:
        for r in range(args.rounds):
            this_round = {}
            for name, make in cases.items():
                learner, feed = make()
                step = learner.update if hasattr(learner, "update") else learner
                this_round[name] = statistics.median(_time(step, feed))
                latency[name].append(this_round[name])
            if af is not None:
                for kind in ratios:
                    ours = this_round[f"{kind}, OnlineLearner (nonfinite='raise')"]
                    theirs = [v for k, v in this_round.items() if k.startswith(kind + ", alb")]
                    ratios[kind].append(ours / theirs[0])
            for name in durable:
                kind, _, policy = name.split(", ")
                directory = os.path.join(root, f"{r}-{len(os.listdir(root))}")
                model = linear() if kind == "linear" else mlp()
                n = args.durable_events
                with ae.DurableLearner(
                    model, directory, checkpoint_every=10 * n, **FSYNC[policy]
                ) as learner:
                    times = _time(learner.update, events[: n + 1])
                    durable[name].append(statistics.median(times))
                    throughput[name].append(len(times) / sum(times))
                    size = os.path.getsize(os.path.join(directory, "journal"))
                    journal_bytes[kind] = (size - 30) / (n + 1)  # less the journal's header
            print(f"round {r + 1}/{args.rounds} done", file=sys.stderr, flush=True)

    report = {
        "command": " ".join(sys.argv),
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs",
        "python": platform.python_version(),
        "jax": jax.__version__,
        "alberta_framework": getattr(af, "__version__", None),
        "median_latency_us": {k: statistics.median(v) * 1e6 for k, v in latency.items()},
        "median_ratio_ours_over_0.17.1": {k: statistics.median(v) for k, v in ratios.items() if v},
        # the median event's latency (robust to the machine's load), and the mean rate
        # over a round's events (every fsync and load spike included)
        "durable_median_latency_us": {k: statistics.median(v) * 1e6 for k, v in durable.items()},
        "durable_events_per_s_mean_rate": {k: statistics.median(v) for k, v in throughput.items()},
        "journal_bytes_per_event": journal_bytes,
        "rounds": args.rounds,
        "events_per_round": args.events,
    }
    text = json.dumps(report, indent=2)
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
