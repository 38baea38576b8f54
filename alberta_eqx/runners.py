"""Compiled learning loops: a learner against a stream, for one seed or many.

The loop runs in blocks. For each block the stream generates all of its steps in one
vectorised call (`AbstractStream.chunk`), and a `lax.scan` then runs only the learner
over them, so the sequential part is exactly the learner's recurrence. Tracking
reshapes that scan into units of `interval` steps and records the learner at the end
of each unit, rather than writing conditionally into a carried buffer.

Everything is compiled once per structure with `eqx.filter_jit`: a second call with
the same learner type, stream type, step count and options runs without tracing.
"""

import math
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Bool, Float, Int, PyTree

from alberta_eqx._checks import positive_int
from alberta_eqx.learners import AbstractLearner, StepMetrics, StepSizeSnapshot
from alberta_eqx.streams import AbstractStream, StreamState


class StepSizeTrackingConfig(NamedTuple):
    """Record per-weight step-sizes (and Autostep's `v_i`) every `interval` steps.

    **Fields:**

    - `interval`: record after every `interval`-th update (steps `interval - 1`,
      `2 interval - 1`, ...), `num_steps // interval` recordings in all.
    - `include_bias`: also record the bias's step-size.
    """

    interval: int
    include_bias: bool = True


class NormalizerTrackingConfig(NamedTuple):
    """Record the normalizer's per-feature mean and variance every `interval` steps."""

    interval: int


class StepSizeHistory(NamedTuple):
    """Recorded step-sizes; each array has a leading axis over recordings (after any
    batch axes).

    **Fields:**

    - `step_sizes`: `(recordings, n)` per-weight step-sizes.
    - `bias_step_sizes`: `(recordings,)`, or None.
    - `recording_indices`: `(recordings,)` the step after whose update each was taken.
    - `normalizers`: `(recordings, n)` Autostep's `v_i`, or None for other optimizers.
    """

    step_sizes: Float[Array, "... n"]
    bias_step_sizes: Float[Array, "..."] | None
    recording_indices: Int[Array, "..."]
    normalizers: Float[Array, "... n"] | None = None


class NormalizerHistory(NamedTuple):
    """Recorded normalizer statistics: `means` and `variances` of shape
    `(recordings, n)`, and `recording_indices` of shape `(recordings,)`."""

    means: Float[Array, "... n"]
    variances: Float[Array, "... n"]
    recording_indices: Int[Array, "..."]


class RunResult(NamedTuple):
    """What a run returns. Batched runs add leading axes to every array: `(seeds,)`,
    or `(configurations, seeds)` for a hyperparameter grid.

    **Fields:**

    - `learner`: the learner after the last step.
    - `metrics`: `StepMetrics` with one entry per step (or per window of
      `metrics_window` steps, averaged).
    - `step_size_history`: a `StepSizeHistory`, or None when not tracked.
    - `normalizer_history`: a `NormalizerHistory`, or None when not tracked.
    - `stream_state`: the stream's state after the last step. To continue the run,
      pass `learner` and this back with `start_step` advanced by `num_steps`.
    """

    learner: AbstractLearner
    metrics: StepMetrics
    step_size_history: StepSizeHistory | None
    normalizer_history: NormalizerHistory | None
    stream_state: StreamState


class _Plan(NamedTuple):
    """The static shape of a run (hashable, so it keys the compilation cache)."""

    num_steps: int
    block: int  # steps generated and learned per outer iteration
    unit: int  # steps between snapshots (1: no snapshots)
    window: int  # steps averaged into one metrics entry
    step_size_tracking: StepSizeTrackingConfig | None
    normalizer_tracking: NormalizerTrackingConfig | None


# Steps per block where memory allows: a round number, so that a run split at any
# multiple of it continues bit-identically (see `_block_size`), and enough steps that
# per-block costs vanish beside the learner's.
_BLOCK_STEPS = 10_000
# The most floats generated per block across the whole batch: it caps wide or many-seed
# blocks, keeping them in cache-friendly memory.
_BLOCK_BUDGET = 1 << 21


