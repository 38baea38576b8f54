"""Significance tests between configurations, multiple-comparison corrections and
effect sizes.

The tests call SciPy (a dependency of JAX, and of this package); the
corrections and Cohen's d are plain NumPy. Two configurations of one
`ExperimentResult` learned from the same stream on each seed, so their final
performances pair up by seed: `compare` defaults to the paired t-test.
"""

import itertools
from collections.abc import Callable, Sequence
from types import ModuleType
from typing import NamedTuple

import numpy as np
from jaxtyping import Float

from alberta_eqx.experiments.runner import ExperimentResult
from alberta_eqx.experiments.summary import final_performance


def scipy_stats() -> ModuleType:
    """`scipy.stats`, imported when a test needs it; a clear error without SciPy."""
    try:
        import scipy.stats
    except ImportError:
        raise ImportError("significance tests need scipy: pip install scipy") from None
    return scipy.stats


class HypothesisTest(NamedTuple):
    """A test's `statistic` and its two-sided `p_value`."""

    statistic: float
    p_value: float


def _samples(a: np.ndarray, b: np.ndarray, paired: bool) -> tuple[np.ndarray, np.ndarray]:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.ndim != 1 or b.ndim != 1:
        raise ValueError(f"a and b must be 1-D samples, got shapes {a.shape} and {b.shape}")
    if paired and a.shape != b.shape:
        raise ValueError(f"paired samples must have equal lengths, got {len(a)} and {len(b)}")
    if min(len(a), len(b)) < 2:
        raise ValueError(f"each sample needs at least 2 values, got {len(a)} and {len(b)}")
    return a, b


def ttest(
    a: Float[np.ndarray, " n"],
    b: Float[np.ndarray, " m"],
    *,
    paired: bool = False,
    equal_var: bool = False,
) -> HypothesisTest:
    """A two-sided t-test of equal means: paired (`scipy.stats.ttest_rel`) or
    unpaired (`ttest_ind`; Welch's test unless `equal_var`)."""
    a, b = _samples(a, b, paired)
    stats = scipy_stats()
    result = stats.ttest_rel(a, b) if paired else stats.ttest_ind(a, b, equal_var=equal_var)
    return HypothesisTest(float(result.statistic), float(result.pvalue))


def mann_whitney_u(a: Float[np.ndarray, " n"], b: Float[np.ndarray, " m"]) -> HypothesisTest:
    """The two-sided Mann-Whitney U test (unpaired samples); the statistic is `a`'s U."""
    a, b = _samples(a, b, paired=False)
    result = scipy_stats().mannwhitneyu(a, b, alternative="two-sided")
    return HypothesisTest(float(result.statistic), float(result.pvalue))


def wilcoxon_signed_rank(a: Float[np.ndarray, " n"], b: Float[np.ndarray, " n"]) -> HypothesisTest:
    """The two-sided Wilcoxon signed-rank test of the paired differences `a - b`."""
    a, b = _samples(a, b, paired=True)
    result = scipy_stats().wilcoxon(a, b, alternative="two-sided")
    return HypothesisTest(float(result.statistic), float(result.pvalue))


def _p_values(p_values: Sequence[float] | np.ndarray) -> np.ndarray:
    p = np.asarray(p_values, dtype=np.float64)
    if p.ndim != 1 or np.any((p < 0) | (p > 1)):
        raise ValueError(f"p_values must be a 1-D list of values in [0, 1], got {p_values!r}")
    return p


def bonferroni(p_values: Sequence[float] | np.ndarray) -> Float[np.ndarray, " m"]:
    """Bonferroni-adjusted p-values, `min(m p, 1)` for `m` tests."""
    p = _p_values(p_values)
    return np.minimum(p * len(p), 1.0)


def holm(p_values: Sequence[float] | np.ndarray) -> Float[np.ndarray, " m"]:
    """Holm's step-down adjusted p-values, in the order given: the `k`-th smallest
    (from 0) is multiplied by `m - k`, then made non-decreasing in that order and
    capped at 1. Reject where the adjusted value is below the family-wise level."""
    p = _p_values(p_values)
    order = np.argsort(p, kind="stable")
    scaled = p[order] * (len(p) - np.arange(len(p)))
    adjusted = np.empty_like(p)
    adjusted[order] = np.minimum(np.maximum.accumulate(scaled), 1.0)
    return adjusted


