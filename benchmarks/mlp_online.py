"""An online MLP on a drifting nonlinear teacher: SGD, Adam, IDBD and Autostep.

    .venv/bin/python benchmarks/mlp_online.py --steps 50000 --seeds 8

Each optimizer trains `MLPLearner(feature_dim, (hidden, hidden))` online on
`NonlinearTeacherStream` (a two-layer tanh teacher whose weights drift), over several
seeds in one compiled batched run. SGD and Adam get a small step-size sweep and are
reported at their best; IDBD and Autostep run at their suggested settings plus a small
meta step-size sweep. Reported: mean squared error over the last quarter of the run,
mean over seeds with its standard error, and the error of predicting zero.
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


def final_error(tx, args, keys) -> np.ndarray:
    stream = ae.NonlinearTeacherStream(args.features, hidden_size=args.teacher_hidden)
    learner = ae.MLPLearner(
        args.features, (args.hidden, args.hidden), tx, key=jax.random.key(args.init_seed)
    )
    window = args.steps // 4
    result = ae.run_learning_loop_batched(learner, stream, args.steps, keys, metrics_window=window)
    return np.asarray(result.metrics.squared_error[:, -1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=50_000)
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--features", type=int, default=8)
    parser.add_argument("--hidden", type=int, default=32)
    parser.add_argument("--teacher-hidden", type=int, default=8)
    parser.add_argument("--init-seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/mlp_online.json")
    args = parser.parse_args()
    keys = jax.random.split(jax.random.key(1), args.seeds)

    candidates = {
        "SGD": {f"lr={lr:g}": optax.sgd(lr) for lr in (1e-3, 3e-3, 1e-2, 3e-2)},
        "Adam": {f"lr={lr:g}": optax.adam(lr) for lr in (1e-4, 3e-4, 1e-3, 3e-3)},
        "IDBD": {f"theta={t:g}": aeo.idbd(t, initial_step_size=1e-3) for t in (1e-3, 1e-2, 1e-1)},
        "Autostep": {
            f"mu={m:g}": aeo.autostep(m, initial_step_size=1e-3) for m in (1e-3, 1e-2, 1e-1)
        },
    }
    stream = ae.NonlinearTeacherStream(args.features, hidden_size=args.teacher_hidden)
    targets = jax.vmap(
        lambda k: stream.chunk(stream.init(k), jnp.asarray(0), args.steps)[0].target
    )(keys)
    zero = float(np.mean(np.asarray(targets)[:, -args.steps // 4 :] ** 2))
    print(
        f"teacher: {args.features} inputs, {args.teacher_hidden} hidden; student "
        f"{args.hidden}x{args.hidden}; {args.steps} steps x {args.seeds} seeds"
    )
    print(f"predicting zero: MSE {zero:.4f}")
    rows = []
    for name, settings in candidates.items():
        for setting, tx in settings.items():
            start = time.perf_counter()
            errors = final_error(tx, args, keys)
            finite = errors[np.isfinite(errors)]
            mean = float(finite.mean()) if finite.size else float("nan")
            stderr = (
                float(finite.std(ddof=1) / np.sqrt(finite.size))
                if finite.size > 1
                else float("nan")
            )
            rows.append(
                {
                    "optimizer": name,
                    "setting": setting,
                    "mse": mean,
                    "stderr": stderr,
                    "diverged": int(errors.size - finite.size),
                    "seconds": time.perf_counter() - start,
                }
            )
            print(
                f"{name:9} {setting:12} MSE {mean:.4f} +- {stderr:.4f}"
                f"  diverged {rows[-1]['diverged']}  ({rows[-1]['seconds']:.1f}s)",
                flush=True,
            )
    print("best of each:")
    for name in candidates:
        best = min(
            (r for r in rows if r["optimizer"] == name),
            key=lambda r: np.nan_to_num(r["mse"], nan=np.inf),
        )
        print(f"  {name:9} {best['setting']:12} {best['mse']:.4f} +- {best['stderr']:.4f}")
    with open(args.out, "w") as f:
        json.dump({"args": vars(args), "zero_mse": zero, "rows": rows}, f, indent=2)


if __name__ == "__main__":
    main()
