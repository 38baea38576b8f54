"""Nonlinear learners: networks trained online by any optax transformation."""

from alberta_eqx.nonlinear._cbp import ContinualBackprop, contribution_utility
from alberta_eqx.nonlinear._mlp import MLPLearner
from alberta_eqx.nonlinear._multihead import (
    MultiHeadLearner,
    MultiHeadStepMetrics,
    MultiHeadUpdateResult,
)

__all__ = [
    "ContinualBackprop",
    "MLPLearner",
    "MultiHeadLearner",
    "MultiHeadStepMetrics",
    "MultiHeadUpdateResult",
    "contribution_utility",
]
