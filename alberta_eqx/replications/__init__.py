"""The published replications, one module per paper or figure: its run (one compiled
program over all configurations and seeds), the lines `alberta-eqx replicate` prints
beside the paper's numbers, its published checks and its figure.

`sutton1992` (Sutton 1992, Experiments 1 and 2), `mahmood2012` (Mahmood et al.
2012), `random_walk` (the 19-state random walk), `continual_backprop` (Dohare et al.
2021), `baird` (Sutton and Barto's Example 11.1), `mountain_car` (their Figure 12.10),
`stream_ac` (Elsayed et al. 2024 on CartPole), `access_control` (their Example
10.2), `swifttd` (Javed et al. 2024: sensitivity to the initial step-size) and
`swift_sarsa` (Javed and Sutton 2025: the operant conditioning benchmark).
`verdicts` holds what they share: `Check`, `Verdict` and `Replication`;
`registry.REPLICATIONS` names them for the command line.
"""

from alberta_eqx.replications.mahmood2012 import AutostepScale, autostep_scale
from alberta_eqx.replications.random_walk import RandomWalk19, random_walk_19
from alberta_eqx.replications.registry import REPLICATIONS
from alberta_eqx.replications.sutton1992 import (
    Experiment1,
    Experiment2,
    Sweep,
    sutton1992_experiment1,
    sutton1992_experiment2,
)
from alberta_eqx.replications.verdicts import Check, Replication, Verdict

__all__ = [
    "REPLICATIONS",
    "AutostepScale",
    "Check",
    "Experiment1",
    "Experiment2",
    "RandomWalk19",
    "Replication",
    "Sweep",
    "Verdict",
    "autostep_scale",
    "random_walk_19",
    "sutton1992_experiment1",
    "sutton1992_experiment2",
]
