"""Sparse initialisation and the streaming MLP (alberta_eqx.nn)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.nn import MLP, sparse_init, sparse_linear
from tests._compiled import compiled
from tests._reference.obgd import sparse_zero_count


@pytest.mark.parametrize(("fan_in", "sparsity"), [(10, 0.9), (7, 0.5), (64, 0.9), (5, 0.0)])
def test_sparse_init_zeroes_the_count_per_unit_and_draws_lecun_uniform(fan_in, sparsity):
    w = compiled(sparse_init, jax.random.key(0), (300, fan_in), sparsity)
    zeros_per_row = np.sum(np.asarray(w) == 0, axis=1)
    np.testing.assert_array_equal(zeros_per_row, sparse_zero_count(fan_in, sparsity))
    bound = 1 / np.sqrt(fan_in)
    nonzero = np.asarray(w)[np.asarray(w) != 0]
    assert np.all(np.abs(nonzero) <= bound)
    # uniform on (-bound, bound): mean 0, variance bound^2 / 3
    np.testing.assert_allclose(np.var(nonzero), bound**2 / 3, rtol=0.15)
    # the zeroed positions differ from unit to unit
    if sparsity > 0:
        assert len({tuple(row) for row in (np.asarray(w) == 0)}) > 1


def test_sparse_linear_keeps_shape_and_dtype_and_zeroes_the_bias():
    with jax.enable_x64(True):
        linear = compiled(eqx.nn.Linear, 20, 4, dtype=jnp.float64, key=jax.random.key(0))
        sparse = compiled(sparse_linear, linear, key=jax.random.key(1), sparsity=0.9)
        assert sparse.weight.shape == (4, 20) and sparse.weight.dtype == jnp.float64
        np.testing.assert_array_equal(sparse.bias, 0.0)
        np.testing.assert_array_equal(np.sum(np.asarray(sparse.weight) == 0, axis=1), 18)
    no_bias = compiled(eqx.nn.Linear, 3, 2, use_bias=False, key=jax.random.key(0))
    assert compiled(sparse_linear, no_bias, key=jax.random.key(1)).bias is None


def test_mlp_without_options_equals_eqx_mlp():
    ours = compiled(
        MLP, 3, "scalar", (5, 5), key=jax.random.key(2), activation=jax.nn.relu, layer_norm=False
    )
    theirs = compiled(eqx.nn.MLP, 3, "scalar", 5, 2, key=jax.random.key(2))
    x = jnp.array([0.3, -1.0, 2.0])
    np.testing.assert_allclose(compiled(ours, x), compiled(theirs, x), rtol=1e-6)
    for a, b in zip(ours.layers, theirs.layers, strict=True):
        np.testing.assert_array_equal(a.weight, b.weight)


def test_mlp_forward_follows_the_architecture():
    """[Linear -> parameterless LayerNorm -> LeakyReLU] per hidden layer, widths of
    any lengths, then a linear output; written out in NumPy."""
    mlp = compiled(MLP, 4, 3, (6, 2, 5), key=jax.random.key(0), sparsity=0.5)
    x = np.array([0.5, -1.0, 2.0, 0.1])
    h = x
    hidden = []
    for layer in mlp.layers[:-1]:
        a = np.asarray(layer.weight) @ h + np.asarray(layer.bias)
        a = (a - a.mean()) / np.sqrt(a.var() + 1e-5)
        h = np.where(a >= 0, a, 0.01 * a)
        hidden.append(h)
    out = np.asarray(mlp.layers[-1].weight) @ h + np.asarray(mlp.layers[-1].bias)
    y, activations = compiled(mlp.forward, jnp.asarray(x))
    np.testing.assert_allclose(y, out, rtol=1e-5, atol=1e-6)
    assert [a.shape for a in activations] == [(6,), (2,), (5,)]
    for a, b in zip(activations, hidden, strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert compiled(mlp, jnp.asarray(x)).shape == (3,)
    # LayerNorm has no parameters: only the linear layers hold arrays
    assert len(jax.tree.leaves(eqx.filter(mlp, eqx.is_array))) == 2 * 4
    for layer in mlp.layers:
        np.testing.assert_array_equal(layer.bias, 0.0)


def test_linear_model_and_scalar_output():
    mlp = compiled(MLP, 3, "scalar", (), key=jax.random.key(0))
    assert len(mlp.layers) == 1 and compiled(mlp, np.ones(3, np.float32)).shape == ()
    assert compiled(mlp.forward, np.ones(3, np.float32))[1] == ()


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        sparse_init(jax.random.key(0), (2, 3), sparsity=1.0)
    with pytest.raises(ValueError, match=r"sparsity must be in \[0, 1\)"):
        MLP(3, "scalar", (4,), key=jax.random.key(0), sparsity=-0.1)
    with pytest.raises(ValueError, match="hidden_sizes must be >= 1"):
        MLP(3, "scalar", (4, 0), key=jax.random.key(0))
    with pytest.raises(ValueError, match="in_size must be >= 1"):
        MLP(0, "scalar", (4,), key=jax.random.key(0))
    with pytest.raises(TypeError, match="linear"):
        sparse_linear(jnp.ones((2, 2)), key=jax.random.key(0))
