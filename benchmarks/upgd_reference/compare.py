"""alberta_eqx's UPGD beside the authors' PyTorch UPGD, step by step: the same network,
initial weights, examples and Gaussian perturbations, in float32 and float64.

Ours is `alberta_eqx.optax.upgd` (protect=True and False); theirs is
`FirstOrderGlobalUPGD` and `FirstOrderNonprotectingGlobalUPGD` from
`upstream/core/optim/weight_upgd/first_order.py` (github.com/mohmdelsayed/upgd, checked
out by setup.sh), imported unmodified. The network is the UPGD paper's two-ReLU-layer
classifier at a reduced size, trained on the cross-entropy one example at a time.

The perturbations: ours draws its own (`alberta_eqx._rules.gaussian_noise`, from the
key in its state); the same draws are written out and fed to theirs by replacing
`torch.randn_like` in *this* script's process (their file is not touched), in the order
their `step` calls it (step by step, parameter by parameter); every draw is checked to be
used once, with the shape asked for.

    python benchmarks/upgd_reference/compare.py [--steps 300] \
        [--out benchmarks/upgd_reference/compare.json] > benchmarks/upgd_reference/compare.txt

runs ours here (alberta_eqx's environment) and theirs in `benchmarks/upgd_reference/.venv`
(`--their-python`); the two exchange `.npz` files in a temporary folder.
"""

import argparse
import itertools
import json
import pathlib
import subprocess
import sys
import tempfile

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
CHECKPOINTS = (1, 10, 100, 300)


def _problem(args) -> dict[str, np.ndarray]:
    """Initial weights (PyTorch's `nn.Linear` initialisation, U(+-1/sqrt(fan_in))),
    inputs and labels, in float64, from NumPy."""
    rng = np.random.default_rng(args.seed)
    sizes = [args.inputs, *args.hidden, args.classes]
    out = {}
    for i, (fan_in, fan_out) in enumerate(itertools.pairwise(sizes)):
        bound = 1 / np.sqrt(fan_in)
        out[f"w{i}"] = rng.uniform(-bound, bound, (fan_out, fan_in))  # torch's (out, in)
        out[f"b{i}"] = rng.uniform(-bound, bound, (fan_out,))
    out["x"] = rng.normal(size=(args.steps, args.inputs))
    out["y"] = rng.integers(0, args.classes, args.steps)
    return out


def _their_commit() -> str:
    """The commit upstream/ is at (setup.sh pins it)."""
    git = ["git", "-C", str(HERE / "upstream"), "rev-parse", "--short", "HEAD"]
    return subprocess.run(git, capture_output=True, text=True, check=True).stdout.strip()


def _cases(args) -> list[dict]:
    return [
        {"name": f"{dtype} protect={protect} sigma={sigma:g}", "dtype": dtype,
         "protect": protect, "sigma": sigma}
        for dtype in ("float32", "float64")
        for protect in (True, False)
        for sigma in args.sigmas
    ]  # fmt: skip


def _params(problem, dtype) -> list[np.ndarray]:
    """[w0, b0, w1, b1, ...]: the order of `nn.Sequential.named_parameters()`."""
    n = sum(k.startswith("w") for k in problem)
    return [problem[f"{p}{i}"].astype(dtype) for i in range(n) for p in "wb"]


# --- ours (alberta_eqx's environment) --------------------------------------------------


