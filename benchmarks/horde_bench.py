"""Horde throughput: demon-updates per second of `alberta_eqx.Horde` against
alberta-framework 0.17.1's `HordeLearner`, side by side in one process.

Both learn the same linear demons (random cumulants, discounts and trace-decay
parameters; TD(lambda) with one fixed step-size, accumulating traces) from the same
precomputed transitions, each in one compiled `lax.scan` over the steps. 0.17.1's
`HordeLearner` is its multi-head learner; with `hidden_sizes=()` its heads are linear
in the features, which is what our linear demons are. Compilation is excluded (one
warm-up call each); rounds alternate between the two and the medians are reported,
since the machine is shared.

Run it in the 0.17.1 environment, with this repository first on the path:

    PYTHONPATH=$PWD /work/main/.venv-anchor17/bin/python benchmarks/horde_bench.py \
        --demons 1000 --their-demons 100 --steps 2000 --rounds 7 --out horde_bench.json

0.17.1 unrolls one update per head in Python, so its compile time grows faster than
linearly (30 s for 100 demons, 247 s for 300 at low load; 1,907 s for 300 under heavy
load), and a 1,000-demon `HordeLearner` cannot be compiled in a benchmark's time:
`--their-demons` runs it (and ours, for a like-for-like ratio) at a size it compiles,
beside ours at `--demons`. Its demon-updates/s fall as demons are added (4.1M at
100, 3.2M at 300), so its rate at 100 or 300 bounds its rate at 1,000 from above.
Results: benchmarks/README.md ("Horde").

With `--hidden 64 64` the demons are heads on a shared 64-64 trunk instead:
`alberta_eqx.TrunkHorde` against 0.17.1's `HordeLearner(hidden_sizes=(64, 64))`, both
with LeakyReLU, parameterless LayerNorm, sparse initialisation 0.9 and LMS on the
trunk and the heads. The two compute the same algorithm only with `lambda = 0` on
every demon (0.17.1 keeps the trunk without traces; ours keeps exact per-demon trunk
traces when some `gamma lambda > 0`), so that like-for-like case sets every lambda to
0, and `alberta_eqx traced` adds ours with the random lambdas (exact TD(lambda), one
trunk trace per demon) for its cost:

    PYTHONPATH=$PWD /work/main/.venv-anchor17/bin/python benchmarks/horde_bench.py \
        --hidden 64 64 --demons 32 --steps 1000 --rounds 5 --out horde_trunk_bench.json
"""

import argparse
import json
import platform
import statistics
import time

import jax
import jax.numpy as jnp
import numpy as np

import alberta_eqx as ae


def data(num_demons: int, num_features: int, num_steps: int, seed: int):
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(num_steps + 1, num_features)).astype(np.float32)
    rewards = rng.normal(size=num_steps).astype(np.float32)
    cumulant = rng.normal(size=(num_demons, num_features + 1)).astype(np.float32)
    gammas = rng.uniform(0, 0.95, num_demons).astype(np.float32)
    lambdas = rng.uniform(0, 1, num_demons).astype(np.float32)
    signals = np.concatenate([rewards[:, None], x[1:]], axis=1)
    return x, rewards, cumulant, gammas, lambdas, signals @ cumulant.T


def ours(x, rewards, cumulant, gammas, lambdas, step_size):
    questions = ae.GVFQuestion(cumulant, gammas, lambdas)
    horde = ae.Horde(questions, ae.TDLinearLearner(x.shape[1], ae.TDLMS(step_size)))
    steps = len(rewards)
    timesteps = ae.TDTimeStep(
        jnp.asarray(x[:-1]), jnp.asarray(rewards), jnp.ones(steps), jnp.asarray(x[1:])
    )

    @jax.jit
    def run(horde, timesteps):
        def step(horde, ts):
            horde, result = horde.learn(ts)
            return horde, result.error

        return jax.lax.scan(step, horde, timesteps)

    return lambda: jax.block_until_ready(run(horde, timesteps))


def ours_trunk(x, rewards, cumulant, gammas, lambdas, step_size, hidden):
    import alberta_eqx.optax as aeo

    questions = ae.GVFQuestion(cumulant, gammas, lambdas)
    horde = ae.TrunkHorde(questions, x.shape[1], hidden, aeo.lms(step_size), key=jax.random.key(0))
    steps = len(rewards)
    timesteps = ae.TDTimeStep(
        jnp.asarray(x[:-1]), jnp.asarray(rewards), jnp.ones(steps), jnp.asarray(x[1:])
    )

    @jax.jit
    def run(horde, timesteps):
        def step(horde, ts):
            horde, result = horde.learn(ts)
            return horde, result.error

        return jax.lax.scan(step, horde, timesteps)

    return lambda: jax.block_until_ready(run(horde, timesteps))


