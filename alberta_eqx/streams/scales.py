"""Synthetic streams whose feature scales change: a fixed rescaling of another
stream (`ScaledStreamWrapper`), scales redrawn abruptly (`DynamicScaleShiftStream`),
or drifting by a clipped random walk (`ScaleDriftStream`). The target is computed
from the raw features, so only the representation changes, not the task: the test
of a step-size method's invariance to feature scaling.

Chunks are generated as in `alberta_eqx.streams.targets`; the clipped log-scale walk
is advanced over a chunk by an associative scan (`clipped_walk`).
"""

from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
from jaxtyping import Array, ArrayLike, Float, Int, PRNGKeyArray

from alberta_eqx import _checks
from alberta_eqx.streams._base import AbstractStream, StreamState, TimeStep, step_keys
from alberta_eqx.streams._draws import cumsum, default_float, normals, segment_draws
from alberta_eqx.streams.targets import KeyState


class ScaledStreamWrapper(AbstractStream[TimeStep]):
    """Another stream with every observation multiplied by per-feature scales (and,
    optionally, every target by `target_scale`).

    ```python
    import jax
    from alberta_eqx import DriftingTargetStream, ScaledStreamWrapper
    from alberta_eqx.streams import make_scale_range

    scales = make_scale_range(3, min_scale=0.01, max_scale=100.0)  # 0.01, 1, 100
    stream = ScaledStreamWrapper(DriftingTargetStream(3), scales)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # the inner stream's x_0 times the scales
    ```

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
        scales = jnp.asarray(feature_scales, default_float())
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
        return jnp.logspace(jnp.log10(low), jnp.log10(high), feature_dim, dtype=default_float())
    low = _checks.as_float("min_scale", min_scale)
    high = _checks.as_float("max_scale", max_scale)
    return jnp.linspace(low, high, feature_dim, dtype=default_float())


class DynamicScaleShiftStream(AbstractStream[TimeStep]):
    """Abruptly changing weights and feature scales: weights redrawn from N(0, I)
    every `weight_change_interval` steps, per-feature scales redrawn log-uniformly in
    `[min_scale, max_scale]` every `scale_change_interval` steps (both at `t = 0`
    too). The observation is `scales * x_raw`; the target uses the raw features, so
    only the representation changes, not the task.

    ```python
    import jax
    from alberta_eqx import DynamicScaleShiftStream

    # weights redrawn every 100 steps, feature scales (0.01 .. 100) every 200
    stream = DynamicScaleShiftStream(3, scale_change_interval=200, weight_change_interval=100)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `scale_change_interval`, `weight_change_interval`: steps between changes.
    - `min_scale`, `max_scale`: the range of the scales.
    - `noise_std`: the standard deviation of the target noise.
    """

    feature_dim: int = eqx.field(static=True)
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
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
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

    def init(self, key: PRNGKeyArray) -> KeyState:
        return KeyState(key)

    def chunk(
        self, state: KeyState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, KeyState]:
        d = self.feature_dim
        step_key, weight_key, scale_key = jax.random.split(state.key, 3)
        weights = segment_draws(
            weight_key,
            t0,
            num_steps,
            self.weight_change_interval,
            lambda k: jax.random.normal(k, (d,), default_float()),
        )
        log_min, log_max = jnp.log(self.min_scale), jnp.log(self.max_scale)
        scales = segment_draws(
            scale_key,
            t0,
            num_steps,
            self.scale_change_interval,
            lambda k: jnp.exp(jax.random.uniform(k, (d,), default_float(), log_min, log_max)),
        )
        z = normals(step_keys(step_key, t0, num_steps), d + 1)
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


class ScaleDriftStream(AbstractStream[TimeStep]):
    """Drifting weights (a random walk, as `DriftingTargetStream`) and drifting feature
    scales: the log-scales start at 0 and follow the clipped random walk
    `s_t = clip(s_{t-1} + scale_drift_rate N(0, I), min_log_scale, max_log_scale)`.
    The observation is `exp(s_t) * x_raw`; the target uses the raw features, so only
    the representation drifts with the scales.

    ```python
    import jax
    from alberta_eqx import ScaleDriftStream

    # weights and log feature scales both random-walk (log scales within [-4, 4])
    stream = ScaleDriftStream(3, weight_drift_rate=0.001, scale_drift_rate=0.01)
    state = stream.init(jax.random.key(0))
    timestep, state = stream.step(state, 0)  # step 0's (observation, target)
    ```

    **Arguments:**

    - `feature_dim`: the number of features.
    - `weight_drift_rate`: the standard deviation of each weight's change per step.
    - `scale_drift_rate`: the standard deviation of each log-scale's change per step.
    - `min_log_scale`, `max_log_scale`: the walls of the log-scale walk (walls that
      exclude 0 pull the walk in at step 0).
    - `noise_std`: the standard deviation of the target noise.
    """

    feature_dim: int = eqx.field(static=True)
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
        self.feature_dim = _checks.positive_int("feature_dim", feature_dim)
        self.weight_drift_rate = _checks.non_negative("weight_drift_rate", weight_drift_rate)
        self.scale_drift_rate = _checks.non_negative("scale_drift_rate", scale_drift_rate)
        self.min_log_scale = _checks.as_float("min_log_scale", min_log_scale)
        self.max_log_scale = _checks.as_float("max_log_scale", max_log_scale)
        _checks.ordered("min_log_scale", self.min_log_scale, "max_log_scale", self.max_log_scale)
        self.noise_std = _checks.non_negative("noise_std", noise_std)

    def init(self, key: PRNGKeyArray) -> ScaleDriftState:
        key, weight_key = jax.random.split(key)
        return ScaleDriftState(
            key,
            jax.random.normal(weight_key, (self.feature_dim,), default_float()),
            jnp.zeros(self.feature_dim, default_float()),
        )

    def chunk(
        self, state: ScaleDriftState, t0: Int[ArrayLike, ""], num_steps: int
    ) -> tuple[TimeStep, ScaleDriftState]:
        d = self.feature_dim
        z = normals(step_keys(state.key, t0, num_steps), 3 * d + 1)
        weights = state.weights + self.weight_drift_rate * cumsum(z[:, :d])
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
