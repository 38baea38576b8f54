"""Synthetic non-stationary streams (the 0.2.x set, same parameters and meaning).

Each stream generates a whole chunk of steps in one vectorised call. Step `t`'s draws
come from `fold_in(key, t)`; state that evolves (drifting weights, flipped signs, a
clipped log-scale walk) is advanced over a chunk with cumulative sums and products
(`associative_scan`, `cumprod`); piecewise-constant targets are looked up from their segment
index, drawn from `fold_in` of the segment number.
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry_2x32
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, StreamState, TimeStep, step_keys


def _float():
    return _checks.default_float()


# Wide draws are generated `_DRAWS_PER_BATCH` numbers per iteration of a loop: one
# `vmap` over a whole chunk of wide draws measured up to 3x slower on JAX 0.12's CPU
# backend. Narrow draws vectorise well in one `vmap`, which also compiles in half
# the time of the loop.
_DRAWS_PER_BATCH = 1 << 15
_NARROW = 64


def _per_step(draw, keys, size: int):
    """`draw(key)` for every step's key, stacked; `size` is the draw's width."""
    n = keys.shape[0]
    # At least one draw per iteration: a draw wider than `_DRAWS_PER_BATCH` (a
    # `RandomWalkStream(16384)` step draws 32,769 normals) is one step per iteration.
    target = max(1, _DRAWS_PER_BATCH // size)
    if size < _NARROW or target >= n:
        return jax.vmap(draw)(keys)
    # A batch that divides the chunk avoids `lax.map`'s remainder, a second compiled
    # copy of the draw (1 always divides it).
    batch = max(d for d in range(1, target + 1) if n % d == 0)
    return jax.lax.map(draw, keys, batch_size=batch if 4 * batch >= target else target)


def _cumsum(a: Array) -> Array:
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


def _normals(keys, size: int) -> Float[Array, "steps size"]:
    """One vector of `size` standard normals per step key: `jax.random.normal(key)`
    for narrow or non-float32 draws, `_wide_normals` for wide float32 ones (the same
    distribution from half the hashing; still a function of the step key alone)."""
    words = _threefry_words(keys)
    if size >= _NARROW and _float() == jnp.float32 and words is not None:
        return _per_step(lambda w: _wide_normals(w, size), words, size)
    return _per_step(lambda k: jax.random.normal(k, (size,), _float()), keys, size)


def _linear_targets(key, t0, num_steps: int, weights, feature_std, noise_std) -> TimeStep:
    """`x_t = feature_std N(0, I)` and `y_t = w_t . x_t + noise_std N(0, 1)`, given each
    step's weights `w_t` (shape `(num_steps, n)`)."""
    d = weights.shape[-1]
    z = _normals(step_keys(key, t0, num_steps), d + 1)
    x = feature_std * z[:, :d]
    return TimeStep(x, jnp.sum(weights * x, axis=-1) + noise_std * z[:, -1])


