"""The published experiments, each one compiled program over all configurations and
seeds. The test suite and the command line both call these.

- Sutton (1992), Experiment 1 (Figure 3): tracking error of LMS and IDBD.
- Sutton (1992), Experiment 2 (Figure 4): the step-sizes IDBD learns.
- Mahmood et al. (2012): Autostep's invariance to the scale of the target.
"""

from collections.abc import Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.experiments._segments import Progress, in_segments
from alberta_eqx.learners import LinearLearner
from alberta_eqx.optimizers import IDBD, LMS, Autostep
from alberta_eqx.runners import (
    StepSizeHistory,
    StepSizeTrackingConfig,
    run_learning_loop_batched,
)
from alberta_eqx.streams import ScaledStreamWrapper, SuttonExperiment1Stream

# A seed is unstable when its final-window error is more than this many times the
# median of its configuration's seeds (far above the others), or more than this many
# times its own previous window's (growing). Stable seeds of Experiment 1 stay within
# 10% of both; the seeds past IDBD's edge of stability sit at 3x to 80x.
UNSTABLE_FACTOR = 2.0


class Sweep(NamedTuple):
    """Final-window mean squared error over a swept hyperparameter.

    **Fields:**

    - `values`: the swept hyperparameter, shape `(configurations,)`.
    - `per_seed`: the error of each configuration on each seed, `(configurations, seeds)`;
      non-finite where a run diverged.
    - `mean`, `stderr`: over the seeds whose run stayed finite, `(configurations,)`.
    - `diverged`: how many seeds' runs became non-finite, `(configurations,)`.
    - `unstable`: `(configurations, seeds)`, whether each seed's run is unstable:
      non-finite, or its final error more than `UNSTABLE_FACTOR` times the median of
      its configuration's seeds, or more than `UNSTABLE_FACTOR` times its own error
      one window earlier (still growing). A meta step-size past the edge of stability
      shows up here long before it shows up as NaN.
    """

    values: np.ndarray
    per_seed: np.ndarray
    mean: np.ndarray
    stderr: np.ndarray
    diverged: np.ndarray
    unstable: np.ndarray

    @property
    def num_unstable(self) -> np.ndarray:
        """How many seeds are unstable, per configuration."""
        return self.unstable.sum(axis=1)

    @property
    def best(self) -> tuple[float, float]:
        """`(value, mean error)` of the configuration with the lowest mean error among
        those with no unstable seed (a mean over the stable seeds of an unstable
        configuration would flatter it); NaN when every configuration has one."""
        mean = np.where(self.unstable.any(axis=1), np.nan, self.mean)
        if np.all(np.isnan(mean)):
            return float("nan"), float("nan")
        i = int(np.nanargmin(mean))
        return float(self.values[i]), float(self.mean[i])


def _sweep(values, per_seed, previous) -> Sweep:
    per_seed = np.asarray(per_seed, dtype=np.float64)
    previous = np.asarray(previous, dtype=np.float64)
    finite = np.isfinite(per_seed)
    count = finite.sum(axis=1)
    masked = np.where(finite, per_seed, 0.0)
    mean = np.where(count > 0, masked.sum(axis=1) / np.maximum(count, 1), np.nan)
    var = np.where(finite, (per_seed - mean[:, None]) ** 2, 0.0).sum(axis=1)
    stderr = np.where(
        count > 1, np.sqrt(var / np.maximum(count - 1, 1) / np.maximum(count, 1)), np.nan
    )
    with np.errstate(invalid="ignore"):
        median = np.nanmedian(np.where(finite, per_seed, np.nan), axis=1, keepdims=True)
        unstable = (
            ~finite
            | (per_seed > UNSTABLE_FACTOR * median)
            | (per_seed > UNSTABLE_FACTOR * previous)
        )
    return Sweep(np.asarray(values), per_seed, mean, stderr, per_seed.shape[1] - count, unstable)


