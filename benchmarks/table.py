"""The Markdown table of a `bench.py` result file (for benchmarks/README.md).

python benchmarks/table.py benchmarks/results-2026-11-25.json
"""

import argparse
import json


def _rate(steps_per_s: float | None) -> str:
    if steps_per_s is None:
        return ""
    if steps_per_s >= 1e6:
        return f"{steps_per_s / 1e6:.2f} M"
    return f"{steps_per_s / 1e3:.0f} k"


def table(results: dict) -> str:
    lines = [
        "| case | alberta_eqx (steps/s) | first call (s) | 0.2.2 (steps/s) "
        "| speed-up vs 0.2.2 | time / floor's |",
        "| --- | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in results["rows"]:
        speedup = row.get("speedup")
        floor = row.get("time_over_floor")
        lines.append(
            f"| {row['case']} | {_rate(row['steps_per_s'])} | {row['first_call_s']:.2f} "
            f"| {_rate(row.get('anchor_steps_per_s'))} "
            f"| {'' if speedup is None else f'{speedup:.2f}'} "
            f"| {'' if floor is None else f'{floor:.2f}'} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("results", help="a JSON file written by benchmarks/bench.py")
    with open(parser.parse_args().results) as f:
        print(table(json.load(f)))
