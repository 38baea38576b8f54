"""Steps per second per seed of UPGD (and of plain SGD, for the cost of UPGD itself) on
input-permuted digits: the authors' PyTorch loop against alberta_eqx's compiled loop (1
seed, and N seeds in one program).

Theirs: `FirstOrderGlobalUPGD` from `upstream/core/optim/weight_upgd/first_order.py`
(and `SGD` from `core/optim/sgd.py`; github.com/mohmdelsayed/upgd, checked out by
setup.sh), unmodified, on their `FullyConnectedReLU` network rebuilt here with
`nn.Linear`/`nn.ReLU` (their module needs HesScale), in the loop of their
`core/run/run.py` (zero_grad, forward, cross-entropy, backward, step, `loss.item()` and
the accuracy's `.item()`), one PyTorch thread, one example per step. Their stream (a
torchvision MNIST DataLoader) is replaced by the same digits as ours indexed with NumPy,
a new input permutation every `--interval` steps: a cheaper stream than theirs, so their
rate here is if anything an overestimate.

Ours: the replication's UPGD and SGD learners (`alberta_eqx.replications.plasticity`: a
`ClassifierLearner` with `alberta_eqx.optax.upgd` or `lms`) on `InputPermutedStream`, in
`run_learning_loop_batched`, as `benchmarks/plasticity_methods.py` times it. Both with the
replication's settings (step-size 0.01, utility decay 0.9999, sigma 0.01, weight decay
0.001) and network (64 inputs, 300 and 150 ReLU units, 10 classes).

Per side: warm-up (ours: the first call, which compiles), then the median of `--rounds`
timed calls, wall-clock and process CPU time (user + system, all threads).

    python benchmarks/upgd_reference/speed.py [--steps 10000] [--their-steps 2000] \
        [--rounds 3] [--seeds 1 10] [--methods UPGD SGD] \
        [--out benchmarks/upgd_reference/speed.json] > benchmarks/upgd_reference/speed.txt
"""

import argparse
import json
import os
import pathlib
import platform
import statistics
import subprocess
import sys
import tempfile
import time

import numpy as np

HERE = pathlib.Path(__file__).resolve().parent
STEP_SIZE, UTILITY_DECAY, SIGMA, WEIGHT_DECAY = 0.01, 0.9999, 0.01, 0.001


def _timed(call, rounds: int) -> dict[str, float]:
    """The medians over `rounds` calls of `call()` (which returns its step count)."""
    walls, cpus, steps = [], [], 0
    for _ in range(rounds):
        wall, cpu = time.perf_counter(), time.process_time()
        steps = call()
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    wall, cpu = statistics.median(walls), statistics.median(cpus)
    return {"steps": steps, "wall_s": wall, "cpu_s": cpu, "steps_per_s": steps / wall,
            "steps_per_cpu_s": steps / cpu}  # fmt: skip


# --- theirs (benchmarks/upgd_reference/.venv) -------------------------------------------


def run_theirs(
    data_path: str, out_path: str, methods: list[str], steps: int, rounds: int, interval: int
) -> None:
    import torch
    from torch import nn

    sys.path.insert(0, str(HERE / "upstream"))
    from core.optim.sgd import SGD
    from core.optim.weight_upgd.first_order import FirstOrderGlobalUPGD

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = np.load(data_path)
    inputs, labels = torch.from_numpy(data["x"]), torch.from_numpy(data["y"].astype(np.int64))
    results = {}
    for method in methods:
        net = _their_network(nn, inputs.shape[1])
        if method == "UPGD":
            optimizer = FirstOrderGlobalUPGD(
                net.named_parameters(),
                lr=STEP_SIZE,
                weight_decay=WEIGHT_DECAY,
                beta_utility=UTILITY_DECAY,
                sigma=SIGMA,
            )
        else:  # the replication's SGD: no weight decay
            optimizer = SGD(net.named_parameters(), lr=STEP_SIZE)
        results[method] = _their_loop(net, optimizer, inputs, labels, steps, rounds, interval)
        results[method]["torch"] = torch.__version__
    with open(out_path, "w") as f:
        json.dump(results, f)


