"""Steps per second per seed of UPGD on input-permuted digits: the authors' PyTorch loop
against alberta_eqx's compiled loop (1 seed, and N seeds in one program).

Theirs: `FirstOrderGlobalUPGD` from `upstream/core/optim/weight_upgd/first_order.py`
(github.com/mohmdelsayed/upgd, checked out by setup.sh), unmodified, on their
`FullyConnectedReLU` network rebuilt here with `nn.Linear`/`nn.ReLU` (their module needs
HesScale), in the loop of their `core/run/run.py` (zero_grad, forward, cross-entropy,
backward, step, `loss.item()` and the accuracy's `.item()`), one PyTorch thread, one
example per step. Their stream (a torchvision MNIST DataLoader) is replaced by the same
digits as ours indexed with NumPy, a new input permutation every `--interval` steps: a
cheaper stream than theirs, so their rate here is if anything an overestimate.

Ours: the replication's UPGD learner (`alberta_eqx.replications.plasticity`: a
`ClassifierLearner` with `alberta_eqx.optax.upgd`) on `InputPermutedStream`, in
`run_learning_loop_batched`, as `benchmarks/plasticity_methods.py` times it. Both with the
replication's settings (step-size 0.01, utility decay 0.9999, sigma 0.01, weight decay
0.001) and network (64 inputs, 300 and 150 ReLU units, 10 classes).

Per side: warm-up (ours: the first call, which compiles), then the median of `--rounds`
timed calls, wall-clock and process CPU time (user + system, all threads).

    python benchmarks/upgd_reference/speed.py [--steps 10000] [--their-steps 2000] \
        [--rounds 3] [--seeds 1 10] [--out benchmarks/upgd_reference/speed.json] \
        > benchmarks/upgd_reference/speed.txt
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


def run_theirs(data_path: str, out_path: str, steps: int, rounds: int, interval: int) -> None:
    import torch
    import torch.nn.functional as F
    from torch import nn

    sys.path.insert(0, str(HERE / "upstream"))
    from core.optim.weight_upgd.first_order import FirstOrderGlobalUPGD

    torch.set_num_threads(1)
    torch.manual_seed(0)
    data = np.load(data_path)
    inputs, labels = torch.from_numpy(data["x"]), torch.from_numpy(data["y"].astype(np.int64))
    n_obs, n_hidden, n_outputs = inputs.shape[1], 300, 10
    net = nn.Sequential(  # their FullyConnectedReLU
        nn.Linear(n_obs, n_hidden), nn.ReLU(), nn.Linear(n_hidden, n_hidden // 2), nn.ReLU(),
        nn.Linear(n_hidden // 2, n_outputs),
    )  # fmt: skip
    optimizer = FirstOrderGlobalUPGD(
        net.named_parameters(),
        lr=STEP_SIZE,
        weight_decay=WEIGHT_DECAY,
        beta_utility=UTILITY_DECAY,
        sigma=SIGMA,
    )
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
    result = _timed(call, rounds)
    result["torch"] = torch.__version__
    with open(out_path, "w") as f:
        json.dump(result, f)


# --- ours -------------------------------------------------------------------------------


def run_ours(seeds: int, steps: int, rounds: int, interval: int) -> dict:
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
    build = _builder("UPGD", settings, (300, 150), stream.inputs.shape[1], stream.num_classes)
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
    parser.add_argument("--their-python", default=str(HERE / ".venv" / "bin" / "python"))
    parser.add_argument("--out", default=None, help="a JSON file for the numbers")
    parser.add_argument("--theirs", nargs=2, metavar=("DATA", "OUT"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.theirs:
        run_theirs(*args.theirs, args.their_steps, args.rounds, args.interval)
        return

    from alberta_eqx.streams.permuted import load_digits

    x, y = load_digits()
    load = [os.getloadavg()[0]]
    with tempfile.TemporaryDirectory() as tmp:
        np.savez(f"{tmp}/digits.npz", x=x, y=y)
        command = [args.their_python, __file__, "--theirs", f"{tmp}/digits.npz",
                   f"{tmp}/theirs.json", "--their-steps", str(args.their_steps),
                   "--rounds", str(args.rounds), "--interval", str(args.interval)]  # fmt: skip
        subprocess.run(command, check=True)
        with open(f"{tmp}/theirs.json") as f:
            theirs = json.load(f)
    load.append(os.getloadavg()[0])
    ours = []
    for seeds in args.seeds:
        ours.append(run_ours(seeds, args.steps, args.rounds, args.interval))
        load.append(os.getloadavg()[0])

    print(
        "UPGD (protecting, first-order, global) on input-permuted digits, network "
        "64-300-150-10 ReLU, batch 1;\nmedians of "
        f"{args.rounds} timed calls after warm-up; load average (1 min) {load}.\n"
    )
    print(f"{'':40}{'steps/s per seed':>18}{'per CPU s':>12}{'ratio':>8}{'ratio CPU':>11}")
    print(
        f"{'theirs (PyTorch ' + theirs['torch'] + ', 1 thread)':40}"
        f"{theirs['steps_per_s']:>18,.0f}{theirs['steps_per_cpu_s']:>12,.0f}"
        f"{1:>8.2f}{1:>11.2f}"
    )
    for row in ours:
        wall = row["steps_per_s"]  # per seed: each call advances every seed by `steps`
        cpu = row["steps_per_cpu_s"]
        print(
            f"{'ours, ' + str(row['seeds']) + ' seed(s) in one program':40}{wall:>18,.0f}"
            f"{cpu:>12,.0f}{wall / theirs['steps_per_s']:>8.2f}"
            f"{cpu / theirs['steps_per_cpu_s']:>11.2f}"
        )
    print(
        "\nratio: ours / theirs, steps per second per seed (wall clock, and per CPU second of "
        "the process).\nAll seeds of one program together make seeds x that rate."
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
