"""The optimizer modules' argument checks (the rules themselves are tested in
tests/_rules/test_rules.py, the learners in tests/learners/test_learners.py)."""

import pytest

from alberta_eqx import IDBD, LMS, Autostep


@pytest.mark.parametrize(
    ("build", "name"),
    [
        (lambda: LMS(0.0), "step_size"),
        (lambda: LMS(-1.0), "step_size"),
        (lambda: LMS(float("nan")), "step_size"),
        (lambda: IDBD(0.0, meta_step_size=0.01), "initial_step_size"),
        (lambda: IDBD(0.01, meta_step_size=-0.1), "meta_step_size"),
        (lambda: Autostep(0.01, meta_step_size=0.01, tau=0.0), "tau"),
        (lambda: Autostep(0.01, meta_step_size=-1.0), "meta_step_size"),
    ],
)
def test_bad_hyperparameters_name_the_argument(build, name):
    with pytest.raises(ValueError, match=name):
        build()
