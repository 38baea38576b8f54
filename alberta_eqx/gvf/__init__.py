"""General value functions and off-policy prediction: GVF questions, the Hordes of
demons that answer them (linear demons, or heads on a shared nonlinear trunk),
importance-sampling ratios and the gradient-TD learners."""

from alberta_eqx.gvf._horde import GVFQuestion, Horde, stack_questions
from alberta_eqx.gvf._offpolicy import GradientTDLearner, check_policy, importance_ratio
from alberta_eqx.gvf._trunk import TrunkHorde

__all__ = [
    "GVFQuestion",
    "GradientTDLearner",
    "Horde",
    "TrunkHorde",
    "check_policy",
    "importance_ratio",
    "stack_questions",
]
