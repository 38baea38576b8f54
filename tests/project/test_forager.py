"""benchmarks/forager.py: Forager (continual-foragax) through the adapter inside the
compiled control loop, at a tiny size. Slow: compiling foragax's step alone takes over
a minute on 2 cores (a separate check of the adapter against foragax's `step_env`
was dropped for that reason)."""

import numpy as np
import pytest

pytest.importorskip("foragax", reason="continual-foragax (extra [foragax])")

from benchmarks import forager


@pytest.mark.slow
def test_a_tiny_run_records_the_reward_rate():
    """Stream Q(lambda), 2 seeds vmapped, 2 segments of 30 steps: one reward rate per
    seed and segment, finite; a segment that does not divide the run is refused."""
    result = forager.run_forager("stream_q", num_seeds=2, num_steps=60, segment_steps=30)
    rate = np.asarray(result["reward_rate"])
    assert result["steps"] == [30, 60]
    assert rate.shape == (2, 2) and np.all(np.isfinite(rate))
    with pytest.raises(ValueError, match="segment_steps"):
        forager.run_forager("stream_q", num_steps=50, segment_steps=30)
