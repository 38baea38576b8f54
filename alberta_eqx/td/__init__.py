"""Temporal-difference learners: TD(lambda) with the step-size rules TD(lambda),
TD-IDBD and AutoTDIDBD (`alberta_eqx.td._lambda`), True Online TD(lambda)
(`alberta_eqx.td._true_online`) and SwiftTD (`alberta_eqx.td._swift`)."""

# Every name importable from the former `alberta_eqx/td.py`, private helpers that
# other modules import (`_unit_closed`, ...) included.
from alberta_eqx.td._lambda import (  # noqa: F401
    TDIDBD,
    TDLMS,
    AbstractTDOptimizer,
    AutoTDIDBD,
    TDLinearLearner,
    TDTimeStep,
    _dtype,
    _flag,
    _initialised,
    _td_gradients,
    _unit_closed,
    next_trace_discount,
)
from alberta_eqx.td._swift import SparseSwiftTDLearner, SparseTDTimeStep, SwiftTDLearner
from alberta_eqx.td._swift_rule import SwiftTDState
from alberta_eqx.td._true_online import TrueOnlineTDLearner

__all__ = [
    "TDIDBD",
    "TDLMS",
    "AbstractTDOptimizer",
    "AutoTDIDBD",
    "SparseSwiftTDLearner",
    "SparseTDTimeStep",
    "SwiftTDLearner",
    "SwiftTDState",
    "TDLinearLearner",
    "TDTimeStep",
    "TrueOnlineTDLearner",
    "next_trace_discount",
]
