"""A run's static plan, checked against its learner and stream: the block of steps
generated and learned at once, the metrics window and the tracking unit; and the checks
of a run's keys and first step."""

import math
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array

from alberta_eqx._checks import positive_int
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.nn import MLP
from alberta_eqx.runners._results import (
    NormalizerTrackingConfig,
    PlasticityTrackingConfig,
    StepSizeTrackingConfig,
)
from alberta_eqx.streams import AbstractStream


class _Plan(NamedTuple):
    """The static shape of a run (hashable, so it keys the compilation cache)."""

    num_steps: int
    block: int  # steps generated and learned per outer iteration
    unit: int  # steps between snapshots (1: no snapshots)
    window: int  # steps averaged into one metrics entry
    step_size_tracking: StepSizeTrackingConfig | None
    normalizer_tracking: NormalizerTrackingConfig | None
    plasticity_tracking: PlasticityTrackingConfig | None = None

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
    plasticity_tracking: PlasticityTrackingConfig | None = None,
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
        ("plasticity_tracking", plasticity_tracking),
    ):
        if config is None:
            continue
        interval = positive_int(f"{name}.interval", config.interval)
        if interval > num_steps:
            raise ValueError(f"{name}.interval ({interval}) must be <= num_steps ({num_steps})")
        intervals.append(interval)
    if normalizer_tracking is not None and learner.normalizer is None:
        raise ValueError("normalizer_tracking was given but the learner has no normalizer")
    if plasticity_tracking is not None:
        _check_plasticity_tracking(plasticity_tracking, learner)
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
        plasticity_tracking=plasticity_tracking,
    )


def _check_plasticity_tracking(config: object, learner: AbstractLearner) -> None:
    if not isinstance(config, PlasticityTrackingConfig):
        raise TypeError(
            f"plasticity_tracking must be a PlasticityTrackingConfig, got {type(config).__name__}"
        )
    if not isinstance(getattr(learner, "model", None), MLP):
        raise ValueError(
            "plasticity_tracking needs a learner of an alberta_eqx.nn.MLP (its .model)"
        )
    if config.probe.shape[1] != learner.feature_dim:
        raise ValueError(
            f"plasticity_tracking.probe must have {learner.feature_dim} columns (the "
            f"learner's feature_dim), got shape {config.probe.shape}"
        )


def block_steps(
    learner: AbstractLearner,
    stream: AbstractStream,
    num_seeds: int,
    *,
    metrics_window: int = 1,
    step_size_tracking: StepSizeTrackingConfig | None = None,
    normalizer_tracking: NormalizerTrackingConfig | None = None,
    block_size: int | None = None,
    plasticity_tracking: PlasticityTrackingConfig | None = None,
) -> int:
    """The steps `run_learning_loop_batched` generates and learns per compiled block
    for this learner, stream and batch: a run split at a multiple of it (and of the
    metrics window) continues bit for bit where it stopped.

    **Arguments:**

    - `learner`, `stream`: as the runner takes them.
    - `num_seeds`: the batch's number of seeds (the keys' leading axis).
    - `metrics_window`, `step_size_tracking`, `normalizer_tracking`, `block_size`,
      `plasticity_tracking`: the runner's options of the same names.
    """
    window = positive_int("metrics_window", metrics_window)
    plan = _make_plan(
        learner,
        stream,
        window << 20,  # the block does not depend on the run's length
        step_size_tracking,
        normalizer_tracking,
        window,
        num_seeds,
        block_size,
        plasticity_tracking,
    )
    return plan.block


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
