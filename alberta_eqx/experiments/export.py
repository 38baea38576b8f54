"""Tables out: CSV and JSON files (with readers, so they round-trip), and LaTeX and
Markdown text for papers and reports. A table is a list of rows, each a dict of
column name to cell (`summary_table` makes one; so does `[c._asdict() for c in
compare(...)]`); every row has the same columns, in the order of the first.
"""

import csv
import json
import math
import os
from collections.abc import Sequence

from alberta_eqx.experiments.summary import Row


def _columns(rows: Sequence[Row]) -> list[str]:
    if not rows:
        raise ValueError("rows must hold at least one row")
    columns = list(rows[0])
    for i, row in enumerate(rows):
        if list(row) != columns:
            raise ValueError(f"rows[{i}] has columns {list(row)}, but rows[0] has {columns}")
    return columns


def to_csv(rows: Sequence[Row], path: str | os.PathLike) -> None:
    """Write `rows` to a CSV file with a header line. Floats are written exactly
    (shortest round-trip repr), so `read_csv` gives them back equal."""
    columns = _columns(rows)
    with open(path, "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)


def _parse(cell: str) -> str | int | float | bool:
    if cell in ("True", "False"):
        return cell == "True"
    for kind in (int, float):
        try:
            return kind(cell)
        except ValueError:
            pass
    return cell


def read_csv(path: str | os.PathLike) -> list[Row]:
    """Read a table written by `to_csv`. CSV does not record types: a cell that reads
    as an int, a float or a bool comes back as one, anything else as a string (keep
    tables whose strings look like numbers in JSON)."""
    with open(path, newline="") as f:
        return [{k: _parse(v) for k, v in row.items()} for row in csv.DictReader(f)]


def to_json(rows: Sequence[Row], path: str | os.PathLike) -> None:
    """Write `rows` to a JSON file: a list of objects (NaN and infinities as
    Python's `json` writes them, `NaN` and `Infinity`)."""
    _columns(rows)
    with open(path, "w") as f:
        json.dump(list(rows), f, indent=2)
        f.write("\n")


def read_json(path: str | os.PathLike) -> list[Row]:
    """Read a table written by `to_json`."""
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{os.fspath(path)!r} does not hold a list of rows (JSON objects)")
    return rows


def _cell(value: str | int | float | bool, digits: int) -> str:
    if isinstance(value, float):
        return f"{value:.{digits}g}" if math.isfinite(value) else str(value)
    return str(value)


_LATEX_SPECIAL = {
    "\\": r"\textbackslash{}",
    "&": r"\&",
    "%": r"\%",
    "$": r"\$",
    "#": r"\#",
    "_": r"\_",
    "{": r"\{",
    "}": r"\}",
    "~": r"\textasciitilde{}",
    "^": r"\textasciicircum{}",
}


def _latex_escape(text: str) -> str:
    return "".join(_LATEX_SPECIAL.get(c, c) for c in text)


def _is_number(value: str | int | float | bool) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def to_latex(rows: Sequence[Row], *, digits: int = 4, caption: str | None = None) -> str:
    """A LaTeX `booktabs` table of `rows`: numeric columns right-aligned, floats to
    `digits` significant digits, text escaped. With a `caption`, wrapped in a
    `table` environment."""
    columns = _columns(rows)
    align = "".join("r" if _is_number(rows[0][c]) else "l" for c in columns)
    line = lambda cells: " & ".join(cells) + r" \\"  # noqa: E731
    body = [
        rf"\begin{{tabular}}{{{align}}}",
        r"\toprule",
        line(_latex_escape(c) for c in columns),
        r"\midrule",
        *(line(_latex_escape(_cell(row[c], digits)) for c in columns) for row in rows),
        r"\bottomrule",
        r"\end{tabular}",
    ]
    if caption is not None:
        body = [
            r"\begin{table}",
            r"\centering",
            *body,
            rf"\caption{{{_latex_escape(caption)}}}",
            r"\end{table}",
        ]
    return "\n".join(body) + "\n"


def to_markdown(rows: Sequence[Row], *, digits: int = 4) -> str:
    """A Markdown (GitHub pipe) table of `rows`: numeric columns right-aligned,
    floats to `digits` significant digits."""
    columns = _columns(rows)
    line = lambda cells: "| " + " | ".join(cells) + " |"  # noqa: E731
    escape = lambda text: text.replace("|", r"\|")  # noqa: E731
    rule = ["---:" if _is_number(rows[0][c]) else ":---" for c in columns]
    lines = [
        line(escape(c) for c in columns),
        line(rule),
        *(line(escape(_cell(row[c], digits)) for c in columns) for row in rows),
    ]
    return "\n".join(lines) + "\n"
