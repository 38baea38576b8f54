"""Throughput of alberta_eqx's runners, side by side with alberta-framework and a floor.

    python benchmarks/bench.py                      # full table, writes benchmarks/results.json
    python benchmarks/bench.py --quick              # small sizes, a smoke run

Run it with `.venv-anchor/bin/python` (made by `../shared/tools/anchor-venv.sh`) to time
alberta-framework 0.2.2 in the same process, on the same JAX: every case then also
reports the ratio. Every figure comes from `--repeats` rounds after a warm-up call
(which is also timed: the "first call" column includes tracing and compilation); in
each round the implementations compared run once each, in turn, and a ratio is the
median over rounds of the per-round ratio, so that a shared, noisy machine's load
changes cancel out.

The *floor* is the least any runner could cost: the stream's draws generated in bulk,
block by block, plus a hand-fused `lax.scan` of the bare IDBD recurrence over them.
"""

import argparse
import json
import platform
import resource
import statistics
import sys
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

import alberta_eqx as ae
import alberta_eqx.optax
import alberta_eqx.replications
import alberta_eqx.runners._plan

try:
    import alberta_framework as af
except ImportError:  # it needs Python >= 3.13
    af = None
# 0.2.2 reports __version__ 0.2.0; 0.17.1 reports its own.
AF = None if af is None else {"0.2.0": "0.2.2"}.get(af.__version__, af.__version__)


def _block(tree):
    return jax.tree.map(lambda a: a.block_until_ready() if isinstance(a, jax.Array) else a, tree)


def timed(fn: Callable[[], object], repeats: int) -> dict:
    """First-call time, then the median (and spread) of `repeats` further calls."""
    return interleaved({"fn": fn}, repeats)["fn"]


def interleaved(fns: dict[str, Callable[[], object]], repeats: int) -> dict:
    """Each function's first-call time, then `repeats` rounds that call every
    function once, in turn: the implementations compared see the same machine load,
    so the per-round ratios (`ratio_to`) are robust where single times are not."""
    out = {}
    for name, fn in fns.items():
        start = time.perf_counter()
        _block(fn())
        out[name] = {"first_s": time.perf_counter() - start, "times": []}
    for _ in range(repeats):
        for name, fn in fns.items():
            start = time.perf_counter()
            _block(fn())
            out[name]["times"].append(time.perf_counter() - start)
    for stats in out.values():
        times = stats["times"] or [stats["first_s"]]
        stats.update(median_s=statistics.median(times), min_s=min(times))
    return out


def ratio_to(a: dict, b: dict) -> float:
    """The median over rounds of `b`'s time over `a`'s: how many times faster `a` is."""
    return statistics.median(tb / ta for ta, tb in zip(a["times"], b["times"], strict=True))


def _optimizer(name: str):
    return {
        "LMS": ae.LMS(0.01),
        "IDBD": ae.IDBD(0.01, meta_step_size=0.01),
        "Autostep": ae.Autostep(0.01),
    }[name]


def _af_optimizer(name: str):
    return {"LMS": af.LMS(0.01), "IDBD": af.IDBD(0.01, 0.01), "Autostep": af.Autostep(0.01)}[name]


def ours_single(name, dim, steps):
    learner = ae.LinearLearner(dim, _optimizer(name))
    stream = ae.DriftingTargetStream(dim)
    key = jax.random.key(0)
    return lambda: ae.run_learning_loop(learner, stream, steps, key).metrics.squared_error


def ours_batched(name, dim, steps, seeds):
    learner = ae.LinearLearner(dim, _optimizer(name))
    stream = ae.DriftingTargetStream(dim)
    keys = jax.random.split(jax.random.key(0), seeds)
    return lambda: ae.run_learning_loop_batched(learner, stream, steps, keys).metrics.squared_error


