"""The command registry: each subcommand is one entry in COMMANDS and one module here.

A command module exposes add_parser(subparsers), which registers the subcommand under
its entry's name and sets func=run(args) -> exit code. Modules import their heavy
dependencies inside run(), so `--help` and the expression path stay fast. Modules here
without add_parser (common.py, layers.py) are glue the commands share.
"""

from __future__ import annotations

import argparse
import importlib

# In the order `gradviz --help` lists them.
COMMANDS: tuple[str, ...] = (
    "trace", "step", "export", "train", "monitor", "methods", "descent", "landscape", "batches",
)


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register every command of COMMANDS on the top-level parser's subparsers."""
    for name in COMMANDS:
        importlib.import_module(f"{__name__}.{name}").add_parser(subparsers)
