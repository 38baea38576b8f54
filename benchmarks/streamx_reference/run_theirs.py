"""Runs the authors' unmodified `stream_q_minatar.py` (upstream/, see setup.sh), one seed
per process, and records every episode with the wall clock and the process's CPU time.

Their script prints one line per episode with `--debug` ("Episodic Return: R, Time Step T,
...") and pickles `(returns, term_time_steps, env_name)` at the end; this driver reads
both. Each process runs with one intra-op thread (`OMP_NUM_THREADS=1`): one seed per
process on a core, as the paper's CPU runs, and without it PyTorch's two spinning threads
per process slow everything down on a shared machine.

Usage (from the repository root, after `bash benchmarks/streamx_reference/setup.sh`):

    benchmarks/streamx_reference/.venv/bin/python benchmarks/streamx_reference/run_theirs.py \
        --env MinAtar/Breakout-v1 --seeds 0 1 2 --steps 100000 \
        --out benchmarks/streamx_reference/theirs_breakout_100k.json

The seeds run as parallel processes; the JSON holds per seed the episodes' returns and
end steps (from their pickle) and `(step, wall seconds, CPU seconds)` at every episode end.

`--sticky-action-prob P` runs the same unmodified script on `minatar.Environment` with
`sticky_action_prob=P` instead of its default 0.1 (their script has no such option): a
launcher re-registers the environment id with that keyword, then runs the script as
`__main__` in the same process.
"""

import argparse
import json
import os
import pickle
import re
import subprocess
import sys
import threading
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
SCRIPT = HERE / "upstream" / "stream_q_minatar.py"
# Re-registers argv[1]'s environment id with sticky_action_prob=argv[2], then runs the
# script argv[3] as __main__ with the remaining arguments.
LAUNCH = """
import runpy, sys
import gymnasium
from gymnasium.envs.registration import registry, register
env_id, prob, script = sys.argv[1], float(sys.argv[2]), sys.argv[3]
spec = registry[env_id]
kwargs = {**spec.kwargs, "sticky_action_prob": prob}
register(id=env_id, entry_point=spec.entry_point, kwargs=kwargs)
sys.argv = sys.argv[3:]
sys.path.insert(0, str(__import__("pathlib").Path(script).parent))
runpy.run_path(script, run_name="__main__")
"""
LINE = re.compile(r"Episodic Return: (\S+), Time Step (\d+)")
TICKS = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of a live process (/proc/PID/stat fields 14 and 15)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--env", default="MinAtar/Breakout-v1")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--workdir", type=Path, default=HERE / "runs")
    parser.add_argument(
        "--sticky-action-prob",
        type=float,
        help="minatar's sticky_action_prob (default: the script's environment, 0.1)",
    )
    args = parser.parse_args()

    workdir = args.workdir / args.env.replace("/", "_")
    if args.sticky_action_prob is not None:
        workdir = workdir.with_name(f"{workdir.name}_sticky{args.sticky_action_prob:g}")
    workdir.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}
    procs = {}
    for seed in args.seeds:
        command = [sys.executable, str(SCRIPT), "--env_name", args.env, "--seed", str(seed)]
        command += ["--total_steps", str(args.steps), "--debug"]
        if args.sticky_action_prob is not None:
            launch = [sys.executable, "-c", LAUNCH, args.env, str(args.sticky_action_prob)]
            command = launch + command[1:]
        procs[seed] = subprocess.Popen(
            command, cwd=workdir, env=env, stdout=subprocess.PIPE, text=True
        )
    starts = {seed: time.perf_counter() for seed in args.seeds}
    clocks: dict[int, list[tuple[int, float, float, float]]] = {seed: [] for seed in args.seeds}

    # one reader thread per process keeps every pipe drained while the others run
    def read(seed: int) -> None:
        proc = procs[seed]
        for line in proc.stdout:
            match = LINE.search(line)
            if match:
                now = time.perf_counter() - starts[seed]
                try:
                    cpu = cpu_seconds(proc.pid)
                except (FileNotFoundError, ProcessLookupError):
                    cpu = float("nan")
                clocks[seed].append((int(match.group(2)), now, cpu, float(match.group(1))))

    threads = [threading.Thread(target=read, args=(seed,)) for seed in args.seeds]
    for thread in threads:
        thread.start()
    commit = subprocess.run(
        ["git", "-C", str(HERE / "upstream"), "rev-parse", "HEAD"], capture_output=True, text=True
    ).stdout.strip()

    def dump(final: bool) -> None:
        """Writes the JSON: while running, the episodes read from the printed lines
        (`"finished": false`), at the end the returns from the script's pickle."""
        results = {}
        for seed, proc in procs.items():
            episodes = list(clocks[seed])
            returns = [r for _, _, _, r in episodes]
            ends = [t for t, _, _, _ in episodes]
            if final:
                if proc.wait() != 0:
                    raise SystemExit(f"seed {seed} exited with {proc.returncode}")
                name = f"data_stream_q_{args.env}_lr1.0_gamma0.99_lamda0.8"
                with open(workdir / name / f"seed_{seed}.pkl", "rb") as f:
                    returns, ends, _ = pickle.load(f)
            results[str(seed)] = {
                "returns": [float(r) for r in returns],
                "end_steps": [int(t) for t in ends],
                "clock": [(t, wall, cpu) for t, wall, cpu, _ in episodes],
                "wall_seconds": time.perf_counter() - starts[seed],
            }
        document = {
            "who": "theirs",
            "env": args.env,
            "steps": args.steps,
            "seeds": args.seeds,
            "upstream_commit": commit,
            "sticky_action_prob": args.sticky_action_prob,
            "finished": final,
            "runs": results,
        }
        args.out.write_text(json.dumps(document))

    while any(thread.is_alive() for thread in threads):
        for thread in threads:
            thread.join(timeout=60.0 / len(threads))
        dump(final=False)
    dump(final=True)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