def run_ours(problem, case, args):
    """Weights after every step, shape (steps, ...) per leaf, and the noise it drew."""
    import jax
    import jax.numpy as jnp
    import optax

    import alberta_eqx.optax as aeo
    from alberta_eqx._rules import gaussian_noise

    params = [jnp.asarray(p) for p in _params(problem, case["dtype"])]
    tx = aeo.upgd(
        args.step_size,
        args.key,
        args.utility_decay,
        case["sigma"],
        args.weight_decay,
        protect=case["protect"],
    )

    def loss(params, x, y):
        h = x
        for w, b in zip(params[0:-2:2], params[1:-2:2], strict=True):
            h = jax.nn.relu(w @ h + b)
        logits = params[-2] @ h + params[-1]
        return -jax.nn.log_softmax(logits)[y]

    def step(carry, xy):
        params, state = carry
        grads = jax.grad(loss)(params, *xy)
        updates, state = tx.update(grads, state, params)
        params = optax.apply_updates(params, updates)
        return (params, state), params

    state = tx.init(params)
    xs = jnp.asarray(problem["x"], case["dtype"]), jnp.asarray(problem["y"])
    _, history = jax.jit(lambda c, xs: jax.lax.scan(step, c, xs))((params, state), xs)
    # The draws of step t (t = 1, 2, ...), as `upgd` takes them from its state's key.
    key = state[0].key
    noise = jax.vmap(lambda t: gaussian_noise(key, t, params))(jnp.arange(1, args.steps + 1))
    return [np.asarray(h) for h in history], [np.asarray(n) for n in noise]


# --- theirs (benchmarks/upgd_reference/.venv) -------------------------------------------


def run_theirs(problem_path: str, out_path: str) -> None:
    """Every case of `problem_path` through the authors' optimizers; weights after every
    step into `out_path`."""
    import torch
    import torch.nn.functional as F
    from torch import nn

    sys.path.insert(0, str(HERE / "upstream"))
    from core.optim.weight_upgd.first_order import (
        FirstOrderGlobalUPGD,
        FirstOrderNonprotectingGlobalUPGD,
    )

    torch.set_num_threads(1)
    data = dict(np.load(problem_path))
    meta = json.loads(str(data.pop("meta")))
    results = {}
    for c, case in enumerate(meta["cases"]):
        dtype = {"float32": torch.float32, "float64": torch.float64}[case["dtype"]]
        sizes = meta["sizes"]
        layers = []
        for fan_in, fan_out in itertools.pairwise(sizes):
            layers += [nn.Linear(fan_in, fan_out, dtype=dtype), nn.ReLU()]
        net = nn.Sequential(*layers[:-1])
        leaves = _params(data, case["dtype"])
        with torch.no_grad():
            for p, value in zip(net.parameters(), leaves, strict=True):
                p.copy_(torch.from_numpy(value))
        noise = [data[f"noise{c}_{i}"] for i in range(len(leaves))]
        draws = iter([n[t] for t in range(meta["steps"]) for n in noise])

        def randn_like(like, draws=draws):
            draw = next(draws)
            assert tuple(like.shape) == draw.shape, (like.shape, draw.shape)
            return torch.from_numpy(draw).to(like.dtype)

        torch.randn_like = randn_like  # this process only; their file is unchanged
        optimizer_cls = (
            FirstOrderGlobalUPGD if case["protect"] else FirstOrderNonprotectingGlobalUPGD
        )
        # Their hyperparameters stay Python floats (float64) whatever the weights' dtype;
        # --rounded gives them the values ours computes with (rounded to the dtype).
        hyper = {k: meta[k] for k in ("step_size", "weight_decay", "utility_decay")}
        hyper["sigma"] = case["sigma"]
        if meta["rounded"]:
            hyper = {k: float(np.asarray(v, case["dtype"])) for k, v in hyper.items()}
        optimizer = optimizer_cls(
            net.named_parameters(),
            lr=hyper["step_size"],
            weight_decay=hyper["weight_decay"],
            beta_utility=hyper["utility_decay"],
            sigma=hyper["sigma"],
        )
        x = torch.from_numpy(data["x"].astype(case["dtype"]))
        y = torch.from_numpy(data["y"])
        history = [[] for _ in leaves]
        for t in range(meta["steps"]):  # their run.py's loop
            optimizer.zero_grad()
            loss = F.cross_entropy(net(x[t : t + 1]), y[t : t + 1])
            loss.backward()
            optimizer.step()
            for h, p in zip(history, net.parameters(), strict=True):
                h.append(p.detach().numpy().copy())
        assert next(draws, None) is None, "every draw used"
        for i, h in enumerate(history):
            results[f"case{c}_{i}"] = np.stack(h)
    np.savez(out_path, **results)


