"""The machinery of the published replications: a `Replication` bundles what
`alberta-eqx replicate NAME` needs (its run, the lines it prints beside the paper's
numbers, its checks and its figure); each paper's module in this package defines its
own, and `registry.REPLICATIONS` names them (name -> `Replication`), so a new
replication is one module and one entry.
Each `Check` is one claim of the paper; run on a result it gives a `Verdict`: PASS,
FAIL (with the measured value, and why where the cause is known), or "not tested at
this length" for a run too short to test it. Every figure has a title naming the
paper and figure, a legend, reference marks labelled with where they come from (a
paper's printed number, or a reference computation of ours), and no point silently
off the axes (`mark_off_axes`: a point above the axes is drawn at the top edge as a
triangle and labelled with its value).
"""

from collections.abc import Callable
from typing import Any, NamedTuple

import numpy as np

from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.stats import scipy_stats


class Verdict(NamedTuple):
    """One claim of a paper, checked against one run.

    **Fields:**

    - `claim`: the claim as the paper makes it, with the threshold tested.
    - `measured`: the measured value with its uncertainty, as printed.
    - `outcome`: `"PASS"`, `"FAIL"`, `"not tested at this length"` (the run is shorter
      than the claim's) or `"not tested"` (the run cannot tell, e.g. one seed for a
      confidence interval).
    - `why`: what is known about a FAIL, or why the claim was not tested.
    """

    claim: str
    measured: str
    outcome: str
    why: str = ""

    @property
    def passed(self) -> bool | None:
        """True for PASS, False for FAIL, None where the claim was not tested."""
        return {"PASS": True, "FAIL": False}.get(self.outcome)

    def line(self) -> str:
        """The verdict as `replicate` prints it: the claim, the outcome, the measurement."""
        why = f"; {self.why}" if self.why else ""
        return f"{self.claim} — {self.outcome} ({self.measured}){why}"

    def record(self) -> dict[str, Any]:
        """The verdict as `run.json` keeps it."""
        return {**self._asdict(), "passed": self.passed}


class Check(NamedTuple):
    """One claim of a paper and how to test it on a result.

    **Fields:**

    - `claim`: the claim, with the threshold tested (e.g. "at least 8 of 10 seeds
      reach a mean return of 400 within 500,000 steps").
    - `measure`: `measure(result) -> (passed, measured)`: whether the result meets the
      claim (None where the result cannot tell, e.g. one seed where the claim needs
      a confidence interval), and the measured value with its uncertainty.
    - `min_steps`: a run shorter than this does not test the claim (or a function of
      the result giving it, where it depends on the experiment's options).
    - `if_failed`: what is known about a failure (printed beside FAIL).
    """

    claim: str
    measure: Callable[[Any], tuple[bool | None, str]]
    min_steps: int | Callable[[Any], int] = 0
    if_failed: str = ""

    def steps_needed(self, result: Any) -> int:
        """The steps a run needs to test the claim (`min_steps`, for this result)."""
        return self.min_steps(result) if callable(self.min_steps) else self.min_steps

    def verdict(self, result: Any, num_steps: int) -> Verdict:
        """The check's verdict on `result`, a run of `num_steps` steps per seed."""
        passed, measured = self.measure(result)
        need = self.steps_needed(result)
        if num_steps < need:
            why = f"the claim needs {need:,} steps, this run has {num_steps:,}"
            return Verdict(self.claim, measured, "not tested at this length", why)
        if passed is None:
            return Verdict(self.claim, measured, "not tested")
        return Verdict(
            self.claim, measured, "PASS" if passed else "FAIL", "" if passed else self.if_failed
        )


def mean_stderr(values: np.ndarray) -> tuple[float, float]:
    """The mean of `values` and its standard error (NaN for one value)."""
    values = np.asarray(values, np.float64)
    n = values.size
    stderr = values.std(ddof=1) / np.sqrt(n) if n > 1 else float("nan")
    return float(values.mean()), float(stderr)