def cohens_d(
    a: Float[np.ndarray, " n"], b: Float[np.ndarray, " m"], *, paired: bool = False
) -> float:
    """Cohen's d of `a` against `b`: the difference of the means over the pooled
    standard deviation; with `paired`, the mean of the differences over their
    standard deviation (d_z). Positive where `a` is larger."""
    a, b = _samples(a, b, paired)
    if paired:
        diff = a - b
        return float(diff.mean() / diff.std(ddof=1))
    n, m = len(a), len(b)
    pooled = ((n - 1) * a.var(ddof=1) + (m - 1) * b.var(ddof=1)) / (n + m - 2)
    return float((a.mean() - b.mean()) / np.sqrt(pooled))


# The tests `compare` offers, and whether each pairs the samples by seed.
_TESTS: dict[str, tuple[Callable[[np.ndarray, np.ndarray], HypothesisTest], bool]] = {
    "paired-t": (lambda a, b: ttest(a, b, paired=True), True),
    "t": (ttest, False),
    "wilcoxon": (wilcoxon_signed_rank, True),
    "mann-whitney": (mann_whitney_u, False),
}
_CORRECTIONS: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "holm": holm,
    "bonferroni": bonferroni,
    "none": lambda p: p,
}


class Comparison(NamedTuple):
    """One pairwise comparison of `compare`.

    **Fields:**

    - `config_a`, `config_b`: the two configurations.
    - `mean_a`, `mean_b`: their mean final performance over seeds.
    - `statistic`, `p_value`: the test's statistic and uncorrected p-value.
    - `p_adjusted`: the p-value after the multiple-comparison correction.
    - `significant`: `p_adjusted < alpha`.
    - `cohens_d`: the effect size of `a` against `b` (paired when the test is).
    """

    config_a: str
    config_b: str
    mean_a: float
    mean_b: float
    statistic: float
    p_value: float
    p_adjusted: float
    significant: bool
    cohens_d: float


def compare(
    result: ExperimentResult,
    metric: str = "squared_error",
    *,
    last: int = 1,
    test: str = "paired-t",
    correction: str = "holm",
    alpha: float = 0.05,
) -> list[Comparison]:
    """Compare every pair of configurations on their final performance
    (`final_performance(result, metric, last=last)`, one value per seed), with the
    p-values corrected for the number of pairs.

    **Arguments:**

    - `result`: what `run_experiment` returned.
    - `metric`, `last`: the final performance to compare.
    - `test`: `"paired-t"` (seeds paired, the default: each seed's configurations saw
      the same stream), `"t"` (Welch's unpaired t-test), `"wilcoxon"` (paired
      signed-rank) or `"mann-whitney"` (unpaired rank test).
    - `correction`: `"holm"`, `"bonferroni"` or `"none"`.
    - `alpha`: the family-wise significance level.

    **Returns:** one `Comparison` per pair, in the order of `result.configs`.
    """
    if test not in _TESTS:
        raise ValueError(f"test must be one of {sorted(_TESTS)}, got {test!r}")
    if correction not in _CORRECTIONS:
        raise ValueError(f"correction must be one of {sorted(_CORRECTIONS)}, got {correction!r}")
    if not 0 < alpha < 1:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    run_test, paired = _TESTS[test]
    finals = final_performance(result, metric, last=last)
    pairs = list(itertools.combinations(result.configs, 2))
    if not pairs:
        raise ValueError(f"compare needs at least two configurations, got {result.configs}")
    tests = [run_test(finals[a], finals[b]) for a, b in pairs]
    adjusted = _CORRECTIONS[correction](np.array([t.p_value for t in tests]))
    return [
        Comparison(
            config_a=a,
            config_b=b,
            mean_a=float(finals[a].mean()),
            mean_b=float(finals[b].mean()),
            statistic=t.statistic,
            p_value=t.p_value,
            p_adjusted=float(p),
            significant=bool(p < alpha),
            cohens_d=cohens_d(finals[a], finals[b], paired=paired),
        )
        for (a, b), t, p in zip(pairs, tests, adjusted, strict=True)
    ]
