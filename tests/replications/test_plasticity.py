"""`alberta-eqx replicate plasticity` at a reduced size: every method runs on both
permuted problems, every seed in one program, and the report, verdicts and figure
come out of the result."""

import numpy as np
import pytest

from alberta_eqx.replications import REPLICATIONS
from alberta_eqx.replications.plasticity import METHODS, plasticity_permuted


@pytest.mark.slow  # fourteen compiled programs (seven methods, two problems)
def test_every_method_on_both_problems():
    result = plasticity_permuted(200, 2, hidden_sizes=(8,), input_interval=50, label_interval=40)
    for problem, tasks in (("input-permuted", 4), ("label-permuted", 5)):
        assert list(result.accuracy[problem]) == list(METHODS)
        for method in METHODS:
            acc = result.accuracy[problem][method]
            assert acc.shape == (2, tasks)
            assert np.all((acc >= 0) & (acc <= 1))
            assert result.dormant[problem][method].shape == (2, 2, 1)
    replication = REPLICATIONS["plasticity"]
    lines = replication.report(result)
    assert len(lines) == 2 * len(METHODS) + 1
    for verdict in replication.verdicts(result, 200):
        assert verdict.outcome == "not tested at this length", verdict.line()
    fig = replication.figure(result)
    assert fig.axes[0].get_legend() is not None and fig.get_suptitle()


def test_bad_arguments_are_refused():
    with pytest.raises(ValueError, match="methods must be among"):
        plasticity_permuted(100, 1, methods=("Adam",))
    with pytest.raises(ValueError, match="num_steps must be a multiple of the task length"):
        plasticity_permuted(120, 1, input_interval=50)