def mean_ci95(values: np.ndarray, axis: int | None = None) -> tuple[Any, Any]:
    """The mean of per-seed `values` over `axis` (the seeds; every value when None)
    and the half-width of its 95% confidence interval from the t distribution over
    seeds (NaN for one seed)."""
    values = np.asarray(values, np.float64)
    n = values.size if axis is None else values.shape[axis]
    mean = values.mean(axis)
    if n < 2:
        return mean, np.full_like(mean, np.nan)
    return mean, scipy_stats().t.ppf(0.975, n - 1) * values.std(axis, ddof=1) / np.sqrt(n)


def paired_difference(differences: np.ndarray, sign: int) -> tuple[bool | None, str]:
    """A check's verdict on per-seed paired `differences`: whether their 95%
    confidence interval lies above 0 (`sign` 1) or below it (`sign` -1), and the
    measured value; None with one seed."""
    if differences.size < 2:
        return None, f"{differences.mean():+.3f} on one seed: no confidence interval"
    mean, half = mean_ci95(differences)
    return bool(sign * mean > half), (
        f"{mean:+.3f} +- {half:.3f}, 95% CI paired over {differences.size} seeds"
    )


class Replication(NamedTuple):
    """A published experiment as `alberta-eqx replicate` runs it.

    **Fields:**

    - `title`: the paper and figure, e.g. `"Sutton (1992), Figure 3"`.
    - `paper`: what the paper reports, printed before the run.
    - `run`: `run(num_seeds, num_steps, progress, **options) -> result`.
    - `seeds`: the default number of seeds.
    - `steps`: the paper's length of a run (steps per seed); `quick_steps` a short
      run for a first look (`--quick`); `steps_multiple` what `--steps` must be a
      multiple of.
    - `total`: the progress total for a run of `num_steps` (several learner groups
      run one after another).
    - `report`: `report(result) -> lines` printed after the run.
    - `figure`: `figure(result) -> matplotlib Figure`.
    - `filename`: the PNG's name in `--out`; `{name}` fields take the `options`'
      values (`"reward_centering_{task}.png"`).
    - `quick_seeds`: the seeds of a `--quick` run, where fewer seeds rather than fewer
      steps make it short (None: the default seeds).
    - `checks`: the paper's claims, each a `Check` that gives PASS, FAIL or "not tested
      at this length".
    - `options`: the experiment's own command-line choices, `(name, choices)` pairs
      (the first choice is the default), e.g. `("game", ("breakout", ...))`; `run`
      takes them as keyword arguments and `steps_of(**options)` gives the paper's
      length for them (None: `steps`).
    """

    title: str
    paper: str
    run: Callable[..., Any]
    seeds: int
    steps: int
    quick_steps: int
    steps_multiple: int
    total: Callable[[int], int]
    report: Callable[[Any], list[str]]
    figure: Callable[[Any], Any]
    filename: str
    quick_seeds: int | None = None
    checks: tuple[Check, ...] = ()
    options: tuple[tuple[str, tuple[str, ...]], ...] = ()
    steps_of: Callable[..., int] | None = None

    def verdicts(self, result: Any, num_steps: int) -> list[Verdict]:
        """Every check's verdict on `result`, a run of `num_steps` steps per seed."""
        return [check.verdict(result, num_steps) for check in self.checks]


def mark_off_axes(ax: Any, x: np.ndarray, y: np.ndarray, top: float, color: str) -> None:
    """Draw the points of `(x, y)` above `top` (infinite: diverged) at the top edge as
    triangles labelled with their value, so that none is silently off the axes; NaN
    marks no point."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    with np.errstate(invalid="ignore"):
        off = y > top
    if not off.any():
        return
    edge = 0.97 * top
    ax.plot(x[off], np.full(off.sum(), edge), "^", c=color, ms=8, clip_on=False)
    for xi, yi in zip(x[off], y[off], strict=True):
        ax.annotate(
            f"{yi:.3g}" if np.isfinite(yi) else "diverged",
            (xi, edge),
            textcoords="offset points",
            xytext=(0, -12),
            ha="center",
            fontsize=7,
            color=color,
        )


def on_new_axes(draw: Callable[[Any, Any], None]) -> Callable[[Any], Any]:
    """A figure drawn by `draw(result, ax)` on new axes."""

    def figure(result: Any) -> Any:
        fig, ax = pyplot().subplots(figsize=(6.5, 4.5), layout="constrained")
        draw(result, ax)
        return fig

    return figure
