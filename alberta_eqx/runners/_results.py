"""What a run takes and returns: the tracking options, the recorded histories and
`RunResult`; and `metrics_to_dicts`, the 0.2.x layout of a run's metrics."""

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
