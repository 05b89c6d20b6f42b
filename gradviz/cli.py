"""The command line: one subcommand per module in gradviz.commands, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import sys

from gradviz import __version__
from gradviz.errors import GradvizError
from gradviz.streams import finish_output, is_output_error, output_failed, prepare_streams

# Each module exposes add_parser(subparsers), which sets func=run(args) -> exit code.
# Modules import their heavy dependencies inside run(), so `--help` and the expression
# path stay fast.
COMMANDS = ("trace", "step", "export", "train", "monitor", "methods", "descent", "landscape", "batches")


def build_parser() -> argparse.ArgumentParser:
    """The top-level parser with every available subcommand."""
    parser = argparse.ArgumentParser(
        prog="gradviz",
        description="See automatic differentiation move: trace, step through, export and train.",
    )
    parser.add_argument("--version", action="version", version=f"gradviz {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMANDS:
        try:
            module = importlib.import_module(f"gradviz.commands.{name}")
        except ModuleNotFoundError as exc:
            if exc.name != f"gradviz.commands.{name}":
                raise
            continue
        module.add_parser(subparsers)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run gradviz; user errors print one line and return 2, never a traceback."""
    try:
        prepare_streams()
    except GradvizError as exc:
        _say(exc.render())
        return exc.exit_code
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        code = int(args.func(args) or 0)
        finish_output()
        return code
    except GradvizError as exc:
        _say(exc.render())
        return exc.exit_code
    except KeyboardInterrupt:
        _say("gradviz: interrupted")
        return 130
    except BrokenPipeError:  # `gradviz trace … | head`: the reader has what it wanted
        output_failed(BrokenPipeError())
        return 0
    except MemoryError:
        _say("gradviz: error: out of memory; try smaller shapes, a smaller --batch-size or a lower --max-memory")
        return 2
    except OSError as exc:
        if not is_output_error(exc):
            raise
        _say(output_failed(exc).render())
        return 2


def _say(line: str) -> None:
    """One line on stderr, if stderr can still take it."""
    try:
        print(line, file=sys.stderr)
    except (OSError, ValueError, AttributeError):
        pass
