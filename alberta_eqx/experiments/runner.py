"""Multi-seed, multi-configuration experiments: each configuration runs over all seeds
as one compiled call of `run_learning_loop_batched`, and the curves come back as
NumPy arrays, one row per seed, ready for the summaries, statistics, plots and
exports of this package.

Every configuration of a seed learns from the same stream (the same stream key), so
comparisons between configurations can be paired by seed.
"""

from collections.abc import Callable, Mapping, Sequence
from typing import NamedTuple

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import Array, Float, Int, Key, PRNGKeyArray

from alberta_eqx._checks import non_negative_int, positive_int
from alberta_eqx.experiments.loggers import AbstractLogger, log_windows
from alberta_eqx.experiments.segments import Progress, in_segments
from alberta_eqx.learners import AbstractLearner
from alberta_eqx.runners import StepSizeHistory, StepSizeTrackingConfig
from alberta_eqx.streams import AbstractStream

LearnerFactory = Callable[[PRNGKeyArray], AbstractLearner]
"""Builds a learner from a key, for learners whose initialisation is random (an
`MLPLearner`, say); called once per seed with that seed's learner key."""


class ExperimentResult(NamedTuple):
    """What `run_experiment` returns: per configuration, per seed curves.

    **Fields:**

    - `curves`: `curves[config][metric]` is a `(seeds, windows)` NumPy array, each
      entry the metric averaged over one window of `metrics_window` steps. The
      metrics are the fields of `StepMetrics` that the learner reports
      (`squared_error`, `error`, `mean_step_size`, and `normalizer_mean_var` with a
      normalizer). A run that diverged is non-finite from the window where it did,
      and so is any summary that includes it.
    - `step_size_histories`: per configuration, a `StepSizeHistory` of NumPy arrays
      with a leading `(seeds,)` axis; None when step-sizes were not tracked.
    - `seeds`: the seeds, in the order of the curves' rows.
    - `num_steps`: the steps each run learned from.
    - `metrics_window`: the steps averaged into each curve entry.
    """

    curves: dict[str, dict[str, Float[np.ndarray, "seeds windows"]]]
    step_size_histories: dict[str, StepSizeHistory] | None
    seeds: tuple[int, ...]
    num_steps: int
    metrics_window: int

    @property
    def configs(self) -> list[str]:
        """The configuration names, in the order they were given."""
        return list(self.curves)

    @property
    def steps(self) -> Int[np.ndarray, " windows"]:
        """The number of steps learned by the end of each window: the x axis of a
        learning curve."""
        windows = self.num_steps // self.metrics_window
        return np.arange(1, windows + 1) * self.metrics_window

    def curve(
        self, config: str, metric: str = "squared_error"
    ) -> Float[np.ndarray, "seeds windows"]:
        """The `(seeds, windows)` curve of `metric` for `config`; raises naming the
        configurations or metrics there are when either is unknown."""
        if config not in self.curves:
            raise KeyError(f"config {config!r} is not in this result; it has {self.configs}")
        metrics = self.curves[config]
        if metric not in metrics:
            raise KeyError(f"metric {metric!r} was not recorded; there are {sorted(metrics)}")
        return metrics[metric]


def seed_numbers(seeds: int | Sequence[int]) -> tuple[int, ...]:
    """The seeds `seeds` names: a count `n` is seeds `0 .. n - 1`, a list its own
    (non-negative ints); anything else raises a `ValueError` naming `seeds`."""
    if isinstance(seeds, int):
        return tuple(range(positive_int("seeds", seeds)))
    if isinstance(seeds, str) or not isinstance(seeds, Sequence) or not seeds:
        raise ValueError(f"seeds must be a count >= 1 or a non-empty list of ints, got {seeds!r}")
    return tuple(non_negative_int(f"seeds[{i}]", s) for i, s in enumerate(seeds))


def seed_keys(seed: int) -> tuple[PRNGKeyArray, PRNGKeyArray]:
    """The `(stream key, learner key)` of one seed of `run_experiment`:
    `jax.random.split(jax.random.key(seed))`. A seed's run there equals
    `run_learning_loop(learner, stream, num_steps, stream_key)`."""
    stream_key, learner_key = jax.random.split(jax.random.key(seed))
    return stream_key, learner_key


