"""Summaries over seeds: mean, standard error, percentile-bootstrap confidence
intervals, final-window performance, and a summary table per configuration.

Everything summarises over axis 0, the seeds; the other axes (windows, say) are
kept, so one call summarises a whole learning curve.
"""

from typing import NamedTuple

import numpy as np
import pandas as pd
from jaxtyping import Float

from alberta_eqx._checks import positive_int
from alberta_eqx.experiments.runner import ExperimentResult

Row = dict[str, str | int | float | bool]
"""One row of a table: column name to cell; a list of rows is a table the exporters
take, as is a `pandas.DataFrame`."""

# Resampled means held in memory at once by `bootstrap_ci` (floats).
_BOOTSTRAP_BUDGET = 1 << 22


def _seeds_first(name: str, values: Float[np.ndarray, " seeds *rest"]) -> np.ndarray:
    values = np.asarray(values, dtype=np.float64)
    if values.ndim == 0 or values.shape[0] == 0:
        raise ValueError(f"{name} needs at least one seed on axis 0, got shape {values.shape}")
    return values


def _confidence(confidence: float) -> float:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must be in (0, 1), got {confidence}")
    return float(confidence)


def standard_error(values: Float[np.ndarray, " seeds *rest"]) -> Float[np.ndarray, "*rest"]:
    """The standard error of the mean over axis 0, `std(ddof=1) / sqrt(n)`; NaN for
    a single seed."""
    values = _seeds_first("values", values)
    n = values.shape[0]
    if n == 1:
        return np.full(values.shape[1:], np.nan)
    return np.asarray(values.std(axis=0, ddof=1) / np.sqrt(n))


def bootstrap_ci(
    values: Float[np.ndarray, " seeds *rest"],
    *,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> tuple[Float[np.ndarray, "*rest"], Float[np.ndarray, "*rest"]]:
    """A percentile-bootstrap confidence interval for the mean over axis 0.

    Each resample draws `n` seeds with replacement; the interval is the
    `(1 - confidence) / 2` and `(1 + confidence) / 2` quantiles of the resampled
    means. The resamples are the same for every column (every window of a curve),
    drawn from `numpy.random.default_rng(seed)`, so the result is reproducible.

    **Returns:** `(low, high)`, each of the shape of `values` without axis 0.
    """
    values = _seeds_first("values", values)
    confidence = _confidence(confidence)
    num_resamples = positive_int("num_resamples", num_resamples)
    n = values.shape[0]
    # How often each seed is drawn in each resample (a multinomial count is exactly
    # n draws with replacement); the resampled means are then one matrix product.
    counts = np.random.default_rng(seed).multinomial(n, np.full(n, 1 / n), size=num_resamples)
    flat = values.reshape(n, -1)
    quantiles = 100 * np.array([(1 - confidence) / 2, (1 + confidence) / 2])
    bounds = np.empty((2, flat.shape[1]))
    block = max(1, _BOOTSTRAP_BUDGET // num_resamples)
    for start in range(0, flat.shape[1], block):
        means = counts @ flat[:, start : start + block] / n
        bounds[:, start : start + block] = np.percentile(means, quantiles, axis=0)
    return bounds[0].reshape(values.shape[1:]), bounds[1].reshape(values.shape[1:])


class Summary(NamedTuple):
    """A summary over seeds; each array has the shape of the values without axis 0.

    **Fields:**

    - `mean`: the mean over seeds.
    - `stderr`: its standard error.
    - `ci_low`, `ci_high`: the percentile-bootstrap confidence interval of the mean.
    - `num_seeds`: how many seeds were summarised.
    """

    mean: Float[np.ndarray, "*rest"]
    stderr: Float[np.ndarray, "*rest"]
    ci_low: Float[np.ndarray, "*rest"]
    ci_high: Float[np.ndarray, "*rest"]
    num_seeds: int


def summarize(
    values: Float[np.ndarray, " seeds *rest"],
    *,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> Summary:
    """Mean, standard error and bootstrap interval (`bootstrap_ci`) over axis 0."""
    values = _seeds_first("values", values)
    low, high = bootstrap_ci(values, confidence=confidence, num_resamples=num_resamples, seed=seed)
    return Summary(
        np.asarray(values.mean(axis=0)), standard_error(values), low, high, values.shape[0]
    )


def final_performance(
    result: ExperimentResult, metric: str = "squared_error", *, last: int = 1
) -> dict[str, Float[np.ndarray, " seeds"]]:
    """Per configuration, each seed's `metric` averaged over its last `last` windows.

    **Arguments:**

    - `result`: what `run_experiment` returned.
    - `metric`: a recorded metric, such as `"squared_error"`.
    - `last`: how many final windows to average (at most the number of windows).
    """
    last = positive_int("last", last)
    windows = result.num_steps // result.metrics_window
    if last > windows:
        raise ValueError(f"last ({last}) must be <= the number of windows ({windows})")
    return {
        config: result.curve(config, metric)[:, -last:].mean(axis=1) for config in result.configs
    }


def summary_table(
    result: ExperimentResult,
    metric: str = "squared_error",
    *,
    last: int = 1,
    confidence: float = 0.95,
    num_resamples: int = 10_000,
    seed: int = 0,
) -> pd.DataFrame:
    """One row per configuration summarising its final performance
    (`final_performance`) over seeds, as a tidy `pandas.DataFrame` with the columns
    `config`, `mean`, `stderr`, `ci_low`, `ci_high` and `num_seeds`, ready for the
    exporters (or pandas' own)."""
    rows = []
    for config, values in final_performance(result, metric, last=last).items():
        s = summarize(values, confidence=confidence, num_resamples=num_resamples, seed=seed)
        rows.append(
            {
                "config": config,
                "mean": float(s.mean),
                "stderr": float(s.stderr),
                "ci_low": float(s.ci_low),
                "ci_high": float(s.ci_high),
                "num_seeds": s.num_seeds,
            }
        )
    return pd.DataFrame(rows)


def curves_frame(result: ExperimentResult) -> pd.DataFrame:
    """Every curve of `result` as one tidy `pandas.DataFrame`: a row per
    configuration, seed and window, with the columns `config`, `seed`, `step` (the
    steps learned by the window's end) and one per metric."""
    frames = []
    for config in result.configs:
        metrics = result.curves[config]
        seeds, windows = next(iter(metrics.values())).shape
        frame = pd.DataFrame(
            {
                "config": config,
                "seed": np.repeat(np.asarray(result.seeds), windows),
                "step": np.tile(result.steps, seeds),
            }
        )
        for name, values in metrics.items():
            frame[name] = np.asarray(values, dtype=np.float64).reshape(-1)
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)