def theirs(x, gammas, lambdas, cumulants, step_size, hidden=()):
    import alberta_framework as af
    from alberta_framework.core.horde import run_horde_learning_loop

    spec = af.create_horde_spec(
        [
            af.GVFSpec(
                name=f"d{i}",
                demon_type=af.DemonType.PREDICTION,
                gamma=float(g),
                lamda=float(lam),
                cumulant_index=-1,
            )
            for i, (g, lam) in enumerate(zip(gammas, lambdas, strict=True))
        ]
    )
    if hidden:  # the streaming papers' network, as ours
        horde = af.HordeLearner(spec, hidden_sizes=hidden, optimizer=af.LMS(step_size))
    else:
        horde = af.HordeLearner(
            spec, hidden_sizes=(), optimizer=af.LMS(step_size), sparsity=0.0, use_layer_norm=False
        )
    state = horde.init(x.shape[1], jax.random.key(0))
    obs, next_obs, cums = jnp.asarray(x[:-1]), jnp.asarray(x[1:]), jnp.asarray(cumulants)
    run = jax.jit(lambda state: run_horde_learning_loop(horde, state, obs, cums, next_obs))
    return lambda: jax.block_until_ready(run(state))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demons", type=int, default=1000)
    parser.add_argument(
        "--their-demons",
        type=int,
        default=None,
        help="0.17.1's Horde size (default: --demons); ours runs at this size too",
    )
    parser.add_argument("--features", type=int, default=16)
    parser.add_argument("--steps", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--hidden",
        type=int,
        nargs="*",
        default=[],
        help="a shared trunk's hidden widths (TrunkHorde), e.g. --hidden 64 64",
    )
    parser.add_argument("--out", help="write the numbers as JSON here")
    args = parser.parse_args()
    hidden = tuple(args.hidden)
    sizes = {"alberta_eqx": args.demons}
    their = args.their_demons or args.demons
    if their != args.demons:
        sizes[f"alberta_eqx {their}"] = their
    if hidden:
        sizes["alberta_eqx traced"] = args.demons
    sizes["alberta_framework 0.17.1"] = their
    runners = {}
    for name, demons in sizes.items():
        x, rewards, cumulant, gammas, lambdas, cumulants = data(
            demons, args.features, args.steps, 0
        )
        if hidden and name != "alberta_eqx traced":
            lambdas = np.zeros_like(lambdas)  # where the two algorithms agree
        if not name.startswith("alberta_eqx"):
            runners[name] = theirs(
                x, gammas, lambdas, cumulants, 0.001 if hidden else 0.01, hidden
            )
        elif hidden:
            runners[name] = ours_trunk(x, rewards, cumulant, gammas, lambdas, 0.001, hidden)
        else:
            runners[name] = ours(x, rewards, cumulant, gammas, lambdas, 0.01)
    compile_s = {}
    for name, run in runners.items():
        start = time.perf_counter()
        run()  # compile
        compile_s[name] = time.perf_counter() - start
        print(f"{name}: first call (compile + run) {compile_s[name]:.1f} s", flush=True)
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    rates = {name: sizes[name] * args.steps / statistics.median(t) for name, t in times.items()}
    for name, rate in rates.items():
        print(
            f"{name:26} {sizes[name]:5} demons {rate:14,.0f} demon-updates/s "
            f"(median of {args.rounds})"
        )
    # per-round ratios of rates (alternating rounds share the machine's load), medians
    theirs_name = "alberta_framework 0.17.1"
    ratios = {
        f"{name} / {theirs_name}": statistics.median(
            (sizes[name] / t) / (sizes[theirs_name] / u)
            for t, u in zip(times[name], times[theirs_name], strict=True)
        )
        for name in runners
        if name.startswith("alberta_eqx")
    }
    for name, ratio in ratios.items():
        print(f"ratio {name}: {ratio:.1f}x (median of the per-round ratios)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    "versions": {
                        "jax": jax.__version__,
                        "alberta_framework": _their_version(),
                        "python": platform.python_version(),
                    },
                    "demons": sizes,
                    "features": args.features,
                    "hidden_sizes": hidden,
                    "steps": args.steps,
                    "rounds": args.rounds,
                    "seconds": times,
                    "compile_seconds": compile_s,
                    "demon_updates_per_second": rates,
                    "ratios": ratios,
                },
                f,
                indent=1,
            )


def _their_version() -> str:
    from importlib.metadata import version

    return version("alberta-framework")


if __name__ == "__main__":
    main()
