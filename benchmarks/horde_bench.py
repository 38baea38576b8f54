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
"""

import argparse
import json
import platform
import statistics
import time

import equinox as eqx
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


def theirs(x, gammas, lambdas, cumulants, step_size):
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
    parser.add_argument("--out", help="write the numbers as JSON here")
    offpolicy = parser.add_argument_group("off-policy Horde (ours only; see offpolicy_main)")
    offpolicy.add_argument("--offpolicy", choices=["td", "tdc", "gtd2", "gtd", "gq"])
    offpolicy.add_argument("--before", help="a checkout whose alberta_eqx is 'before'")
    offpolicy.add_argument("--pairs", type=int, default=5)
    args = parser.parse_args()
    if args.offpolicy:
        return offpolicy_main(args)
    sizes = {"alberta_eqx": args.demons}
    their = args.their_demons or args.demons
    if their != args.demons:
        sizes[f"alberta_eqx {their}"] = their
    sizes["alberta_framework 0.17.1"] = their
    runners = {}
    for name, demons in sizes.items():
        x, rewards, cumulant, gammas, lambdas, cumulants = data(
            demons, args.features, args.steps, 0
        )
        if name.startswith("alberta_eqx"):
            runners[name] = ours(x, rewards, cumulant, gammas, lambdas, 0.01)
        else:
            runners[name] = theirs(x, gammas, lambdas, cumulants, 0.01)
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


# --- Off-policy Horde: gradient-TD demons, ours before and after a change -----------


def offpolicy_data(num_demons: int, num_features: int, num_steps: int, seed: int):
    """Random features, rewards and actions (4 actions, uniform behaviour policy, an
    episode end at ~5% of steps) and random questions with random target policies."""
    rng = np.random.default_rng(seed)
    actions = 4
    x = rng.normal(size=(num_steps + 1, num_features)).astype(np.float32)
    timesteps = ae.OffPolicyTimeStep(
        observation=jnp.asarray(x[:-1]),
        action=jnp.asarray(rng.integers(0, actions, num_steps), jnp.int32),
        reward=jnp.asarray(rng.normal(size=num_steps), jnp.float32),
        discount=jnp.asarray(np.where(rng.random(num_steps) < 0.05, 0, 1), jnp.float32),
        next_observation=jnp.asarray(x[1:]),
        behaviour_probability=jnp.full(num_steps, 1 / actions, jnp.float32),
        target_probability=jnp.full(num_steps, 1 / actions, jnp.float32),
    )
    questions = ae.GVFQuestion(
        rng.normal(size=(num_demons, num_features + 1)),
        rng.uniform(0, 0.95, num_demons),
        rng.uniform(0, 1, num_demons),
        rng.dirichlet(np.ones(actions), num_demons),
    )
    return questions, timesteps


def ours_offpolicy(method: str, questions, timesteps, step_size, secondary_step_size):
    if method in ("tdc", "gtd2"):  # one-step methods: lambda = 0
        questions = eqx.tree_at(lambda q: q.lambda_, questions, jnp.zeros_like(questions.gamma))
    n = timesteps.observation.shape[1]
    demon = ae.GradientTDLearner(n, method, step_size, secondary_step_size)
    horde = ae.Horde(questions, demon)

    @jax.jit
    def run(horde, timesteps):
        def step(horde, ts):
            horde, result = horde.learn(ts)
            return horde, result.error

        return jax.lax.scan(step, horde, timesteps)

    return lambda: jax.block_until_ready(run(horde, timesteps))


def offpolicy_one(args) -> dict:
    """Compile and time this process's `alberta_eqx` (the one on the path)."""
    questions, timesteps = offpolicy_data(args.demons, args.features, args.steps, 0)
    run = ours_offpolicy(args.offpolicy, questions, timesteps, 0.005, 0.05)
    start = time.perf_counter()
    run()
    compile_s = time.perf_counter() - start
    times = []
    for _ in range(args.rounds):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return {"compile_seconds": compile_s, "seconds": times, "path": ae.__file__}


def offpolicy_main(args):
    """`--offpolicy METHOD` alone: time this checkout. With `--before PATH`: alternate
    processes with PATH's `alberta_eqx` ("before") and this checkout's ("after")
    first on the path, `--pairs` times, each timing `--rounds` calls after compiling;
    report each process's median and the median of the per-pair ratios."""
    if args.before is None:
        result = offpolicy_one(args)
        result["demon_updates_per_second"] = (
            args.demons * args.steps / statistics.median(result["seconds"])
        )
        print(json.dumps(result))
        return
    import os
    import subprocess
    import sys

    here = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    command = [sys.executable, os.path.abspath(__file__)]
    for flag in ("offpolicy", "demons", "features", "steps", "rounds"):
        command += [f"--{flag}", str(getattr(args, flag))]
    medians = {"before": [], "after": []}
    for pair in range(args.pairs):
        for name, path in (("before", args.before), ("after", here)):
            env = dict(os.environ, PYTHONPATH=path)
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
            result = json.loads(out.stdout.strip().splitlines()[-1])
            medians[name].append(statistics.median(result["seconds"]))
            print(
                f"pair {pair} {name:6} {result['path']}: compile "
                f"{result['compile_seconds']:.1f} s, median {medians[name][-1]:.3f} s",
                flush=True,
            )
    updates = args.demons * args.steps
    rates = {name: updates / statistics.median(t) for name, t in medians.items()}
    ratio = statistics.median(
        b / a for b, a in zip(medians["before"], medians["after"], strict=True)
    )
    for name, rate in rates.items():
        print(f"{name:6} {args.demons} {args.offpolicy} demons {rate:14,.0f} demon-updates/s")
    print(f"ratio after / before: {ratio:.2f}x (median of the per-pair ratios)")
    if args.out:
        with open(args.out, "w") as f:
            json.dump(
                {
                    "date": time.strftime("%Y-%m-%d", time.gmtime()),
                    "versions": {"jax": jax.__version__, "python": platform.python_version()},
                    "method": args.offpolicy,
                    "demons": args.demons,
                    "features": args.features,
                    "steps": args.steps,
                    "rounds": args.rounds,
                    "before": args.before,
                    "median_seconds": medians,
                    "demon_updates_per_second": rates,
                    "ratio_after_over_before": ratio,
                },
                f,
                indent=1,
            )


def _their_version() -> str:
    from importlib.metadata import version

    return version("alberta-framework")


if __name__ == "__main__":
    main()
