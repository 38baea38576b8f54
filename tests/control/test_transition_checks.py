"""Every TD learner's `learn` checks its transition the same way
(`alberta_eqx._checks.transition`): a bad field is refused with its name, and a good
transition is cast to the learner's dtype."""

import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from alberta_eqx import _checks
from alberta_eqx.gvf import GradientTDLearner, GVFQuestion, Horde
from alberta_eqx.nn import MLP
from alberta_eqx.nonlinear import TDMLPLearner
from alberta_eqx.optimizers import LMS
from alberta_eqx.streams import OffPolicyTimeStep, TDTimeStep
from alberta_eqx.td import TDLinearLearner

N = 3
GOOD = {
    "observation": jnp.ones(N),
    "reward": 1.0,
    "discount": 0.9,
    "next_observation": jnp.ones(N),
}
# One bad value per field, and the error it must raise.
BAD = {
    "observation": (jnp.ones(N + 1), ValueError),
    "next_observation": (jnp.ones(N - 1), ValueError),
    "reward": (jnp.ones(2), ValueError),
    "discount": (jnp.array(True), TypeError),
}


def _on_policy(**fields):
    return TDTimeStep(**{**GOOD, **fields})


def _off_policy(**fields):
    return OffPolicyTimeStep(
        **{**GOOD, **fields}, action=0, behaviour_probability=0.5, target_probability=1.0
    )


LEARNERS = {
    "TDLinearLearner": (lambda: TDLinearLearner(N, LMS(0.1)), _on_policy),
    "TDMLPLearner": (
        lambda: TDMLPLearner(
            MLP(
                N, "scalar", (2,), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False
            ),
            optax.sgd(0.1),
        ),
        _on_policy,
    ),
    "GradientTDLearner": (lambda: GradientTDLearner(N), _off_policy),
    "Horde": (
        lambda: Horde(GVFQuestion(np.eye(2, N + 1), [0.5, 0.0]), TDLinearLearner(N, LMS(0.1))),
        _on_policy,
    ),
}


@pytest.mark.parametrize("field", BAD)
@pytest.mark.parametrize("kind", LEARNERS)
def test_bad_field_is_named(kind, field):
    make, timestep = LEARNERS[kind]
    value, error = BAD[field]
    with pytest.raises(error, match=f"^{field} must"):
        make().learn(timestep(**{field: value}))


def test_transition_casts():
    x, x_next, reward, discount = _checks.transition(
        _on_policy(observation=np.arange(N, dtype=np.float64), reward=np.array([2])),
        N,
        jnp.float32,
    )
    np.testing.assert_array_equal(x, [0.0, 1.0, 2.0])
    assert x.dtype == x_next.dtype == reward.dtype == discount.dtype == jnp.float32
    assert reward.shape == discount.shape == ()
    assert float(reward) == 2.0 and float(discount) == pytest.approx(0.9)
