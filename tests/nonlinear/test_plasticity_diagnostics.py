"""Plasticity diagnostics on known cases and against NumPy formulas."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx import nn
from alberta_eqx.nonlinear import (
    dormant_fraction,
    effective_rank,
    plasticity_diagnostics,
    srank,
    stable_rank,
    weight_norm,
)

# float64 for the whole module (the fixture is in tests/conftest.py)
pytestmark = pytest.mark.usefixtures("x64_module")


def _features(seed=0, b=40, h=12):
    """ReLU features with two dead units and unequal scales."""
    rng = np.random.default_rng(seed)
    f = np.maximum(rng.normal(size=(b, h)) * rng.uniform(0.1, 3.0, size=h), 0)
    f[:, [2, 7]] = 0
    return f


def _np_dormant(f, tau):
    s = np.abs(f).mean(0)
    return np.mean(s / s.mean() <= tau)


def _np_erank(m):
    s = np.linalg.svd(m, compute_uv=False)
    p = s / s.sum()
    p = p[p > 0]
    return np.exp(-(p * np.log(p)).sum())


def _np_srank(m, delta):
    s = np.linalg.svd(m, compute_uv=False)
    c = np.cumsum(s) / s.sum()
    return int(np.argmax(c >= 1 - delta)) + 1


def test_against_numpy_formulas():
    f = _features()
    for tau in (0.0, 0.1, 0.5):
        assert float(dormant_fraction(jnp.asarray(f), tau)) == pytest.approx(_np_dormant(f, tau))
    assert float(dormant_fraction(jnp.asarray(f), 0.0)) == pytest.approx(2 / 12)
    assert float(effective_rank(jnp.asarray(f))) == pytest.approx(_np_erank(f), rel=1e-10)
    for delta in (0.01, 0.1, 0.3):
        assert float(srank(jnp.asarray(f), delta)) == _np_srank(f, delta)
    w = np.random.default_rng(1).normal(size=(7, 5))
    s = np.linalg.svd(w, compute_uv=False)
    assert float(stable_rank(jnp.asarray(w))) == pytest.approx((s**2).sum() / s[0] ** 2)
    tree = {"a": jnp.asarray(w), "b": jnp.ones(3), "c": "not an array"}
    assert float(weight_norm(tree)) == pytest.approx(np.sqrt((w**2).sum() + 3))


def test_identity_and_zero_matrices():
    eye = jnp.eye(5)
    assert float(stable_rank(eye)) == pytest.approx(5)
    assert float(effective_rank(eye)) == pytest.approx(5)
    assert float(srank(eye, 0.01)) == 5
    zero = jnp.zeros((6, 4))
    assert float(dormant_fraction(zero)) == 1
    assert float(effective_rank(zero)) == 0
    assert float(srank(zero)) == 0
    assert float(stable_rank(zero)) == 0
    # Rank one: effective rank 1, srank 1.
    one = jnp.outer(jnp.arange(1.0, 5.0), jnp.ones(3))
    assert float(effective_rank(one)) == pytest.approx(1)
    assert float(srank(one)) == 1


def test_a_network_whose_units_are_all_dead():
    model = nn.MLP(
        4, "scalar", (8, 6), key=jax.random.key(0), activation=jax.nn.relu, layer_norm=False
    )
    probe = jax.random.normal(jax.random.key(1), (32, 4))
    diagnose = eqx.filter_jit(plasticity_diagnostics)  # one program for both networks
    alive = diagnose(model, probe)
    assert all(float(d) < 1 for d in alive.dormant_fraction)
    assert all(float(r) > 1 for r in alive.effective_rank)
    # Biases of -100: every ReLU unit is silent on this probe.
    dead = eqx.tree_at(
        lambda m: (m.layers[0].bias, m.layers[1].bias),
        model,
        (jnp.full(8, -100.0), jnp.full(6, -100.0)),
    )
    diag = diagnose(dead, probe)
    assert [float(d) for d in diag.dormant_fraction] == [1.0, 1.0]
    assert [float(r) for r in diag.effective_rank] == [0.0, 0.0]
    assert [float(r) for r in diag.srank] == [0.0, 0.0]
    assert len(diag.stable_rank) == 3
    leaves = jax.tree.leaves(eqx.filter(dead, eqx.is_inexact_array))
    assert float(diag.weight_norm) == pytest.approx(
        np.sqrt(sum((np.asarray(p) ** 2).sum() for p in leaves))
    )


def test_bad_arguments_are_refused_by_name():
    with pytest.raises(ValueError, match="tau"):
        dormant_fraction(jnp.zeros((2, 2)), -0.1)
    with pytest.raises(ValueError, match="delta"):
        srank(jnp.zeros((2, 2)), 1.0)
    with pytest.raises(TypeError, match="model"):
        plasticity_diagnostics(object(), jnp.zeros((2, 2)))  # type: ignore[arg-type]
