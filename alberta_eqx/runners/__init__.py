"""Compiled learning loops: a learner against a stream, for one seed or many.

The loop runs in blocks. For each block the stream generates all of its steps in one
vectorised call (`AbstractStream.chunk`), and a `lax.scan` then runs only the learner
over them, so the sequential part is exactly the learner's recurrence. Tracking
reshapes that scan into units of `interval` steps and records the learner at the end
of each unit, rather than writing conditionally into a carried buffer.

Everything is compiled once per structure with `eqx.filter_jit`: a second call with
the same learner type, stream type, step count and options runs without tracing.
"""

import dataclasses
import math
from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import optax
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
    - `first_nonfinite_step`: the index of the first step after whose update a
      metric (`squared_error`, `error`, `normalizer_mean_var`) was NaN or
      infinite, or -1 where every step stayed finite. The learner's state (weights,
      optimizer and normalizer state; not the hyperparameters) is checked at the
      end of every block: a state that became non-finite while the metrics stayed
      finite is reported at the last step of that block. `find_divergence` reads
      it.
    """

    learner: AbstractLearner
    metrics: StepMetrics
    step_size_history: StepSizeHistory | None
    normalizer_history: NormalizerHistory | None
    stream_state: StreamState
    first_nonfinite_step: Int[Array, "*batch"] | None = None


class _Plan(NamedTuple):
    """The static shape of a run (hashable, so it keys the compilation cache)."""

    num_steps: int
    block: int  # steps generated and learned per outer iteration
    unit: int  # steps between snapshots (1: no snapshots)
    window: int  # steps averaged into one metrics entry
    step_size_tracking: StepSizeTrackingConfig | None
    normalizer_tracking: NormalizerTrackingConfig | None

    @property
    def window_spans_blocks(self) -> bool:
        """Whether a metrics window is longer than a block: its sums are then carried
        from block to block, so memory stays within the block whatever the window."""
        return self.block % self.window != 0


# Steps per block where memory allows: a round number, so that a run split at any
# multiple of it continues bit-identically (see `_block_size`), and enough steps that
# per-block costs vanish beside the learner's.
_BLOCK_STEPS = 10_000
# The most floats generated per block across the whole batch (512 KiB of float32): it
# caps wide or many-seed blocks so that a block's draws stay in cache between the
# stream that writes them and the scan that reads them. Measured on 2 CPU cores
# against the previous 8 MiB budget (IDBD, 30 seeds): 2.6x faster at 10 features
# (250-step blocks instead of 5,000), 5.7x at 100 (40 instead of 625), 5.4x at 1,000
# (4 instead of 50); one seed of 1,000 features 1.3x (125 instead of 2,000).
_BLOCK_BUDGET = 1 << 17
# Step indices are int32 (the stream protocol's `t`), so a run ends by step 2**31 - 1.
_LAST_STEP = (1 << 31) - 1


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
    if block_size is None:
        # A block holds whole windows where one fits the memory budget; a longer
        # window spans blocks, which then depend on the tracking unit only.
        fits = _block_size(unit, stream.feature_dim, batch_size)
        multiple = math.lcm(unit, window)
        block_size = _block_size(multiple, stream.feature_dim, batch_size)
        if multiple > fits:
            block_size = fits
    else:
        block_size = positive_int("block_size", block_size)
        if block_size % unit:
            raise ValueError(
                f"block_size ({block_size}) must be a multiple of {unit}, the tracking "
                f"intervals' greatest common divisor"
            )
        if block_size % window and block_size > window:
            raise ValueError(
                f"block_size ({block_size}) must be a multiple of metrics_window "
                f"({window}) or smaller than it"
            )
    if block_size % window and window % unit:
        raise ValueError(
            f"metrics_window ({window}) spans blocks of {block_size} steps, so it must "
            f"be a multiple of {unit}, the tracking intervals' greatest common divisor"
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
    multiple of `multiple`): 250 steps for 30 seeds of 10 features, 125 for one seed
    of 1,000, 4 for 30 seeds of 1,000. When not even `multiple` steps fit, `multiple`
    (and `_make_plan` lets a metrics window span blocks instead).

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


def _state_arrays(tree) -> list[Array]:
    """The floating arrays of a learner that learning changes: every one but the
    fields marked as hyperparameters (`_checks.hyperparameter`) and the
    hyperparameters that `optax.inject_hyperparams` keeps in an optimizer state."""
    if isinstance(tree, optax.InjectHyperparamsState | optax.InjectStatefulHyperparamsState):
        return _state_arrays([getattr(tree, f) for f in tree._fields if f != "hyperparams"])
    if isinstance(tree, eqx.Module):
        return [
            array
            for field in dataclasses.fields(tree)
            if not field.metadata.get("hyperparameter") and not field.metadata.get("static")
            for array in _state_arrays(getattr(tree, field.name))
        ]
    if eqx.is_array(tree):
        return [tree] if eqx.is_inexact_array(tree) else []
    nodes = jax.tree.leaves(tree, is_leaf=lambda x: x is not tree and _has_hyperparameters(x))
    if len(nodes) == 1 and nodes[0] is tree:  # a leaf that is not an array
        return []
    return [array for node in nodes for array in _state_arrays(node)]


def _has_hyperparameters(node) -> bool:
    return isinstance(
        node,
        eqx.Module | optax.InjectHyperparamsState | optax.InjectStatefulHyperparamsState,
    )


def _learn(learner: AbstractLearner, timesteps: PyTree, t0, first, plan: _Plan):
    """Run the learner over a block of `timesteps` (steps `t0, t0 + 1, ...`): the
    sequential part of the loop. `first` is the first step after whose update a
    metric or an array of the learner's state was non-finite (-1 until one is)."""

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
    records = None
    if plan.unit == 1 and plan.step_size_tracking is None and plan.normalizer_tracking is None:
        learner, metrics = _filter_scan(step, learner, timesteps)
    else:

        def unit(learner, unit_timesteps):
            learner, metrics = _filter_scan(step, learner, unit_timesteps)
            return learner, (metrics, snapshot(learner))

        whole = n - n % plan.unit
        head = jax.tree.map(lambda a: a[:whole].reshape(-1, plan.unit, *a.shape[1:]), timesteps)
        learner, (metrics, records) = _filter_scan(unit, learner, head)
        metrics = _flatten(metrics)
        if whole < n:
            tail = jax.tree.map(lambda a: a[whole:], timesteps)
            learner, tail_metrics = _filter_scan(step, learner, tail)
            metrics = _join(metrics, tail_metrics)
    # The metrics are checked per step, vectorised after the scan (at no cost to the
    # sequential loop); `mean_step_size` is NaN by convention for optimizers without
    # step-sizes, and a diverging step-size shows in the optimizer's state. The state
    # is checked once, at the end of the block: checking it every step tripled the
    # time of a single small learner's loop. A state that became non-finite while
    # every metric of the block stayed finite is reported at the block's last step.
    bad = jnp.zeros(n, bool)
    for a in (metrics.squared_error, metrics.error, metrics.normalizer_mean_var):
        if a is not None:
            # per-head metrics (a multi-head learner's) carry a trailing axis
            bad = bad | ~jnp.isfinite(a).reshape(n, -1).all(-1)
    for a in _state_arrays(learner):
        bad = bad.at[-1].set(bad[-1] | ~jnp.all(jnp.isfinite(a)))
    found = jnp.where(bad.any(), t0 + jnp.argmax(bad).astype(jnp.int32), -1)
    return learner, jnp.where(first >= 0, first, found), metrics, records


