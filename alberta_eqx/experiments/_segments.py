"""Running a batched experiment in segments, so that a progress bar can report
between compiled calls (the replications and the command line use it)."""

from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from alberta_eqx.runners import RunResult, run_learning_loop_batched

Progress = Callable[[int], None]


def in_segments(
    learners, stream, num_steps: int, keys, segment: int, progress: Progress | None, **options
) -> list[RunResult]:
    """`run_learning_loop_batched` in segments of `segment` steps, calling
    `progress(segment)` after each. Learners are paired with seeds from the start,
    so that every segment runs the same compiled program."""
    if segment >= num_steps:
        result = run_learning_loop_batched(learners, stream, num_steps, keys, **options)
        if progress is not None:
            progress(num_steps)
        return [result]
    num_seeds = keys.shape[0]
    axis = len(learners.batch_shape)
    learners = jax.tree.map(
        lambda a: jnp.repeat(jnp.expand_dims(a, axis), num_seeds, axis) if eqx.is_array(a) else a,
        learners,
    )
    states = eqx.filter_vmap(stream.init)(keys)
    results = []
    for start in range(0, num_steps, segment):
        result = run_learning_loop_batched(
            learners, stream, segment, keys, stream_states=states, start_step=start, **options
        )
        learners, states = result.learner, result.stream_state
        results.append(result)
        if progress is not None:
            progress(segment)
    return results
