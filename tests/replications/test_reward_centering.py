"""`alberta-eqx replicate reward-centering` at a reduced size (2 seeds x 5,000 steps;
the paper's length is 100,000): the run's shapes and ranges, the centered learners'
`Rbar` near the reward received plus the offset, the report, the figure, and the
verdicts "not tested at this length"."""

import matplotlib
import numpy as np
import pytest

from alberta_eqx.replications import REPLICATIONS
from alberta_eqx.replications import reward_centering as rc

pytestmark = pytest.mark.slow

matplotlib.use("Agg")


def test_reduced_run():
    result = rc.reward_centering(num_seeds=2, num_steps=5_000, window=2_500)
    assert result.curves.shape == (2, 3, 3, 3, 2, 2)
    assert np.all((result.curves >= 0) & (result.curves <= 8))
    assert np.isnan(result.reward_rate[0]).all() and np.isfinite(result.reward_rate[1]).all()
    # Rbar tracks the (shifted) reward rate: about the unshifted rate plus the offset
    shift = np.asarray(rc.OFFSETS)[None, :, None, None]
    received = result.curves[1].mean(axis=-1) + shift
    assert np.abs(result.reward_rate[1] - received).max() < 1.5
    lines = rc.report(result)
    assert any("centered Q-learning" in line for line in lines)
    assert rc.figure(result) is not None
    verdicts = REPLICATIONS["reward-centering"].verdicts(result, result.num_steps)
    assert {v.outcome for v in verdicts} == {"not tested at this length"}


@pytest.mark.optimized  # 216,000 tile-coded steps: 26 s unoptimised, 7 s optimised
def test_reduced_catch_run():
    """`--task catch` (16 tilings over the continuous observation): Catch's rewards
    are -1, 0 or +1 a step, the centered learners' `Rbar` tracks them plus the
    offset, and the verdicts wait for the task's own length (20,000 steps)."""
    result = rc.reward_centering(task="catch", num_seeds=2, num_steps=2_000)
    assert result.window == 1_000 and result.offsets == (-4.0, 0.0, 4.0)
    assert result.curves.shape == (2, 3, 3, 3, 2, 2)
    assert np.all((result.curves >= -1) & (result.curves <= 1))
    shift = np.asarray(result.offsets)[None, :, None, None]
    received = result.curves[1].mean(axis=-1) + shift
    assert np.abs(result.reward_rate[1] - received).max() < 1.0
    assert any(line.startswith("continuing Catch") for line in rc.report(result))
    assert rc.figure(result) is not None
    verdicts = REPLICATIONS["reward-centering"].verdicts(result, result.num_steps)
    assert {v.outcome for v in verdicts} == {"not tested at this length"}
    assert "20,000 steps" in verdicts[0].why
