"""An online MLP on a drifting nonlinear teacher: SGD, Adam, IDBD and Autostep.

    .venv/bin/python benchmarks/mlp_online.py --steps 40000 --seeds 8 --out /tmp/mlp.json

Each optimizer trains `MLPLearner(features, (hidden, hidden))` online (one example per
step, no replay) on `NonlinearTeacherStream` (a two-layer tanh teacher whose weights
drift by a random walk), over several seeds in one compiled batched run per setting.
Every optimizer gets a short sweep of its one tuned number, so the comparison is
between best settings: the learning rate for SGD and Adam, the meta step-size for
IDBD and Autostep, each with every step-size starting at each of
`--initial-step-sizes`.

Reported per setting: the mean squared error over the last quarter of the run (mean
over seeds, with its standard error), the number of diverged seeds (left out of the
mean), the mean per-parameter step-size over that quarter (IDBD / Autostep only) and
the wall time including compilation; then the best setting of each optimizer, and
the error of predicting zero for scale.
"""

import argparse
import json
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import alberta_eqx as ae
import alberta_eqx.optax as aeo


def candidates(
    initial_step_sizes: list[float],
) -> dict[str, dict[str, optax.GradientTransformation]]:
    """The settings swept, per optimizer."""
    metas = (1e-3, 1e-2, 1e-1)
    return {
        "SGD": {f"lr={lr:g}": optax.sgd(lr) for lr in (1e-3, 3e-3, 1e-2, 3e-2)},
        "Adam": {f"lr={lr:g}": optax.adam(lr) for lr in (1e-4, 3e-4, 1e-3, 3e-3)},
        "IDBD": {
            f"theta={t:g},a0={a:g}": aeo.idbd(meta_step_size=t, initial_step_size=a)
            for a in initial_step_sizes
            for t in metas
        },
        "Autostep": {
            f"mu={m:g},a0={a:g}": aeo.autostep(meta_step_size=m, initial_step_size=a)
            for a in initial_step_sizes
            for m in metas
        },
    }


def evaluate(tx: optax.GradientTransformation, stream, args, keys) -> dict:
    """Run one setting over all seeds; summarise its last quarter."""
    learner = ae.MLPLearner(
        ae.MLP(
            args.features,
            "scalar",
            (args.hidden, args.hidden),
            key=jax.random.key(args.init_seed),
            activation=jax.nn.relu,
            layer_norm=False,
        ),
        tx,
    )
    start = time.perf_counter()
    result = ae.run_learning_loop_batched(
        learner, stream, args.steps, keys, metrics_window=args.steps // 4
    )
    errors = np.asarray(result.metrics.squared_error[:, -1])
    seconds = time.perf_counter() - start
    finite = errors[np.isfinite(errors)]
    step_sizes = np.asarray(result.metrics.mean_step_size[:, -1])
    step_size = float(np.nanmean(step_sizes)) if np.isfinite(step_sizes).any() else float("nan")
    return {
        "mse": float(finite.mean()) if finite.size else float("nan"),
        "stderr": float(finite.std(ddof=1) / np.sqrt(finite.size))
        if finite.size > 1
        else float("nan"),
        "diverged": int(errors.size - finite.size),
        "mean_step_size": step_size,
        "per_seed": errors.tolist(),
        "seconds": seconds,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=40_000, help="a multiple of 4")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=32, help="the student's two widths")
    parser.add_argument("--teacher-hidden", type=int, default=8)
    parser.add_argument(
        "--initial-step-sizes", type=float, nargs="+", default=[1e-3, 1e-2], help="IDBD, Autostep"
    )
    parser.add_argument("--init-seed", type=int, default=0, help="the student's weights")
    parser.add_argument("--out", default="benchmarks/mlp_online.json")
    args = parser.parse_args()
    if args.steps < 4 or args.steps % 4:
        parser.error(f"--steps must be a positive multiple of 4, got {args.steps}")
    if args.seeds < 2:
        parser.error(f"--seeds must be >= 2 for a standard error, got {args.seeds}")

    keys = jax.random.split(jax.random.key(1), args.seeds)
    stream = ae.NonlinearTeacherStream(args.features, hidden_size=args.teacher_hidden)
    quarter = args.steps // 4
    targets = jax.vmap(lambda k: stream.chunk(stream.init(k), jnp.asarray(0), args.steps)[0])(
        keys
    ).target
    zero = float(np.mean(np.asarray(targets[:, -quarter:]) ** 2))
    print(
        f"teacher {args.features}-{args.teacher_hidden}-1 (tanh, drifting); student "
        f"{args.features}-{args.hidden}-{args.hidden}-1 (relu); {args.steps} steps x "
        f"{args.seeds} seeds; {jax.devices()[0].platform}"
    )
    print(f"predicting zero: MSE {zero:.4f} over the last {quarter} steps\n")
    print(
        f"{'optimizer':9} {'setting':20} {'MSE (last quarter)':>20} {'diverged':>8} "
        f"{'mean alpha':>10} {'time':>6}"
    )
    rows = []
    for name, settings in candidates(args.initial_step_sizes).items():
        for setting, tx in settings.items():
            row = {"optimizer": name, "setting": setting, **evaluate(tx, stream, args, keys)}
            rows.append(row)
            alpha = "" if np.isnan(row["mean_step_size"]) else f"{row['mean_step_size']:.2e}"
            print(
                f"{name:9} {setting:20} {row['mse']:11.4f} +- {row['stderr']:.4f} "
                f"{row['diverged']:8d} {alpha:>10} {row['seconds']:5.1f}s",
                flush=True,
            )
    print("\nbest setting of each:")
    best = {}
    for name in candidates(args.initial_step_sizes):
        row = min(
            (r for r in rows if r["optimizer"] == name),
            key=lambda r: np.nan_to_num(r["mse"], nan=np.inf),
        )
        best[name] = row["setting"]
        print(f"  {name:9} {row['setting']:20} {row['mse']:.4f} +- {row['stderr']:.4f}")
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "zero_mse": zero, "rows": rows, "best": best}, f, indent=2)


if __name__ == "__main__":
    main()
