"""Kill-and-resume runs for tests/checkpoint/test_checkpoint.py, one process per part.

    python tests/_workers/resume_run.py first DIR   # steps [0, k) of every case, checkpointed
    python tests/_workers/resume_run.py second DIR  # load each checkpoint, steps [k, n)

Each part writes, per case, `DIR/<case>.<part>.npz`: the metrics, the histories and
the learner's and stream state's leaves after the part. The first part ends by
killing its own process (SIGKILL: no interpreter shutdown), as a crash would. The
test runs the whole `n` steps itself and compares bit for bit.
"""

import os
import signal
import sys
from pathlib import Path
from typing import NamedTuple

import equinox as eqx
import jax
import numpy as np

from alberta_eqx import (
    IDBD,
    Autostep,
    DriftingTargetStream,
    EMANormalizer,
    LinearLearner,
    NormalizerTrackingConfig,
    PeriodicChangeStream,
    ScaleDriftStream,
    StepSizeTrackingConfig,
    SuttonExperiment1Stream,
    run_learning_loop,
    run_learning_loop_batched,
)
from alberta_eqx.checkpoint import load_checkpoint, save_checkpoint


class Case(NamedTuple):
    learner: object
    stream: object
    num_steps: int
    split: int  # the step the run is stopped at: a multiple of the block size
    options: dict
    seeds: int = 0  # 0: run_learning_loop; else run_learning_loop_batched


def cases() -> dict[str, Case]:
    """Built afresh in each process, as a user's script would."""
    return {
        "drifting-target-idbd": Case(
            LinearLearner(10, IDBD(0.01, meta_step_size=0.05)), DriftingTargetStream(10),
            3000, 1500,
            {"block_size": 500},
        ),
        "drifting-target-autostep-tracked": Case(
            LinearLearner(10, Autostep(0.02)), DriftingTargetStream(10), 3130, 1000,
            {"block_size": 500, "step_size_tracking": StepSizeTrackingConfig(100)},
        ),
        "periodic-idbd-tracked-windowed": Case(
            LinearLearner(8, IDBD(0.02, meta_step_size=0.02)),
            PeriodicChangeStream(8, period=700), 2000, 800,
            {
                "block_size": 200,
                "metrics_window": 10,
                "step_size_tracking": StepSizeTrackingConfig(50, include_bias=False),
            },
        ),
        "sutton-autostep-tracked": Case(
            LinearLearner(20, Autostep(0.01)), SuttonExperiment1Stream(), 2500, 1500,
            {"block_size": 500, "step_size_tracking": StepSizeTrackingConfig(100)},
        ),
        "scale-drift-idbd-normalized": Case(
            LinearLearner(5, IDBD(0.01, meta_step_size=0.01), normalizer=EMANormalizer()),
            ScaleDriftStream(5, scale_drift_rate=0.05), 1200, 600,
            {"block_size": 300, "normalizer_tracking": NormalizerTrackingConfig(100)},
        ),
        # The default block size, 10000 steps: any multiple of it is a split step. Whole
        # blocks only (a tail, compiled as a second copy of the block, is covered above).
        "drifting-target-idbd-default-blocks": Case(
            LinearLearner(10, IDBD(0.01, meta_step_size=0.01)),
            DriftingTargetStream(10), 40_000, 20_000, {}
        ),
        "drifting-target-idbd-batched": Case(
            LinearLearner(5, IDBD(0.01, meta_step_size=0.05)), DriftingTargetStream(5), 2000, 800,
            {"block_size": 400, "step_size_tracking": StepSizeTrackingConfig(200)}, seeds=3,
        ),
    }  # fmt: skip


def key_of(case: Case):
    key = jax.random.key(7)
    return jax.random.split(key, case.seeds) if case.seeds else key


def run(case: Case, learner, num_steps: int, **continuation):
    """`run_learning_loop` or its batched twin, with the case's options."""
    if case.seeds:
        if "stream_state" in continuation:
            continuation["stream_states"] = continuation.pop("stream_state")
        runner = run_learning_loop_batched
    else:
        runner = run_learning_loop
    return runner(learner, case.stream, num_steps, key_of(case), **case.options, **continuation)


def initial_stream_state(case: Case):
    if case.seeds:
        return eqx.filter_vmap(case.stream.init)(key_of(case))
    return case.stream.init(key_of(case))


def learner_template(case: Case):
    """A learner shaped like the saved one: a batched run's has a seed axis."""
    if not case.seeds:
        return case.learner
    return eqx.filter_vmap(lambda: case.learner, axis_size=case.seeds)()


def arrays(result) -> dict[str, np.ndarray]:
    """Every array a part produced, flat, by name."""
    out = {}
    for name, value in result.metrics._asdict().items():
        if value is not None:
            out[f"metrics.{name}"] = np.asarray(value)
    for prefix, history in (("ss", result.step_size_history), ("norm", result.normalizer_history)):
        for name, value in ({} if history is None else history._asdict()).items():
            if value is not None:
                out[f"{prefix}.{name}"] = np.asarray(value)
    for i, leaf in enumerate(jax.tree.leaves(eqx.filter(result.learner, eqx.is_array))):
        out[f"learner.{i}"] = np.asarray(leaf)
    stream_state = jax.tree.map(
        lambda a: (
            jax.random.key_data(a) if jax.dtypes.issubdtype(a.dtype, jax.dtypes.prng_key) else a
        ),
        result.stream_state,
    )
    for i, leaf in enumerate(jax.tree.leaves(stream_state)):
        out[f"stream.{i}"] = np.asarray(leaf)
    return out


def first(directory: Path) -> None:
    for name, case in cases().items():
        result = run(case, case.learner, case.split)
        save_checkpoint(
            directory / f"{name}.ckpt",
            result.learner,
            stream_state=result.stream_state,
            step=case.split,
        )
        np.savez(directory / f"{name}.first.npz", **arrays(result))
    os.kill(os.getpid(), signal.SIGKILL)


def second(directory: Path) -> None:
    for name, case in cases().items():
        checkpoint = load_checkpoint(
            directory / f"{name}.ckpt",
            learner_template(case),
            like_stream_state=initial_stream_state(case),
        )
        result = run(
            case,
            checkpoint.learner,
            case.num_steps - checkpoint.step,
            stream_state=checkpoint.stream_state,
            start_step=checkpoint.step,
        )
        np.savez(directory / f"{name}.second.npz", **arrays(result))


if __name__ == "__main__":
    part, directory = sys.argv[1], Path(sys.argv[2])
    {"first": first, "second": second}[part](directory)
