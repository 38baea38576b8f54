"""Runs alberta_eqx's Stream Q(lambda) on gymnax MinAtar (`stream_x_minatar.stream_x`,
the `minatar` branch) with N seeds in one compiled program, and records every episode
and the wall clock and process CPU time after every compiled segment.

Usage (from the repository root, with alberta_eqx's own environment):

    python benchmarks/streamx_reference/run_ours.py --game breakout --seeds 8 \
        --steps 100000 --out benchmarks/streamx_reference/ours_breakout_100k_8.json

The first segment includes the compilation; `summarise.py` drops it (and any other
warm-up segment) before taking the median rate.
"""

import argparse
import json
import time
from pathlib import Path

import jax

from alberta_eqx.replications.stream_x_minatar import STICKY_ACTION_PROB, stream_x


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--game", default="breakout")
    parser.add_argument("--agent", default="q")
    parser.add_argument("--seeds", type=int, default=8)
    parser.add_argument("--steps", type=int, default=100_000)
    parser.add_argument("--segment", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--exploration-steps",
        type=int,
        help="epsilon's decay length (default: the script's 20%% of --steps); give the "
        "authors' run's, to compare with the first --steps steps of a longer run of theirs",
    )
    parser.add_argument(
        "--sticky-action-prob",
        type=float,
        default=STICKY_ACTION_PROB,
        help="sticky actions as minatar's (default: theirs, %(default)s; 0: gymnax's games)",
    )
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    clock: list[tuple[int, float, float]] = []
    started = time.time()  # the Unix time, to line runs up with the authors' runs
    start_wall, start_cpu = time.perf_counter(), time.process_time()
    done = 0

    def progress(steps: int) -> None:
        nonlocal done
        done += steps
        clock.append((done, time.perf_counter() - start_wall, time.process_time() - start_cpu))
        # the clock so far, so that a run cut short still gives its rate
        partial = {"who": "ours", "finished": False, "num_seeds": args.seeds, "clock": clock}
        partial["started"] = started
        args.out.write_text(json.dumps(partial))

    extra = {} if args.exploration_steps is None else {"exploration_steps": args.exploration_steps}
    result = stream_x(
        args.game,
        args.agent,
        num_seeds=args.seeds,
        num_steps=args.steps,
        segment_steps=args.segment,
        seed=args.seed,
        progress=progress,
        sticky_action_prob=args.sticky_action_prob,
        **extra,
    )
    runs = {}
    for i in range(args.seeds):
        n = int(result.num_episodes[i])
        runs[str(i)] = {
            "returns": result.returns[i, :n].tolist(),
            "end_steps": result.end_steps[i, :n].tolist(),
        }
    document = {
        "who": "ours",
        "finished": True,
        "started": started,
        "game": args.game,
        "agent": args.agent,
        "steps": args.steps,
        "num_seeds": args.seeds,
        "segment_steps": args.segment,
        "exploration_steps": args.exploration_steps,
        "sticky_action_prob": args.sticky_action_prob,
        "backend": jax.default_backend(),
        "clock": clock,
        "wall_seconds": result.wall_seconds,
        "runs": runs,
    }
    args.out.write_text(json.dumps(document))
    print(f"wrote {args.out}: {result.wall_seconds:.1f} s")


if __name__ == "__main__":
    main()
