"""SwiftTD: alberta_eqx's `SparseSwiftTDLearner` side by side with the authors'
`swifttd` package (its `SwiftTD` class, `(index, value)` features), in one process.

    python benchmarks/swifttd_bench.py            # the table below, ratios as medians
    python benchmarks/swifttd_bench.py --quick    # small step counts, a smoke run
    python benchmarks/swifttd_bench.py --cases scan --sizes 10000:10 1000000:10

Cases (features n, active k per step; values uniform in (0, 1], random rewards,
gamma 0.99 and the package README's other hyperparameters):

- `latency`: one step at a time from Python: `OnlineLearner.update` (dense `x`, which
  the sparse learner turns into its active features) and a compiled `learn` on a
  `SparseTDTimeStep`, against the package's `step`;
- `scan`: one stream over `--steps` steps: our compiled `lax.scan` against the
  package's loop driven from Python (its inputs prepared beforehand);
- `batched`: `--batch` streams with their own seeds in one compiled, vmapped scan
  against as many package instances stepped in turn.

Every figure is a median over `--repeats` rounds after a warm-up call (compilation
excluded); a ratio is the median of the per-round ratios.
"""

import argparse
import json
import math
import statistics
import time

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import alberta_eqx as ae
from alberta_eqx.td import SparseSwiftTDLearner, SparseTDTimeStep

try:
    import swifttd
except ImportError:  # wheels exist for CPython 3.11 on Linux only
    swifttd = None

# lambda_, initial_step_size, gamma, epsilon, max_step_size, step_size_decay,
# meta_step_size, eta_min: the package README's values
LAM, ALPHA, GAMMA, EPS, ETA, DECAY, META, ETA_MIN = 0.95, 1e-2, 0.99, 1e-5, 0.1, 0.999, 1e-3, 1e-10


CASES = ["scan", "latency", "batched"]
SIZES = ["1000:10", "100000:10", "1000:1000", "100000:1000"]


def _capacity(n: int, k: int) -> int:
    """Trace slots: k new traces a step, each living log(eps) / log(gamma lambda)
    steps, 10% spare, at most n."""
    life = math.log(EPS) / math.log(GAMMA * LAM)
    return min(n, math.ceil(k * life * 1.1))


def _learner(n: int, k: int) -> SparseSwiftTDLearner:
    return SparseSwiftTDLearner(n, LAM, ALPHA, ETA, DECAY, META, ETA_MIN, EPS, _capacity(n, k))


def _inputs(seed: int, n: int, k: int, steps: int):
    rng = np.random.default_rng(seed)
    idx = np.stack([rng.choice(n, k, replace=False) for _ in range(steps + 1)]).astype(np.int32)
    values = rng.uniform(0.0, 1.0, size=(steps + 1, k)).astype(np.float32) + np.float32(1e-3)
    rewards = rng.normal(size=steps + 1).astype(np.float32)
    return idx, values, rewards


def _transitions(idx, values, rewards):
    steps = len(rewards) - 1
    return SparseTDTimeStep(
        jnp.asarray(idx[:-1]),
        jnp.asarray(values[:-1]),
        jnp.asarray(rewards[1:]),
        jnp.full(steps, GAMMA, jnp.float32),
        jnp.asarray(idx[1:]),
        jnp.asarray(values[1:]),
    )


@eqx.filter_jit
def _scan(learner, transitions):
    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        return learner, result.prediction

    return jax.lax.scan(step, learner, transitions)


def _package(n):
    return swifttd.SwiftTD(n, LAM, ALPHA, GAMMA, EPS, ETA, DECAY, META, ETA_MIN)


