"""Tile coding against a transcription of Sutton's `tiles3` (`reference_tiles.py`)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from reference_tiles import IHT, tiles

from alberta_eqx.streams.tiles import TileCoder, python_tuple_hash_mod


def _scaled(x, scale):
    """The floats tiles3 receives: the inputs times the scale, in float32 as the coder
    computes them (exact when multiplied by a power-of-two number of tilings)."""
    return [float(v) for v in np.float32(x) * np.float32(scale)]


@pytest.mark.parametrize("num_tilings", [1, 2, 4, 8, 16])
@pytest.mark.parametrize("size", [7, 4096, 2**31 - 1])
def test_hashed_indices_equal_tiles3(num_tilings, size):
    rng = np.random.default_rng(num_tilings * 7 + size)
    scale = np.array([0.5, 4.0, 1.0], np.float32)
    coder = TileCoder(num_tilings, scale, size, int_sizes=(3,))
    indices = jax.jit(jax.vmap(coder.indices))
    x = rng.uniform(-20, 20, (200, 3)).astype(np.float32)
    a = rng.integers(-2, 3, (200, 1))
    got = np.asarray(indices(x, a))
    want = [
        tiles(size, num_tilings, _scaled(xi, scale), [int(ai[0])])
        for xi, ai in zip(x, a, strict=True)
    ]
    np.testing.assert_array_equal(got, np.asarray(want))


def test_python_tuple_hash_on_extreme_integers():
    rng = np.random.default_rng(0)
    tuples = rng.integers(-(2**31), 2**31, (300, 4))
    tuples[:5] = [[-1, -1, -1, -1], [0, 0, 0, 0], [-2, -1, 0, 1], [2**31 - 1] * 4, [-(2**31)] * 4]
    for modulus in (1, 2, 1000003, 2**31 - 1):
        got = np.asarray(python_tuple_hash_mod(jnp.asarray(tuples, jnp.int32), modulus))
        want = [hash(tuple(int(v) for v in t)) % modulus for t in tuples]
        np.testing.assert_array_equal(got, want)


def test_dense_indices_relabel_the_index_hash_table():
    """The dense numbering and tiles3 with an IHT large enough never to fill are one
    relabelling of the other: equal tuples get equal indices, different tuples
    different ones, in both."""
    low, high = np.array([-1.2, -0.07]), np.array([0.5, 0.07])
    scale = 8 / (high - low)  # the book's Mountain Car tiling
    coder = TileCoder(8, scale, low=low, high=high, int_sizes=(3,))
    rng = np.random.default_rng(1)
    x = rng.uniform(low, high, (2000, 2)).astype(np.float32)
    x[:4] = [low, high, [low[0], high[1]], [high[0], low[1]]]
    a = rng.integers(0, 3, (2000, 1))
    got = np.asarray(jax.jit(jax.vmap(coder.indices))(x, a))
    iht = IHT(coder.size)
    want = np.asarray(
        [tiles(iht, 8, _scaled(xi, scale), [int(ai[0])]) for xi, ai in zip(x, a, strict=True)]
    )
    assert iht.overfull == 0
    assert got.min() >= 0 and got.max() < coder.size
    relabel = {}
    for g, w in zip(got.ravel(), want.ravel(), strict=True):
        assert relabel.setdefault(g, w) == w
    assert len(set(relabel.values())) == len(relabel)  # one-to-one
    # the book's IHT(4096) never fills on this tiling, so the book's indices are a
    # relabelling of ours too
    assert len(iht.dictionary) < 4096 and coder.size < 4096


def test_features_are_binary_with_one_tile_per_tiling():
    coder = TileCoder(8, [4.0, 4.0], low=[0, 0], high=[1, 1])
    phi = coder.features(jnp.array([0.3, 0.7]))
    assert phi.shape == (coder.size,) and float(phi.sum()) == 8
    # nearby inputs share most tiles, distant ones none
    near = coder.features(jnp.array([0.31, 0.71]))
    far = coder.features(jnp.array([0.9, 0.1]))
    assert float(phi @ near) >= 6 and float(phi @ far) == 0


@pytest.mark.parametrize("bad", [0, -1])
def test_fewer_than_one_tiling_is_refused(bad):
    with pytest.raises(ValueError, match="num_tilings"):
        TileCoder(bad, [1.0], 64)


def test_other_bad_arguments_are_named():
    with pytest.raises(TypeError, match="num_tilings"):
        TileCoder(2.5, [1.0], 64)
    with pytest.raises(ValueError, match="scale"):
        TileCoder(4, [0.0], 64)
    with pytest.raises(ValueError, match="size"):
        TileCoder(4, [1.0], 0)
    with pytest.raises(ValueError, match="low and high"):
        TileCoder(4, [1.0])
    with pytest.raises(ValueError, match="x must have shape"):
        TileCoder(4, [1.0, 1.0], 64).indices(jnp.zeros(3))
