"""The MinAtar network and sparse initialisation of whole networks (alberta_eqx.nn)
against float64 NumPy transcriptions of the authors' layers."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.nn import MLP, MinAtarNetwork, sparse_network
from tests._reference.minatar import minatar_network, sparse_zero_count_conv
from tests._reference.obgd import sparse_zero_count


def _weights(net):
    return [
        np.asarray(a, np.float64).reshape(a.shape)
        for a in (
            net.conv.weight,
            np.ravel(net.conv.bias),
            net.hidden.weight,
            net.hidden.bias,
            net.output.weight,
            net.output.bias,
        )
    ]


@pytest.mark.slow
def test_minatar_network_equals_the_authors_layers_in_float64(x64):
    # a non-square observation and small layers: every index is tested, and cheaply
    shape = (6, 5, 3)
    net = MinAtarNetwork(
        shape, 4, key=jax.random.key(0), hidden_size=8, channels=5, dtype=jnp.float64
    )
    # non-zero biases, so that their placement is tested too
    net = eqx.tree_at(
        lambda n: (n.conv.bias, n.hidden.bias),
        net,
        (
            jnp.asarray(np.random.default_rng(1).normal(size=(5, 1, 1))),
            jnp.asarray(np.random.default_rng(2).normal(size=8)),
        ),
    )
    rng = np.random.default_rng(0)
    # a MinAtar observation: a few cells on, then normalised, as the wrapper gives it
    observation = (rng.uniform(size=shape) < 0.2) + 0.3 * rng.normal(size=shape)
    call = eqx.filter_jit(lambda net, x: net(x))
    got = np.asarray(call(net, jnp.asarray(observation)))
    want = minatar_network(*_weights(net), observation)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)
    # the flattened observation gives the same output
    np.testing.assert_allclose(call(net, jnp.ravel(jnp.asarray(observation))), got, rtol=1e-12)
    # the authors' sizes: 16 channels of 8 x 8 into 128 units, and a scalar output
    scalar = MinAtarNetwork((10, 10, 7), "scalar", key=jax.random.key(3))
    assert scalar.conv.weight.shape == (16, 7, 3, 3)
    assert scalar.hidden.weight.shape == (128, 16 * 8 * 8)
    assert jax.eval_shape(scalar, jnp.ones((10, 10, 7))).shape == ()


@pytest.mark.slow
def test_sparse_network_zeroes_the_stated_fraction_per_output_unit():
    net = MinAtarNetwork((10, 10, 6), 5, key=jax.random.key(0))
    sparse = eqx.filter_jit(sparse_network)(net, key=jax.random.key(1), sparsity=0.9)
    conv = np.asarray(sparse.conv.weight).reshape(16, -1)
    np.testing.assert_array_equal(np.sum(conv == 0, 1), sparse_zero_count_conv(6, 3, 0.9))
    for layer, fan_in in ((sparse.hidden, 1024), (sparse.output, 128)):
        w = np.asarray(layer.weight)
        np.testing.assert_array_equal(np.sum(w == 0, 1), sparse_zero_count(fan_in, 0.9))
        assert np.all(np.abs(w) <= 1 / np.sqrt(fan_in))
    assert np.all(np.abs(conv) <= 1 / np.sqrt(6 * 9))
    for bias in (sparse.conv.bias, sparse.hidden.bias, sparse.output.bias):
        np.testing.assert_array_equal(bias, 0.0)
    # the zeroed inputs differ between output units, and the layers get their own keys
    assert len({tuple(row) for row in conv == 0}) > 1
    # an MLP's layers are all re-drawn (the authors' initialize_weights), the rest kept
    mlp = eqx.filter_jit(sparse_network)(
        MLP(20, 2, (10,), key=jax.random.key(0)), key=jax.random.key(1)
    )
    np.testing.assert_array_equal(np.sum(np.asarray(mlp.layers[0].weight) == 0, 1), 18)
    assert mlp.norms is not None and mlp.hidden_sizes == (10,)


def test_bad_network_arguments_are_named():
    with pytest.raises(ValueError, match="in_shape"):
        MinAtarNetwork((10, 10), 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="kernel_size"):
        MinAtarNetwork((2, 10, 4), 3, key=jax.random.key(0))
    with pytest.raises(ValueError, match="out_size"):
        MinAtarNetwork((10, 10, 4), 0, key=jax.random.key(0))
    with pytest.raises(ValueError, match="sparsity"):
        sparse_network(MLP(2, 1, (), key=jax.random.key(0)), key=jax.random.key(0), sparsity=1.0)
    with pytest.raises(ValueError, match="network must hold"):
        sparse_network(eqx.nn.Lambda(jnp.tanh), key=jax.random.key(0))
