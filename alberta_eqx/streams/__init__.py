"""Where experience comes from: the stream protocol, the streams, the environments the
control loop runs, and tile coding.

- **The protocol** (`_base`): `AbstractStream` (supervised `TimeStep`s),
  `AbstractSequentialStream` (one step at a time), `AbstractTDStream` (transitions).
- **Supervised streams**: linear targets that change (`targets`), feature scales that
  change (`scales`), a drifting nonlinear teacher (`teacher`), the bit-flipping
  problem (`bitflip`) and permuted classification (`permuted`).
- **TD streams**: the random-walk chain (`random_walk`) and Baird's counterexample
  (`baird`). The streams of gymnax and Gymnasium environments under a fixed policy
  need optional extras and stay in their module, `alberta_eqx.streams.environments`.
- **Environments** for the control loop, gymnax-style `reset`/`step` (not streams: an
  agent chooses the actions): `MountainCar`, `AccessControl`, `ContinuingCatch`,
  `ContinuingRandomWalk`.
- **A feature constructor**: `TileCoder` (not a stream: it maps an observation to
  binary features, for the control agents or a TD stream's `features`).

Each stream's state (the type `init` returns) is exported beside it.
"""

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
from alberta_eqx.streams.access_control import (
    AccessControl,
    AccessControlParams,
    AccessControlState,
)
from alberta_eqx.streams.baird import (
    BairdState,
    BairdStream,
    baird_features,
    baird_initial_weights,
)
from alberta_eqx.streams.bitflip import BitFlipState, BitFlipStream
from alberta_eqx.streams.continuing_catch import (
    ContinuingCatch,
    ContinuingCatchParams,
    ContinuingCatchState,
)
from alberta_eqx.streams.continuing_walk import ContinuingRandomWalk, ContinuingWalkParams
from alberta_eqx.streams.mountain_car import MountainCar, MountainCarParams, MountainCarState
from alberta_eqx.streams.operant import OperantConditioning, OperantParams, OperantState
from alberta_eqx.streams.permuted import (
    InputPermutedStream,
    LabelPermutedStream,
    PermutedState,
    load_digits,
)
from alberta_eqx.streams.random_walk import RandomWalkChainStream, WalkPosition, episode_ends
from alberta_eqx.streams.scales import (
    DynamicScaleShiftStream,
    ScaleDriftState,
    ScaleDriftStream,
    ScaledStreamWrapper,
    clipped_walk,
    make_scale_range,
)
from alberta_eqx.streams.targets import (
    AbruptChangeStream,
    CyclicState,
    CyclicStream,
    DriftingTargetState,
    DriftingTargetStream,
    KeyState,
    PeriodicChangeStream,
    PeriodicState,
    SignsState,
    SuttonExperiment1Stream,
)
from alberta_eqx.streams.teacher import NonlinearTeacherStream, TeacherState
from alberta_eqx.streams.tiles import TileCoder, python_tuple_hash_mod

__all__ = [  # noqa: RUF022 - grouped by kind, as the docstring lists them
    # the protocol
    "AbstractStream",
    "AbstractSequentialStream",
    "AbstractTDStream",
    "TimeStep",
    "TDTimeStep",
    "OffPolicyTimeStep",
    "StreamState",
    "step_keys",
    # supervised streams: linear targets that change
    "DriftingTargetStream",
    "AbruptChangeStream",
    "SuttonExperiment1Stream",
    "CyclicStream",
    "PeriodicChangeStream",
    # supervised streams: feature scales that change
    "ScaledStreamWrapper",
    "make_scale_range",
    "DynamicScaleShiftStream",
    "ScaleDriftStream",
    "clipped_walk",
    # supervised streams: nonlinear targets, loss of plasticity
    "NonlinearTeacherStream",
    "BitFlipStream",
    "InputPermutedStream",
    "LabelPermutedStream",
    "load_digits",
    # TD streams
    "RandomWalkChainStream",
    "episode_ends",
    "BairdStream",
    "baird_features",
    "baird_initial_weights",
    # environments for the control loop (gymnax-style reset/step; not streams)
    "MountainCar",
    "MountainCarParams",
    "MountainCarState",
    "AccessControl",
    "AccessControlParams",
    "AccessControlState",
    "ContinuingCatch",
    "ContinuingCatchParams",
    "ContinuingCatchState",
    "ContinuingRandomWalk",
    "ContinuingWalkParams",
    "OperantConditioning",
    "OperantParams",
    "OperantState",
    # a feature constructor (not a stream)
    "TileCoder",
    "python_tuple_hash_mod",
    # the streams' states (what `init` returns)
    "DriftingTargetState",
    "KeyState",
    "SignsState",
    "CyclicState",
    "PeriodicState",
    "ScaleDriftState",
    "TeacherState",
    "BitFlipState",
    "PermutedState",
    "WalkPosition",
    "BairdState",
]
