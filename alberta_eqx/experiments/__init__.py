"""Experiments: the published replications, multi-seed summaries and comparisons.

`run_experiment` runs named configurations over many seeds; `summary` summarises the
curves over seeds (as pandas DataFrames); `stats` compares configurations;
`plots` draws them (needs `[plots]`); `export` writes tables as CSV, JSON, LaTeX and
Markdown. The `stats` and `plots` modules import SciPy and Matplotlib only when a
function needs them, so this package imports without either. `loggers` sends a run's
settings and windows to TensorBoard or Weights & Biases (`[tensorboard]`, `[wandb]`),
imported only when a logger is made.
"""

from alberta_eqx.experiments.cache import enable_compilation_cache
from alberta_eqx.experiments.export import (
    read_csv,
    read_json,
    to_csv,
    to_json,
    to_latex,
    to_markdown,
)
from alberta_eqx.experiments.labelled import describe, to_xarray
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
from alberta_eqx.experiments.random_walk import RandomWalk19, random_walk_19
from alberta_eqx.experiments.replications import (
    AutostepScale,
    Experiment1,
    Experiment2,
    Sweep,
    autostep_scale,
    sutton1992_experiment1,
    sutton1992_experiment2,
)
from alberta_eqx.experiments.runner import (
    ExperimentResult,
    LearnerFactory,
    run_experiment,
    seed_keys,
)
from alberta_eqx.experiments.sharding import make_mesh, shard_batch
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
from alberta_eqx.experiments.sweep import (
    SweepError,
    SweepSpec,
    best_configurations,
    check_sweep,
    load_spec,
    run_sweep,
    verify_store,
)

__all__ = [
    "AbstractLogger",
    "AutostepScale",
    "Comparison",
    "Experiment1",
    "Experiment2",
    "ExperimentResult",
    "HypothesisTest",
    "LearnerFactory",
    "RandomWalk19",
    "Row",
    "Summary",
    "Sweep",
    "SweepError",
    "SweepSpec",
    "TensorBoardLogger",
    "WandbLogger",
    "autostep_scale",
    "best_configurations",
    "bonferroni",
    "bootstrap_ci",
    "check_sweep",
    "cohens_d",
    "compare",
    "curves_frame",
    "describe",
    "enable_compilation_cache",
    "final_performance",
    "holm",
    "load_spec",
    "log_windows",
    "make_logger",
    "make_mesh",
    "mann_whitney_u",
    "plot_final_performance",
    "plot_heatmap",
    "plot_learning_curves",
    "plot_sensitivity",
    "plot_step_sizes",
    "random_walk_19",
    "read_csv",
    "read_json",
    "run_experiment",
    "run_sweep",
    "seed_keys",
    "shard_batch",
    "standard_error",
    "summarize",
    "summary_table",
    "sutton1992_experiment1",
    "sutton1992_experiment2",
    "to_csv",
    "to_json",
    "to_latex",
    "to_markdown",
    "to_xarray",
    "ttest",
    "verify_store",
    "wilcoxon_signed_rank",
]