def theirs_single(name, dim, steps):
    learner = af.LinearLearner(optimizer=_af_optimizer(name))
    stream = af.RandomWalkStream(dim)
    key = jax.random.key(0)
    return lambda: af.run_learning_loop(learner, stream, steps, key)[1]


def theirs_batched(name, dim, steps, seeds):
    learner = af.LinearLearner(optimizer=_af_optimizer(name))
    stream = af.RandomWalkStream(dim)
    keys = jax.random.split(jax.random.key(0), seeds)
    return lambda: af.run_learning_loop_batched(learner, stream, steps, keys).metrics


def floor(dim, steps, seeds):
    """The least a runner could cost: the stream's draws generated in bulk, block by
    block (the same per-step draws as `DriftingTargetStream.chunk`, so memory stays
    bounded), then a hand-fused `lax.scan` of bare IDBD over each block."""
    stream = ae.DriftingTargetStream(dim)
    # the runner's block size: the best one we know
    block = min(steps, alberta_eqx.runners._plan._block_size(1, dim, seeds))
    num_blocks = steps // block

    @jax.jit
    def generate(states, t0):
        return jax.vmap(lambda s: stream.chunk(s, t0, block))(states)

    @jax.jit
    def learn(carry, xs, ys):
        def one(carry, xs, ys):
            def body(carry, xy):
                w, b, beta, h, bb, bh = carry
                x, y = xy
                delta = y - (w @ x + b)
                beta = beta + 0.01 * delta * x * h
                alpha = jnp.exp(beta)
                w = w + alpha * delta * x
                h = h * jnp.maximum(1 - alpha * x * x, 0) + alpha * delta * x
                bb = bb + 0.01 * delta * bh
                ba = jnp.exp(bb)
                b = b + ba * delta
                bh = bh * jnp.maximum(1 - ba, 0) + ba * delta
                return (w, b, beta, h, bb, bh), delta * delta

            return jax.lax.scan(body, carry, (xs, ys))

        return jax.vmap(one)(carry, xs, ys)

    keys = jax.random.split(jax.random.key(0), seeds)
    zeros = jnp.zeros((seeds, dim))
    log = jnp.log(0.01)
    start = (
        zeros,
        jnp.zeros(seeds),
        jnp.full((seeds, dim), log),
        zeros,
        jnp.full(seeds, log),
        jnp.zeros(seeds),
    )

    def run():
        states, carry, out = jax.vmap(stream.init)(keys), start, None
        for i in range(num_blocks):
            (timesteps, states) = generate(states, jnp.int32(i * block))
            carry, out = learn(carry, timesteps.observation, timesteps.target)
        return out

    return run


def grid_ours(seeds, steps):
    """Sutton (1992) Figure 3 as one program: 8 LMS step-sizes and 6 IDBD meta
    step-sizes, `seeds` seeds each."""

    def run():
        result = ae.replications.sutton1992_experiment1(num_seeds=seeds, num_steps=steps)
        return result.lms.mean, result.idbd.mean

    return run


def grid_theirs(steps):
    """The same 14 configurations on 0.2.2, one seed each, one after another."""
    stream = af.SuttonExperiment1Stream()

    def run():
        out = []
        for alpha in (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07):
            learner = af.LinearLearner(optimizer=af.LMS(alpha))
            out.append(
                af.run_learning_loop(learner, stream, steps, jax.random.key(0))[1][:, 0].mean()
            )
        for theta in (0.001, 0.002, 0.005, 0.01, 0.015, 0.02):
            learner = af.LinearLearner(optimizer=af.IDBD(0.05, theta))
            out.append(
                af.run_learning_loop(learner, stream, steps, jax.random.key(0))[1][:, 0].mean()
            )
        return jnp.stack(out)

    return run


def tracking(dim, steps, interval):
    learner = ae.LinearLearner(dim, ae.IDBD(0.01, meta_step_size=0.01))
    stream = ae.DriftingTargetStream(dim)
    key = jax.random.key(0)
    config = None if interval is None else ae.StepSizeTrackingConfig(interval)
    return lambda: ae.run_learning_loop(learner, stream, steps, key, step_size_tracking=config)


