"""The runners: `run_learning_loop` for one seed and `run_learning_loop_batched` for
many seeds (and configurations), each one program compiled per structure."""

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from alberta_eqx.learners import AbstractLearner, StepSizeSnapshot
from alberta_eqx.runners._plan import _check_keys, _make_plan, _Plan, _start
from alberta_eqx.runners._results import (
    NormalizerHistory,
    NormalizerTrackingConfig,
    PlasticityHistory,
    PlasticityTrackingConfig,
    RunResult,
    StepSizeHistory,
    StepSizeTrackingConfig,
)
from alberta_eqx.runners._scan import _blocks
from alberta_eqx.runners._window_sums import _windows
from alberta_eqx.streams import AbstractStream, StreamState


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
    step_size_history, normalizer_history, plasticity_history = _histories(records, plan, start)
    return RunResult(
        learner,
        metrics,
        step_size_history,
        normalizer_history,
        stream_state,
        first,
        plasticity_history,
    )


def _histories(records, plan: _Plan, start):
    """Split the per-unit snapshots into each tracker's history at its own interval."""
    if records is None:
        return None, None, None
    step_sizes, normalizer, plasticity = records

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
            snap.step_sizes, snap.bias_step_sizes, indices, snap.step_size_normalizers
        )
    if plan.normalizer_tracking is not None:
        pick, indices = every(plan.normalizer_tracking.interval)
        means, variances = jax.tree.map(pick, normalizer)
        norm_history = NormalizerHistory(means, variances, indices)
    plasticity_history = None
    if plan.plasticity_tracking is not None:
        pick, indices = every(plan.plasticity_tracking.interval)
        dormant, rank, stable, norm = jax.tree.map(pick, plasticity)
        plasticity_history = PlasticityHistory(dormant, rank, stable, norm, indices)
    return ss_history, norm_history, plasticity_history


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
    plasticity_tracking: PlasticityTrackingConfig | None = None,
) -> RunResult:
    """Run `learner` on `stream` for `num_steps` steps, compiled.

    ```python
    import jax
    from alberta_eqx import IDBD, DriftingTargetStream, LinearLearner, run_learning_loop

    stream = DriftingTargetStream(3)
    learner = LinearLearner(3, IDBD(0.01, meta_step_size=0.01))
    result = run_learning_loop(learner, stream, 1000, jax.random.key(0), metrics_window=100)
    result.metrics.squared_error.shape  # (10,): the mean of each window of 100 steps
    result.learner  # the learner after 1,000 steps
    ```

    **Arguments:**

    - `learner`: any learner (`LinearLearner`, ...), already built.
    - `stream`: the stream; its `feature_dim` must match the learner's.
    - `num_steps`: how many examples to learn from.
    - `key`: the stream's random key.
    - `step_size_tracking`: record step-sizes every `interval` steps.
    - `normalizer_tracking`: record the normalizer's statistics every `interval` steps.
    - `plasticity_tracking`: record the network's plasticity measures (dormant
      fraction and effective rank per hidden layer, stable rank per weight matrix,
      weight norm) every `interval` steps, for a learner of an `alberta_eqx.nn.MLP`.
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
        plasticity_tracking,
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
    plasticity_tracking: PlasticityTrackingConfig | None = None,
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

    ```python
    import equinox as eqx
    import jax
    import jax.numpy as jnp
    from alberta_eqx import IDBD, DriftingTargetStream, LinearLearner, run_learning_loop_batched

    # two initial step-sizes (a batched learner) on four seeds, as one compiled program
    learners = eqx.filter_vmap(lambda a: LinearLearner(3, IDBD(a, meta_step_size=0.01)))(
        jnp.array([0.01, 0.03])
    )
    keys = jax.random.split(jax.random.key(0), 4)
    result = run_learning_loop_batched(
        learners, DriftingTargetStream(3), 1000, keys, metrics_window=100
    )
    result.metrics.squared_error.shape  # (2, 4, 10): configurations, seeds, windows
    ```
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
        plasticity_tracking,
    )
    if stream_states is None:
        stream_states = eqx.filter_vmap(stream.init)(keys)
    return _run_batched(
        learner, stream, stream_states, _start(start_step, plan.num_steps), plan, grid, paired
    )
