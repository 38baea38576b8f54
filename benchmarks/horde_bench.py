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
import importlib
import importlib.util
import json
import os
import platform
import re
import statistics
import sys
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


def _timed_scan(horde, x, rewards):
    """A function running `horde` over the transitions `(x_t, r_t, 1, x_{t+1})` in one
    compiled scan (compiled on its first call)."""
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


def ours(x, rewards, cumulant, gammas, lambdas, step_size):
    questions = ae.GVFQuestion(cumulant, gammas, lambdas)
    horde = ae.Horde(questions, ae.TDLinearLearner(x.shape[1], ae.LMS(step_size)))
    return _timed_scan(horde, x, rewards)


def ours_trunk(x, rewards, cumulant, gammas, lambdas, step_size, hidden):
    import alberta_eqx.optax as aeo

    questions = ae.GVFQuestion(cumulant, gammas, lambdas)
    # 0.17.1's network: LeakyReLU and parameterless LayerNorm (MLP's defaults), sparsity 0.9
    network_key = jax.random.split(jax.random.key(0))[0]
    network = ae.MLP(x.shape[1], len(gammas), hidden, key=network_key, sparsity=0.9)
    horde = ae.TrunkHorde(questions, network, aeo.lms(step_size))
    return _timed_scan(horde, x, rewards)


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
    offpolicy = parser.add_argument_group("off-policy Horde (ours only; see offpolicy_main)")
    offpolicy.add_argument("--offpolicy", choices=["td", "tdc", "gtd2", "gtd", "gq"])
    offpolicy.add_argument("--before", help="time this checkout's alberta_eqx beside it")
    offpolicy.add_argument("--hlo", action="store_true", help="print what reads x' instead")
    args = parser.parse_args()
    if args.offpolicy:
        return offpolicy_main(args)
    hidden = tuple(args.hidden)
    sizes = {"alberta_eqx": args.demons}
    their = args.their_demons or args.demons
    if their != args.demons:
        sizes[f"alberta_eqx {their}"] = their
    if hidden:
        sizes["alberta_eqx traced"] = args.demons
    theirs_name = "alberta_framework 0.17.1"
    if importlib.util.find_spec("alberta_framework") is None:
        print("alberta-framework is not installed here: timing alberta_eqx only")
    else:
        sizes[theirs_name] = their
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
    ratios = {
        f"{name} / {theirs_name}": statistics.median(
            (sizes[name] / t) / (sizes[theirs_name] / u)
            for t, u in zip(times[name], times[theirs_name], strict=True)
        )
        for name in runners
        if name.startswith("alberta_eqx") and theirs_name in runners
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


# --- Off-policy Horde: gradient-TD demons, ours before and after a change -----------


def offpolicy_data(package, num_demons: int, num_features: int, num_steps: int, seed: int):
    """Random features, rewards and actions (4 actions, uniform behaviour policy, an
    episode end at ~5% of steps) and random questions with random target policies, as
    `package`'s types (an `alberta_eqx`)."""
    rng = np.random.default_rng(seed)
    actions = 4
    x = rng.normal(size=(num_steps + 1, num_features)).astype(np.float32)
    timesteps = package.OffPolicyTimeStep(
        observation=jnp.asarray(x[:-1]),
        action=jnp.asarray(rng.integers(0, actions, num_steps), jnp.int32),
        reward=jnp.asarray(rng.normal(size=num_steps), jnp.float32),
        discount=jnp.asarray(np.where(rng.random(num_steps) < 0.05, 0, 1), jnp.float32),
        next_observation=jnp.asarray(x[1:]),
        behaviour_probability=jnp.full(num_steps, 1 / actions, jnp.float32),
        target_probability=jnp.full(num_steps, 1 / actions, jnp.float32),
    )
    questions = package.GVFQuestion(
        rng.normal(size=(num_demons, num_features + 1)),
        rng.uniform(0, 0.95, num_demons),
        rng.uniform(0, 1, num_demons),
        rng.dirichlet(np.ones(actions), num_demons),
    )
    return questions, timesteps


def offpolicy_horde(package, method: str, questions, num_features: int):
    """A Horde of `method` demons (alpha 0.005, beta 0.05); lambda 0 for the one-step
    methods."""
    if method in ("tdc", "gtd2"):
        questions = eqx.tree_at(lambda q: q.lambda_, questions, jnp.zeros_like(questions.gamma))
    return package.Horde(questions, package.GradientTDLearner(num_features, method, 0.005, 0.05))


def offpolicy_runner(package, args):
    """`package`'s Horde over `--steps` transitions in one compiled scan."""
    questions, timesteps = offpolicy_data(package, args.demons, args.features, args.steps, 0)
    horde = offpolicy_horde(package, args.offpolicy, questions, args.features)

    @jax.jit
    def run(horde, timesteps):
        def step(horde, ts):
            horde, result = horde.learn(ts)
            return horde, result.error

        return jax.lax.scan(step, horde, timesteps)

    return lambda: jax.block_until_ready(run(horde, timesteps))


def offpolicy_hlo(package, args):
    """Print what reads `x'` in one compiled Horde step (`Horde.learn` under `jit`):
    the operations taking the next-observation parameter, and the readers of any
    `(demons, features)` array made from it (a per-demon copy of `x'`)."""
    questions, timesteps = offpolicy_data(package, args.demons, args.features, 1, 0)
    horde = offpolicy_horde(package, args.offpolicy, questions, args.features)
    step = jax.tree.map(lambda a: a[0], timesteps)
    text = jax.jit(lambda horde, step: horde.learn(step)).lower(horde, step).compile().as_text()
    ops = {}  # name -> (shape, opcode, operand names), the entry computation's
    for line in text[text.index("\nENTRY") :].splitlines()[1:]:
        match = re.match(r"\s*(?:ROOT )?%(\S+) = (\S+?)(?:\{[^}]*\})? (\S+?)\((.*?)\)", line)
        if match:
            name, shape, opcode, operands = match.groups()
            ops[name] = (shape, opcode, re.findall(r"%([\w.\-]+)", operands))
    per_demon = f"f32[{args.demons},{args.features}]"
    frontier = [n for n, (_, op, _) in ops.items() if op == "parameter" and "next_obs" in n]
    seen = set(frontier)
    print(f"{package.__file__}: {args.demons} {args.offpolicy} demons, what reads x' ({frontier})")
    while frontier:
        source = frontier.pop(0)
        for name, (shape, opcode, operands) in ops.items():
            if source in operands and name not in seen:
                seen.add(name)
                print(f"  {source} -> {name}: {opcode} {shape}")
                if opcode in ("bitcast", "copy") or (shape == per_demon and opcode != "dot"):
                    frontier.append(name)


def _load_package(path: str | None):
    """`alberta_eqx` from the checkout at `path` (None: this checkout), imported
    afresh: two versions live side by side, each module's functions keeping their own
    package (the package has no imports inside functions)."""
    for name in [n for n in sys.modules if n == "alberta_eqx" or n.startswith("alberta_eqx.")]:
        del sys.modules[name]
    root = path or os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    sys.path.insert(0, root)
    try:
        return importlib.import_module("alberta_eqx")
    finally:
        sys.path.remove(root)


def offpolicy_main(args):
    """`--offpolicy METHOD`: time this checkout's off-policy Horde and, with
    `--before PATH`, the checkout at PATH's beside it in this process, in alternating
    rounds (compilation excluded); report the medians and the median of the per-round
    ratios. With `--hlo`, print what reads `x'` in the compiled step instead."""
    packages = {"after": _load_package(None)}
    if args.before:
        packages["before"] = _load_package(args.before)
    if args.hlo:
        for package in packages.values():
            offpolicy_hlo(package, args)
        return
    runners = {name: offpolicy_runner(p, args) for name, p in packages.items()}
    compile_s = {}
    for name, run in runners.items():
        start = time.perf_counter()
        run()
        compile_s[name] = time.perf_counter() - start
        print(f"{name} ({packages[name].__file__}): first call {compile_s[name]:.1f} s")
    times = {name: [] for name in runners}
    for _ in range(args.rounds):
        for name, run in runners.items():
            start = time.perf_counter()
            run()
            times[name].append(time.perf_counter() - start)
    updates = args.demons * args.steps
    rates = {name: updates / statistics.median(t) for name, t in times.items()}
    for name, rate in rates.items():
        print(f"{name:6} {args.demons} {args.offpolicy} demons {rate:14,.0f} demon-updates/s")
    ratio = None
    if args.before:
        ratio = statistics.median(
            b / a for b, a in zip(times["before"], times["after"], strict=True)
        )
        print(f"ratio after / before: {ratio:.2f}x (median of the per-round ratios)")
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
                    "seconds": times,
                    "compile_seconds": compile_s,
                    "demon_updates_per_second": rates,
                    "ratio_after_over_before": ratio,
                },
                f,
                indent=1,
            )


def _their_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("alberta-framework")
    except PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    main()
