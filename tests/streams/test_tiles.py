"""Tile coding against a transcription of Sutton's `tiles3` (`tests/_reference/tiles.py`)."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from alberta_eqx.streams.tiles import TileCoder, python_tuple_hash_mod
from tests._reference.tiles import IHT, tiles


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


@pytest.mark.parametrize("length", [1, 9, 100])
def test_python_tuple_hash_of_long_tuples(length):
    """Tuples shorter and longer than the hash loop's unrolling (8), up to the 100
    distractors of bsuite's umbrella_distract."""
    rng = np.random.default_rng(length)
    tuples = rng.integers(-(2**31), 2**31, (50, length))
    got = np.asarray(python_tuple_hash_mod(jnp.asarray(tuples, jnp.int32), 2**31 - 1))
    want = [hash(tuple(int(v) for v in t)) % (2**31 - 1) for t in tuples]
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


# Coordinates are int32: floor(x * scale * T) + (2j + 1)(T - 1) must fit (input j).
def _largest_exact(j, num_tilings):
    """The largest float32 `v = x_j * scale_j * T` whose coordinate fits in an int32."""
    bound = 2**31 - 1 - (2 * j + 1) * (num_tilings - 1)
    v = np.float32(bound)
    return v if float(v) <= bound else np.nextafter(v, np.float32(-np.inf))


_jitted = eqx.filter_jit(lambda coder, x: coder.indices(x))


def test_the_extreme_exact_inputs_equal_tiles3_and_beyond_them_are_refused():
    coder = TileCoder(8, [1.0, 1.0], 2**20)
    high = np.array([_largest_exact(j, 8) for j in range(2)]) / np.float32(8)
    for x in (high, np.full(2, -(2.0**28), np.float32)):  # -2**28 * 8 = -2**31
        want = tiles(2**20, 8, _scaled(x, [1.0, 1.0]))
        np.testing.assert_array_equal(coder.indices(jnp.asarray(x)), want)
        np.testing.assert_array_equal(_jitted(coder, jnp.asarray(x)), want)
    above = high.copy()
    above[1] = np.nextafter(above[1], np.float32(np.inf))
    below = np.array([np.nextafter(np.float32(-(2.0**28)), np.float32(-np.inf)), 0], np.float32)
    # 1e12 and 5e12 shared every tile when the int32 conversion saturated
    for x in (above, below, [1e12, 0.0], [5e12, 0.0]):
        with pytest.raises(ValueError, match=r"x must be finite, with x \* scale"):
            coder.indices(jnp.asarray(x, jnp.float32))
        with pytest.raises(Exception, match=r"x must be finite, with x \* scale"):
            jax.block_until_ready(_jitted(coder, jnp.asarray(x, jnp.float32)))


@pytest.mark.parametrize("hashed", [True, False], ids=["hashed", "dense"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_nan_and_inf_are_refused(hashed, bad):
    """tiles3 raises on them; the dense numbering clipped inf into the box."""
    coder = (
        TileCoder(4, [2.0, 2.0], 64)
        if hashed
        else TileCoder(4, [2.0, 2.0], low=[0, 0], high=[1, 1])
    )
    x = jnp.asarray([0.5, bad])
    with pytest.raises((ValueError, OverflowError)):
        tiles(64, 4, [1.0, float(bad) * 2])
    with pytest.raises(ValueError, match="x must be finite"):
        coder.indices(x)
    with pytest.raises(Exception, match="x must be finite"):
        jax.block_until_ready(_jitted(coder, x))


def test_what_int32_cannot_number_is_refused_naming_the_argument():
    # 8 tilings x 30,001^2 cells: 7.2e9 tiles, past int32 indices
    with pytest.raises(ValueError, match="size: the dense numbering needs 7200"):
        TileCoder(8, [1.0, 1.0], low=[0, 0], high=[3e4, 3e4])
    with pytest.raises(ValueError, match="low and high must keep"):
        TileCoder(8, [1.0], low=[1e12], high=[1e12 + 2e6])
    with pytest.raises(ValueError, match="ints must lie within int32"):
        TileCoder(8, [1.0], 64, int_sizes=(3,)).indices(jnp.zeros(1), np.array([2**40]))
