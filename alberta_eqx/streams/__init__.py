"""Streams of experience: the protocol and the synthetic non-stationary streams."""

from alberta_eqx.streams._base import (
    AbstractSequentialStream,
    AbstractStream,
    AbstractTDStream,
    OffPolicyTimeStep,
    StreamState,
    TDTimeStep,
    TimeStep,
    step_keys,
)
from alberta_eqx.streams.access_control import AccessControl
from alberta_eqx.streams.baird import BairdStream
from alberta_eqx.streams.bitflip import BitFlipStream
from alberta_eqx.streams.mountain_car import MountainCar
from alberta_eqx.streams.permuted import InputPermutedStream, LabelPermutedStream
from alberta_eqx.streams.random_walk import RandomWalkTDStream
from alberta_eqx.streams.synthetic import (
    AbruptChangeStream,
    AbruptChangeTarget,
    CyclicState,
    CyclicStream,
    CyclicTarget,
    DynamicScaleShiftStream,
    KeyState,
    PeriodicChangeStream,
    PeriodicChangeTarget,
    PeriodicState,
    RandomWalkStream,
    RandomWalkTarget,
    ScaleDriftState,
    ScaleDriftStream,
    ScaledStreamWrapper,
    SignsState,
    SuttonExperiment1Stream,
    WalkState,
    clipped_walk,
    make_scale_range,
)
from alberta_eqx.streams.teacher import NonlinearTeacherStream, TeacherState
from alberta_eqx.streams.tiles import TileCoder

__all__ = [
    "AbruptChangeStream",
    "AbruptChangeTarget",
    "AbstractSequentialStream",
    "AbstractStream",
    "AbstractTDStream",
    "AccessControl",
    "BairdStream",
    "BitFlipStream",
    "CyclicState",
    "CyclicStream",
    "CyclicTarget",
    "DynamicScaleShiftStream",
    "InputPermutedStream",
    "KeyState",
    "LabelPermutedStream",
    "MountainCar",
    "NonlinearTeacherStream",
    "OffPolicyTimeStep",
    "PeriodicChangeStream",
    "PeriodicChangeTarget",
    "PeriodicState",
    "RandomWalkStream",
    "RandomWalkTDStream",
    "RandomWalkTarget",
    "ScaleDriftState",
    "ScaleDriftStream",
    "ScaledStreamWrapper",
    "SignsState",
    "StreamState",
    "SuttonExperiment1Stream",
    "TDTimeStep",
    "TeacherState",
    "TileCoder",
    "TimeStep",
    "WalkState",
    "clipped_walk",
    "make_scale_range",
    "step_keys",
]