def _final_windows(learners, stream, num_steps, eval_steps, keys, progress=None):
    """Each run's error over the last `eval_steps` and over the `eval_steps` before."""
    if num_steps % eval_steps or num_steps < 2 * eval_steps:
        raise ValueError(
            f"num_steps ({num_steps}) must be a multiple of eval_steps ({eval_steps}), "
            "at least two windows"
        )
    results = in_segments(learners, stream, num_steps, keys, progress, metrics_window=eval_steps)
    errors = np.concatenate([np.asarray(r.metrics.squared_error) for r in results], axis=-1)
    return errors[..., -1], errors[..., -2]


class Experiment1(NamedTuple):
    """Sutton (1992) Experiment 1: `lms` over step-sizes, `idbd` over meta step-sizes."""

    lms: Sweep
    idbd: Sweep


def sutton1992_experiment1(
    *,
    num_seeds: int = 30,
    lms_step_sizes: Sequence[float] = (0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.06, 0.07),
    idbd_meta_step_sizes: Sequence[float] = (0.001, 0.002, 0.005, 0.01, 0.015, 0.02),
    initial_step_size: float = 0.05,
    num_steps: int = 30_000,
    eval_steps: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> Experiment1:
    """Sutton (1992), Experiment 1 (Figure 3): 20 N(0, 1) inputs, the target the sum of
    the first five with signs in {+1, -1}, one sign flipping every 20 examples. After
    `num_steps - eval_steps` examples, the mean squared error over the last
    `eval_steps`. No bias, as in the paper. Paper: best LMS about 3.5 (near
    alpha = 0.04); IDBD about 1.5 over a broad range of theta. `eval_steps` defaults
    to `num_steps // 3` (the paper's 10,000 of 30,000). A seed is `unstable` (see
    `Sweep`) when its final error is far above its configuration's others' or still
    growing: past theta = 0.01 some seeds leave IDBD's region of stability.
    """
    eval_steps = num_steps // 3 if eval_steps is None else eval_steps
    stream = SuttonExperiment1Stream()
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    # One compiled program for the whole figure: each LMS step-size runs as IDBD with
    # theta = 0, which is exactly LMS (beta never moves; a test holds them equal).
    alphas = jnp.concatenate(
        [jnp.asarray(lms_step_sizes), jnp.full(len(idbd_meta_step_sizes), initial_step_size)]
    )
    thetas = jnp.concatenate([jnp.zeros(len(lms_step_sizes)), jnp.asarray(idbd_meta_step_sizes)])
    learners = eqx.filter_vmap(
        lambda alpha, theta: LinearLearner(
            stream.feature_dim, IDBD(alpha, meta_step_size=theta), use_bias=False
        )
    )(alphas, thetas)
    final, previous = _final_windows(learners, stream, num_steps, eval_steps, keys, progress)
    k = len(lms_step_sizes)
    return Experiment1(
        lms=_sweep(lms_step_sizes, final[:k], previous[:k]),
        idbd=_sweep(idbd_meta_step_sizes, final[k:], previous[k:]),
    )


class Experiment2(NamedTuple):
    """Sutton (1992) Experiment 2: the step-sizes IDBD ends with.

    **Fields:**

    - `relevant`: `(seeds, 5)` final step-sizes of the five relevant inputs.
    - `irrelevant`: `(seeds, 15)` final step-sizes of the fifteen irrelevant inputs.
    - `history`: the step-sizes recorded along the way, `(seeds, recordings, 20)`.
    """

    relevant: np.ndarray
    irrelevant: np.ndarray
    history: StepSizeHistory


def sutton1992_experiment2(
    *,
    num_seeds: int = 4,
    meta_step_size: float = 0.001,
    initial_step_size: float = 0.05,
    num_steps: int = 250_000,
    record_every: int = 1_000,
    seed: int = 0,
    progress: Progress | None = None,
) -> Experiment2:
    """Sutton (1992), Experiment 2 (Figure 4): IDBD with theta = 0.001 on the
    Experiment 1 task for 250,000 examples. Paper: the relevant step-sizes come to
    0.13 +- 0.015, the irrelevant ones below 0.007. A float64 NumPy transcription of
    the paper's algorithm ends with the irrelevant ones at 0.0075 to 0.0078 after
    250,000 examples, still falling, as this does. (`num_steps` must be a multiple of
    `record_every`.)
    """
    stream = SuttonExperiment1Stream()
    learner = LinearLearner(
        stream.feature_dim, IDBD(initial_step_size, meta_step_size=meta_step_size), use_bias=False
    )
    results = in_segments(
        learner,
        stream,
        num_steps,
        jax.random.split(jax.random.key(seed), num_seeds),
        progress,
        step_size_tracking=StepSizeTrackingConfig(record_every, include_bias=False),
        metrics_window=record_every,
    )
    final = results[-1].learner
    assert isinstance(final, LinearLearner)
    alphas = np.asarray(final.step_sizes)
    history = jax.tree.map(
        lambda *parts: jnp.concatenate(parts, axis=1), *(r.step_size_history for r in results)
    )
    return Experiment2(alphas[:, :5], alphas[:, 5:], history)


class AutostepScale(NamedTuple):
    """Autostep against LMS with the target rescaled by each of `scales`.

    **Fields:**

    - `scales`: `(k,)` the target scale factors.
    - `autostep`, `lms`: `(k, seeds)` final-window mean squared errors.
    - `step_sizes`: `(k, seeds, recordings, 21)` Autostep's step-sizes (weights and
      bias) recorded along the run.
    - `recording_steps`: `(recordings,)` how many examples had been learned at each
      recording.
    """

    scales: np.ndarray
    autostep: np.ndarray
    lms: np.ndarray
    step_sizes: np.ndarray
    recording_steps: np.ndarray


def autostep_scale(
    *,
    scales: Sequence[float] = (1e-3, 1.0, 1e3),
    num_seeds: int = 4,
    meta_step_size: float = 1e-2,
    tau: float = 1e4,
    num_steps: int = 30_000,
    eval_steps: int | None = None,
    record_every: int = 100,
    seed: int = 0,
    progress: Progress | None = None,
) -> AutostepScale:
    """Mahmood et al. (2012): Autostep (`mu = 1e-2`, `tau = 1e4`, step-sizes from
    `0.1 / n`, with a bias) on the Experiment 1 task with the target multiplied by
    each scale, against LMS at the same fixed step-size. Its step-size trajectory
    should not depend on the scale, and its error should scale as the square.
    `eval_steps` defaults to `num_steps // 3`; `progress` is called with the steps
    of each run (two per scale).
    """
    eval_steps = num_steps // 3 if eval_steps is None else eval_steps
    base = SuttonExperiment1Stream()
    dim = base.feature_dim
    alpha0 = 0.1 / (dim + 1)
    keys = jax.random.split(jax.random.key(seed), num_seeds)
    errors, lms_errors, alphas = [], [], []
    for scale in scales:
        stream = ScaledStreamWrapper(base, jnp.ones(dim), target_scale=scale)
        result = run_learning_loop_batched(
            LinearLearner(dim, Autostep(alpha0, meta_step_size=meta_step_size, tau=tau)),
            stream,
            num_steps,
            keys,
            step_size_tracking=StepSizeTrackingConfig(record_every),
            metrics_window=eval_steps,
        )
        errors.append(result.metrics.squared_error[:, -1])
        if progress is not None:
            progress(num_steps)
        history = result.step_size_history
        assert history is not None and history.bias_step_sizes is not None
        alphas.append(np.concatenate([history.step_sizes, history.bias_step_sizes[..., None]], -1))
        lms_final, _ = _final_windows(
            LinearLearner(dim, LMS(alpha0)), stream, num_steps, eval_steps, keys
        )
        lms_errors.append(lms_final)
        if progress is not None:
            progress(num_steps)
    return AutostepScale(
        np.asarray(scales),
        np.asarray(errors),
        np.asarray(lms_errors),
        np.asarray(alphas),
        np.asarray(history.recording_indices[0]) + 1,
    )
