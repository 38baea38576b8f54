"""Figures of an `ExperimentResult`: learning curves with confidence bands, step-size
evolution, final-performance bars, hyperparameter sensitivity and heatmaps.

Matplotlib is an optional extra (`pip install 'alberta_eqx[plots]'`). Every function
draws into `ax` when one is given (to compose figures) or into a new figure, and
returns the figure; the backend is left to the caller (use `matplotlib.use("Agg")`
without a display).
"""

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from alberta_eqx.experiments.runner import ExperimentResult
from alberta_eqx.experiments.summary import bootstrap_ci, final_performance, standard_error


def pyplot() -> Any:
    """`matplotlib.pyplot`, imported when a figure is drawn; a clear error without it."""
    try:
        import matplotlib.pyplot as plt
    except ImportError:
        raise ImportError("plots need matplotlib: pip install 'alberta_eqx[plots]'") from None
    return plt


def _figure_and_axes(ax: Any | None) -> tuple[Any, Any]:
    if ax is None:
        # constrained layout keeps long tick and axis labels inside the figure
        return pyplot().subplots(layout="constrained")
    pyplot()  # the same clear error when matplotlib is missing
    return ax.figure, ax


def _band(values: np.ndarray, band: str, confidence: float) -> tuple[np.ndarray, np.ndarray]:
    """The mean of `values` over seeds and its `(low, high)` band: the bootstrap
    interval, one standard error either side, or none (the mean twice)."""
    mean = np.asarray(values.mean(axis=0))
    if band == "ci":
        return mean, np.stack(bootstrap_ci(values, confidence=confidence))
    if band == "stderr":
        error = standard_error(values)
        return mean, np.stack([mean - error, mean + error])
    if band == "none":
        return mean, np.stack([mean, mean])
    raise ValueError(f"band must be 'ci', 'stderr' or 'none', got {band!r}")


