"""General value functions and off-policy prediction: GVF questions, the Horde of
demons that answers them, importance-sampling ratios and the gradient-TD learners."""

from alberta_eqx.gvf._horde import GVFQuestion, Horde, stack_questions
from alberta_eqx.gvf._offpolicy import GradientTDLearner, check_policy, importance_ratio

__all__ = [
    "GVFQuestion",
    "GradientTDLearner",
    "Horde",
    "check_policy",
    "importance_ratio",
    "stack_questions",
]