def _their_network(nn, n_obs: int, n_hidden: int = 300, n_outputs: int = 10):
    """Their `FullyConnectedReLU` (core/network/fcn_relu.py), which imports HesScale."""
    return nn.Sequential(
        nn.Linear(n_obs, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden // 2), nn.ReLU(),
        nn.Linear(n_hidden // 2, n_outputs),
    )  # fmt: skip


def _their_loop(net, optimizer, inputs, labels, steps, rounds, interval) -> dict:
    """Their run.py's loop on the digits, timed."""
    import torch
    import torch.nn.functional as F

    n_obs = inputs.shape[1]
    rng = np.random.default_rng(0)
    t = 0
    permutation = torch.arange(n_obs)

    def call() -> int:
        nonlocal t, permutation
        losses, accuracies = [], []
        for _ in range(steps):
            if t % interval == 0:
                permutation = torch.from_numpy(rng.permutation(n_obs))
            t += 1
            i = int(rng.integers(len(labels)))
            x, y = inputs[i : i + 1, permutation], labels[i : i + 1]
            optimizer.zero_grad()
            output = net(x)
            loss = F.cross_entropy(output, y)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            accuracies.append((output.argmax(dim=1) == y).float().mean().item())
        return steps

    call()  # warm-up
    return _timed(call, rounds)


# --- ours -------------------------------------------------------------------------------


def run_ours(method: str, seeds: int, steps: int, rounds: int, interval: int) -> dict:
    import equinox as eqx
    import jax

    from alberta_eqx.replications.plasticity import Settings, _builder
    from alberta_eqx.runners import run_learning_loop_batched
    from alberta_eqx.streams.permuted import InputPermutedStream

    settings = Settings()
    ours = settings.step_size, settings.utility_decay, settings.upgd_sigma
    assert (*ours, settings.upgd_weight_decay) == (STEP_SIZE, UTILITY_DECAY, SIGMA, WEIGHT_DECAY)
    stream = InputPermutedStream(interval=interval)
    keys = jax.random.split(jax.random.key(0), seeds)
    states = eqx.filter_vmap(stream.init)(keys)
    build = _builder(method, settings, (300, 150), stream.inputs.shape[1], stream.num_classes)
    learners = eqx.filter_vmap(eqx.filter_vmap(build))(keys[None])

    def call() -> int:
        result = run_learning_loop_batched(
            learners, stream, steps, keys, stream_states=states, metrics_window=steps
        )
        jax.block_until_ready(jax.tree.leaves(eqx.filter(result, eqx.is_array)))
        return steps

    start = time.perf_counter()
    call()
    first = time.perf_counter() - start  # includes tracing and compilation
    result = _timed(call, rounds)
    result.update(first_call_s=first, seeds=seeds)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=10_000, help="steps per timed call, ours")
    parser.add_argument("--their-steps", type=int, default=2_000, help="the same, theirs")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seeds", type=int, nargs="*", default=[1, 10])
    parser.add_argument("--interval", type=int, default=5000)
    parser.add_argument("--methods", nargs="*", default=["UPGD", "SGD"], choices=["UPGD", "SGD"])
    parser.add_argument("--their-python", default=str(HERE / ".venv" / "bin" / "python"))
    parser.add_argument("--out", default=None, help="a JSON file for the numbers")
    parser.add_argument("--theirs", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.theirs:
        run_theirs(*args.theirs, args.methods, args.their_steps, args.rounds, args.interval)
        return

    from alberta_eqx.streams.permuted import load_digits

    x, y = load_digits()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/digits.npz", x=x, y=y)
        command = [args.their_python, __file__, "--theirs", f"{tmp}/digits.npz",
                   f"{tmp}/theirs.json", "--their-steps", str(args.their_steps),
                   "--rounds", str(args.rounds), "--interval", str(args.interval),
                   "--methods", *args.methods]  # fmt: skip
        subprocess.run(command, check=True)
        with open(f"{tmp}/theirs.json") as f:
            theirs = json.load(f)
    load.append(os.getloadavg()[0])
    ours = {method: [] for method in args.methods}
    for method in args.methods:
        for seeds in args.seeds:
            ours[method].append(run_ours(method, seeds, args.steps, args.rounds, args.interval))
            load.append(os.getloadavg()[0])

    print(
        "On input-permuted digits, network 64-300-150-10 ReLU, batch 1 (UPGD: protecting, "
        "first-order, global);\nmedians of "
        f"{args.rounds} timed calls after warm-up; load average (1 min) {load}.\n"
    )
    print(f"{'':44}{'steps/s per seed':>18}{'per CPU s':>12}{'ratio':>8}{'ratio CPU':>11}")
    for method in args.methods:
        mine, base = ours[method], theirs[method]
        print(
            f"{method + ', theirs (PyTorch ' + base['torch'] + ', 1 thread)':44}"
            f"{base['steps_per_s']:>18,.0f}{base['steps_per_cpu_s']:>12,.0f}"
            f"{1:>8.2f}{1:>11.2f}"
        )
        for row in mine:
            wall = row["steps_per_s"]  # per seed: each call advances every seed by `steps`
            cpu = row["steps_per_cpu_s"]
            print(
                f"{method + ', ours, ' + str(row['seeds']) + ' seed(s) in one program':44}"
                f"{wall:>18,.0f}{cpu:>12,.0f}{wall / base['steps_per_s']:>8.2f}"
                f"{cpu / base['steps_per_cpu_s']:>11.2f}"
            )
    print(
        "\nratio: ours / theirs (the same method), steps per second per seed (wall clock, and "
        "per CPU second of\nthe process). All seeds of one program together make seeds x "
        "that rate."
    )
    if args.out:
        record = {
            "args": vars(args),
            "machine": {"platform": platform.platform(), "cpus": os.cpu_count(),
                        "load_average_1min": load},
            "theirs": theirs,
            "ours": ours,
        }  # fmt: skip
        with open(args.out, "w") as f:
            json.dump(record, f, indent=1)


if __name__ == "__main__":
    main()
