"""What a run takes and returns: the tracking options, the recorded histories and
`RunResult`; and `metrics_to_dicts`, the 0.2.x layout of a run's metrics."""

import dataclasses
from typing import NamedTuple

import numpy as np
from jaxtyping import Array, Float, Int

from alberta_eqx.learners import AbstractLearner, StepMetrics
from alberta_eqx.streams import StreamState


class StepSizeTrackingConfig(NamedTuple):
    """Record per-weight step-sizes (and Autostep's `v_i`) every `interval` steps.

    **Fields:**

    - `interval`: record after every `interval`-th update (steps `interval - 1`,
      `2 interval - 1`, ...), `num_steps // interval` recordings in all.
    - `include_bias`: also record the bias's step-size.
    """

    interval: int
    include_bias: bool = True


class NormalizerTrackingConfig(NamedTuple):
    """Record the normalizer's per-feature mean and variance every `interval` steps."""

    interval: int


@dataclasses.dataclass(frozen=True, eq=False)
class PlasticityTrackingConfig:
    """Record the network's plasticity measures every `interval` steps
    (`alberta_eqx.nonlinear.plasticity_diagnostics` on a fixed probe batch): for a
    learner whose `.model` is an `alberta_eqx.nn.MLP`.

    **Fields:**

    - `interval`: record after every `interval`-th update, as `StepSizeTrackingConfig`.
    - `probe`: the inputs the features are measured on, `(batch, feature_dim)`, e.g.
      a sample of the stream's inputs (held as a constant of the compiled program).
    - `tau`: the dormancy threshold (`dormant_fraction`).
    """

    interval: int
    probe: np.ndarray
    tau: float = 0.0

    def __post_init__(self):
        probe = np.asarray(self.probe)
        if probe.ndim != 2 or not np.issubdtype(probe.dtype, np.floating):
            raise ValueError(
                f"probe must be a 2-D floating array, got {probe.dtype} {probe.shape}"
            )
        if not self.tau >= 0:
            raise ValueError(f"tau must be >= 0, got {self.tau}")
        object.__setattr__(self, "probe", probe)

    # A run's options key its compiled program: equal configs share one.
    def _key(self) -> tuple:
        return (self.interval, float(self.tau), self.probe.shape, self.probe.tobytes())

    def __hash__(self) -> int:
        return hash(self._key())

    def __eq__(self, other: object) -> bool:
        return isinstance(other, PlasticityTrackingConfig) and self._key() == other._key()


class PlasticityHistory(NamedTuple):
    """Recorded plasticity measures; each array has a leading axis over recordings
    (after any batch axes).

    **Fields:**

    - `dormant_fraction`: `(recordings, hidden layers)`.
    - `effective_rank`: `(recordings, hidden layers)`, of each hidden layer's features.
    - `stable_rank`: `(recordings, layers)`, of every weight matrix.
    - `weight_norm`: `(recordings,)`.
    - `recording_indices`: `(recordings,)` the step after whose update each was taken.
    """

    dormant_fraction: Float[Array, "... l"]
    effective_rank: Float[Array, "... l"]
    stable_rank: Float[Array, "... m"]
    weight_norm: Float[Array, "..."]
    recording_indices: Int[Array, "..."]


class StepSizeHistory(NamedTuple):
    """Recorded step-sizes; each array has a leading axis over recordings (after any
    batch axes).

    **Fields:**

    - `step_sizes`: `(recordings, n)` per-weight step-sizes.
    - `bias_step_sizes`: `(recordings,)`, or None.
    - `recording_indices`: `(recordings,)` the step after whose update each was taken.
    - `step_size_normalizers`: `(recordings, n)` Autostep's `v_i`, or None for other optimizers.
    """

    step_sizes: Float[Array, "... n"]
    bias_step_sizes: Float[Array, "..."] | None
    recording_indices: Int[Array, "..."]
    step_size_normalizers: Float[Array, "... n"] | None = None


class NormalizerHistory(NamedTuple):
    """Recorded normalizer statistics: `means` and `variances` of shape
    `(recordings, n)`, and `recording_indices` of shape `(recordings,)`."""

    means: Float[Array, "... n"]
    variances: Float[Array, "... n"]
    recording_indices: Int[Array, "..."]


class RunResult(NamedTuple):
    """What a run returns. Batched runs add leading axes to every array: `(seeds,)`,
    or `(configurations, seeds)` for a hyperparameter grid.

    **Fields:**

    - `learner`: the learner after the last step.
    - `metrics`: `StepMetrics` with one entry per step (or per window of
      `metrics_window` steps, averaged).
    - `step_size_history`: a `StepSizeHistory`, or None when not tracked.
    - `normalizer_history`: a `NormalizerHistory`, or None when not tracked.
    - `stream_state`: the stream's state after the last step. To continue the run,
      pass `learner` and this back with `start_step` advanced by `num_steps`.
    - `plasticity_history`: a `PlasticityHistory`, or None when not tracked.
    - `first_nonfinite_step`: the index of the first step after whose update a
      metric (`squared_error`, `error`, `normalizer_mean_var`) was NaN or
      infinite, or -1 where every step stayed finite. The learner's state (weights,
      optimizer and normalizer state; not the hyperparameters) is checked at the
      end of every block: a state that became non-finite while the metrics stayed
      finite is reported at the last step of that block. `find_divergence` reads
      it.
    """

    learner: AbstractLearner
    metrics: StepMetrics
    step_size_history: StepSizeHistory | None
    normalizer_history: NormalizerHistory | None
    stream_state: StreamState
    first_nonfinite_step: Int[Array, "*batch"] | None = None
    plasticity_history: PlasticityHistory | None = None


def metrics_to_dicts(metrics: StepMetrics) -> list[dict[str, float]]:
    """The 0.2.x layout: one dict per step with the keys `squared_error`, `error`,
    `mean_step_size` (and `normalizer_mean_var` when present)."""
    columns = {k: np.asarray(v) for k, v in metrics._asdict().items() if v is not None}
    lengths = {v.shape for v in columns.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(
            f"metrics_to_dicts takes one run's metrics (1-D per field), got shapes {lengths}"
        )
    return [
        {k: float(v[i]) for k, v in columns.items()}
        for i in range(next(iter(columns.values())).shape[0])
    ]
