"""Every ```python block of README.md and docs/**/*.md runs, as written, and every
number it quotes in an `expression  # about N` comment holds: the expression's value
rounds to N at N's precision.

The blocks of one file run in order in one namespace (a later block may use names an
earlier one defined), in a fresh temporary working directory, so a page reads as one
session. ```text, ```bash and other blocks do not run, nor does the porting guide's
old code: a python block titled with the alberta-framework version it was written
for (```python title="0.2.2"). A new page is picked up without registering it here.
"""

import pathlib
import re

import matplotlib
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]
PAGES = [ROOT / "README.md", *sorted((ROOT / "docs").rglob("*.md"))]
# A fenced block: its opening fence (3+ backticks or tildes, possibly indented), the
# info string, the body, and a closing fence of the same characters.
_FENCE = re.compile(
    r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>[^\n`]*)\n"
    r"(?P<body>.*?)^(?P=indent)(?P=fence)[ \t]*$",
    re.MULTILINE | re.DOTALL,
)


def python_blocks(text: str) -> list[tuple[int, str]]:
    """The ```python blocks of a Markdown text: (line number, source), in order."""
    blocks = []
    for match in _FENCE.finditer(text):
        words = match["info"].strip().split()
        old = re.search(r'title="\d+\.\d+\.\d+"', match["info"])  # alberta-framework's
        if words and words[0] in ("python", "py") and not old:
            indent = len(match["indent"])
            body = "".join(line[indent:] for line in match["body"].splitlines(keepends=True))
            line = text.count("\n", 0, match.start()) + 2
            blocks.append((line, body))
    return blocks


# `expression  # about N ...`: an expression whose value the page quotes.
_ABOUT = re.compile(r"^(?P<expr>[^#\n]+?)\s+#\s*about\s+(?P<number>-?\d[\d,]*(?:\.\d+)?)\b", re.M)


def quoted_numbers(source: str) -> list[tuple[str, str]]:
    """The `(expression, number)` pairs of a block's `expression  # about N` lines."""
    return [(m["expr"].strip(), m["number"]) for m in _ABOUT.finditer(source)]


def holds(value, number: str) -> bool:
    """Whether `value` (the first element of a tuple) rounds to `number` at its
    precision: within half a unit of its last significant digit (the last decimal,
    or for a whole number its last nonzero digit: "6,000" is 6,000 +- 500)."""
    if isinstance(value, tuple):
        value = value[0]
    digits = number.replace(",", "")
    if "." in digits:
        unit = 10.0 ** -len(digits.split(".")[1])
    else:
        unit = 10.0 ** (len(digits) - len(digits.rstrip("0"))) if digits.strip("-0") else 1.0
    return abs(float(value) - float(digits)) <= 0.5 * unit + 1e-12


def test_quoted_numbers_are_found_and_compared():
    block = "x = 1\nf(x)  # about 1.5 (LMS: about 3.5)\nw  # about [ 1. -1.]\ny  # about 0.02\n"
    assert quoted_numbers(block) == [("f(x)", "1.5"), ("y", "0.02")]
    assert holds(1.5099, "1.5") and holds(1.46, "1.5") and not holds(1.8, "1.5")
    assert holds(0.0162, "0.02") and not holds(0.0149, "0.02")
    assert holds((1.52, 0.05), "1.5") and holds(6_040, "6,000") and holds(5_600, "6,000")
    assert not holds(6_600, "6,000") and holds(12, "12") and not holds(13, "12")


def test_the_extraction_finds_fenced_python_only():
    text = "a\n```python\nx = 1\n```\n```text\nnot code\n```\n  ```python\n  y = x\n  ```\n"
    assert python_blocks(text) == [(3, "x = 1\n"), (9, "y = x\n")]
    old = '```python title="0.17.1"\nlearner.init(8, key)\n```\n```python\nz = 2\n```\n'
    assert python_blocks(old) == [(5, "z = 2\n")]


@pytest.mark.slow
@pytest.mark.parametrize("page", PAGES, ids=lambda p: str(p.relative_to(ROOT)))
def test_code_blocks_run(page, tmp_path, monkeypatch):
    blocks = python_blocks(page.read_text(encoding="utf-8"))
    if not blocks:
        pytest.skip("no python blocks")
    matplotlib.use("Agg")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": f"docs_{page.stem}"}
    for line, source in blocks:
        # padded so that a traceback's line numbers are the page's
        code = compile("\n" * (line - 1) + source, str(page), "exec")
        try:
            exec(code, namespace)
        except Exception as error:
            raise AssertionError(
                f"the python block at {page.relative_to(ROOT)}:{line} fails: "
                f"{type(error).__name__}: {error}"
            ) from error
        for expression, number in quoted_numbers(source):
            value = eval(expression, namespace)
            assert holds(value, number), (
                f"{page.relative_to(ROOT)}:{line}: {expression} is {value}, "
                f"the page says about {number}"
            )
    import matplotlib.pyplot as plt

    plt.close("all")