def _make_plan(
    learner: AbstractLearner,
    stream: AbstractStream,
    num_steps: int,
    step_size_tracking: StepSizeTrackingConfig | None,
    normalizer_tracking: NormalizerTrackingConfig | None,
    metrics_window: int,
    batch_size: int,
    block_size: int | None = None,
) -> _Plan:
    num_steps = positive_int("num_steps", num_steps)
    window = positive_int("metrics_window", metrics_window)
    if num_steps % window:
        raise ValueError(
            f"num_steps ({num_steps}) must be a multiple of metrics_window ({window})"
        )
    if not isinstance(learner, AbstractLearner):
        raise TypeError(f"learner must be an AbstractLearner, got {type(learner).__name__}")
    if not isinstance(stream, AbstractStream):
        raise TypeError(f"stream must be an AbstractStream, got {type(stream).__name__}")
    if learner.feature_dim != stream.feature_dim:
        raise ValueError(
            f"the learner's feature_dim ({learner.feature_dim}) does not match the "
            f"stream's feature_dim ({stream.feature_dim})"
        )
    intervals = []
    for name, config in (
        ("step_size_tracking", step_size_tracking),
        ("normalizer_tracking", normalizer_tracking),
    ):
        if config is None:
            continue
        interval = positive_int(f"{name}.interval", config.interval)
        if interval > num_steps:
            raise ValueError(f"{name}.interval ({interval}) must be <= num_steps ({num_steps})")
        intervals.append(interval)
    if normalizer_tracking is not None and learner.normalizer is None:
        raise ValueError("normalizer_tracking was given but the learner has no normalizer")
    unit = math.gcd(*intervals) if intervals else 1
    multiple = math.lcm(unit, window)
    if block_size is None:
        block_size = _block_size(multiple, stream.feature_dim, batch_size)
    elif positive_int("block_size", block_size) % multiple:
        raise ValueError(
            f"block_size ({block_size}) must be a multiple of {multiple}, the metrics "
            f"window and the tracking intervals' greatest common divisor"
        )
    return _Plan(
        num_steps=num_steps,
        block=min(block_size, num_steps),
        unit=unit,
        window=window,
        step_size_tracking=step_size_tracking,
        normalizer_tracking=normalizer_tracking,
    )


def _block_size(multiple: int, feature_dim: int, batch_size: int) -> int:
    """Steps per block: the least multiple of both `multiple` and `_BLOCK_STEPS` if it
    fits the memory budget, else the largest divisor of that which fits (and is a
    multiple of `multiple`): 5,000 steps for 30 seeds of 10 features, 2,000 for one
    seed of 1,000.

    It depends on neither the run's length nor its first step, so that a run continued
    from a multiple of it cuts its blocks where the uninterrupted run does, which
    makes the two bit-identical: a stream's vectorised draws (a random walk's
    cumulative sum, a row sum over features) round differently when a block is cut
    elsewhere. Being a divisor of 10,000 steps (for the usual windows), it makes runs
    of round lengths whole blocks (a tail block compiles separately) and round steps
    exact resume points, whatever the batch.
    """
    fits = max(1, _BLOCK_BUDGET // (batch_size * (feature_dim + 1) * multiple))
    units = math.lcm(multiple, _BLOCK_STEPS) // multiple
    return multiple * max(d for d in range(1, min(units, fits) + 1) if units % d == 0)


def _filter_scan(f, init, xs):
    """`lax.scan` whose carry may hold non-array leaves (an `eqx.nn.MLP`'s activation
    function, say): only the arrays are carried, the rest is closed over."""
    dynamic, static = eqx.partition(init, eqx.is_array)

    def body(dynamic, x):
        carry, out = f(eqx.combine(dynamic, static), x)
        return eqx.filter(carry, eqx.is_array), out

    dynamic, out = jax.lax.scan(body, dynamic, xs)
    return eqx.combine(dynamic, static), out


def _learn(learner: AbstractLearner, timesteps: PyTree, plan: _Plan):
    """Run the learner over a block of `timesteps`: the sequential part of the loop."""

    def step(learner, timestep):
        learner, result = learner.learn(timestep)
        return learner, result.metrics

    def snapshot(learner):
        ss = plan.step_size_tracking
        norm = plan.normalizer_tracking
        return (
            None if ss is None else learner.step_size_snapshot(ss.include_bias),
            None if norm is None else (learner.normalizer.mean, learner.normalizer.var),
        )

    n = jax.tree.leaves(timesteps)[0].shape[0]
    if plan.unit == 1 and plan.step_size_tracking is None and plan.normalizer_tracking is None:
        learner, metrics = _filter_scan(step, learner, timesteps)
        return learner, metrics, None

    def unit(learner, unit_timesteps):
        learner, metrics = _filter_scan(step, learner, unit_timesteps)
        return learner, (metrics, snapshot(learner))

    whole = n - n % plan.unit
    head = jax.tree.map(lambda a: a[:whole].reshape(-1, plan.unit, *a.shape[1:]), timesteps)
    learner, (metrics, records) = _filter_scan(unit, learner, head)
    metrics = jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), metrics)
    if whole < n:
        tail = jax.tree.map(lambda a: a[whole:], timesteps)
        learner, tail_metrics = _filter_scan(step, learner, tail)
        metrics = jax.tree.map(lambda a, b: jnp.concatenate([a, b]), metrics, tail_metrics)
    return learner, metrics, records