def _latency(step, state, events) -> float:
    """Median seconds of `state, result = step(state, x, y)` per event, called from
    Python one event at a time, each result waited for (as a daemon would)."""
    (x0, y0), *rest = events
    state, _ = step(state, x0, y0)  # compile
    times = []
    for x, y in rest:
        start = time.perf_counter()
        state, result = step(state, x, y)
        jax.block_until_ready(result)  # an OnlineResult is on the host already
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _online_step(online, x, y):
    return online, online.update(x, y)


def single_event_latency(events: int, rounds: int) -> dict:
    """Median latency in microseconds of one compiled update per event (the median
    over `rounds` interleaved rounds of each round's median over `events` events):
    through `OnlineLearner` (the documented path) and, for comparison,
    `eqx.filter_jit`, for the linear learner (12 features, IDBD) and the 64x64
    `MLPLearner` (12 features, Autostep through optax) with its optimizer on the
    parameters' pytree (the default) and on one raveled vector (`flatten=True`, the
    documented setting for one event per call); and 0.2.2's jitted
    `LinearLearner.update` when it is importable (0.2.2 has no MLP learner)."""
    xs = jax.random.normal(jax.random.key(0), (events + 1, 12))
    events = list(zip(xs, xs.sum(-1), strict=True))
    filter_jit = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))

    relu = {"activation": jax.nn.relu, "layer_norm": False}  # the network measured so far
    network = ae.MLP(12, "scalar", (64, 64), key=jax.random.key(1), **relu)

    def mlp(flatten):
        return ae.MLPLearner(network, ae.optax.autostep(meta_step_size=0.01), flatten=flatten)

    linear = ae.LinearLearner(12, ae.IDBD(0.01, meta_step_size=0.01))
    cases = {
        "linear, OnlineLearner": (_online_step, ae.OnlineLearner(linear)),
        "linear, eqx.filter_jit": (filter_jit, linear),
        "MLP 64x64, OnlineLearner, flatten=True": (_online_step, ae.OnlineLearner(mlp(True))),
        "MLP 64x64, OnlineLearner": (_online_step, ae.OnlineLearner(mlp(False))),
        "MLP 64x64, eqx.filter_jit": (filter_jit, mlp(False)),
    }
    if af is not None:
        learner = af.LinearLearner(optimizer=af.IDBD(0.01, 0.01))
        af_update = jax.jit(learner.update)

        def af_step(state, x, y):
            result = af_update(state, x, y[None])
            return result.state, result

        cases["linear, alberta-framework 0.2.2, jax.jit"] = (af_step, learner.init(12))
    times = {name: [] for name in cases}
    for _ in range(rounds):
        for name, (step, state) in cases.items():
            times[name].append(_latency(step, state, events))
    return {name: statistics.median(t) * 1e6 for name, t in times.items()}


def tracking_overhead(dim: int, steps: int, repeats: int) -> dict:
    """Step-size tracking every 100 steps against an untracked run, timed in
    alternation so that both see the same machine load; the median of the paired
    ratios is robust to the load changing between pairs."""
    untracked, tracked = tracking(dim, steps, None), tracking(dim, steps, 100)
    _block(untracked())
    _block(tracked())
    ratios = []
    for _ in range(repeats):
        pair = []
        for fn in (untracked, tracked):
            start = time.perf_counter()
            _block(fn())
            pair.append(time.perf_counter() - start)
        ratios.append(pair[1] / pair[0])
    return {"steps": steps, "median_ratio": statistics.median(ratios), "ratios": ratios}


