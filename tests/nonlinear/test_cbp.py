"""Continual backprop (Dohare et al. 2024, Algorithm 1) against a float64 NumPy
transcription (`tests/_reference/plasticity_resets.py`), its replacement inside a
learner, and loss of plasticity on the bit-flipping problem (Dohare et al. 2021)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

import alberta_eqx.optax as aeo
from alberta_eqx import ContinualBackprop, MultiHeadLearner
from alberta_eqx.nn import MLP
from tests._reference.plasticity_resets import cbp_bookkeeping as _reference


def test_bookkeeping_follows_algorithm_1():
    with jax.enable_x64(True):
        rng = np.random.default_rng(0)
        steps, n = 300, 6
        hidden = rng.normal(size=(steps, n))
        outgoing = rng.normal(size=(steps, 3, n))
        rho, eta, m = 0.02, 0.9, 5
        cbp = ContinualBackprop(rho, eta, m).init((n,), jax.random.key(0), jnp.float64)

        def step(cbp, hw):
            cbp, masks = cbp.select((hw[0],), (hw[1],))
            return cbp, masks[0]

        cbp, masks = jax.lax.scan(step, cbp, (jnp.asarray(hidden), jnp.asarray(outgoing)))
        u, a, expected = _reference(hidden, outgoing, rho, eta, m)
        assert expected.sum() > 5  # replacements happen
        np.testing.assert_array_equal(masks, expected)
        np.testing.assert_allclose(cbp.utility[0], u, rtol=1e-12)
        np.testing.assert_array_equal(cbp.age[0], a)


def test_ages_saturate_and_mature_units_stay_mature_past_2_31():
    """Ages started 3 steps short of 2**31 - 1, stepped 20 times: the same
    replacements as the reference's unbounded ages (a wrapped int32 age is negative,
    so no unit was ever mature again), and ages never above 2**31 - 1."""
    rng = np.random.default_rng(1)
    steps, n, start = 20, 6, 2**31 - 4
    hidden = rng.normal(size=(steps, n)).astype(np.float32)
    outgoing = rng.normal(size=(steps, 3, n)).astype(np.float32)
    cbp = ContinualBackprop(0.05, 0.9, 100).init((n,), jax.random.key(0))
    cbp = eqx.tree_at(lambda c: c.age, cbp, (jnp.full(n, start, jnp.int32),))

    def step(cbp, hw):
        cbp, masks = cbp.select((hw[0],), (hw[1],))
        return cbp, (masks[0], cbp.age[0])

    cbp, (masks, ages) = jax.lax.scan(step, cbp, (jnp.asarray(hidden), jnp.asarray(outgoing)))
    _, _, expected = _reference(hidden, outgoing, 0.05, 0.9, 100, age=start)
    assert expected[3:].sum() >= 3  # replacements go on after the ages reach 2**31 - 1
    np.testing.assert_array_equal(masks, expected)
    # a unit never replaced has the largest age; a replaced one counts from 0 again
    never = ~expected.any(0)
    assert never.any()
    np.testing.assert_array_equal(np.asarray(ages)[-1, never], 2**31 - 1)
    assert np.asarray(ages).min() >= 0


def test_maturity_threshold_below_the_largest_age():
    ContinualBackprop(maturity_threshold=2**31 - 2)
    with pytest.raises(ValueError, match="maturity_threshold"):
        ContinualBackprop(maturity_threshold=2**31 - 1)


@pytest.mark.slow
def test_replaced_units_are_fresh_and_silent():
    network_key, cbp_key = jax.random.split(jax.random.key(0))
    learner = MultiHeadLearner(
        MLP(3, 2, (8, 8), key=network_key),
        aeo.idbd(meta_step_size=0.01),
        key=cbp_key,
        unit_reset=ContinualBackprop(0.5, 0.9, 2),
    )
    update = eqx.filter_jit(lambda learner, x, y: learner.update(x, y))
    x, y = jnp.array([1.0, -1.0, 0.5]), jnp.array([1.0, 2.0])
    for _ in range(3):
        before = learner
        learner, _ = update(learner, x, y)
    ages = learner.unit_reset.age
    replaced = [np.asarray(a) == 0 for a in ages]
    assert any(r.any() for r in replaced)
    layers = learner.model.layers
    for i, r in enumerate(replaced):
        # outgoing weights of replaced units are 0 (next layer, or the heads)
        np.testing.assert_array_equal(np.asarray(layers[i + 1].weight)[:, r], 0)
        # their incoming weights changed (re-drawn), and their IDBD state is initial
        assert not np.allclose(np.asarray(layers[i].weight)[r], before.model.layers[i].weight[r])
        step = np.asarray(learner.trunk_state.step_size[i].weight)[r]
        np.testing.assert_allclose(step, 0.01, rtol=1e-6)
        trace = np.asarray(learner.trunk_state.meta_trace[i].weight)[r]
        np.testing.assert_array_equal(trace, 0)


def test_bad_hyperparameters():
    with pytest.raises(ValueError, match="decay_rate"):
        ContinualBackprop(decay_rate=1.0)
    with pytest.raises(ValueError, match="replacement_rate"):
        ContinualBackprop(replacement_rate=-1.0)
    with pytest.raises(ValueError, match="unit_reset needs hidden units"):
        MultiHeadLearner(
            MLP(3, 1, (), key=jax.random.key(0)),
            optax.sgd(0.1),
            key=jax.random.key(1),
            unit_reset=ContinualBackprop(),
        )
    with pytest.raises(ValueError, match="unit_reset draws new units: pass key="):
        MultiHeadLearner(
            MLP(3, 1, (4,), key=jax.random.key(0)),
            optax.sgd(0.1),
            unit_reset=ContinualBackprop(),
        )
