"""Tables and files out, through pandas: CSV and JSON files (with readers, so they
round-trip), LaTeX and Markdown text, and atomic writes.

A table is a `pandas.DataFrame` (`summary_table` returns one) or anything
`pandas.DataFrame` accepts, such as a list of rows, each a dict of column name to
cell (`[c._asdict() for c in compare(...)]`). These functions are thin wrappers over
pandas' own writers, which take the same tables: use pandas directly for anything
more. LaTeX needs Jinja2 and Markdown needs tabulate (`pip install
'alberta_eqx[tables]'`).

Files are written atomically: to a temporary file in the same folder, then renamed
over the target, so an interrupted write leaves the previous file or none, never a
partial one.
"""

import contextlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from typing import IO, Any

import pandas as pd

Table = pd.DataFrame | list[dict[str, Any]]


def as_frame(table: Table) -> pd.DataFrame:
    """`table` as a DataFrame; a list of rows must have the same columns in each row."""
    if isinstance(table, pd.DataFrame):
        frame = table
    else:
        rows: list[dict[str, Any]] = list(table)
        if rows:
            columns = list(rows[0])
            for i, row in enumerate(rows):
                if list(row) != columns:
                    raise ValueError(
                        f"rows[{i}] has columns {list(row)}, but rows[0] has {columns}"
                    )
        frame = pd.DataFrame(rows)
    if frame.empty:
        raise ValueError("the table must hold at least one row")
    return frame


def _temporary(path: str) -> str:
    folder = os.path.dirname(os.path.abspath(path))
    fd, temporary = tempfile.mkstemp(
        dir=folder, prefix=f".{os.path.basename(path)}.", suffix=".tmp"
    )
    os.close(fd)
    return temporary


def _commit(temporary: str, path: str) -> None:
    # mkstemp creates the file 0600; give it the mode an ordinary open would
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(temporary, 0o666 & ~umask)
    os.replace(temporary, path)


def atomic_write(path: str | os.PathLike, write: Callable[[str], None]) -> None:
    """Call `write(temporary_path)`, then rename the file it wrote over `path` (atomic
    on POSIX and Windows); on an error, remove it. For writers that take a path:
    `lambda p: fig.savefig(p, format="png")`, `lambda p: frame.to_csv(p)`."""
    path = os.fspath(path)
    temporary = _temporary(path)
    try:
        write(temporary)
        _commit(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


@contextlib.contextmanager
def atomic_open(path: str | os.PathLike, mode: str = "w") -> Iterator[IO[Any]]:
    """`open` for writing, atomically: the file is written under a temporary name
    beside `path`, synced, and renamed over `path` on a clean exit."""
    path = os.fspath(path)
    temporary = _temporary(path)
    try:
        with open(temporary, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        _commit(temporary, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(temporary)
        raise


def to_csv(table: Table, path: str | os.PathLike) -> None:
    """Write `table` to a CSV file with a header line (`DataFrame.to_csv`, no index),
    atomically. Floats are written exactly (shortest round-trip repr), so `read_csv`
    gives them back equal."""
    frame = as_frame(table)
    with atomic_open(path, "w") as f:
        frame.to_csv(f, index=False)


def read_csv(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by `to_csv` (`pandas.read_csv`): ints, floats and bools
    come back typed, anything else as strings."""
    return pd.read_csv(path)


def to_json(table: Table, path: str | os.PathLike) -> None:
    """Write `table` to a JSON file: a list of objects, one per row (NaN as `null`),
    atomically."""
    frame = as_frame(table)
    with atomic_open(path, "w") as f:
        # json, not DataFrame.to_json, which rounds floats to 15 digits
        rows = frame.astype(object).where(frame.notna(), None).to_dict("records")
        json.dump(rows, f, indent=2)
        f.write("\n")


def read_json(path: str | os.PathLike) -> pd.DataFrame:
    """Read a table written by `to_json`."""
    with open(path) as f:
        rows = json.load(f)
    if not isinstance(rows, list) or not all(isinstance(row, dict) for row in rows):
        raise ValueError(f"{os.fspath(path)!r} does not hold a list of rows (JSON objects)")
    return pd.DataFrame(rows)


def _formatters(frame: pd.DataFrame, digits: int) -> dict[str, Callable[[Any], str]]:
    return {
        column: (lambda v: f"{v:.{digits}g}")
        for column in frame.columns
        if pd.api.types.is_float_dtype(frame[column])
    }


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


def to_latex(table: Table, *, digits: int = 4, caption: str | None = None) -> str:
    """A LaTeX `booktabs` table of `table` (`DataFrame.to_latex`): floats to `digits`
    significant digits, text escaped; with a `caption`, wrapped in a `table`
    environment."""
    frame = as_frame(table)
    if caption is not None:  # pandas escapes the cells but not the caption
        caption = "".join(_LATEX_SPECIAL.get(c, c) for c in caption)
    return frame.to_latex(
        index=False, escape=True, formatters=_formatters(frame, digits), caption=caption
    )


def to_markdown(table: Table, *, digits: int = 4) -> str:
    """A Markdown (GitHub pipe) table of `table` (`DataFrame.to_markdown`): floats to
    `digits` significant digits."""
    frame = as_frame(table).copy()
    for column, format_ in _formatters(frame, digits).items():
        frame[column] = frame[column].map(format_)
    return frame.to_markdown(index=False) + "\n"