def _block(learner, stream, stream_state, t0, num_steps: int, plan: _Plan):
    timesteps, stream_state = stream.chunk(stream_state, t0, num_steps)
    learner, metrics, records = _learn(learner, timesteps, plan)
    if plan.window > 1:
        metrics = jax.tree.map(
            lambda a: a.reshape(-1, plan.window, *a.shape[1:]).mean(axis=1), metrics
        )
    return learner, stream_state, metrics, records


def _run(learner: AbstractLearner, stream: AbstractStream, stream_state, start, plan: _Plan):
    """One learner on one seed from step `start`; the batched runners vmap this."""
    num_blocks, tail = divmod(plan.num_steps, plan.block)

    def body(carry, t0):
        learner, stream_state = carry
        learner, stream_state, metrics, records = _block(
            learner, stream, stream_state, t0, plan.block, plan
        )
        return (learner, stream_state), (metrics, records)

    starts = start + jnp.arange(num_blocks, dtype=jnp.int32) * plan.block
    (learner, stream_state), (metrics, records) = _filter_scan(
        body, (learner, stream_state), starts
    )
    flatten = lambda tree: jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), tree)  # noqa: E731
    metrics, records = flatten(metrics), flatten(records)
    if tail:
        t0 = start + num_blocks * plan.block
        learner, stream_state, tail_metrics, tail_records = _block(
            learner, stream, stream_state, t0, tail, plan
        )
        join = lambda a, b: jnp.concatenate([a, b])  # noqa: E731
        metrics = jax.tree.map(join, metrics, tail_metrics)
        records = jax.tree.map(join, records, tail_records)
    return RunResult(learner, metrics, *_histories(records, plan, start), stream_state)


def _histories(records, plan: _Plan, start):
    """Split the per-unit snapshots into each tracker's history at its own interval."""
    if records is None:
        return None, None
    step_sizes, normalizer = records

    def every(interval: int):
        stride = interval // plan.unit
        count = plan.num_steps // interval
        pick = lambda a: a[stride - 1 :: stride][:count]  # noqa: E731
        indices = start + jnp.arange(1, count + 1, dtype=jnp.int32) * interval - 1
        return pick, indices

    ss_history = norm_history = None
    if plan.step_size_tracking is not None:
        pick, indices = every(plan.step_size_tracking.interval)
        snap: StepSizeSnapshot = jax.tree.map(pick, step_sizes)
        ss_history = StepSizeHistory(
            snap.step_sizes, snap.bias_step_sizes, indices, snap.normalizers
        )
    if plan.normalizer_tracking is not None:
        pick, indices = every(plan.normalizer_tracking.interval)
        means, variances = jax.tree.map(pick, normalizer)
        norm_history = NormalizerHistory(means, variances, indices)
    return ss_history, norm_history


@eqx.filter_jit
def _run_single(learner, stream, stream_state, start, plan: _Plan) -> RunResult:
    return _run(learner, stream, stream_state, start, plan)


@eqx.filter_jit
def _run_batched(learners, stream, stream_states, start, plan: _Plan, grid: bool, paired: bool):
    """Seeds outside, configurations (if `grid`) inside. The stream's work depends
    only on the seed's state, so vmap leaves it unbatched over configurations: every
    configuration of a seed learns from the one generated stream. With `paired`,
    the learners carry a seed axis too (the last batch axis), as a batched result's
    learner does."""
    run = _run
    if grid:
        run = eqx.filter_vmap(_run, in_axes=(eqx.if_array(0), None, None, None, None))
    learner_axis = eqx.if_array(1 if grid else 0) if paired else None
    over_seeds = eqx.filter_vmap(
        run,
        in_axes=(learner_axis, None, eqx.if_array(0), None, None),
        out_axes=eqx.if_array(1 if grid else 0),
    )
    result = over_seeds(learners, stream, stream_states, start, plan)
    if grid:  # the stream state is per seed: vmap broadcast it over configurations
        result = result._replace(stream_state=jax.tree.map(lambda a: a[0], result.stream_state))
    return result


