"""Compiled learning loops: a learner against a stream, for one seed or many.

The loop runs in blocks. For each block the stream generates all of its steps in one
vectorised call (`AbstractStream.chunk`), and a `lax.scan` then runs only the learner
over them, so the sequential part is exactly the learner's recurrence. Tracking
reshapes that scan into units of `interval` steps and records the learner at the end
of each unit, rather than writing conditionally into a carried buffer.

Everything is compiled once per structure with `eqx.filter_jit`: a second call with
the same learner type, stream type, step count and options runs without tracing.
"""

# One concept per module: `_results` (what a run takes and returns), `_plan` (a run's
# static shape and argument checks), `_scan` (one block: generate, learn, check),
# `_window_sums` (windows longer than a block), `_loop` (the compiled runners) and
# `_divergence` (reading where a run went non-finite).
from alberta_eqx.runners._divergence import Divergence, find_divergence
from alberta_eqx.runners._loop import run_learning_loop, run_learning_loop_batched
from alberta_eqx.runners._plan import block_steps
from alberta_eqx.runners._results import (
    NormalizerHistory,
    NormalizerTrackingConfig,
    PlasticityHistory,
    PlasticityTrackingConfig,
    RunResult,
    StepSizeHistory,
    StepSizeTrackingConfig,
    metrics_to_dicts,
)

# In reading order, which docs/api/runners.md renders (`members_order: __all__`).
__all__ = [  # noqa: RUF022
    "StepSizeTrackingConfig",
    "NormalizerTrackingConfig",
    "PlasticityTrackingConfig",
    "StepSizeHistory",
    "NormalizerHistory",
    "PlasticityHistory",
    "RunResult",
    "run_learning_loop",
    "run_learning_loop_batched",
    "block_steps",
    "Divergence",
    "find_divergence",
    "metrics_to_dicts",
]
