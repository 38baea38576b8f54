"""Experiment trackers: a run's settings and the metrics of each window, sent to
TensorBoard event files or to Weights & Biases.

A logger receives what a compiled run has already returned: `run_experiment` and the
command line call it after each compiled segment (`in_segments`' `on_segment`) with
the windows of that segment, never from inside the compiled loop. Neither tracker is
imported before a logger is made, so the library imports without them; each is an
extra (`pip install 'alberta_eqx[tensorboard]'`, `'alberta_eqx[wandb]'`).
"""

import abc
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

FORMS = "tensorboard:DIR or wandb:PROJECT"
"""The forms `make_logger` (and the command line's `--log`) accepts."""


class AbstractLogger(abc.ABC):
    """Where a run's settings and metrics go. A logger can be used as a context
    manager, which closes it."""

    @abc.abstractmethod
    def log_settings(self, settings: Mapping[str, Any]) -> None:
        """Record the run's settings (merged with any recorded before).

        **Arguments:**

        - `settings`: names mapped to JSON-like values.
        """

    @abc.abstractmethod
    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        """Record scalar metrics at a step.

        **Arguments:**

        - `step`: the steps learned when the metrics were measured (the x axis).
        - `metrics`: names (`"config/metric"`) mapped to numbers.
        """

    @abc.abstractmethod
    def close(self) -> None:
        """Write out what is pending and release the files or the run."""

    def __enter__(self) -> "AbstractLogger":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _require(module: str, extra: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError:
        raise ImportError(
            f"logging to {extra} needs {module}: pip install 'alberta_eqx[{extra}]'"
        ) from None


class TensorBoardLogger(AbstractLogger):
    """Writes TensorBoard event files (through tensorboardX): each metric a scalar
    under its name, the settings as a text summary `settings` (JSON).

    ```python
    from alberta_eqx.experiments.loggers import TensorBoardLogger

    logger = TensorBoardLogger("runs/example")  # event files in ./runs/example
    logger.log_settings({"step_size": 0.1})
    logger.log_metrics(0, {"squared_error": 1.5})
    logger.close()
    ```

    **Arguments:**

    - `logdir`: the folder of the event files (created if needed); point
      `tensorboard --logdir` at it or at a folder above it.
    - `flush_secs`: how often pending events are written to disk.
    """

    def __init__(self, logdir: str | os.PathLike, *, flush_secs: int = 10):
        tensorboardx = _require("tensorboardX", "tensorboard")
        self.logdir = os.fspath(logdir)
        self._writer = tensorboardx.SummaryWriter(self.logdir, flush_secs=flush_secs)
        self._settings: dict[str, Any] = {}

    def log_settings(self, settings: Mapping[str, Any]) -> None:
        self._settings.update(settings)
        text = json.dumps(self._settings, indent=2, sort_keys=True, default=str)
        # indented: a code block in TensorBoard's Markdown text view
        self._writer.add_text("settings", "    " + text.replace("\n", "\n    "))

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        for name, value in metrics.items():
            self._writer.add_scalar(name, float(value), step)

    def close(self) -> None:
        self._writer.close()


class WandbLogger(AbstractLogger):
    """Logs to a Weights & Biases run: the settings as the run's config, the metrics
    as its history against a `step` metric (so that several configurations may each
    start again from step 0). Offline runs (`WANDB_MODE=offline`) need no login or
    network; `wandb sync` uploads them later. W&B's service process writes the run's
    file: it may complete it shortly after `close` returns.

    **Arguments:**

    - `project`: the W&B project.
    - `**init_args`: passed on to `wandb.init` (`dir`, `name`, `mode`, `entity`, ...).
    """

    def __init__(self, project: str, **init_args: Any):
        wandb = _require("wandb", "wandb")
        self.run = wandb.init(project=project, **init_args)
        # A custom x axis: W&B's own step must only grow, and each configuration of a
        # run (each of a sweep) starts again from its first window.
        self.run.define_metric("step")
        self.run.define_metric("*", step_metric="step")

    def log_settings(self, settings: Mapping[str, Any]) -> None:
        self.run.config.update(dict(settings), allow_val_change=True)

    def log_metrics(self, step: int, metrics: Mapping[str, float]) -> None:
        self.run.log({"step": step, **{name: float(v) for name, v in metrics.items()}})

    def close(self) -> None:
        self.run.finish()


def parse_target(text: str) -> tuple[str, str]:
    """Split `"tensorboard:DIR"` or `"wandb:PROJECT"` into its kind and its target,
    without making anything; raises `ValueError` naming the accepted forms."""
    kind, sep, target = text.partition(":")
    if not sep or kind not in ("tensorboard", "wandb") or not target:
        raise ValueError(f"expected {FORMS}, got {text!r}")
    return kind, target


def make_logger(text: str) -> AbstractLogger:
    """The logger `"tensorboard:DIR"` (a `TensorBoardLogger` writing into DIR) or
    `"wandb:PROJECT"` (a `WandbLogger` of that project) names.

    **Raises:** `ValueError` for any other form; `ImportError` naming the extra to
    install when its tracker is missing.
    """
    kind, target = parse_target(text)
    if kind == "tensorboard":
        return TensorBoardLogger(target)
    return WandbLogger(target)


def log_windows(
    loggers: Iterable[AbstractLogger],
    metrics: Mapping[str, Any],
    first_step: int,
    window: int,
    prefix: str = "",
) -> None:
    """Log consecutive windows of metrics, each as its mean over the seeds at the
    step that ends it: window `i` at `first_step + (i + 1) * window`. A seed that
    diverged makes the mean non-finite, as in the summaries.

    **Arguments:**

    - `loggers`: where to log.
    - `metrics`: metric names mapped to `(seeds, windows, ...)` arrays; axes after
      the windows (a Horde's questions, a learner's heads) are averaged too, and a
      metric mapped to None is not logged.
    - `first_step`: the steps learned before the first of these windows.
    - `window`: the steps of one window.
    - `prefix`: put before each name, with a `/` (a configuration's name).
    """
    loggers = list(loggers)
    means = {}
    for name, values in metrics.items():
        if loggers and values is not None:
            values = np.moveaxis(np.asarray(values, np.float64), 1, 0)
            means[f"{prefix}/{name}" if prefix else name] = values.reshape(len(values), -1).mean(
                axis=1
            )
    for i in range(len(next(iter(means.values()))) if means else 0):
        row = {name: float(values[i]) for name, values in means.items()}
        for logger in loggers:
            logger.log_metrics(first_step + (i + 1) * window, row)
