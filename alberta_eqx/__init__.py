"""alberta_eqx: continual (streaming) learning with meta-learned step-sizes, in JAX and
Equinox. Learners, optimizers and normalizers are `eqx.Module` pytrees holding both
their hyperparameters and their state; every update returns a new module."""

from importlib.metadata import version as _version

from alberta_eqx.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    read_checkpoint_header,
    save_checkpoint,
)
from alberta_eqx.control import RewardRate, SarsaLambda, StreamAC, run_control, start_control
from alberta_eqx.gvf import (
    GradientTDLearner,
    GVFQuestion,
    Horde,
    TrunkHorde,
    check_policy,
    importance_ratio,
    stack_questions,
)
from alberta_eqx.learners import (
    AbstractLearner,
    LinearLearner,
    StepMetrics,
    StepSizeSnapshot,
    UpdateResult,
)
from alberta_eqx.nn import MLP, sparse_init, sparse_linear
from alberta_eqx.nonlinear import (
    ContinualBackprop,
    FeatureRelevance,
    MLPLearner,
    MultiHeadLearner,
    MultiHeadStepMetrics,
    MultiHeadUpdateResult,
    TDMLPLearner,
    compute_feature_relevance,
    compute_feature_sensitivity,
    compute_unit_utility,
    contribution_utility,
)
from alberta_eqx.normalizers import (
    AbstractNormalizer,
    EMANormalizer,
    OnlineNormalizer,
    WelfordNormalizer,
)
from alberta_eqx.online import (
    DurableLearner,
    DurableWriteError,
    JournalError,
    NonFiniteEventError,
    OnlineLearner,
)
from alberta_eqx.optimizers import (
    IDBD,
    LMS,
    AbstractOptimizer,
    AdaptiveObGD,
    Autostep,
    ObGD,
    ObGDBounding,
)
from alberta_eqx.runners import (
    Divergence,
    NormalizerHistory,
    NormalizerTrackingConfig,
    RunResult,
    StepSizeHistory,
    StepSizeTrackingConfig,
    find_divergence,
    metrics_to_dicts,
    run_learning_loop,
    run_learning_loop_batched,
)
from alberta_eqx.streams import (
    AbruptChangeStream,
    AbstractSequentialStream,
    AbstractStream,
    AbstractTDStream,
    CyclicStream,
    DynamicScaleShiftStream,
    NonlinearTeacherStream,
    PeriodicChangeStream,
    RandomWalkStream,
    ScaleDriftStream,
    ScaledStreamWrapper,
    SuttonExperiment1Stream,
    TDTimeStep,
    TimeStep,
    make_scale_range,
)
from alberta_eqx.streams._base import OffPolicyTimeStep
from alberta_eqx.streams.access_control import AccessControl
from alberta_eqx.streams.baird import BairdStream
from alberta_eqx.streams.bitflip import BitFlipStream
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.random_walk import RandomWalkTDStream
from alberta_eqx.streams.tiles import TileCoder
from alberta_eqx.td import (
    TDIDBD,
    TDLMS,
    AbstractTDOptimizer,
    AutoTDIDBD,
    TDLinearLearner,
)

__version__ = _version("alberta_eqx")

__all__ = [
    "IDBD",
    "LMS",
    "MLP",
    "TDIDBD",
    "TDLMS",
    "AbruptChangeStream",
    "AbstractLearner",
    "AbstractNormalizer",
    "AbstractOptimizer",
    "AbstractSequentialStream",
    "AbstractStream",
    "AbstractTDOptimizer",
    "AbstractTDStream",
    "AccessControl",
    "AdaptiveObGD",
    "AutoTDIDBD",
    "Autostep",
    "BairdStream",
    "BitFlipStream",
    "Checkpoint",
    "CheckpointError",
    "ContinualBackprop",
    "CyclicStream",
    "Divergence",
    "DurableLearner",
    "DurableWriteError",
    "DynamicScaleShiftStream",
    "EMANormalizer",
    "FeatureRelevance",
    "GVFQuestion",
    "GradientTDLearner",
    "Horde",
    "JournalError",
    "LinearLearner",
    "MLPLearner",
    "MountainCar",
    "MultiHeadLearner",
    "MultiHeadStepMetrics",
    "MultiHeadUpdateResult",
    "NonFiniteEventError",
    "NonlinearTeacherStream",
    "NormalizerHistory",
    "NormalizerTrackingConfig",
    "ObGD",
    "ObGDBounding",
    "OffPolicyTimeStep",
    "OnlineLearner",
    "OnlineNormalizer",
    "PeriodicChangeStream",
    "RandomWalkStream",
    "RandomWalkTDStream",
    "RewardRate",
    "RunResult",
    "SarsaLambda",
    "ScaleDriftStream",
    "ScaledStreamWrapper",
    "StepMetrics",
    "StepSizeHistory",
    "StepSizeSnapshot",
    "StepSizeTrackingConfig",
    "StreamAC",
    "SuttonExperiment1Stream",
    "TDLinearLearner",
    "TDMLPLearner",
    "TDTimeStep",
    "TileCoder",
    "TimeStep",
    "TrunkHorde",
    "UpdateResult",
    "WelfordNormalizer",
    "check_policy",
    "compute_feature_relevance",
    "compute_feature_sensitivity",
    "compute_unit_utility",
    "contribution_utility",
    "find_divergence",
    "importance_ratio",
    "load_checkpoint",
    "make_scale_range",
    "metrics_to_dicts",
    "read_checkpoint_header",
    "run_control",
    "run_learning_loop",
    "run_learning_loop_batched",
    "save_checkpoint",
    "sparse_init",
    "sparse_linear",
    "stack_questions",
    "start_control",
]
