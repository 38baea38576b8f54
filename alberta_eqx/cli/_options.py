"""Reading options: the user error printed as one line, the option types, and the
help formatter every command's parser shares."""

import argparse
import math
from typing import NoReturn


class CommandError(Exception):
    """A user error found after parsing: printed as one line, exit status 2."""


def fail(message: str) -> NoReturn:
    raise CommandError(message)


def count(text: str) -> int:
    """A positive whole number: `100000`, `100_000` or `1e5`."""
    try:
        value = float(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value != int(value):
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}")
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return int(value)


def seed(text: str) -> int:
    """A seed for `jax.random.key`: a whole number in [0, 2**32)."""
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if not 0 <= value < 2**32:
        raise argparse.ArgumentTypeError(f"must be in [0, 2**32), got {text}")
    return value


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(f"must be finite and > 0, got {text}")
    return value


def log_target(text: str) -> str:
    """`tensorboard:DIR` or `wandb:PROJECT`, checked here and opened by `open_loggers`."""
    from alberta_eqx.experiments.loggers import parse_target

    try:
        parse_target(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


def add_log_option(p: argparse.ArgumentParser, metrics: str = "each window's metrics") -> None:
    p.add_argument(
        "--log",
        type=log_target,
        action="append",
        default=[],
        metavar="TRACKER",
        help=f"also log the settings and {metrics} to tensorboard:DIR (event "
        "files) or wandb:PROJECT (a Weights & Biases run; WANDB_MODE=offline works "
        "without an account); repeatable",
    )


def open_loggers(targets: list[str]) -> list:
    """The loggers `--log` names; a tracker that is missing (the line names its
    extra) or cannot start (a folder it cannot write, W&B online without a login) is
    one line."""
    from alberta_eqx.experiments.loggers import make_logger

    loggers = []
    try:
        for target in targets:
            loggers.append(make_logger(target))
    except Exception as error:  # a tracker missing or unable to start: one line
        for logger in loggers:
            logger.close()
        fail(f"--log {target}: {error}")
    return loggers


class _Help(argparse.RawDescriptionHelpFormatter):
    """Shows every default (an option whose default depends on others says so in its
    help), and keeps the description's line breaks."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if "(default" in text or action.default in (None, [], False, argparse.SUPPRESS):
            return text
        return f"{text} (default: %(default)s)"