def _check_chunk(stream: AbstractStream, learner: AbstractLearner, out, num_steps: int):
    """Check, once at trace time, that `stream.chunk` returned what the learner reads:
    a user's stream that returns the wrong rows would otherwise give metrics of the
    wrong length, silently."""
    where = f"{type(stream).__name__}.chunk"
    if not (isinstance(out, tuple) and len(out) == 2) or hasattr(out, "_fields"):
        raise TypeError(f"{where} must return a pair (timesteps, state), got {type(out).__name__}")
    expected = learner.timestep_type
    timesteps = out[0]
    if not isinstance(timesteps, expected):
        names = " or ".join(
            t.__name__ for t in (expected if isinstance(expected, tuple) else (expected,))
        )
        raise TypeError(
            f"{where} must return {names} timesteps for "
            f"{type(learner).__name__}, got {type(timesteps).__name__}"
        )
    for name, value in timesteps._asdict().items():
        if value is None:  # an optional field left out (`TDTimeStep.truncated`)
            continue
        shape = jnp.shape(value)
        if name in ("observation", "next_observation"):
            fits, wanted = (
                shape == (num_steps, stream.feature_dim),
                (num_steps, stream.feature_dim),
            )
        elif name == "target" and learner.target_shape != ():
            wanted = (num_steps, *learner.target_shape)
            fits = shape == wanted
        elif name == "target":  # a scalar per step; 0.2.x streams give shape (1,) per step
            fits, wanted = shape in ((num_steps,), (num_steps, 1)), (num_steps,)
        else:  # per step: a scalar, or a row (one probability per target policy)
            fits, wanted = shape[:1] == (num_steps,), (num_steps, "...")
        if not fits:
            raise ValueError(
                f"{where} must return {name} of shape {wanted} when asked for "
                f"num_steps={num_steps}, got {shape}"
            )


