"""Tile coding (Sutton and Barto 2018, section 9.5.4), as Sutton's `tiles3` computes it,
compiled and vectorised.

`tiles3` quantises the (already scaled) inputs `s` once, `q_i = floor(s_i T)` for `T`
tilings, and for tiling `t` takes the coordinates

    (t, (q_1 + t) // T, (q_2 + 3t) // T, (q_3 + 5t) // T, ..., int_1, int_2, ...)

so the tilings are offset from one another by `1/T` of a tile in the asymmetric
directions `(1, 3, 5, ...)` the book recommends; the integer inputs (an action, say)
are appended unchanged. It then turns each tuple of coordinates into an index:

- `tiles(size: int, ...)`: `hash(coordinates) % size`, Python's tuple hash. This module
  computes the same hash (CPython's xxHash-based `tuplehash` over 64-bit integers)
  in 32-bit JAX arithmetic, so `TileCoder(..., size=n)` gives exactly `tiles3`'s
  indices, collisions included.
- `tiles(IHT(size), ...)`: an index hash table numbers the tuples in order of first
  appearance, without collisions until it is full (the book's Mountain Car code,
  `IHT(4096)`). The table is mutable Python state; `TileCoder(..., size=None)` gives
  collision-free indices directly, by numbering the coordinates of the bounded input
  box densely. On any inputs the two are one relabelling of the other, and a linear
  learner whose weights start equal learns identically under either.
"""

import math
from collections.abc import Sequence

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, ArrayLike, Float, Int

from alberta_eqx import _checks

# CPython's tuplehash constants (Objects/tupleobject.c, 64-bit Py_uhash_t)
_XXPRIME_1 = 0x9E3779B185EBCA87
_XXPRIME_2 = 0xC2B2AE3D27D4EB4F
_XXPRIME_5 = 0x27D4EB2F165667C5
_MASK32 = 0xFFFFFFFF
_UNROLL = 8  # coordinates per iteration of the hash's loop


def _split(value: int) -> tuple[Array, Array]:
    """A 64-bit Python int as `(high, low)` uint32 words."""
    return jnp.uint32(value >> 32 & _MASK32), jnp.uint32(value & _MASK32)


def _mulhi32(a: Array, b: Array) -> Array:
    """The high word of the 64-bit product of two uint32 arrays (16-bit halves)."""
    a0, a1, b0, b1 = a & 0xFFFF, a >> 16, b & 0xFFFF, b >> 16
    p00, p01, p10, p11 = a0 * b0, a0 * b1, a1 * b0, a1 * b1
    middle = (p00 >> 16) + (p01 & 0xFFFF) + (p10 & 0xFFFF)
    return p11 + (p01 >> 16) + (p10 >> 16) + (middle >> 16)


def _mul64(x: tuple[Array, Array], y: tuple[Array, Array]) -> tuple[Array, Array]:
    (xh, xl), (yh, yl) = x, y
    return _mulhi32(xl, yl) + xl * yh + xh * yl, xl * yl


def _add64(x: tuple[Array, Array], y: tuple[Array, Array]) -> tuple[Array, Array]:
    (xh, xl), (yh, yl) = x, y
    low = xl + yl
    return xh + yh + (low < xl).astype(jnp.uint32), low


def _mod64(x: tuple[Array, Array], modulus: int) -> Array:
    """An unsigned 64-bit number modulo `modulus < 2**31`, a bit at a time (the
    remainder stays below 2**31, so doubling it never overflows 32 bits)."""
    high, low = x

    def body(i, r):
        word = jnp.where(i < 32, high, low)
        bit = (word >> (31 - i % 32).astype(jnp.uint32)) & 1
        r = 2 * r + bit
        return jnp.where(r >= modulus, r - modulus, r)

    return jax.lax.fori_loop(0, 64, body, jnp.zeros_like(low))