def _final(
    result: ExperimentResult,
    configs: Sequence[str],
    metric: str,
    last: int,
    band: str,
    confidence: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Each config's mean final performance and its error bars, as `(mean, (2, k))`
    distances below and above the mean (matplotlib's `yerr`)."""
    finals = final_performance(result, metric, last=last)
    missing = [c for c in configs if c not in finals]
    if missing:
        raise KeyError(f"configs {missing} are not in this result; it has {result.configs}")
    stats = [_band(finals[c], band, confidence) for c in configs]
    mean = np.array([m for m, _ in stats])
    bounds = np.stack([b for _, b in stats], axis=1)
    return mean, np.abs(bounds - mean)


def plot_learning_curves(
    result: ExperimentResult,
    metric: str = "squared_error",
    *,
    configs: Sequence[str] | None = None,
    band: str = "ci",
    confidence: float = 0.95,
    log_y: bool = False,
    ax: Any | None = None,
) -> Any:
    """The mean of `metric` over seeds against steps, one line per configuration,
    with a shaded band: the bootstrap confidence interval (`"ci"`), one standard
    error either side (`"stderr"`) or none (`"none"`).

    **Arguments:**

    - `result`: what `run_experiment` returned.
    - `metric`: the metric to plot.
    - `configs`: the configurations to draw (default: all).
    - `band`, `confidence`: the band, and the interval's confidence level.
    - `log_y`: a logarithmic y axis.
    - `ax`: the axes to draw into (default: a new figure).
    """
    fig, ax = _figure_and_axes(ax)
    for config in result.configs if configs is None else configs:
        mean, (low, high) = _band(result.curve(config, metric), band, confidence)
        (line,) = ax.plot(result.steps, mean, label=config)
        if band != "none":
            ax.fill_between(result.steps, low, high, color=line.get_color(), alpha=0.25, lw=0)
    ax.set(xlabel="step", ylabel=metric.replace("_", " "))
    if log_y:
        ax.set_yscale("log")
    ax.legend()
    return fig


def plot_step_sizes(
    result: ExperimentResult,
    config: str,
    *,
    weights: Sequence[int] | None = None,
    include_bias: bool = True,
    ax: Any | None = None,
) -> Any:
    """The step-sizes of `config` recorded during the run (`step_size_tracking`),
    averaged over seeds, against steps on a log scale: one line per weight.

    **Arguments:**

    - `result`: a result of `run_experiment` with `step_size_tracking`.
    - `config`: the configuration whose step-sizes to draw.
    - `weights`: the indices of the weights to draw (default: all).
    - `include_bias`: also draw the bias's step-size, when it was recorded.
    - `ax`: the axes to draw into (default: a new figure).
    """
    if result.step_size_histories is None:
        raise ValueError("result has no step-size histories: run it with step_size_tracking")
    if config not in result.step_size_histories:
        raise KeyError(f"config {config!r} is not in this result; it has {result.configs}")
    history = result.step_size_histories[config]
    fig, ax = _figure_and_axes(ax)
    steps = history.recording_indices[0] + 1
    alphas = history.step_sizes.mean(axis=0)
    indices = range(alphas.shape[1]) if weights is None else weights
    for i in indices:
        ax.plot(steps, alphas[:, i], label=f"weight {i}")
    if include_bias and history.bias_step_sizes is not None:
        ax.plot(steps, history.bias_step_sizes.mean(axis=0), "k--", label="bias")
    ax.set(xlabel="step", ylabel="step-size", yscale="log", title=config)
    if len(ax.get_lines()) <= 10:  # a legend of more lines hides the plot
        ax.legend()
    return fig


def plot_final_performance(
    result: ExperimentResult,
    metric: str = "squared_error",
    *,
    configs: Sequence[str] | None = None,
    last: int = 1,
    band: str = "ci",
    confidence: float = 0.95,
    ax: Any | None = None,
) -> Any:
    """A bar per configuration: its mean final performance (`final_performance`)
    over seeds, with error bars from `band` (as in `plot_learning_curves`)."""
    configs = result.configs if configs is None else list(configs)
    mean, yerr = _final(result, configs, metric, last, band, confidence)
    fig, ax = _figure_and_axes(ax)
    ax.bar(configs, mean, yerr=yerr, capsize=4, color=[f"C{i}" for i in range(len(configs))])
    ax.set(ylabel=f"final {metric.replace('_', ' ')}")
    ax.tick_params(axis="x", labelrotation=30)  # names side by side overlap
    for text in ax.get_xticklabels():
        text.set_horizontalalignment("right")
    return fig


def plot_sensitivity(
    result: ExperimentResult,
    values: Mapping[str, float],
    metric: str = "squared_error",
    *,
    last: int = 1,
    band: str = "ci",
    confidence: float = 0.95,
    label: str | None = None,
    xlabel: str | None = None,
    log_x: bool = True,
    ax: Any | None = None,
) -> Any:
    """Final performance against a hyperparameter: the configurations named in
    `values`, each at its hyperparameter value, joined in order of value, with error
    bars. Call again with the same `ax` (and another `label`) to add a series, such
    as LMS's step-size next to IDBD's meta step-size.

    **Arguments:**

    - `result`: what `run_experiment` returned.
    - `values`: configuration name -> its hyperparameter value.
    - `metric`, `last`: the final performance to plot.
    - `band`, `confidence`: the error bars, as in `plot_learning_curves`.
    - `label`: the series' legend entry.
    - `xlabel`, `log_x`: the x axis's label (left as it is when None, so a second
      series keeps the first's), and whether the axis is logarithmic.
    - `ax`: the axes to draw into (default: a new figure).
    """
    if not values:
        raise ValueError("values must name at least one configuration")
    configs = sorted(values, key=values.__getitem__)
    mean, yerr = _final(result, configs, metric, last, band, confidence)
    fig, ax = _figure_and_axes(ax)
    x = [values[c] for c in configs]
    ax.errorbar(x, mean, yerr=yerr, marker="o", capsize=3, label=label)
    ax.set_ylabel(f"final {metric.replace('_', ' ')}")
    if xlabel is not None:
        ax.set_xlabel(xlabel)
    if log_x:
        ax.set_xscale("log")
    if label is not None:
        ax.legend()
    return fig


def plot_heatmap(
    result: ExperimentResult,
    cells: Mapping[str, tuple[float, float]],
    metric: str = "squared_error",
    *,
    last: int = 1,
    xlabel: str = "x",
    ylabel: str = "y",
    annotate: bool = True,
    ax: Any | None = None,
) -> Any:
    """Mean final performance over a 2-D hyperparameter grid: each configuration
    named in `cells` at its `(x, y)` value pair. Pairs absent from `cells` stay
    blank; with `annotate`, each cell shows its value.

    **Arguments:**

    - `result`: what `run_experiment` returned.
    - `cells`: configuration name -> its `(x, y)` hyperparameter values.
    - `metric`, `last`: the final performance to plot.
    - `xlabel`, `ylabel`: the names of the two hyperparameters.
    - `annotate`: write each cell's value in it.
    - `ax`: the axes to draw into (default: a new figure).
    """
    if not cells:
        raise ValueError("cells must name at least one configuration")
    mean, _ = _final(result, list(cells), metric, last, "none", 0.95)
    xs = sorted({x for x, _ in cells.values()})
    ys = sorted({y for _, y in cells.values()})
    grid = np.full((len(ys), len(xs)), np.nan)
    for (x, y), m in zip(cells.values(), mean, strict=True):
        grid[ys.index(y), xs.index(x)] = m
    fig, ax = _figure_and_axes(ax)
    image = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
    fig.colorbar(image, ax=ax, label=f"final {metric.replace('_', ' ')}")
    ax.set_xticks(range(len(xs)), [f"{x:g}" for x in xs])
    ax.set_yticks(range(len(ys)), [f"{y:g}" for y in ys])
    ax.set(xlabel=xlabel, ylabel=ylabel)
    if annotate:
        for (i, j), m in np.ndenumerate(grid):
            if np.isfinite(m):
                # dark text on the light end of the colour map, light on the dark end
                color = "k" if image.norm(m) > 0.6 else "w"
                ax.text(j, i, f"{m:.3g}", ha="center", va="center", color=color, fontsize=8)
    return fig
