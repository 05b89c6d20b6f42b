"""The command registry: COMMANDS is the one list, and the CLI is built from it."""

from __future__ import annotations

import argparse
import importlib
import pkgutil

import gradviz.commands
from gradviz.cli import build_parser
from gradviz.commands import COMMANDS


def _subcommands(parser: argparse.ArgumentParser) -> list[str]:
    action = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    return list(action.choices)


def test_the_cli_offers_exactly_the_registered_commands_in_order():
    assert _subcommands(build_parser()) == list(COMMANDS)


def test_every_command_module_is_registered_and_every_entry_has_its_module():
    modules = [info.name for info in pkgutil.iter_modules(gradviz.commands.__path__)]
    with_parser = {name for name in modules if hasattr(importlib.import_module(f"gradviz.commands.{name}"), "add_parser")}
    assert with_parser == set(COMMANDS)


def test_each_module_registers_the_name_of_its_entry():
    for name in COMMANDS:
        parser = argparse.ArgumentParser()
        importlib.import_module(f"gradviz.commands.{name}").add_parser(parser.add_subparsers())
        assert _subcommands(parser) == [name]


def test_help_lists_every_command(capsys):
    try:
        build_parser().parse_args(["--help"])
    except SystemExit:
        pass
    out = capsys.readouterr().out
    assert all(f"    {name}" in out for name in COMMANDS)