def _time(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def _rounds(ours, theirs, repeats):
    """Median seconds of each and the median per-round ratio theirs/ours."""
    ours(), theirs()  # warm-up (compilation)
    a, b = [], []
    for _ in range(repeats):
        a.append(_time(ours))
        b.append(_time(theirs))
    return (
        statistics.median(a),
        statistics.median(b),
        statistics.median(y / x for x, y in zip(a, b, strict=True)),
    )


def scan_case(n, k, steps, repeats):
    idx, values, rewards = _inputs(0, n, k, steps)
    transitions = _transitions(idx, values, rewards)
    learner = _learner(n, k)
    pairs = [
        list(zip(i.tolist(), v.tolist(), strict=True)) for i, v in zip(idx, values, strict=True)
    ]
    rs = rewards.tolist()

    def ours():
        jax.block_until_ready(_scan(learner, transitions))

    def theirs():
        package = _package(n)
        for p, r in zip(pairs, rs, strict=True):
            package.step(p, r)

    t_ours, t_theirs, ratio = _rounds(ours, theirs, repeats)
    dropped = int(_scan(learner, transitions)[0].dropped_traces)
    return {
        "case": "scan",
        "n": n,
        "k": k,
        "steps": steps,
        "trace_capacity": learner.trace_capacity,
        "dropped_traces": dropped,
        "ours_steps_per_s": steps / t_ours,
        "package_steps_per_s": (steps + 1) / t_theirs,
        "ratio": ratio,
    }


def latency_case(n, k, events, repeats):
    idx, values, rewards = _inputs(1, n, k, events)
    dense = np.zeros((events + 1, n), np.float32)
    np.put_along_axis(dense, idx, values, axis=1)
    pairs = [
        list(zip(i.tolist(), v.tolist(), strict=True)) for i, v in zip(idx, values, strict=True)
    ]
    transitions = _transitions(idx, values, rewards)
    steps = [jax.tree.map(lambda a, t=t: a[t], transitions) for t in range(events)]
    learn = eqx.filter_jit(lambda step, learner: learner.learn(step)[0], donate="all-except-first")
    rs = rewards.tolist()

    o = ae.OnlineLearner(_learner(n, k))  # compiled at its first event (the warm-up)

    def online():
        for t in range(events):
            o.update(dense[t], rewards[t])

    def compiled():
        learner = _learner(n, k)
        for step in steps:
            learner = learn(step, learner)
        jax.block_until_ready(learner)

    def theirs():
        package = _package(n)
        for p, r in zip(pairs, rs, strict=True):
            package.step(p, r)

    out = []
    for name, fn in (("OnlineLearner.update", online), ("compiled learn", compiled)):
        t_ours, t_theirs, ratio = _rounds(fn, theirs, repeats)
        out.append(
            {
                "case": "latency",
                "ours": name,
                "n": n,
                "k": k,
                "events": events,
                "ours_us_per_step": 1e6 * t_ours / events,
                "package_us_per_step": 1e6 * t_theirs / (events + 1),
                "ratio": ratio,
            }
        )
    return out


def batched_case(n, k, batch, steps, repeats):
    data = [_inputs(s, n, k, steps) for s in range(batch)]
    transitions = jax.tree.map(lambda *a: jnp.stack(a), *(_transitions(*d) for d in data))
    learners = eqx.filter_vmap(lambda _: _learner(n, k))(jnp.arange(batch))
    run = eqx.filter_jit(eqx.filter_vmap(lambda learner, t: _scan.__wrapped__(learner, t)[1]))
    packs = [
        [list(zip(i.tolist(), v.tolist(), strict=True)) for i, v in zip(d[0], d[1], strict=True)]
        for d in data
    ]
    rs = [d[2].tolist() for d in data]

    def ours():
        jax.block_until_ready(run(learners, transitions))

    def theirs():
        packages = [_package(n) for _ in range(batch)]
        for t in range(steps + 1):
            for b in range(batch):
                packages[b].step(packs[b][t], rs[b][t])

    t_ours, t_theirs, ratio = _rounds(ours, theirs, repeats)
    return {
        "case": "batched",
        "n": n,
        "k": k,
        "batch": batch,
        "steps": steps,
        "ours_learner_steps_per_s": batch * steps / t_ours,
        "package_learner_steps_per_s": batch * (steps + 1) / t_theirs,
        "ratio": ratio,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--steps", type=int, default=20_000)
    parser.add_argument("--batch", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default=None)
    parser.add_argument(
        "--cases", nargs="+", choices=("scan", "latency", "batched"), default=CASES
    )
    parser.add_argument(
        "--sizes",
        nargs="+",
        default=SIZES,
        help="the scan case's features:active pairs (default: %(default)s)",
    )
    args = parser.parse_args()
    if swifttd is None:
        raise SystemExit(
            "swifttd is not installed: pip install 'alberta_eqx[swifttd]' (CPython 3.11, Linux)"
        )
    steps = 500 if args.quick else args.steps
    rows = []
    for n, k in (map(int, size.split(":")) for size in args.sizes if "scan" in args.cases):
        case_steps = steps if k <= 10 else max(steps // 20, 100)
        rows.append(scan_case(n, k, case_steps, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    if "latency" in args.cases:
        for row in latency_case(1000, 10, 200 if args.quick else 2000, args.repeats):
            rows.append(row)
            print(json.dumps(row), flush=True)
    if "batched" in args.cases:
        batch = 50 if args.quick else args.batch
        rows.append(batched_case(1000, 10, batch, 50 if args.quick else 200, args.repeats))
        print(json.dumps(rows[-1]), flush=True)
    info = {
        "jax": jax.__version__,
        "swifttd": swifttd.__version__,
        "device": str(jax.devices()[0]),
        "rows": rows,
    }
    if args.out:
        with open(args.out, "w") as f:
            json.dump(info, f, indent=1)


if __name__ == "__main__":
    main()
