"""Temporal-difference learners: TD(lambda) with any step-size rule (`LMS`, `IDBD`
and `Autostep` make TD(lambda), TD-IDBD and AutoTDIDBD; `alberta_eqx.td._lambda`),
True Online TD(lambda) (`alberta_eqx.td._true_online`) and SwiftTD
(`alberta_eqx.td._swift`), and the reward-rate estimate `RewardRate` that makes TD(lambda)
differential (average-reward) or reward-centered (`alberta_eqx.td._reward_rate`)."""

from alberta_eqx.td._lambda import TDLinearLearner, TDTimeStep, next_trace_discount
from alberta_eqx.td._reward_rate import (
    RewardRate,
    centered_reward,
    check_reward_rate,
    with_updated_rate,
)
from alberta_eqx.td._swift import SparseSwiftTDLearner, SparseTDTimeStep, SwiftTDLearner
from alberta_eqx.td._swift_rule import SwiftTDState
from alberta_eqx.td._true_online import TrueOnlineTDLearner

__all__ = [
    "RewardRate",
    "SparseSwiftTDLearner",
    "SparseTDTimeStep",
    "SwiftTDLearner",
    "SwiftTDState",
    "TDLinearLearner",
    "TDTimeStep",
    "TrueOnlineTDLearner",
    "centered_reward",
    "check_reward_rate",
    "next_trace_discount",
    "with_updated_rate",
]