def gpu_cases(steps: int, repeats: int, quick: bool = False) -> list[dict]:
    """The issue-14 GPU cases, one command: 1,024 seeds of IDBD on
    `DriftingTargetStream(1000)` (`steps` steps); a 10,000-configuration x 30-seed IDBD
    grid on `DriftingTargetStream(10)` (10,000 steps, 100-step windows) as one
    `run_sweep` shard; the same sweep sharded over every device (`make_mesh`).
    `quick`: 8 seeds, a 10 x 10 grid of 1,000 steps (a smoke run on a CPU)."""
    import tempfile

    from alberta_eqx.sweeps import SweepSpec, make_mesh, run_sweep

    print(f"devices: {jax.devices()}", flush=True)
    rows = []

    def record(case, stats, learner_steps):
        row = {
            "case": case,
            "first_call_s": stats["first_s"],
            "median_s": stats["median_s"],
            "steps_per_s": learner_steps / stats["median_s"],
        }
        rows.append(row)
        print(
            f"{case:<40} {row['steps_per_s']:>14,.0f} learner-steps/s  first "
            f"{row['first_call_s']:6.2f}s  median {row['median_s']:7.3f}s",
            flush=True,
        )

    seeds, side, grid_steps = (8, 10, 1_000) if quick else (1024, 100, 10_000)
    t = timed(ours_batched("IDBD", 1000, steps, seeds), repeats)
    record(f"IDBD d=1000 {seeds} seeds", t, steps * seeds)

    spec = SweepSpec(
        stream=ae.DriftingTargetStream(10),
        learner=lambda a, theta: ae.LinearLearner(10, ae.IDBD(a, meta_step_size=theta)),
        grid={
            "a": np.geomspace(1e-4, 0.1, side).tolist(),
            "theta": np.geomspace(1e-5, 0.1, side).tolist(),
        },
        num_steps=grid_steps,
        seeds=30,
        metrics_window=100,
    )
    learner_steps = spec.num_configs * 30 * spec.num_steps
    for case, mesh in ((f"grid {side**2:,} x 30 seeds", None), ("sharded sweep", make_mesh())):

        def sweep(mesh=mesh):
            with tempfile.TemporaryDirectory() as out:
                return run_sweep(spec, out, shard_size=spec.num_configs, mesh=mesh)

        record(
            f"{case}, {len(jax.devices()) if mesh else 1} device(s)",
            timed(sweep, 1),
            learner_steps,
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--seeds", type=int, default=30)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--dims", type=int, nargs="+", default=[10, 100, 1000])
    parser.add_argument(
        "--batched-dims",
        type=int,
        nargs="+",
        default=[10, 100],
        help="the dims whose --seeds case runs (30 seeds of 1,000 features take minutes "
        "per call on a CPU)",
    )
    parser.add_argument("--quick", action="store_true", help="tiny sizes: a smoke run")
    parser.add_argument(
        "--batched-only",
        action="store_true",
        help="only the --seeds cases of --batched-dims (IDBD), then stop: the issue-14 targets",
    )
    parser.add_argument("--no-floor", action="store_true", help="time no floor")
    parser.add_argument(
        "--gpu",
        action="store_true",
        help="only the GPU cases (1,024 seeds x d=1000; a 10,000-configuration x 30-seed "
        "grid; the same grid as a sharded sweep over every device), then stop",
    )
    parser.add_argument(
        "--latency-only", action="store_true", help="only the single-event latencies"
    )
    parser.add_argument(
        "--sync-dispatch",
        action="store_true",
        help="turn jax_cpu_enable_async_dispatch off first, as a process that learns one "
        "event per call may (docs/runners.md)",
    )
    parser.add_argument("--out", default="benchmarks/results.json")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.seeds, args.repeats, args.dims = 2_000, 4, 2, [10]
    if args.sync_dispatch:
        jax.config.update("jax_cpu_enable_async_dispatch", False)
    if args.latency_only:
        args.dims = []

    rows = []

    def report(case, ours, units, theirs=None, floor_=None):
        row = {
            "case": case,
            "first_call_s": ours["first_s"],
            "median_s": ours["median_s"],
            "steps_per_s": units / ours["median_s"],
        }
        extra = ""
        if theirs is not None:
            row["anchor_median_s"] = theirs["median_s"]
            row["anchor_steps_per_s"] = units / theirs["median_s"]
            row["speedup"] = ratio_to(ours, theirs)
            extra += f"  x{row['speedup']:.2f} vs {AF}"
        if floor_ is not None:
            row["floor_steps_per_s"] = units / floor_["median_s"]
            row["time_over_floor"] = 1 / ratio_to(ours, floor_)
            extra += f"  {row['time_over_floor']:.2f}x the floor's time"
        rows.append(row)
        print(
            f"{case:<28} {row['steps_per_s']:>12,.0f}/s  first {ours['first_s']:5.2f}s"
            f"  median {ours['median_s']:7.3f}s{extra}",
            flush=True,
        )

    n, s, r = args.steps, args.seeds, args.repeats
    if args.gpu:
        _write(args, gpu_cases(n, r, args.quick), None, None, {})
        return
    if args.batched_only:
        args.dims = args.batched_dims
    for dim in args.dims:
        for name in ("IDBD",) if args.batched_only else ("LMS", "IDBD", "Autostep"):
            batched = name == "IDBD" and dim in args.batched_dims
            seed_counts = (1, s) if batched else (1,)
            for seeds in (s,) if args.batched_only else seed_counts:
                if seeds == 1:
                    fns = {"ours": ours_single(name, dim, n)}
                    if af:
                        fns["theirs"] = theirs_single(name, dim, n)
                else:
                    fns = {"ours": ours_batched(name, dim, n, seeds)}
                    if af:
                        fns["theirs"] = theirs_batched(name, dim, n, seeds)
                if name == "IDBD" and not args.no_floor:
                    fns["floor"] = floor(dim, n, seeds)
                t = interleaved(fns, r)
                label = f"{name} d={dim} {seeds} seed{'s' if seeds > 1 else ''}"
                report(label, t["ours"], n * seeds, t.get("theirs"), t.get("floor"))

    if args.batched_only:
        _write(args, rows, None, None, {})
        return
    overhead = grid = None
    if not args.latency_only:
        tracking_steps = 10 * n
        overhead = tracking_overhead(10, tracking_steps, 2 * r + 1)
        print(
            f"tracking overhead (IDBD d=10, {tracking_steps:,} steps, every 100): median of "
            f"{len(overhead['ratios'])} paired ratios {100 * (overhead['median_ratio'] - 1):+.1f}%"
        )
        grid_steps = 30_000
        ours = timed(grid_ours(s, grid_steps), 1)
        theirs = timed(grid_theirs(grid_steps), 1) if af else None
        grid = {"ours_first_s": ours["first_s"], "anchor_one_seed_s": theirs and theirs["first_s"]}
        print(
            f"Sutton Fig. 3 grid, 14 configs x {s} seeds x {grid_steps} steps: first call "
            f"(compile included) {ours['first_s']:.2f}s"
            + (f"; {AF} with ONE seed each: {theirs['first_s']:.2f}s" if theirs else "")
        )
    latency = single_event_latency(200 if args.quick else 2000, r)
    for name, us in latency.items():
        print(f"single event, {name}: {us:.1f} us")

    _write(args, rows, overhead, grid, latency)


def _write(args, rows, overhead, grid, latency) -> None:
    out = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "devices": [str(d) for d in jax.devices()],
        },
        "versions": {
            "python": sys.version.split()[0],
            "jax": jax.__version__,
            "alberta_eqx": ae.__version__,
            "alberta_framework": AF,
        },
        "args": vars(args),
        "rows": rows,
        "tracking_overhead": overhead,
        "grid": grid,
        "single_event_us": latency,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
    }
    with open(args.out, "w") as f:
        json.dump(out, f, indent=2)
    print(f"peak RSS {out['peak_rss_mb']:.0f} MB; wrote {args.out}")


if __name__ == "__main__":
    main()
