"""The command line: one subcommand per module in gradviz.commands, errors as one line."""

from __future__ import annotations

import argparse
import importlib
import sys

from gradviz import __version__
from gradviz.errors import GradvizError

# Each module exposes add_parser(subparsers), which sets func=run(args) -> exit code.
# Modules import their heavy dependencies inside run(), so `--help` and the expression
# path stay fast.
COMMANDS = ("trace", "step", "export", "train", "monitor", "descent", "landscape", "batches")


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
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except GradvizError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("gradviz: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        return 0