def python_tuple_hash_mod(coordinates: Int[Array, "... k"], modulus: int) -> Int[Array, "..."]:
    """`hash(tuple(coordinates)) % modulus` as 64-bit CPython computes it, for int32
    coordinates, along the last axis.

    **Arguments:**

    - `coordinates`: integers, the tuple along the last axis.
    - `modulus`: `1 <= modulus < 2**31`.
    """
    coordinates = jnp.asarray(coordinates, jnp.int32)

    def absorb(acc, n):
        # hash(n) = n for small ints, except hash(-1) = -2; sign-extended to 64 bits
        n = jnp.where(n == -1, -2, n)
        lane = (jnp.where(n < 0, jnp.uint32(_MASK32), jnp.uint32(0)), n.astype(jnp.uint32))
        acc = _add64(acc, _mul64(lane, _split(_XXPRIME_2)))
        high, low = acc
        acc = ((high << 31) | (low >> 1), (low << 31) | (high >> 1))  # rotate left 31
        return _mul64(acc, _split(_XXPRIME_1)), None

    start = jax.tree.map(lambda w: jnp.broadcast_to(w, coordinates.shape[:-1]), _split(_XXPRIME_5))
    # a loop, not the coordinates unrolled: unrolled, XLA fuses the chain into one
    # expression whose size doubles with each coordinate (each step reads both words
    # of the last), and past about 60 coordinates a step took 100 times longer
    acc, _ = jax.lax.scan(absorb, start, jnp.moveaxis(coordinates, -1, 0), unroll=_UNROLL)
    length = coordinates.shape[-1]
    acc = _add64(acc, _split(length ^ (_XXPRIME_5 ^ 3527539)))
    high, low = acc
    all_ones = jnp.uint32(_MASK32)
    minus_one = (high == all_ones) & (low == all_ones)
    # -1 is reserved for errors: CPython returns 1546275796 instead
    high = jnp.where(minus_one, jnp.uint32(0), high)
    low = jnp.where(minus_one, jnp.uint32(1546275796), low)
    negative = high >> 31 == 1
    # |h| of a negative (two's complement) hash, and Python's floor modulo
    magnitude = _add64((~high, ~low), (jnp.uint32(0), jnp.uint32(1)))
    r = _mod64(jax.tree.map(lambda a, b: jnp.where(negative, a, b), magnitude, acc), modulus)
    r = jnp.where(negative & (r != 0), modulus - r, r)
    return r.astype(jnp.int32)


def _exact_range(num_tilings: int, dtype: np.dtype, num_inputs: int) -> tuple[float, tuple]:
    """The range of `v = x_j * scale_j * T` (as floats of `dtype`) whose coordinate
    `floor(v) + (2j + 1)(T - 1)` fits in an int32: `[-2**31, high_j]`, `high_j` the
    largest float of `dtype` with `floor(high_j) + (2j + 1)(T - 1) <= 2**31 - 1`."""
    highs = []
    for j in range(num_inputs):
        bound = 2**31 - 1 - (2 * j + 1) * (num_tilings - 1)
        high = np.asarray(bound, dtype)  # rounded to nearest: maybe above the bound
        if float(high) > bound:
            high = np.nextafter(high, np.asarray(-np.inf, dtype))
        highs.append(float(high))
    return -(2.0**31), tuple(highs)


