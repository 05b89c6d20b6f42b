"""Run one command module without the gradviz CLI core: ``python -m gradviz.commands.train``."""

from __future__ import annotations

import argparse
import sys
from types import ModuleType

from gradviz.errors import GradvizError


def run_standalone(module: ModuleType, name: str, argv: list[str]) -> int:
    """Parse argv as `gradviz <name> ...` with only this module's parser; print errors as one line."""
    parser = argparse.ArgumentParser(prog="gradviz")
    module.add_parser(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args([name, *argv])
    try:
        return args.func(args)
    except GradvizError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
