"""Mahmood et al. (2012): Autostep's invariance to the scale of the target, on Sutton
(1992)'s Experiment 1 task: its run, its printed table, its checks and its figure."""

from collections.abc import Sequence
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from alberta_eqx.experiments.plots import pyplot
from alberta_eqx.experiments.segments import Progress
from alberta_eqx.learners import LinearLearner
from alberta_eqx.optimizers import LMS, Autostep
from alberta_eqx.replications.sutton1992 import _final_windows
from alberta_eqx.replications.verdicts import Check, Replication
from alberta_eqx.runners import StepSizeTrackingConfig, run_learning_loop_batched
from alberta_eqx.streams import ScaledStreamWrapper, SuttonExperiment1Stream


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


# --- Mahmood et al. (2012): Autostep's invariance to the target's scale -----------

# Our reference computation, not the paper's numbers: Table 1's Autostep and LMS in
# NumPy float64 at scale 1, 30,000 examples, 100 seeds (`python -m tests._reference.runs`).
_AUTOSTEP_REFERENCE = {"autostep": 2.27, "lms": 4.45}


def _scale_report(result: AutostepScale) -> list[str]:
    lines = [
        f"target x{scale:g}: Autostep MSE / scale^2 {a.mean() / scale**2:.3f} (our float64 "
        f"reference {_AUTOSTEP_REFERENCE['autostep']} at 30,000 examples, 100 seeds), LMS "
        f"{lms.mean() / scale**2:.3f} (reference {_AUTOSTEP_REFERENCE['lms']})"
        for scale, a, lms in zip(result.scales, result.autostep, result.lms, strict=True)
    ]
    reference = int(np.argmin(np.abs(np.log(result.scales))))
    spread = np.max(np.abs(result.step_sizes / result.step_sizes[reference : reference + 1] - 1))
    lines.append(f"largest relative difference between the scales' step-sizes: {spread:.1e}")
    return lines


def _scale_figure(result: AutostepScale) -> Any:
    plt = pyplot()
    fig, ax = plt.subplots(figsize=(6.5, 4.5), layout="constrained")
    # seed 0's relevant and irrelevant inputs; every scale is drawn, and the lines
    # should lie on top of one another
    for i, scale in enumerate(result.scales):
        style = ("-", "--", ":", "-.")[i % 4]
        alphas, steps = result.step_sizes[i, 0], result.recording_steps
        ax.plot(steps, alphas[:, :5], c="C0", ls=style, lw=1)
        ax.plot(steps, alphas[:, 5:20], c="C1", ls=style, lw=1)
        ax.plot([], [], c="k", ls=style, label=f"target x{scale:g}")
    ax.plot([], [], c="C0", label="relevant inputs")
    ax.plot([], [], c="C1", label="irrelevant inputs")
    dim = result.step_sizes.shape[-1]
    ax.axhline(0.1 / dim, c="gray", ls="--", label=f"paper: initial 0.1/n = {0.1 / dim:.3g}")
    ax.set(xlabel="examples", ylabel="Autostep step-size (seed 0)", yscale="log")
    ax.set_title("Mahmood et al. (2012), Autostep: step-sizes under target scales")
    ax.legend(fontsize=8)
    return fig


def _relative_spread(values: np.ndarray, scales: np.ndarray) -> float:
    """The largest relative difference of `values` (one per scale, first axis) from
    those at the scale nearest 1."""
    reference = int(np.argmin(np.abs(np.log(scales))))
    return float(np.max(np.abs(values / values[reference : reference + 1] - 1)))


def _scale_step_sizes(result: AutostepScale) -> tuple[bool, str]:
    spread = _relative_spread(result.step_sizes, result.scales)
    return spread < 1e-2, f"largest relative difference {spread:.1e}"


def _scale_errors(result: AutostepScale) -> tuple[bool, str]:
    normalized = result.autostep.mean(axis=1) / result.scales**2
    spread = _relative_spread(normalized, result.scales)
    shown = ", ".join(f"{e:.3f}" for e in normalized)
    return spread < 1e-2, f"MSE / scale^2 {shown}; largest relative difference {spread:.1e}"


_SCALE_CHECKS = (
    Check(
        "Mahmood et al. (2012): Autostep's step-sizes do not depend on the target's "
        "scale (relative differences below 1%)",
        _scale_step_sizes,
    ),
    Check(
        "Mahmood et al. (2012): Autostep's error scales as the square of the target's "
        "scale (MSE / scale^2 equal within 1%)",
        _scale_errors,
    ),
)


AUTOSTEP_SCALE = Replication(
    title="Mahmood et al. (2012)",
    paper="Mahmood et al. (2012): Autostep's step-sizes do not depend on the target's "
    "scale, so its error scales as the target's square. Our float64 reference "
    "computation of Table 1 (not the paper's numbers): MSE 2.27 against LMS's 4.45 at "
    "scale 1, 100 seeds",
    run=lambda seeds, steps, progress: autostep_scale(
        num_seeds=seeds, num_steps=steps, progress=progress
    ),
    seeds=4,
    steps=30_000,
    quick_steps=6_000,
    steps_multiple=300,
    total=lambda steps: 6 * steps,  # Autostep and LMS at three scales
    report=_scale_report,
    figure=_scale_figure,
    filename="autostep_scale.png",
    checks=_SCALE_CHECKS,
)
