"""Nonlinear learners: networks trained online by any optax transformation."""

from alberta_eqx.nonlinear._cbp import ContinualBackprop, contribution_utility
from alberta_eqx.nonlinear._classifier import ClassifierLearner
from alberta_eqx.nonlinear._diagnostics import (
    FeatureRelevance,
    compute_feature_relevance,
    compute_feature_sensitivity,
    compute_unit_utility,
)
from alberta_eqx.nonlinear._mlp import MLPLearner
from alberta_eqx.nonlinear._multihead import (
    MultiHeadLearner,
    MultiHeadStepMetrics,
    MultiHeadUpdateResult,
)
from alberta_eqx.nonlinear._plasticity import (
    PlasticityDiagnostics,
    dormancy_scores,
    dormant_fraction,
    effective_rank,
    plasticity_diagnostics,
    srank,
    stable_rank,
    weight_norm,
)
from alberta_eqx.nonlinear._resets import (
    AbstractUnitReset,
    ReDo,
    reinitialize_units,
    reset_units,
    reset_where,
)
from alberta_eqx.nonlinear._td import TDMLPLearner

__all__ = [
    "AbstractUnitReset",
    "ClassifierLearner",
    "ContinualBackprop",
    "FeatureRelevance",
    "MLPLearner",
    "MultiHeadLearner",
    "MultiHeadStepMetrics",
    "MultiHeadUpdateResult",
    "PlasticityDiagnostics",
    "ReDo",
    "TDMLPLearner",
    "compute_feature_relevance",
    "compute_feature_sensitivity",
    "compute_unit_utility",
    "contribution_utility",
    "dormancy_scores",
    "dormant_fraction",
    "effective_rank",
    "plasticity_diagnostics",
    "reinitialize_units",
    "reset_units",
    "reset_where",
    "srank",
    "stable_rank",
    "weight_norm",
]
