"""Which runs of a result diverged, and at which step: read from the first
non-finite step the runners record."""

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from jaxtyping import Bool, Int

from alberta_eqx.runners._results import RunResult


class Divergence(NamedTuple):
    """Which runs of a (batched) result became non-finite, and when (NumPy arrays).

    **Fields:**

    - `diverged`: per run (shape: the result's batch axes), whether a metric or an
      array of the learner's state became NaN or infinite at some step.
    - `first_step`: the index of the first such step (its update produced the first
      non-finite value), or -1 where the run stayed finite.
    """

    diverged: Bool[np.ndarray, "*batch"]
    first_step: Int[np.ndarray, "*batch"]

    def summary(self) -> str:
        """One line naming every diverged run and its first non-finite step, for
        logs and the command line: `"2 of 30 runs diverged: run 4 at step 62, run 17
        at step 1018"` (`run (c, s)` for a grid's configuration `c` and seed `s`)."""
        bad = np.argwhere(self.diverged)
        if self.diverged.ndim == 0:
            return (
                f"diverged: first non-finite at step {int(self.first_step)}"
                if self.diverged
                else "did not diverge"
            )
        runs = ", ".join(
            f"run {int(i[0]) if len(i) == 1 else tuple(int(j) for j in i)} at step "
            f"{int(self.first_step[tuple(i)])}"
            for i in bad
        )
        total = self.diverged.size
        if not runs:
            return f"none of {total} runs diverged"
        return f"{len(bad)} of {total} runs diverged: {runs}"


def find_divergence(
    result: RunResult | Sequence[RunResult], metrics_window: int | None = None
) -> Divergence:
    """Report the runs of `result` that diverged, and the first non-finite step of
    each, rather than leaving NaNs to be found. The other runs of a batched result
    are unaffected and usable as they are.

    The runners check every step's metrics (`RunResult.first_nonfinite_step`), so
    the step is exact whatever the metrics window; a learner whose state became
    non-finite while its metrics stayed finite is found too, at the end of the block
    where it happened. Hyperparameters are not checked: an infinite `tau` is a
    choice, not a divergence.

    **Arguments:**

    - `result`: what `run_learning_loop` or `run_learning_loop_batched` returned; or
      the results of a run's consecutive segments (continued with `start_step`), in
      order, to report the first step over the whole run.
    - `metrics_window`: accepted for compatibility and not needed: the step is
      exact whatever the window.
    """
    results = [result] if isinstance(result, RunResult) else list(result)
    records = [r.first_nonfinite_step for r in results]
    if not records or any(r is None for r in records):
        raise ValueError(
            "find_divergence needs results returned by run_learning_loop or "
            "run_learning_loop_batched (their first_nonfinite_step)"
        )
    first = np.asarray(records[0]).astype(np.int64)
    for later in records[1:]:  # the earliest segment that has one names the step
        first = np.where(first >= 0, first, np.asarray(later))
    return Divergence(first >= 0, first)
