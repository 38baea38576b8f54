"""Control: agents that act and learn from every transition, and the compiled
agent-environment loop."""

from alberta_eqx.control._linear import SarsaLambda, watkins_q_lambda
from alberta_eqx.control._loop import (
    AbstractControlAgent,
    ControlRun,
    control_step,
    run_control,
    start_control,
)
from alberta_eqx.control._policies import (
    AbstractPolicy,
    EpsilonGreedy,
    FixedPolicy,
    Softmax,
    check_probabilities,
    greedy_actions,
)
from alberta_eqx.control._stream import StreamAC, StreamQ
from alberta_eqx.control._wrappers import StreamingWrapper, StreamingWrapperState

__all__ = [
    "AbstractControlAgent",
    "AbstractPolicy",
    "ControlRun",
    "EpsilonGreedy",
    "FixedPolicy",
    "SarsaLambda",
    "Softmax",
    "StreamAC",
    "StreamQ",
    "StreamingWrapper",
    "StreamingWrapperState",
    "check_probabilities",
    "control_step",
    "greedy_actions",
    "run_control",
    "start_control",
    "watkins_q_lambda",
]