def _segment_draws(key, t0, num_steps: int, interval: int, draw) -> Array:
    """Per-step values that are constant over segments of `interval` steps and redrawn
    (as `draw(fold_in(key, segment))`) at each `t % interval == 0`. Only the segments
    the chunk touches are drawn."""
    first = t0 // interval
    count = min(num_steps, (num_steps - 1) // interval + 2)
    segments = jax.vmap(lambda s: draw(jax.random.fold_in(key, s)))(first + jnp.arange(count))
    ts = t0 + jnp.arange(num_steps)
    return segments[ts // interval - first]


class WalkState(NamedTuple):
    """State of a stream whose target weights follow a random walk."""

    key: PRNGKeyArray
    weights: Float[Array, " n"]


class RandomWalkStream(AbstractStream):
    """A linear target whose weights drift by a Gaussian random walk:
    `w_t = w_{t-1} + drift_rate N(0, I)`, `y_t = w_t . x_t + noise_std N(0, 1)`.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `drift_rate`: the standard deviation of each weight's change per step.
    - `noise_std`: the standard deviation of the target noise.
    - `feature_std`: the standard deviation of the features.
    """

    dim: int = eqx.field(static=True)
    drift_rate: Float[Array, ""]
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        drift_rate: ArrayLike = 0.001,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.drift_rate = _checks.non_negative("drift_rate", drift_rate)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> WalkState:
        key, init_key = jax.random.split(key)
        return WalkState(key, jax.random.normal(init_key, (self.dim,), _float()))

    def chunk(
        self, state: WalkState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, WalkState]:
        d = self.dim
        z = _normals(step_keys(state.key, t0, num_steps), 2 * d + 1)
        weights = state.weights + self.drift_rate * _cumsum(z[:, :d])
        x = self.feature_std * z[:, d : 2 * d]
        y = jnp.sum(weights * x, axis=-1) + self.noise_std * z[:, -1]
        return TimeStep(x, y), WalkState(state.key, weights[-1])


class KeyState(NamedTuple):
    """State of a stream whose every step is a function of its key and step index."""

    key: PRNGKeyArray


class AbruptChangeStream(AbstractStream):
    """A linear target whose weights are redrawn from N(0, I) every `change_interval`
    steps (at `t = 0, change_interval, ...`) and constant in between.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `change_interval`: steps between abrupt changes.
    - `noise_std`, `feature_std`: as in `RandomWalkStream`.
    """

    dim: int = eqx.field(static=True)
    change_interval: int = eqx.field(static=True)
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        change_interval: int = 1000,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.change_interval = _checks.positive_int("change_interval", change_interval)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> KeyState:
        return KeyState(key)

    def chunk(
        self, state: KeyState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, KeyState]:
        d = self.dim
        step_key, weight_key = jax.random.split(state.key)
        weights = _segment_draws(
            weight_key,
            t0,
            num_steps,
            self.change_interval,
            lambda k: jax.random.normal(k, (d,), _float()),
        )
        timesteps = _linear_targets(
            step_key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


class SignsState(NamedTuple):
    """State of `SuttonExperiment1Stream`: the relevant inputs' current signs."""

    key: PRNGKeyArray
    signs: Float[Array, " relevant"]


class SuttonExperiment1Stream(AbstractStream):
    """Sutton (1992), Experiment 1: `x ~ N(0, I)`, target `sum_k s_k x_k` over the
    first `num_relevant` inputs with signs `s_k` in {+1, -1} (all +1 at the start);
    at every `t > 0` with `t % change_interval == 0`, one sign chosen at random flips.

    **Arguments:**

    - `num_relevant`: inputs that carry the target.
    - `num_irrelevant`: inputs that do not.
    - `change_interval`: steps between sign flips.
    """

    num_relevant: int = eqx.field(static=True)
    num_irrelevant: int = eqx.field(static=True)
    change_interval: int = eqx.field(static=True)

    def __init__(self, num_relevant: int = 5, num_irrelevant: int = 15, change_interval: int = 20):
        self.num_relevant = _checks.positive_int("num_relevant", num_relevant)
        self.num_irrelevant = _checks.non_negative_int("num_irrelevant", num_irrelevant)
        self.change_interval = _checks.positive_int("change_interval", change_interval)

    @property
    def feature_dim(self) -> int:
        return self.num_relevant + self.num_irrelevant

    def init(self, key: PRNGKeyArray) -> SignsState:
        return SignsState(key, jnp.ones(self.num_relevant, _float()))

    def chunk(
        self, state: SignsState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, SignsState]:
        r = self.num_relevant

        # One normal vector per step: the features, and one more normal whose CDF is
        # uniform on (0, 1) and picks the sign to flip (one random draw per step
        # compiles and runs faster than a split and a second draw).
        z = _normals(step_keys(state.key, t0, num_steps), self.feature_dim + 1)
        x = z[:, :-1]
        which = jnp.minimum(jnp.floor(r * jax.scipy.special.ndtr(z[:, -1])), r - 1)
        ts = t0 + jnp.arange(num_steps)
        flips = (ts > 0) & (ts % self.change_interval == 0)
        masks = jnp.where(flips[:, None] & (jnp.arange(r) == which[:, None]), -1.0, 1.0)
        signs = state.signs * jnp.cumprod(masks.astype(_float()), axis=0)  # exact: +-1 products
        y = jnp.sum(signs * x[:, :r], axis=-1)
        return TimeStep(x, y), SignsState(state.key, signs[-1])


class CyclicState(NamedTuple):
    """State of `CyclicStream`: its fixed weight configurations."""

    key: PRNGKeyArray
    configurations: Float[Array, "k n"]


class CyclicStream(AbstractStream):
    """A linear target cycling through `num_configurations` fixed weight vectors
    (drawn at `init`), each active for `cycle_length` steps.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `cycle_length`: steps each configuration stays active.
    - `num_configurations`: how many configurations to cycle through.
    - `noise_std`, `feature_std`: as in `RandomWalkStream`.
    """

    dim: int = eqx.field(static=True)
    cycle_length: int = eqx.field(static=True)
    num_configurations: int = eqx.field(static=True)
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        cycle_length: int = 500,
        num_configurations: int = 4,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.cycle_length = _checks.positive_int("cycle_length", cycle_length)
        self.num_configurations = _checks.positive_int("num_configurations", num_configurations)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> CyclicState:
        key, init_key = jax.random.split(key)
        shape = (self.num_configurations, self.dim)
        return CyclicState(key, jax.random.normal(init_key, shape, _float()))

    def chunk(
        self, state: CyclicState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, CyclicState]:
        ts = t0 + jnp.arange(num_steps)
        weights = state.configurations[(ts // self.cycle_length) % self.num_configurations]
        timesteps = _linear_targets(
            state.key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


class PeriodicState(NamedTuple):
    """State of `PeriodicChangeStream`: base weights and phases."""

    key: PRNGKeyArray
    base_weights: Float[Array, " n"]
    phases: Float[Array, " n"]


class PeriodicChangeStream(AbstractStream):
    """A linear target whose weights oscillate:
    `w_t = base + amplitude sin(2 pi t / period + phase)`, with a random phase per weight.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `period`: steps per oscillation.
    - `amplitude`: the oscillation's amplitude.
    - `noise_std`, `feature_std`: as in `RandomWalkStream`.
    """

    dim: int = eqx.field(static=True)
    period: int = eqx.field(static=True)
    amplitude: Float[Array, ""]
    noise_std: Float[Array, ""]
    feature_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        period: int = 1000,
        amplitude: ArrayLike = 1.0,
        noise_std: ArrayLike = 0.1,
        feature_std: ArrayLike = 1.0,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.period = _checks.positive_int("period", period)
        self.amplitude = _checks.non_negative("amplitude", amplitude)
        self.noise_std = _checks.non_negative("noise_std", noise_std)
        self.feature_std = _checks.positive("feature_std", feature_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> PeriodicState:
        key, weight_key, phase_key = jax.random.split(key, 3)
        return PeriodicState(
            key,
            jax.random.normal(weight_key, (self.dim,), _float()),
            jax.random.uniform(phase_key, (self.dim,), _float(), 0, 2 * jnp.pi),
        )

    def chunk(
        self, state: PeriodicState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, PeriodicState]:
        # `t % period` first: exact in integers, so the angle stays accurate for any t.
        ts = ((t0 + jnp.arange(num_steps)) % self.period).astype(_float())
        weights = state.base_weights + self.amplitude * jnp.sin(
            2 * jnp.pi * ts[:, None] / self.period + state.phases
        )
        timesteps = _linear_targets(
            state.key, t0, num_steps, weights, self.feature_std, self.noise_std
        )
        return timesteps, state


class ScaledStreamWrapper(AbstractStream):
    """Another stream with every observation multiplied by per-feature scales (and,
    optionally, every target by `target_scale`).

    **Arguments:**

    - `inner_stream`: the stream to wrap.
    - `feature_scales`: one factor per feature (see `make_scale_range`).
    - `target_scale`: a factor for the target (1 leaves it alone).
    """

    inner_stream: AbstractStream
    feature_scales: Float[Array, " n"]
    target_scale: Float[Array, ""]

    def __init__(
        self,
        inner_stream: AbstractStream,
        feature_scales: ArrayLike,
        target_scale: ArrayLike = 1.0,
    ):
        scales = jnp.asarray(feature_scales, _float())
        if scales.shape != (inner_stream.feature_dim,):
            raise ValueError(
                f"feature_scales must have shape ({inner_stream.feature_dim},) to match "
                f"the inner stream's feature_dim, got {scales.shape}"
            )
        self.inner_stream = inner_stream
        self.feature_scales = scales
        self.target_scale = _checks.as_float("target_scale", target_scale)

    @property
    def feature_dim(self) -> int:
        return self.inner_stream.feature_dim

    def init(self, key: PRNGKeyArray) -> StreamState:
        return self.inner_stream.init(key)

    def chunk(
        self, state: StreamState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, StreamState]:
        timesteps, state = self.inner_stream.chunk(state, t0, num_steps)
        return TimeStep(
            timesteps.observation * self.feature_scales, timesteps.target * self.target_scale
        ), state


def make_scale_range(
    feature_dim: int,
    min_scale: float = 0.001,
    max_scale: float = 1000.0,
    log_spaced: bool = True,
) -> Float[Array, " n"]:
    """`feature_dim` scale factors from `min_scale` to `max_scale`, log-spaced by
    default, for `ScaledStreamWrapper`."""
    _checks.positive_int("feature_dim", feature_dim)
    if log_spaced:
        low = _checks.positive("min_scale", min_scale)
        high = _checks.positive("max_scale", max_scale)
        return jnp.logspace(jnp.log10(low), jnp.log10(high), feature_dim, dtype=_float())
    low = _checks.as_float("min_scale", min_scale)
    high = _checks.as_float("max_scale", max_scale)
    return jnp.linspace(low, high, feature_dim, dtype=_float())


class DynamicScaleShiftStream(AbstractStream):
    """Abruptly changing weights and feature scales: weights redrawn from N(0, I)
    every `weight_change_interval` steps, per-feature scales redrawn log-uniformly in
    `[min_scale, max_scale]` every `scale_change_interval` steps (both at `t = 0`
    too). The observation is `scales * x_raw`; the target uses the raw features, so
    only the representation changes, not the task.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `scale_change_interval`, `weight_change_interval`: steps between changes.
    - `min_scale`, `max_scale`: the range of the scales.
    - `noise_std`: the standard deviation of the target noise.
    """

    dim: int = eqx.field(static=True)
    scale_change_interval: int = eqx.field(static=True)
    weight_change_interval: int = eqx.field(static=True)
    min_scale: Float[Array, ""]
    max_scale: Float[Array, ""]
    noise_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        scale_change_interval: int = 2000,
        weight_change_interval: int = 1000,
        min_scale: ArrayLike = 0.01,
        max_scale: ArrayLike = 100.0,
        noise_std: ArrayLike = 0.1,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.scale_change_interval = _checks.positive_int(
            "scale_change_interval", scale_change_interval
        )
        self.weight_change_interval = _checks.positive_int(
            "weight_change_interval", weight_change_interval
        )
        self.min_scale = _checks.positive("min_scale", min_scale)
        self.max_scale = _checks.positive("max_scale", max_scale)
        _checks.ordered("min_scale", self.min_scale, "max_scale", self.max_scale)
        self.noise_std = _checks.non_negative("noise_std", noise_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> KeyState:
        return KeyState(key)

    def chunk(
        self, state: KeyState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, KeyState]:
        d = self.dim
        step_key, weight_key, scale_key = jax.random.split(state.key, 3)
        weights = _segment_draws(
            weight_key,
            t0,
            num_steps,
            self.weight_change_interval,
            lambda k: jax.random.normal(k, (d,), _float()),
        )
        log_min, log_max = jnp.log(self.min_scale), jnp.log(self.max_scale)
        scales = _segment_draws(
            scale_key,
            t0,
            num_steps,
            self.scale_change_interval,
            lambda k: jnp.exp(jax.random.uniform(k, (d,), _float(), log_min, log_max)),
        )
        z = _normals(step_keys(step_key, t0, num_steps), d + 1)
        raw = z[:, :d]
        y = jnp.sum(weights * raw, axis=-1) + self.noise_std * z[:, -1]
        return TimeStep(raw * scales, y), state


class ScaleDriftState(NamedTuple):
    """State of `ScaleDriftStream`: drifting weights and log-scales."""

    key: PRNGKeyArray
    weights: Float[Array, " n"]
    log_scales: Float[Array, " n"]


_Clip = tuple[Array, Array, Array]


def _compose_clips(first: _Clip, second: _Clip) -> _Clip:
    """The map `s -> clip(s + a, L, H)` as `(a, L, H)`: `first`, then `second`.

    `clip(clip(s + a1, L1, H1) + a2, L2, H2)
    = clip(s + a1 + a2, clip(L1 + a2, L2, H2), clip(H1 + a2, L2, H2))`.
    """
    a1, lo1, hi1 = first
    a2, lo2, hi2 = second
    return a1 + a2, jnp.clip(lo1 + a2, lo2, hi2), jnp.clip(hi1 + a2, lo2, hi2)


def clipped_walk(
    start: Float[ArrayLike, "..."],
    increments: Float[Array, " steps *n"],
    low: Float[ArrayLike, "..."],
    high: Float[ArrayLike, "..."],
) -> Float[Array, " steps *n"]:
    """Every step of the clipped random walk `s_t = clip(s_{t-1} + a_t, low, high)`,
    computed by an associative scan (maps `s -> clip(s + a, L, H)` are closed under
    composition), so its depth is logarithmic in the number of steps.

    **Arguments:**

    - `start`: the walk's value before the first increment (broadcast against one
      step of `increments`).
    - `increments`: the increments `a_t`, stacked on the leading axis.
    - `low`, `high`: the walls (`low <= high`), broadcast likewise.

    **Returns:**

    The walk after each increment, shaped like `increments`.
    """
    low = jnp.broadcast_to(low, increments.shape).astype(increments.dtype)
    high = jnp.broadcast_to(high, increments.shape).astype(increments.dtype)
    shift, lo, hi = jax.lax.associative_scan(_compose_clips, (increments, low, high))
    return jnp.clip(start + shift, lo, hi)


class ScaleDriftStream(AbstractStream):
    """Drifting weights (a random walk, as `RandomWalkStream`) and drifting feature
    scales: the log-scales start at 0 and follow the clipped random walk
    `s_t = clip(s_{t-1} + scale_drift_rate N(0, I), min_log_scale, max_log_scale)`.
    The observation is `exp(s_t) * x_raw`; the target uses the raw features, so only
    the representation drifts with the scales.

    **Arguments:**

    - `feature_dim`: the number of features.
    - `weight_drift_rate`: the standard deviation of each weight's change per step.
    - `scale_drift_rate`: the standard deviation of each log-scale's change per step.
    - `min_log_scale`, `max_log_scale`: the walls of the log-scale walk (walls that
      exclude 0 pull the walk in at step 0).
    - `noise_std`: the standard deviation of the target noise.
    """

    dim: int = eqx.field(static=True)
    weight_drift_rate: Float[Array, ""]
    scale_drift_rate: Float[Array, ""]
    min_log_scale: Float[Array, ""]
    max_log_scale: Float[Array, ""]
    noise_std: Float[Array, ""]

    def __init__(
        self,
        feature_dim: int,
        weight_drift_rate: ArrayLike = 0.001,
        scale_drift_rate: ArrayLike = 0.01,
        min_log_scale: ArrayLike = -4.0,
        max_log_scale: ArrayLike = 4.0,
        noise_std: ArrayLike = 0.1,
    ):
        self.dim = _checks.positive_int("feature_dim", feature_dim)
        self.weight_drift_rate = _checks.non_negative("weight_drift_rate", weight_drift_rate)
        self.scale_drift_rate = _checks.non_negative("scale_drift_rate", scale_drift_rate)
        self.min_log_scale = _checks.as_float("min_log_scale", min_log_scale)
        self.max_log_scale = _checks.as_float("max_log_scale", max_log_scale)
        _checks.ordered("min_log_scale", self.min_log_scale, "max_log_scale", self.max_log_scale)
        self.noise_std = _checks.non_negative("noise_std", noise_std)

    @property
    def feature_dim(self) -> int:
        return self.dim

    def init(self, key: PRNGKeyArray) -> ScaleDriftState:
        key, weight_key = jax.random.split(key)
        return ScaleDriftState(
            key,
            jax.random.normal(weight_key, (self.dim,), _float()),
            jnp.zeros(self.dim, _float()),
        )

    def chunk(
        self, state: ScaleDriftState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, ScaleDriftState]:
        d = self.dim
        z = _normals(step_keys(state.key, t0, num_steps), 3 * d + 1)
        weights = state.weights + self.weight_drift_rate * _cumsum(z[:, :d])
        log_scales = clipped_walk(
            state.log_scales,
            self.scale_drift_rate * z[:, d : 2 * d],
            self.min_log_scale,
            self.max_log_scale,
        )
        raw = z[:, 2 * d : 3 * d]
        y = jnp.sum(weights * raw, axis=-1) + self.noise_std * z[:, -1]
        new_state = ScaleDriftState(state.key, weights[-1], log_scales[-1])
        return TimeStep(raw * jnp.exp(log_scales), y), new_state


# The 0.2.x names.
RandomWalkTarget = RandomWalkStream
AbruptChangeTarget = AbruptChangeStream
CyclicTarget = CyclicStream
PeriodicChangeTarget = PeriodicChangeStream
