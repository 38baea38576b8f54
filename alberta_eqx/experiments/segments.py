"""Running a batched experiment in segments, so that progress can be reported between
compiled calls within seconds of the start, whatever the run's length (the
replications, `run_experiment` and the command line use it).

A segment boundary is always a multiple of the runner's block size (and of the
metrics window), so a segmented run continues exactly where the previous segment
stopped and gives the same numbers, bit for bit, as one call
(`run_learning_loop`'s `start_step`). The segments are sized by measured
throughput:

1. one block, which compiles the one-block program (its time is compilation, and
   is kept out of the rate);
2. one more block, already compiled: its time measures the throughput;
3. segments of `k` blocks, `k` chosen so that one takes about `seconds_per_update`;
   the first of them compiles the `k`-block program and is kept out of the rate too;
4. the remainder in one call.

Two or three programs are compiled instead of one; `docs/cli.md` quotes the cost.
"""

import math
import time
from collections.abc import Callable

import equinox as eqx
import jax
import jax.numpy as jnp

from alberta_eqx.runners import RunResult, block_steps, run_learning_loop_batched

Progress = Callable[[int], None]
"""Called with the number of steps just completed (tqdm's `update` is one)."""

OnSegment = Callable[[int, RunResult], None]
"""Called as `on_segment(start, result)` after each compiled segment, with the steps
learned before it and its result (its windows of metrics): what experiment trackers
log, after the compiled call has returned."""


class Rate:
    """Steps per second measured over already-compiled segments only, and the time
    compilation added to the segments that compiled; `eta` is the time left at that
    rate, with the compilations still to come (`compiles_ahead`, which `in_segments`
    sets after each segment) at their measured mean. None until one compiled segment
    ran."""

    def __init__(self) -> None:
        self.steps = 0
        self.seconds = 0.0
        self.compiles_ahead = 0
        self._compiling: list[tuple[int, float]] = []  # (steps, seconds) of compiling segments

    def add(self, steps: int, seconds: float, *, compiled: bool = False) -> None:
        """Count a segment of `steps` that took `seconds`; `compiled`: its program
        was compiled first (its time is compilation plus `steps` at the rate)."""
        if compiled:
            self._compiling.append((steps, seconds))
        else:
            self.steps += steps
            self.seconds += seconds

    @property
    def per_second(self) -> float | None:
        return self.steps / self.seconds if self.seconds > 0 and self.steps else None

    @property
    def compile_seconds(self) -> float | None:
        """The mean time a compilation added to its segment (None before a rate)."""
        rate = self.per_second
        if rate is None or not self._compiling:
            return None
        return sum(max(0.0, s - n / rate) for n, s in self._compiling) / len(self._compiling)

    def eta(self, steps_left: int) -> float | None:
        rate = self.per_second
        if rate is None:
            return None
        return steps_left / rate + self.compiles_ahead * (self.compile_seconds or 0.0)


def segment_unit(learners, stream, keys, options: dict) -> int:
    """The steps every segment boundary must be a multiple of: the runner's block
    size for this learner, stream and batch (and the metrics window)."""
    window = options.get("metrics_window", 1)
    block = block_steps(
        learners,
        stream,
        keys.shape[0],
        metrics_window=window,
        step_size_tracking=options.get("step_size_tracking"),
        normalizer_tracking=options.get("normalizer_tracking"),
        block_size=options.get("block_size"),
        plasticity_tracking=options.get("plasticity_tracking"),
    )
    return math.lcm(block, window)


def seed_paired(build, stream, keys) -> tuple:
    """One learner per seed, `build(key)` from that seed's key, with that seed's stream
    state: the learners' batch shape is (1, seeds), for `in_segments(...,
    stream_states=...)` (each seed's learner meets only its own stream)."""
    learners = eqx.filter_vmap(eqx.filter_vmap(build))(keys[None])
    return learners, eqx.filter_vmap(stream.init)(keys)


def in_segments(
    learners,
    stream,
    num_steps: int,
    keys,
    progress: Progress | None,
    *,
    stream_states=None,
    segment_steps: int | None = None,
    seconds_per_update: float = 1.0,
    rate: Rate | None = None,
    on_segment: OnSegment | None = None,
    **options,
) -> list[RunResult]:
    """`run_learning_loop_batched` in segments, calling `progress(steps)` after each.

    **Arguments:**

    - `learners`, `stream`, `num_steps`, `keys`, `**options`: as
      `run_learning_loop_batched`.
    - `progress`: called with the steps of each segment; None (with `on_segment`
      None too) runs one call.
    - `stream_states`: the seeds' stream states, when the learners already carry a
      seed axis (paired); otherwise the learners are paired with the seeds here.
    - `segment_steps`: segments of exactly this many steps (a multiple of the block
      size, for exact continuation), run even when `progress` is None: for callers
      that measure the learners between segments.
    - `seconds_per_update`: the time a segment should take once compiled.
    - `rate`: a `Rate` that receives the steps and seconds of compiled segments (for
      a time estimate that excludes compilation); by default `progress.rate` when
      `progress` has one.
    - `on_segment`: called as `on_segment(start, result)` after each segment (for
      experiment trackers); given, the run is segmented as for `progress`.

    **Returns:** the segments' results, in order (one when `progress` is None).
    """
    if progress is None and segment_steps is None and on_segment is None:
        return [
            run_learning_loop_batched(
                learners, stream, num_steps, keys, stream_states=stream_states, **options
            )
        ]
    unit = segment_unit(learners, stream, keys, options)
    if stream_states is None:
        num_seeds = keys.shape[0]
        axis = len(learners.batch_shape)
        learners = jax.tree.map(
            lambda a: (
                jnp.repeat(jnp.expand_dims(a, axis), num_seeds, axis) if eqx.is_array(a) else a
            ),
            learners,
        )
        stream_states = eqx.filter_vmap(stream.init)(keys)
    if rate is None:
        rate = getattr(progress, "rate", None) or Rate()
    results: list[RunResult] = []
    compiled: set[int] = set()

    def resize(start: int, size: int) -> int:
        """Once two blocks have run, segments sized by the measured throughput."""
        if segment_steps is None and start >= 2 * unit and size == unit and rate.per_second:
            return unit * max(1, int(seconds_per_update * rate.per_second / unit))
        return size

    def length(start: int, size: int) -> int:
        if segment_steps is not None:
            return min(size, num_steps - start)
        return num_steps - start if num_steps - start < size + unit else size

    def sizes_ahead(start: int, size: int) -> set[int]:
        sizes = set()
        while start < num_steps:
            size = resize(start, size)
            sizes.add(length(start, size))
            start += length(start, size)
        return sizes

    start = 0
    size = unit if segment_steps is None else segment_steps
    while start < num_steps:
        size = resize(start, size)
        n = length(start, size)
        began = time.perf_counter()
        result = run_learning_loop_batched(
            learners, stream, n, keys, stream_states=stream_states, start_step=start, **options
        )
        jax.block_until_ready(result.metrics)
        rate.add(n, time.perf_counter() - began, compiled=n not in compiled)
        compiled.add(n)
        learners, stream_states = result.learner, result.stream_state
        results.append(result)
        if on_segment is not None:
            on_segment(start, result)
        start += n
        # a segment of a size not run yet (the tail, say) compiles a program of its own
        rate.compiles_ahead = len(sizes_ahead(start, size) - compiled)
        if progress is not None:
            progress(n)
    return results
