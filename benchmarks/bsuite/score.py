"""bsuite's own analysis on bsuite CSV results: its per-experiment scores
(`summary_analysis.bsuite_score`), their averages by tag, the radar plot and the bar
plot. Runs in the venv of `setup-venv.sh` (bsuite's analysis predates pandas 2); needs
no JAX.

    benchmarks/bsuite/.venv/bin/python benchmarks/bsuite/score.py \\
        stream_q=/tmp/bsuite/stream_q sarsa_lambda=/tmp/bsuite/sarsa_lambda \\
        --radar docs/images/bsuite-radar.png --bar docs/images/bsuite-bar.png

`--earlier JSON AGENT` adds an agent scored before (its per-experiment scores and
`finished` flags in a `--json` this script wrote) to the tables and plots, for an
agent whose CSVs are gone: its scores are bsuite's as computed then; the averages by
tag and the plots are computed again with the others'.
"""

import argparse
import json
import math

import matplotlib

matplotlib.use("Agg")

import pandas as pd
from bsuite.experiments import summary_analysis
from bsuite.logging import csv_load


def earlier_scores(path: str, agent: str) -> pd.DataFrame:
    """`agent`'s rows of `bsuite_score`'s table, from a `--json` written before."""
    with open(path) as f:
        stored = json.load(f)
    rows = []
    for env, score in stored["by_experiment"][agent].items():
        if score is None or math.isnan(score):
            continue  # not run, or not finished
        info = summary_analysis.BSUITE_INFO[env]
        rows.append(
            {
                "agent_name": agent,
                "bsuite_env": env,
                "score": score,
                "type": info.type,
                "tags": str(info.tags),
                "finished": bool(stored["finished"][agent][env]),
            }
        )
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", nargs="+", help="NAME=FOLDER, one per agent")
    parser.add_argument("--radar", help="save the radar plot (by tag) here")
    parser.add_argument("--bar", help="save the bar plot (by experiment) here")
    parser.add_argument("--json", help="write the scores here")
    parser.add_argument(
        "--earlier",
        nargs=2,
        action="append",
        default=[],
        metavar=("JSON", "AGENT"),
        help="add AGENT's scores from an earlier --json (its CSVs are not needed)",
    )
    args = parser.parse_args()
    folders = dict(item.split("=", 1) for item in args.results)
    df, sweep_vars = csv_load.load_bsuite(folders)
    scores = summary_analysis.bsuite_score(df, sweep_vars)
    earlier = [earlier_scores(path, agent) for path, agent in args.earlier]
    scores = pd.concat([scores, *earlier], ignore_index=True)
    tags = summary_analysis.ave_score_by_tag(scores, sweep_vars)
    table = scores.pivot(index="bsuite_env", columns="agent_name", values="score")
    finished = scores.pivot(index="bsuite_env", columns="agent_name", values="finished")
    print("score by experiment (bsuite_score):")
    print(table.round(3).to_string())
    print("finished (bsuite's episode count reached):")
    print(finished.to_string())
    print("score by tag (ave_score_by_tag):")
    print(tags.pivot(index="tag", columns="agent_name", values="score").round(3).to_string())
    if args.json:
        with open(args.json, "w") as f:
            json.dump(
                {
                    "by_experiment": table.to_dict(),
                    "finished": finished.astype(bool).to_dict(),
                    "by_tag": tags.pivot(
                        index="tag", columns="agent_name", values="score"
                    ).to_dict(),
                },
                f,
                indent=1,
            )
    if args.radar:
        radar = tags[["tag", "score", *sweep_vars]]  # the numeric columns it averages
        summary_analysis.bsuite_radar_plot(radar, sweep_vars).savefig(
            args.radar, bbox_inches="tight", dpi=80
        )
    if args.bar:
        summary_analysis.bsuite_bar_plot(scores, sweep_vars).save(args.bar, verbose=False, dpi=80)


if __name__ == "__main__":
    main()