def _block(inner, stream: AbstractStream, t0, num_steps: int, plan: _Plan):
    """Generate steps `t0 .. t0 + num_steps - 1` and learn from them. `inner` is
    `(learner, stream_state, first)`; the metrics are per step, or per window when
    the block holds whole windows."""
    learner, stream_state, first = inner
    out = stream.chunk(stream_state, t0, num_steps)
    _check_chunk(stream, learner, out, num_steps)
    timesteps, stream_state = out
    learner, first, metrics, records = _learn(learner, timesteps, t0, first, plan)
    if plan.window > 1 and not plan.window_spans_blocks:
        metrics = jax.tree.map(
            lambda a: a.reshape(-1, plan.window, *a.shape[1:]).mean(axis=1), metrics
        )
    return (learner, stream_state, first), metrics, records


def _flatten(tree):
    return jax.tree.map(lambda a: a.reshape(-1, *a.shape[2:]), tree)


def _join(tree, more):
    return jax.tree.map(lambda a, b: jnp.concatenate([a, b]), tree, more)


def _blocks(carry, stream: AbstractStream, t0, num_steps: int, plan: _Plan, fold):
    """Steps `t0 .. t0 + num_steps - 1` as a scan over blocks of `plan.block` and a
    shorter tail block. `carry` is `(inner, acc)`; `fold(acc, metrics)` takes each
    block's metrics and returns the new `acc` and the block's output. Returns the
    carry, the stacked outputs and the stacked snapshot records."""
    num_blocks, tail = divmod(num_steps, plan.block)

    def body(carry, t):
        inner, acc = carry
        inner, metrics, records = _block(inner, stream, t, plan.block, plan)
        acc, out = fold(acc, metrics)
        return (inner, acc), (out, records)

    starts = t0 + jnp.arange(num_blocks, dtype=jnp.int32) * plan.block
    carry, (outs, records) = _filter_scan(body, carry, starts)
    outs, records = _flatten(outs), _flatten(records)
    if tail:
        inner, acc = carry
        t = t0 + jnp.int32(num_blocks * plan.block)
        inner, metrics, tail_records = _block(inner, stream, t, tail, plan)
        acc, out = fold(acc, metrics)
        carry = (inner, acc)
        outs, records = _join(outs, out), _join(records, tail_records)
    return carry, outs, records


def _kahan_add(total, x):
    """Add `x` to the compensated sum `total = (sum, compensation)` (Kahan): a window
    of 10^9 steps sums 10^5 block sums, which plain float32 addition would round
    away."""
    s, c = total
    y = jax.tree.map(jnp.subtract, x, c)
    t = jax.tree.map(jnp.add, s, y)
    return t, jax.tree.map(lambda t, s, y: (t - s) - y, t, s, y)


