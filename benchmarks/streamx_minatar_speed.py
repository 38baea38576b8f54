"""Environment steps per second of the Stream agents on MinAtar (gymnax), with 1, 8
and 32 seeds in one compiled program (issue 26's speed check; the authors' PyTorch
scripts run one seed per process: `benchmarks/streamx_reference/` times those).

    python benchmarks/streamx_minatar_speed.py                 # Breakout, Stream Q, CPU
    python benchmarks/streamx_minatar_speed.py --agent ac --seeds 1 8 32 128

Each size compiles one segment of `--segment-steps` steps (the warm-up call, timed
apart: it includes tracing and compilation), then times `--repeats` further calls; a
rate is `seeds * segment_steps / median(call time)`. The results are appended to
`benchmarks/streamx_minatar_speed.txt` with the device and the machine's load.

On a GPU machine (JAX with CUDA installed) the same script times the GPU:

    JAX_PLATFORMS=cuda python benchmarks/streamx_minatar_speed.py --seeds 1 32 256 1024

and the full-size replication is the command line's (5 seeds of Stream Q on Breakout,
5,000,000 steps; 32 seeds in the same program cost little more on a GPU):

    JAX_PLATFORMS=cuda alberta-eqx replicate stream-x-minatar --game breakout --agent q --seeds 32
"""

import argparse
import os
import statistics
import time

import equinox as eqx
import jax

from alberta_eqx.control import run_control, start_control
from alberta_eqx.control.stream_x import environment, make_agent


def rate(game: str, agent: str, seeds: int, segment_steps: int, repeats: int) -> dict:
    """The first call's time and the median steps per second of `repeats` calls."""
    base, params, env = environment(game)

    def start(key):
        agent_key, run_key = jax.random.split(key)
        learner = make_agent(game, agent, agent_key, num_steps=5_000_000, base=base, params=params)
        return start_control(learner, env, run_key, max_episodes=segment_steps)

    runs = eqx.filter_jit(eqx.filter_vmap(start))(jax.random.split(jax.random.key(0), seeds))
    segment = eqx.filter_jit(eqx.filter_vmap(lambda r: run_control(r, env, segment_steps)))
    began = time.perf_counter()
    runs = jax.block_until_ready(segment(runs))
    first = time.perf_counter() - began
    times = []
    for _ in range(repeats):
        began = time.perf_counter()
        runs = jax.block_until_ready(segment(runs))
        times.append(time.perf_counter() - began)
    median = statistics.median(times)
    return {
        "seeds": seeds,
        "first_call_s": first,
        "median_s": median,
        "steps_per_s": seeds * segment_steps / median,
        "per_seed_steps_per_s": segment_steps / median,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--agent", default="q", choices=("q", "sarsa", "ac"))
    parser.add_argument("--seeds", type=int, nargs="+", default=[1, 8, 32])
    parser.add_argument("--segment-steps", type=int, default=2_000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument(
        "--out", default=os.path.join(os.path.dirname(__file__), "streamx_minatar_speed.txt")
    )
    args = parser.parse_args()
    device = jax.devices()[0]
    header = (
        f"{time.strftime('%Y-%m-%d %H:%M')} {args.game} Stream {args.agent.upper()}, "
        f"segments of {args.segment_steps:,} steps, median of {args.repeats} calls after "
        f"the warm-up; device {device.platform} ({device.device_kind}), "
        f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}"
    )
    lines = [header, f"{'seeds':>6} {'first call s':>13} {'steps/s':>10} {'per seed':>10}"]
    print(header, flush=True)
    for seeds in args.seeds:
        r = rate(args.game, args.agent, seeds, args.segment_steps, args.repeats)
        line = (
            f"{seeds:>6} {r['first_call_s']:>13.1f} {r['steps_per_s']:>10,.0f} "
            f"{r['per_seed_steps_per_s']:>10,.0f}"
        )
        print(line, flush=True)
        lines.append(line)
    base = lines[2].split()
    if len(lines) > 3:
        one = float(base[2].replace(",", ""))
        for line in lines[3:]:
            total = float(line.split()[2].replace(",", ""))
            lines.append(f"{line.split()[0]} seeds: {total / one:.1f}x the total rate of 1 seed")
    with open(args.out, "a") as f:
        f.write("\n".join(lines) + "\n\n")
    print("\n".join(lines[2 + len(args.seeds) :]))


if __name__ == "__main__":
    main()