class TileCoder(eqx.Module):
    """Tile coding with `tiles3`'s tilings: `num_tilings` grids over the inputs scaled
    by `scale`, offset asymmetrically; one active tile per tiling.

    `indices(x, ints)` gives the active tiles' indices, `features(x, ints)` the binary
    feature vector of length `size`.

    ```python
    import jax.numpy as jnp
    from alberta_eqx.streams import TileCoder

    # 4 tilings over [0, 1]^2, 4 tiles per unit of each input, numbered densely
    coder = TileCoder(4, [4.0, 4.0], low=[0.0, 0.0], high=[1.0, 1.0])
    x = jnp.array([0.2, 0.7])
    coder.indices(x)  # 4 indices, one active tile per tiling
    coder.features(x).sum()  # about 4: a binary vector of length coder.size
    hashed = TileCoder(8, [8 / 1.7, 8 / 0.14], size=4096)  # tiles3's hashing into 4,096
    ```

    **Arguments:**

    - `num_tilings`: `T >= 1` tilings.
    - `scale`: per input, the number of tiles per unit of that input (the book's Mountain
      Car: `8 / (0.5 + 1.2)` and `8 / (0.07 + 0.07)`); the inputs are multiplied by it
      and tiled as `tiles3` tiles its floats (`x` itself is not shifted).
    - `size`: the index table's size; the indices are `tiles3`'s `hash % size`. `None`
      numbers the tiles densely instead (no hashing, no collisions): then `low` and
      `high` must bound the inputs (inputs outside are clipped into the box) and
      `int_sizes` the integer inputs, and `size` becomes the number of tiles.
    - `low`, `high`: the inputs' bounds, for `size=None`.
    - `int_sizes`: for `size=None`, how many values each integer input takes
      (`0 .. int_sizes[j] - 1`); with hashing, only their count matters.

    The coordinates are int32, so only inputs whose quantised value
    `floor(x_j * scale_j * num_tilings)`, offsets included, fits in an int32 can be
    coded exactly (`tiles3` takes any Python int); other inputs are refused rather
    than given a wrong tile: roughly `|x_j * scale_j * num_tilings| < 2**31`, and
    `x` finite. A concrete `x` that fails raises `ValueError`; under `jax.jit` the
    check is `eqx.error_if` (a runtime error from the compiled program). Integer
    inputs must fit in an int32, and the dense numbering's `size` below `2**31`.
    """

    num_tilings: int = eqx.field(static=True)
    scale: Float[Array, " d"]
    size: int = eqx.field(static=True)
    hashed: bool = eqx.field(static=True)
    int_sizes: tuple[int, ...] = eqx.field(static=True)
    _low: tuple[int, ...] = eqx.field(static=True)
    _widths: tuple[int, ...] = eqx.field(static=True)
    _bounds: tuple[tuple[float, ...], tuple[float, ...]] | None = eqx.field(static=True)
    _limits: tuple[float, tuple[float, ...]] = eqx.field(static=True)

    def __init__(
        self,
        num_tilings: int,
        scale: ArrayLike | Sequence[float | int],
        size: int | None = None,
        *,
        low: ArrayLike | Sequence[float | int] | None = None,
        high: ArrayLike | Sequence[float | int] | None = None,
        int_sizes: Sequence[int] = (),
    ):
        self.num_tilings = _checks.positive_int("num_tilings", num_tilings)
        scale_np = np.atleast_1d(np.asarray(scale, np.float64))
        if scale_np.ndim != 1 or not np.all(np.isfinite(scale_np)) or np.any(scale_np <= 0):
            raise ValueError(f"scale must be finite and > 0 per input, got {scale!r}")
        self.scale = jnp.asarray(scale_np, _checks.default_float())
        self.int_sizes = tuple(
            _checks.positive_int(f"int_sizes[{j}]", n) for j, n in enumerate(int_sizes)
        )
        self._limits = _exact_range(self.num_tilings, np.dtype(self.scale.dtype), scale_np.size)
        self.hashed = size is not None
        if size is not None:
            size = _checks.positive_int("size", size)
            if size >= 2**31:
                raise ValueError(f"size must be < 2**31, got {size}")
            if low is not None or high is not None:
                raise ValueError(
                    "low and high bound the dense numbering: give them with size=None"
                )
            self.size, self._low, self._widths, self._bounds = size, (), (), None
            return
        if low is None or high is None:
            raise ValueError("size=None numbers the tiles densely and needs low and high")
        low_np, high_np = np.asarray(low, np.float64), np.asarray(high, np.float64)
        if low_np.shape != scale_np.shape or high_np.shape != scale_np.shape:
            raise ValueError(
                f"low and high must have one value per input ({scale_np.shape[0]}), got "
                f"{low_np.shape} and {high_np.shape}"
            )
        if not np.all(low_np < high_np):
            raise ValueError(f"low must be < high in every input, got {low} and {high}")
        T = self.num_tilings
        scaled = [
            np.asarray(b, self.scale.dtype) * np.asarray(scale_np, self.scale.dtype) * T
            for b in (low_np, high_np)
        ]
        if not (np.all(scaled[0] >= self._limits[0]) and np.all(scaled[1] <= self._limits[1])):
            raise ValueError(
                f"low and high must keep low * scale * num_tilings and high * scale * "
                f"num_tilings within int32's range (about +-2**31), got {low} and {high}"
            )
        # the coordinate (q_i + (2i + 1) t) // T over q_i in [floor(low s T), floor(high s T)]
        # and t in [0, T)
        q_low = np.floor(low_np * scale_np * T).astype(np.int64)
        q_high = np.floor(high_np * scale_np * T).astype(np.int64)
        reach = (T - 1) * (2 * np.arange(scale_np.shape[0]) + 1)
        c_low, c_high = q_low // T, (q_high + reach) // T
        self._low = tuple(int(c) for c in c_low)
        self._widths = tuple(int(w) for w in c_high - c_low + 1)
        self._bounds = (tuple(low_np.tolist()), tuple(high_np.tolist()))
        self.size = T * math.prod(self._widths) * math.prod(self.int_sizes)
        if self.size >= 2**31:  # the indices are int32
            raise ValueError(
                f"size: the dense numbering needs {self.size} tiles, more than an int32 "
                f"index holds (2**31 - 1): use fewer tilings, a coarser scale, a smaller "
                f"box (low, high), or hashing (give size)"
            )

    def config_arguments(self) -> dict:
        """The constructor's arguments that are not fields (`alberta_eqx.config`)."""
        low, high = (None, None) if self._bounds is None else self._bounds
        return {"size": self.size if self.hashed else None, "low": low, "high": high}

    @property
    def num_inputs(self) -> int:
        """How many real inputs the coder tiles."""
        return self.scale.shape[0]

    def coordinates(
        self, x: Float[ArrayLike, " d"], ints: ArrayLike | Sequence[int] = ()
    ) -> Int[Array, "T k"]:
        """`tiles3`'s coordinates, one row per tiling: `(t, c_1, ..., c_d, ints...)`."""
        x = self._inputs(x)
        T = self.num_tilings
        q = jnp.floor(self._scaled(x)).astype(jnp.int32)
        t = jnp.arange(T, dtype=jnp.int32)[:, None]
        offsets = t * (2 * jnp.arange(q.shape[0], dtype=jnp.int32) + 1)  # (1, 3, 5, ...) t
        columns = [t, (q + offsets) // T]
        given = None if _checks.is_traced(ints) else np.asarray(ints)
        if given is not None and not np.all((given >= -(2**31)) & (given < 2**31)):
            raise ValueError(f"ints must lie within int32's range, got {ints!r}")
        ints = jnp.asarray(ints, jnp.int32).reshape(-1)
        if ints.shape[0] != len(self.int_sizes) and not self.hashed:
            raise ValueError(f"ints must hold {len(self.int_sizes)} values, got {ints.shape[0]}")
        if ints.shape[0]:
            columns.append(jnp.broadcast_to(ints, (T, ints.shape[0])))
        return jnp.concatenate(columns, axis=1)

    def indices(
        self, x: Float[ArrayLike, " d"], ints: ArrayLike | Sequence[int] = ()
    ) -> Int[Array, " T"]:
        """The active tile of every tiling, an index in `[0, size)`.

        **Arguments:**

        - `x`: the real inputs, shape `(num_inputs,)`, unscaled.
        - `ints`: integer inputs tiled as they are (an action, for example).
        """
        coordinates = self.coordinates(x, ints)
        if self.hashed:
            return python_tuple_hash_mod(coordinates, self.size)
        d = self.num_inputs
        cells = coordinates[:, 1 : 1 + d] - jnp.asarray(self._low, jnp.int32)
        index = coordinates[:, 0]
        for j, width in enumerate(self._widths):
            index = index * width + jnp.clip(cells[:, j], 0, width - 1)
        for j, width in enumerate(self.int_sizes):
            index = index * width + jnp.clip(coordinates[:, 1 + d + j], 0, width - 1)
        return index

    def features(
        self, x: Float[ArrayLike, " d"], ints: ArrayLike | Sequence[int] = ()
    ) -> Float[Array, " size"]:
        """The binary feature vector: 1 at each active tile (collisions count once)."""
        indices = self.indices(x, ints)
        return jnp.zeros(self.size, self.scale.dtype).at[indices].set(1)

    def _scaled(self, x: Float[Array, " d"]) -> Float[Array, " d"]:
        """`x * scale * T`, the value `tiles3` quantises."""
        return x * self.scale * self.num_tilings

    def _inputs(self, x: ArrayLike) -> Float[Array, " d"]:
        """`x` checked, cast to the coder's dtype and, with the dense numbering,
        clipped into the box."""
        x = jnp.asarray(x)
        if x.shape != (self.num_inputs,):
            raise ValueError(f"x must have shape ({self.num_inputs},), got {x.shape}")
        x = x.astype(self.scale.dtype)  # a value that overflows the cast is inf: refused
        low, high = self._limits
        bad = ~jnp.isfinite(x)  # before the dense numbering's clipping hides an inf
        if self._bounds is None:  # (inside the box, the range holds: see __init__)
            v = self._scaled(x)
            bad = bad | (v < low) | (v > jnp.asarray(high, x.dtype))
        message = (
            f"x must be finite, with x * scale * num_tilings within int32's range "
            f"[-2**31, {min(high):.0f}] for exact tile coordinates"
        )
        concrete = _checks._concrete(x)
        if concrete is not None:
            if np.any(np.asarray(bad)):
                raise ValueError(f"{message}, got x={concrete.tolist()}")
        else:
            x = jnp.asarray(eqx.error_if(x, jnp.any(bad), message))
        if self._bounds is not None:
            x = jnp.clip(
                x, jnp.asarray(self._bounds[0], x.dtype), jnp.asarray(self._bounds[1], x.dtype)
            )
        return x
