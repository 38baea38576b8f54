"""Nonlinear learners: networks trained online by any optax transformation."""

from alberta_eqx.nonlinear._mlp import MLPLearner

__all__ = ["MLPLearner"]