def _start(start_step: int) -> Array:
    if isinstance(start_step, bool) or not isinstance(start_step, int) or start_step < 0:
        raise ValueError(f"start_step must be an int >= 0, got {start_step!r}")
    return jnp.asarray(start_step, jnp.int32)


def _check_keys(keys, batched: bool):
    keys = jnp.asarray(keys) if not isinstance(keys, jax.Array) else keys
    typed = jnp.issubdtype(keys.dtype, jax.dtypes.prng_key)
    name = "keys" if batched else "key"
    expected_ndim = (1 if batched else 0) + (0 if typed else 1)
    if not typed and (keys.dtype != jnp.uint32 or keys.shape[-1:] != (2,)):
        raise TypeError(
            f"{name} must be a JAX PRNG key (jax.random.key or jax.random.PRNGKey), "
            f"got dtype {keys.dtype} and shape {keys.shape}"
        )
    if keys.ndim != expected_ndim:
        what = "a batch of keys, one per seed" if batched else "a single key"
        raise ValueError(f"{name} must be {what}, got shape {keys.shape}")
    return keys


def run_learning_loop(
    learner: AbstractLearner,
    stream: AbstractStream,
    num_steps: int,
    key: Array,
    *,
    step_size_tracking: StepSizeTrackingConfig | None = None,
    normalizer_tracking: NormalizerTrackingConfig | None = None,
    metrics_window: int = 1,
    stream_state: StreamState | None = None,
    start_step: int = 0,
    block_size: int | None = None,
) -> RunResult:
    """Run `learner` on `stream` for `num_steps` steps, compiled.

    **Arguments:**

    - `learner`: any learner (`LinearLearner`, ...), already built.
    - `stream`: the stream; its `feature_dim` must match the learner's.
    - `num_steps`: how many examples to learn from.
    - `key`: the stream's random key.
    - `step_size_tracking`: record step-sizes every `interval` steps.
    - `normalizer_tracking`: record the normalizer's statistics every `interval` steps.
    - `metrics_window`: average the metrics over windows of this many steps, so long
      runs keep `num_steps / metrics_window` entries (must divide `num_steps`).
    - `stream_state`, `start_step`: continue a run: the stream state of a previous
      result (instead of `stream.init(key)`) and the index of the next step. A run
      split into segments this way learns from the same examples as one long run,
      and gives bit-identical results when every segment starts at a multiple of
      the block size.
    - `block_size`: steps generated and learned per compiled block; a multiple of
      `metrics_window` and of the tracking intervals' greatest common divisor. By
      default 10000 (or the least common multiple of 10000 and those), fewer where
      that many steps of this feature count and number of seeds would not fit a fixed
      memory budget; never dependent on `num_steps` or `start_step`, so the default
      suits runs split at multiples of 10000 steps.

    **Returns:** a `RunResult`.
    """
    key = _check_keys(key, batched=False)
    if learner.batch_shape != ():
        raise ValueError(
            f"learner has batch shape {learner.batch_shape}: use run_learning_loop_batched"
        )
    plan = _make_plan(
        learner,
        stream,
        num_steps,
        step_size_tracking,
        normalizer_tracking,
        metrics_window,
        1,
        block_size,
    )
    if stream_state is None:
        stream_state = stream.init(key)
    return _run_single(learner, stream, stream_state, _start(start_step), plan)


