"""Experiments: running named configurations over many seeds, multi-seed summaries,
comparisons, plots, exports and loggers. (The published replications are in
`alberta_eqx.replications`, sweeps at scale in `alberta_eqx.sweeps`.)

`run_experiment` runs named configurations over many seeds; `summary` summarises the
curves over seeds (as pandas DataFrames); `stats` compares configurations;
`plots` draws them (needs `[plots]`); `export` writes tables as CSV, JSON, LaTeX and
Markdown. The `stats` and `plots` modules import SciPy and Matplotlib only when a
function needs them, so this package imports without either. `loggers` sends a run's
settings and windows to TensorBoard or Weights & Biases (`[tensorboard]`, `[wandb]`),
imported only when a logger is made.
"""

from alberta_eqx.experiments.export import (
    read_csv,
    read_json,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)
from alberta_eqx.experiments.loggers import (
    AbstractLogger,
    TensorBoardLogger,
    WandbLogger,
    log_windows,
    make_logger,
)
from alberta_eqx.experiments.plots import (
    plot_final_performance,
    plot_heatmap,
    plot_learning_curves,
    plot_sensitivity,
    plot_step_sizes,
)
from alberta_eqx.experiments.runner import (
    ExperimentResult,
    LearnerFactory,
    run_experiment,
    seed_keys,
)
from alberta_eqx.experiments.stats import (
    Comparison,
    HypothesisTest,
    bonferroni,
    cohens_d,
    compare,
    holm,
    mann_whitney_u,
    ttest,
    wilcoxon_signed_rank,
)
from alberta_eqx.experiments.summary import (
    Row,
    Summary,
    bootstrap_ci,
    curves_frame,
    final_performance,
    standard_error,
    summarize,
    summary_table,
)

__all__ = [
    "AbstractLogger",
    "Comparison",
    "ExperimentResult",
    "HypothesisTest",
    "LearnerFactory",
    "Row",
    "Summary",
    "TensorBoardLogger",
    "WandbLogger",
    "bonferroni",
    "bootstrap_ci",
    "cohens_d",
    "compare",
    "curves_frame",
    "final_performance",
    "holm",
    "log_windows",
    "make_logger",
    "mann_whitney_u",
    "plot_final_performance",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_sensitivity",
    "plot_step_sizes",
    "read_csv",
    "read_json",
    "run_experiment",
    "seed_keys",
    "standard_error",
    "summarize",
    "summary_table",
    "to_csv",
    "to_json",
    "to_latex",
    "to_markdown",
    "ttest",
    "wilcoxon_signed_rank",
]
