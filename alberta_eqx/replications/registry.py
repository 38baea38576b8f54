"""The published replications by name: `alberta-eqx replicate NAME` runs
`REPLICATIONS[NAME]`. A new replication is its paper's module and one entry here."""

from alberta_eqx.replications.access_control import ACCESS_CONTROL
from alberta_eqx.replications.baird import BAIRD
from alberta_eqx.replications.continual_backprop import CONTINUAL_BACKPROP
from alberta_eqx.replications.mahmood2012 import AUTOSTEP_SCALE
from alberta_eqx.replications.mountain_car import MOUNTAIN_CAR
from alberta_eqx.replications.plasticity import PLASTICITY
from alberta_eqx.replications.random_walk import RANDOM_WALK_19
from alberta_eqx.replications.reward_centering import REWARD_CENTERING
from alberta_eqx.replications.stream_ac import STREAM_AC_CARTPOLE
from alberta_eqx.replications.stream_x_minatar import STREAM_X_MINATAR
from alberta_eqx.replications.sutton1992 import SUTTON1992_EXP1, SUTTON1992_EXP2
from alberta_eqx.replications.swift_sarsa import SWIFT_SARSA
from alberta_eqx.replications.swifttd import SWIFTTD
from alberta_eqx.replications.verdicts import Replication

REPLICATIONS: dict[str, Replication] = {
    "sutton1992-exp1": SUTTON1992_EXP1,
    "sutton1992-exp2": SUTTON1992_EXP2,
    "autostep-scale": AUTOSTEP_SCALE,
    "random-walk-19": RANDOM_WALK_19,
    "continual-backprop": CONTINUAL_BACKPROP,
    "baird": BAIRD,
    "mountain-car": MOUNTAIN_CAR,
    "stream-ac-cartpole": STREAM_AC_CARTPOLE,
    "access-control": ACCESS_CONTROL,
    "swifttd": SWIFTTD,
    "swift-sarsa": SWIFT_SARSA,
    "reward-centering": REWARD_CENTERING,
    "stream-x-minatar": STREAM_X_MINATAR,
    "plasticity": PLASTICITY,
}
"""name -> the published experiment, in the order `alberta-eqx replicate --help` lists them."""
DEFAULT_REPLICATION = "sutton1992-exp1"
"""What `alberta-eqx` with no command runs."""