def run_learning_loop_batched(
    learner: AbstractLearner,
    stream: AbstractStream,
    num_steps: int,
    keys: Array,
    *,
    step_size_tracking: StepSizeTrackingConfig | None = None,
    normalizer_tracking: NormalizerTrackingConfig | None = None,
    metrics_window: int = 1,
    stream_states: StreamState | None = None,
    start_step: int = 0,
    block_size: int | None = None,
) -> RunResult:
    """Run many seeds at once, and optionally many hyperparameter configurations.

    With a plain learner, seed `i` runs on stream key `keys[i]` and every array in the
    result gains a leading `(seeds,)` axis. To continue such a run, pass its
    `learner` (which has a seed axis) with `stream_states=result.stream_state`.

    With a learner carrying a leading batch axis of configurations (built with
    `eqx.filter_vmap`, for example
    `eqx.filter_vmap(lambda a: LinearLearner(20, LMS(a)))(alphas)`), every
    configuration runs on every seed, as one compiled program, and the result's
    arrays lead with `(configurations, seeds)`. Each seed's stream is generated once
    and shared by all configurations.

    Arguments as `run_learning_loop`, with `keys` a batch of keys (for example
    `jax.random.split(key, 30)`) and `stream_states` (to continue a run) batched over
    seeds.
    """
    keys = _check_keys(keys, batched=True)
    num_seeds = keys.shape[0]
    batch = learner.batch_shape
    # With stream states (a continued run) the learner's last batch axis is the seeds';
    # otherwise one axis is configurations and two are (configurations, seeds).
    paired = stream_states is not None or len(batch) == 2
    grid = len(batch) == (2 if paired else 1)
    if len(batch) > 2 or (paired and batch[-1:] != (num_seeds,)) or (paired and not batch):
        raise ValueError(
            f"learner batch shape {batch} does not fit {num_seeds} seeds: expected (), "
            f"(configurations,), (configurations, seeds) or, continuing a run, (seeds,)"
        )
    plan = _make_plan(
        learner,
        stream,
        num_steps,
        step_size_tracking,
        normalizer_tracking,
        metrics_window,
        keys.shape[0],
        block_size,
    )
    if stream_states is None:
        stream_states = eqx.filter_vmap(stream.init)(keys)
    return _run_batched(learner, stream, stream_states, _start(start_step), plan, grid, paired)


class Divergence(NamedTuple):
    """Which runs of a (batched) result became non-finite, and when.

    **Fields:**

    - `diverged`: per run (shape: the result's batch axes), whether any metric or
      any of the final learner's arrays is non-finite.
    - `first_step`: the first step whose metrics are non-finite (the first step of
      that window, with `metrics_window > 1`), or -1 where the metrics stayed finite.
    """

    diverged: Bool[Array, "*batch"]
    first_step: Int[Array, "*batch"]


def find_divergence(result: RunResult, metrics_window: int = 1) -> Divergence:
    """Report the runs of `result` that diverged, rather than leaving NaNs to be found.
    The other runs of a batched result are unaffected and usable as they are.

    **Arguments:**

    - `result`: what `run_learning_loop` or `run_learning_loop_batched` returned.
    - `metrics_window`: the window the run averaged its metrics over.
    """
    metrics = [m for m in result.metrics if m is not None]
    # Per-head metrics (a multi-head learner's) carry a trailing axis: reduce it.
    ndim = metrics[0].ndim
    finite = [jnp.isfinite(m).reshape(*m.shape[:ndim], -1).all(-1) for m in metrics]
    finite = jnp.all(jnp.stack(finite), axis=0)  # (*batch, T)
    batch = finite.shape[:-1]
    bad = ~finite
    first = jnp.where(bad.any(-1), jnp.argmax(bad, axis=-1) * metrics_window, -1)
    learner_ok = [
        jnp.all(jnp.isfinite(a).reshape(*batch, -1), axis=-1)
        for a in jax.tree.leaves(eqx.filter(result.learner, eqx.is_inexact_array))
    ]
    diverged = bad.any(-1) | ~jnp.all(jnp.stack(learner_ok), axis=0)
    return Divergence(diverged, first.astype(jnp.int32))


def metrics_to_dicts(metrics: StepMetrics) -> list[dict[str, float]]:
    """The 0.2.x layout: one dict per step with the keys `squared_error`, `error`,
    `mean_step_size` (and `normalizer_mean_var` when present)."""
    columns = {k: np.asarray(v) for k, v in metrics._asdict().items() if v is not None}
    lengths = {v.shape for v in columns.values()}
    if len(lengths) != 1 or len(next(iter(lengths))) != 1:
        raise ValueError(
            f"metrics_to_dicts takes one run's metrics (1-D per field), got shapes {lengths}"
        )
    return [
        {k: float(v[i]) for k, v in columns.items()}
        for i in range(next(iter(columns.values())).shape[0])
    ]
