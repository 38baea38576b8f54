"""The streams' shared randomness (private): per-step normal draws, chunk-wide
cumulative sums, and piecewise-constant segment draws.

Every helper is a function of the step keys `fold_in(key, t)` alone, so a step's
numbers do not depend on how the steps were grouped into chunks.
"""

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32
from jaxtyping import Array, Float

from alberta_eqx._checks import default_float

# Wide draws are generated `_DRAWS_PER_BATCH` numbers per iteration of a loop: one
# `vmap` over a whole chunk of wide draws measured up to 3x slower on JAX 0.12's CPU
# backend. Narrow draws vectorise well in one `vmap`, which also compiles in half
# the time of the loop.
_DRAWS_PER_BATCH = 1 << 15
_NARROW = 64


def per_step(draw, keys, size: int):
    """`draw(key)` for every step's key, stacked; `size` is the draw's width."""
    n = keys.shape[0]
    # At least one draw per iteration: a draw wider than `_DRAWS_PER_BATCH` (a
    # `DriftingTargetStream(16384)` step draws 32,769 normals) is one step per iteration.
    target = max(1, _DRAWS_PER_BATCH // size)
    if size < _NARROW or target >= n:
        return jax.vmap(draw)(keys)
    # A batch that divides the chunk avoids `lax.map`'s remainder, a second compiled
    # copy of the draw (1 always divides it).
    batch = max(d for d in range(1, target + 1) if n % d == 0)
    return jax.lax.map(draw, keys, batch_size=batch if 4 * batch >= target else target)


def cumsum(a: Array) -> Array:
    """The cumulative sum over a chunk's steps (the leading axis). For wide draws
    `jnp.cumsum`, a `reduce_window` on CPU, measured 6-7x slower than the log-depth
    `associative_scan` (1,000-2,000 steps of 1,000 weights, where it was a quarter of
    the stream's cost); for narrow ones it is the faster (by a quarter at 10 weights)."""
    if a.shape[-1] < _NARROW:
        return jnp.cumsum(a, axis=0)
    return jax.lax.associative_scan(jnp.add, a, axis=0)


def _threefry_words(keys) -> Array | None:
    """The per-step keys as `(steps, 2)` threefry words, or None for another key
    implementation."""
    if jnp.issubdtype(keys.dtype, jax.dtypes.prng_key):
        if str(jax.random.key_impl(keys)) != "threefry2x32":
            return None
        return jax.random.key_data(keys)
    return keys  # raw uint32 keys: threefry's


def _wide_normals(words, size: int) -> Float[Array, " size"]:
    """`size` float32 standard normals for one step, `jax.random.normal`'s construction
    (23 random mantissa bits give `u` in (-1, 1), then `sqrt(2) erfinv(u)`) fed with
    both 32-bit words of every threefry hash of the step key's counters `(i, h + i)`.
    `jax.random.bits` (partitionable threefry) hashes once per word: the paired
    words halve the hashing, which is most of a wide draw's cost (measured 2.2x
    fewer seconds for the bits of 2,000 steps x 2,001 normals)."""
    half = (size + 1) // 2
    counters = jnp.arange(2 * half, dtype=jnp.uint32)  # pairs (i, half + i)
    bits = threefry_2x32(words, counters)[:size]
    one = jnp.uint32(np.float32(1.0).view(np.uint32))
    u = jax.lax.bitcast_convert_type((bits >> 9) | one, jnp.float32) - 1.0  # [0, 1)
    lo = np.nextafter(np.float32(-1.0), np.float32(0.0))
    u = jnp.maximum(lo, u * (1.0 - lo) + lo)
    return np.float32(np.sqrt(2.0)) * jax.lax.erf_inv(u)


def normals(keys, size: int) -> Float[Array, "steps size"]:
    """One vector of `size` standard normals per step key: `jax.random.normal(key)`
    for narrow or non-float32 draws, `_wide_normals` for wide float32 ones (the same
    distribution from half the hashing; still a function of the step key alone)."""
    words = _threefry_words(keys)
    if size >= _NARROW and default_float() == jnp.float32 and words is not None:
        return per_step(lambda w: _wide_normals(w, size), words, size)
    return per_step(lambda k: jax.random.normal(k, (size,), default_float()), keys, size)


def segment_draws(key, t0, num_steps: int, interval: int, draw) -> Array:
    """Per-step values that are constant over segments of `interval` steps and redrawn
    (as `draw(fold_in(key, segment))`) at each `t % interval == 0`. Only the segments
    the chunk touches are drawn."""
    first = t0 // interval
    count = min(num_steps, (num_steps - 1) // interval + 2)
    segments = jax.vmap(lambda s: draw(jax.random.fold_in(key, s)))(first + jnp.arange(count))
    ts = t0 + jnp.arange(num_steps)
    return segments[ts // interval - first]