# --- side by side ---------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=300)
    parser.add_argument("--inputs", type=int, default=16)
    parser.add_argument("--hidden", type=int, nargs="*", default=[32, 16])
    parser.add_argument("--classes", type=int, default=4)
    parser.add_argument("--step-size", type=float, default=0.01)
    parser.add_argument("--utility-decay", type=float, default=0.9999)
    parser.add_argument("--weight-decay", type=float, default=0.001)
    parser.add_argument("--sigmas", type=float, nargs="*", default=[0.0, 0.01, 1.0])
    parser.add_argument("--seed", type=int, default=0, help="the problem's NumPy seed")
    parser.add_argument("--key", type=int, default=0, help="our noise key (an int seed)")
    parser.add_argument(
        "--rounded",
        action="store_true",
        help="give theirs the hyperparameters rounded to the weights' dtype, as ours uses them",
    )
    parser.add_argument("--their-python", default=str(HERE / ".venv" / "bin" / "python"))
    parser.add_argument("--out", default=None, help="a JSON file for the differences")
    parser.add_argument("--theirs", nargs=2, metavar=("PROBLEM", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.theirs:
        run_theirs(*args.theirs)
        return

    import jax

    jax.config.update("jax_enable_x64", True)
    problem = _problem(args)
    cases = _cases(args)
    sizes = [args.inputs, *args.hidden, args.classes]
    meta = {
        "cases": cases, "sizes": sizes, "steps": args.steps, "step_size": args.step_size,
        "utility_decay": args.utility_decay, "weight_decay": args.weight_decay,
        "rounded": args.rounded,
    }  # fmt: skip
    ours, exchange = [], dict(problem)
    for c, case in enumerate(cases):
        history, noise = run_ours(problem, case, args)
        ours.append(history)
        exchange.update({f"noise{c}_{i}": n for i, n in enumerate(noise)})
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/problem.npz", meta=json.dumps(meta), **exchange)
        subprocess.run(
            [args.their_python, __file__, "--theirs", f"{tmp}/problem.npz", f"{tmp}/theirs.npz"],
            check=True,
        )
        theirs = dict(np.load(f"{tmp}/theirs.npz"))

    checkpoints = [t for t in CHECKPOINTS if t <= args.steps]
    print(
        "UPGD, ours (alberta_eqx.optax.upgd) against theirs (upstream/ at "
        f"{_their_commit()}, core/optim/weight_upgd/first_order.py), "
        f"network {sizes} ReLU, cross-entropy, one example a step;\nstep_size "
        f"{args.step_size}, utility_decay {args.utility_decay}, weight_decay "
        f"{args.weight_decay}; the same weights, examples and perturbations.\n"
        "Per checkpoint: max |ours - theirs| over every weight and bias, and that divided "
        "by max |theirs|.\n"
    )
    print(f"{'case':34}" + "".join(f"{'step ' + str(t):>22}" for t in checkpoints))
    rows = []
    for c, case in enumerate(cases):
        row = {**case, "steps": {}}
        cells = []
        for t in checkpoints:
            a = [h[t - 1] for h in ours[c]]
            b = [theirs[f"case{c}_{i}"][t - 1] for i in range(len(a))]
            diff = max(float(np.max(np.abs(x - y))) for x, y in zip(a, b, strict=True))
            scale = max(float(np.max(np.abs(y))) for y in b)
            moved = max(
                float(np.max(np.abs(y - p)))
                for y, p in zip(b, _params(problem, case["dtype"]), strict=True)
            )
            row["steps"][t] = {"max_abs": diff, "max_rel": diff / scale, "theirs_moved": moved}
            cells.append(f"{diff:10.2e} ({diff / scale:8.1e})")
        rows.append(row)
        print(f"{case['name']:34}" + "".join(f"{cell:>22}" for cell in cells))
    print(
        "\nHow far theirs moved from the initial weights (max |w_t - w_0|), for scale:\n"
        + "\n".join(
            f"{row['name']:34}"
            + "".join(f"{row['steps'][t]['theirs_moved']:>22.2e}" for t in checkpoints)
            for row in rows
        )
    )
    if args.out:
        with open(args.out, "w") as f:
            json.dump({"args": vars(args), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
