"""Control: agents that act and learn from every transition, and the compiled
agent-environment loop."""

from alberta_eqx.control._linear import (
    SarsaLambda,
    differential_q_learning,
    differential_sarsa,
    watkins_q_lambda,
)
from alberta_eqx.control._loop import (
    AbstractControlAgent,
    ControlRun,
    ControlTransition,
    control_step,
    control_step_with_reward,
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
from alberta_eqx.control._swift_sarsa import OperantResult, SwiftSarsa, run_operant
from alberta_eqx.control._wrappers import StreamingWrapper, StreamingWrapperState
from alberta_eqx.td import RewardRate

__all__ = [
    "AbstractControlAgent",
    "AbstractPolicy",
    "ControlRun",
    "ControlTransition",
    "EpsilonGreedy",
    "FixedPolicy",
    "OperantResult",
    "RewardRate",
    "SarsaLambda",
    "Softmax",
    "StreamAC",
    "StreamQ",
    "StreamingWrapper",
    "StreamingWrapperState",
    "SwiftSarsa",
    "check_probabilities",
    "control_step",
    "control_step_with_reward",
    "differential_q_learning",
    "differential_sarsa",
    "greedy_actions",
    "run_control",
    "run_operant",
    "start_control",
    "watkins_q_lambda",
]
