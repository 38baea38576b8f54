"""Nonlinear learners: networks trained online by any optax transformation."""

from alberta_eqx.nonlinear._mlp import MLPLearner
from alberta_eqx.nonlinear._td import TDMLPLearner

__all__ = ["MLPLearner", "TDMLPLearner"]