def _windows(inner, stream: AbstractStream, start, plan: _Plan):
    """The run as a scan over metrics windows longer than a block: each window is a
    scan over blocks whose metrics' sums are carried, so memory stays within one
    block whatever the window's length."""

    def fold(total, metrics):
        return _kahan_add(total, jax.tree.map(lambda a: a.sum(axis=0), metrics)), None

    shapes = eqx.filter_eval_shape(lambda i: _block(i, stream, start, plan.block, plan)[1], inner)
    zero = jax.tree.map(lambda a: jnp.zeros(a.shape[1:], a.dtype), shapes)

    def window(inner, w0):
        (inner, (total, _)), _, records = _blocks(
            (inner, (zero, zero)), stream, w0, plan.window, plan, fold
        )
        return inner, (jax.tree.map(lambda a: a / plan.window, total), records)

    starts = start + jnp.arange(plan.num_steps // plan.window, dtype=jnp.int32) * plan.window
    inner, (metrics, records) = _filter_scan(window, inner, starts)
    return inner, metrics, _flatten(records)


def _run(learner: AbstractLearner, stream: AbstractStream, stream_state, start, plan: _Plan):
    """One learner on one seed from step `start`; the batched runners vmap this."""
    inner = (learner, stream_state, jnp.asarray(-1, jnp.int32))
    if plan.window_spans_blocks:
        inner, metrics, records = _windows(inner, stream, start, plan)
    else:
        (inner, _), metrics, records = _blocks(
            (inner, None), stream, start, plan.num_steps, plan, lambda acc, m: (acc, m)
        )
    learner, stream_state, first = inner
    return RunResult(learner, metrics, *_histories(records, plan, start), stream_state, first)


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


def _start(start_step: int | np.integer, num_steps: int) -> Array:
    """The first step's index: an `int32`, as the streams' `t` is, so that a run
    must end by step `2**31 - 1`; a longer one is refused rather than wrapped to
    negative indices."""
    integer = isinstance(start_step, int | np.integer) and not isinstance(start_step, bool)
    if not integer or start_step < 0:
        raise ValueError(f"start_step must be an int >= 0, got {start_step!r}")
    start_step = int(start_step)
    if start_step + num_steps - 1 > _LAST_STEP:
        raise ValueError(
            f"start_step + num_steps must be at most 2**31 (step indices are int32), "
            f"got start_step={start_step}, num_steps={num_steps}"
        )
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
    if batched and keys.shape[0] == 0:
        raise ValueError(f"keys must hold at least one key, got shape {keys.shape}")
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
    start_step: int | np.integer = 0,
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
    return _run_single(learner, stream, stream_state, _start(start_step, plan.num_steps), plan)


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
    start_step: int | np.integer = 0,
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
    return _run_batched(
        learner, stream, stream_states, _start(start_step, plan.num_steps), plan, grid, paired
    )


class Divergence(NamedTuple):
    """Which runs of a (batched) result became non-finite, and when (NumPy arrays).

    **Fields:**

    - `diverged`: per run (shape: the result's batch axes), whether a metric or an
      array of the learner's state became NaN or infinite at some step.
    - `first_step`: the index of the first such step (its update produced the first
      non-finite value), or -1 where the run stayed finite.
    """

    diverged: Bool[np.ndarray, "*batch"]
    first_step: Int[np.ndarray, "*batch"]

    def summary(self) -> str:
        """One line naming every diverged run and its first non-finite step, for
        logs and the command line: `"2 of 30 runs diverged: run 4 at step 62, run 17
        at step 1018"` (`run (c, s)` for a grid's configuration `c` and seed `s`)."""
        bad = np.argwhere(self.diverged)
        if self.diverged.ndim == 0:
            return (
                f"diverged: first non-finite at step {int(self.first_step)}"
                if self.diverged
                else "did not diverge"
            )
        runs = ", ".join(
            f"run {int(i[0]) if len(i) == 1 else tuple(int(j) for j in i)} at step "
            f"{int(self.first_step[tuple(i)])}"
            for i in bad
        )
        total = self.diverged.size
        if not runs:
            return f"none of {total} runs diverged"
        return f"{len(bad)} of {total} runs diverged: {runs}"


def find_divergence(
    result: RunResult | Sequence[RunResult], metrics_window: int | None = None
) -> Divergence:
    """Report the runs of `result` that diverged, and the first non-finite step of
    each, rather than leaving NaNs to be found. The other runs of a batched result
    are unaffected and usable as they are.

    The runners check every step's metrics (`RunResult.first_nonfinite_step`), so
    the step is exact whatever the metrics window; a learner whose state became
    non-finite while its metrics stayed finite is found too, at the end of the block
    where it happened. Hyperparameters are not checked: an infinite `tau` is a
    choice, not a divergence.

    **Arguments:**

    - `result`: what `run_learning_loop` or `run_learning_loop_batched` returned; or
      the results of a run's consecutive segments (continued with `start_step`), in
      order, to report the first step over the whole run.
    - `metrics_window`: accepted for compatibility and not needed: the step is
      exact whatever the window.
    """
    results = [result] if isinstance(result, RunResult) else list(result)
    records = [r.first_nonfinite_step for r in results]
    if not records or any(r is None for r in records):
        raise ValueError(
            "find_divergence needs results returned by run_learning_loop or "
            "run_learning_loop_batched (their first_nonfinite_step)"
        )
    first = np.asarray(records[0]).astype(np.int64)
    for later in records[1:]:  # the earliest segment that has one names the step
        first = np.where(first >= 0, first, np.asarray(later))
    return Divergence(first >= 0, first)


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