def _seed_learners(
    name: str, config: AbstractLearner | LearnerFactory, learner_keys: Key[Array, " seeds"]
) -> AbstractLearner:
    """One learner per seed, stacked on a leading seed axis."""
    if isinstance(config, AbstractLearner):
        if config.batch_shape != ():
            raise ValueError(
                f"configs[{name!r}] has batch shape {config.batch_shape}: give one learner "
                "per configuration (run hyperparameter grids as separate configurations)"
            )
        # vmap broadcasts an output that does not depend on the key: the same initial
        # learner on every seed.
        return eqx.filter_vmap(lambda _: config)(learner_keys)
    if not callable(config):
        raise TypeError(
            f"configs[{name!r}] must be a learner or a function key -> learner, got "
            f"{type(config).__name__}"
        )
    learners = eqx.filter_vmap(config)(learner_keys)
    if not isinstance(learners, AbstractLearner):
        raise TypeError(
            f"configs[{name!r}] returned {type(learners).__name__}, not an alberta_eqx learner"
        )
    return learners


def run_experiment(
    configs: Mapping[str, AbstractLearner | LearnerFactory],
    stream: AbstractStream,
    num_steps: int,
    seeds: int | Sequence[int] = 10,
    *,
    metrics_window: int = 1,
    step_size_tracking: StepSizeTrackingConfig | None = None,
    progress: Progress | None = None,
    loggers: Sequence[AbstractLogger] = (),
) -> ExperimentResult:
    """Run every configuration on every seed: one compiled call per configuration,
    the seeds batched. Configurations of the same structure (the same learner and
    optimizer types, differing only in hyperparameter values) share one compilation.

    **Arguments:**

    - `configs`: a name for each configuration, mapped to a learner (every seed
      starts from it) or to a function `key -> learner`, called once per seed with
      that seed's learner key (for random initialisations).
    - `stream`: the stream, shared by all configurations.
    - `num_steps`: steps per run.
    - `seeds`: a count `k` (the seeds `0 .. k-1`) or a list of seeds. Seed `s` draws
      its stream from the first and its learner from the second key of
      `seed_keys(s)`; every configuration of a seed sees the same stream.
    - `metrics_window`: average the metrics over windows of this many steps (it must
      divide `num_steps`).
    - `step_size_tracking`: record the step-sizes every `interval` steps.
    - `progress`: called with the number of steps after each compiled segment (of
      each configuration in turn), for a progress bar; the segments continue one
      another exactly, so the numbers are those of one call.
    - `loggers`: experiment trackers (`make_logger`): each gets the experiment's
      settings first, then after each compiled segment its windows, every metric as
      `"config/metric"`, the mean over the seeds at the step that ends the window.
      Given, the run is segmented as for `progress`. The caller closes them.

    **Returns:** an `ExperimentResult`.
    """
    if not isinstance(configs, Mapping) or not configs:
        raise ValueError(f"configs must be a non-empty dict of name -> learner, got {configs!r}")
    for name in configs:
        if not isinstance(name, str):
            raise TypeError(f"configs' names must be strings, got {name!r}")
    seed_list = seed_numbers(seeds)
    keys = [seed_keys(s) for s in seed_list]
    stream_keys = jnp.stack([stream_key for stream_key, _ in keys])
    learner_keys = jnp.stack([learner_key for _, learner_key in keys])
    # Passing the stream states pairs the learners' seed axis with the seeds'.
    stream_states = eqx.filter_vmap(stream.init)(stream_keys)
    for logger in loggers:
        logger.log_settings(
            {
                "configs": list(configs),
                "seeds": list(seed_list),
                "num_steps": num_steps,
                "metrics_window": metrics_window,
            }
        )
    curves, histories = {}, {}
    for name, config in configs.items():

        def log(start: int, result, name: str = name) -> None:
            log_windows(loggers, result.metrics._asdict(), start, metrics_window, prefix=name)

        results = in_segments(
            _seed_learners(name, config, learner_keys),
            stream,
            num_steps,
            stream_keys,
            progress,
            stream_states=stream_states,
            metrics_window=metrics_window,
            step_size_tracking=step_size_tracking,
            on_segment=log if loggers else None,
        )
        curves[name] = {
            # (seeds, windows, ...): a Horde's questions or a learner's heads come last
            metric: np.concatenate([np.asarray(getattr(r.metrics, metric)) for r in results], 1)
            for metric, values in results[0].metrics._asdict().items()
            if values is not None
        }
        histories[name] = jax.tree.map(
            lambda *parts: np.concatenate([np.asarray(p) for p in parts], axis=1),
            *(r.step_size_history for r in results),
        )
    return ExperimentResult(
        curves=curves,
        step_size_histories=None if step_size_tracking is None else histories,
        seeds=seed_list,
        num_steps=num_steps,
        metrics_window=metrics_window,
    )
