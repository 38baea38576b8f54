"""The `alberta-eqx` command line: reproduce the papers, or run any stream and learner.

alberta-eqx                                  # = alberta-eqx replicate sutton1992-exp1
alberta-eqx replicate sutton1992-exp2 --quick
alberta-eqx run --stream scale-drift --optimizer autostep --normalizer ema --steps 200000
alberta-eqx run --stream mypkg.streams:MyStream --learner mypkg:make_learner --config run.toml
alberta-eqx show alberta-eqx-out

Parsing and printing only: the science is in `alberta_eqx.replications`,
`alberta_eqx.sweeps` and `alberta_eqx.experiments`. A new replication is its paper's
module in `alberta_eqx.replications` and one entry in its `registry.REPLICATIONS`; a
new command is one module (its parser and its function) and one entry in `COMMANDS`.
"""

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from alberta_eqx.cli import _options, _output, _replicate, _run, _show, _sweep
from alberta_eqx.replications.registry import DEFAULT_REPLICATION

# A user runs the command line (`main`, or `parser` to read its options); a command's
# pieces live in its own module.
__all__ = ["COMMANDS", "main", "parser"]


class _Parser(argparse.ArgumentParser):
    """Bad options end with one line on stderr, not a usage block or a traceback."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"alberta-eqx: error: {message} (see --help)\n")


def _common(suppress: bool) -> argparse.ArgumentParser:
    # the same options before or after the subcommand
    p = argparse.ArgumentParser(add_help=False)
    default = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    p.add_argument(
        "--out",
        default=default("alberta-eqx-out"),
        help="output folder (default: alberta-eqx-out)",
    )
    p.add_argument(
        "--no-progress", action="store_true", default=default(False), help="no progress bar"
    )
    p.add_argument("--no-plot", action="store_true", default=default(False), help="write no PNG")
    p.add_argument(
        "--float64",
        action="store_true",
        default=default(False),
        help="compute in float64 (jax_enable_x64)",
    )
    p.add_argument(
        "--no-compile-cache",
        action="store_true",
        default=default(False),
        help="do not use JAX's persistent compilation cache (~/.cache/alberta_eqx/jax)",
    )
    return p


# command -> (add its parser, run it)
COMMANDS: dict[str, tuple[Callable[..., None], Callable[[argparse.Namespace], None]]] = {
    "replicate": (_replicate._add_replicate, _replicate.replicate),
    "run": (_run._add_run, _run.run),
    "show": (_show._add_show, _show.show),
    "sweep": (_sweep._add_sweep, _sweep.sweep),
}


def parser() -> _Parser:
    main_parser = _Parser(
        prog="alberta-eqx",
        description=__doc__.split("\n\n")[0]
        + f"\n\nWith no command: alberta-eqx replicate {DEFAULT_REPLICATION}.",
        parents=[_common(False)],
        formatter_class=_options._Help,
    )
    sub = main_parser.add_subparsers(dest="command", metavar="COMMAND")
    for add, _ in COMMANDS.values():
        add(sub, [_common(True)])
    for action in sub.choices.values():
        action.error = main_parser.error  # type: ignore[method-assign]
    return main_parser


def main(argv: Sequence[str] | None = None) -> None:
    args = parser().parse_args(argv)
    # An output folder this call creates is removed again if the command is refused
    # (and wrote nothing there): a mistake leaves nothing on disk.
    created = args.command != "show" and not os.path.exists(args.out)
    try:
        if args.float64:
            import jax

            jax.config.update("jax_enable_x64", True)
        if not args.no_compile_cache:
            from alberta_eqx.sweeps.cache import enable_compilation_cache

            enable_compilation_cache()
        if args.command not in ("show", "sweep"):  # sweep checks its spec first
            args.out = _output.output_folder(args.out)
        command = COMMANDS[args.command][1] if args.command else _replicate.replicate
        command(args)
    except _options.CommandError as error:
        if created and os.path.isdir(args.out) and not os.listdir(args.out):
            os.rmdir(args.out)
        print(f"alberta-eqx: error: {error}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        print("alberta-eqx: interrupted; the output folder is marked incomplete", file=sys.stderr)
        raise SystemExit(130) from None
