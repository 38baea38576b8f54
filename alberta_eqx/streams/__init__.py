"""Streams of experience: the protocol and the synthetic non-stationary streams."""

from alberta_eqx.streams._base import (
    AbstractSequentialStream,
    AbstractStream,
    StreamState,
    TimeStep,
    step_keys,
)
from alberta_eqx.streams.synthetic import (
    AbruptChangeStream,
    AbruptChangeTarget,
    CyclicStream,
    CyclicTarget,
    DynamicScaleShiftStream,
    PeriodicChangeStream,
    PeriodicChangeTarget,
    RandomWalkStream,
    RandomWalkTarget,
    ScaleDriftStream,
    ScaledStreamWrapper,
    SuttonExperiment1Stream,
    clipped_walk,
    make_scale_range,
)
from alberta_eqx.streams.teacher import NonlinearTeacherStream, TeacherState

__all__ = [
    "AbruptChangeStream",
    "AbruptChangeTarget",
    "AbstractSequentialStream",
    "AbstractStream",
    "CyclicStream",
    "CyclicTarget",
    "DynamicScaleShiftStream",
    "NonlinearTeacherStream",
    "PeriodicChangeStream",
    "PeriodicChangeTarget",
    "RandomWalkStream",
    "RandomWalkTarget",
    "ScaleDriftStream",
    "ScaledStreamWrapper",
    "StreamState",
    "SuttonExperiment1Stream",
    "TeacherState",
    "TimeStep",
    "clipped_walk",
    "make_scale_range",
    "step_keys",
]
