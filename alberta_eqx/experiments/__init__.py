"""Experiments: the published replications, multi-seed summaries and comparisons."""

from alberta_eqx.experiments.replications import (
    AutostepScale,
    Experiment1,
    Experiment2,
    Sweep,
    autostep_scale,
    sutton1992_experiment1,
    sutton1992_experiment2,
)

__all__ = [
    "AutostepScale",
    "Experiment1",
    "Experiment2",
    "Sweep",
    "autostep_scale",
    "sutton1992_experiment1",
    "sutton1992_experiment2",
]
