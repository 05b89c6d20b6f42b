"""Only the stepper's widgets and screens import textual; its logic and the CLI do not."""

from __future__ import annotations

import ast
import subprocess
import sys


def loaded_after(code: str) -> list[str]:
    probe = code + "\nimport sys\nprint(sorted(m for m in ('textual', 'torch') if m in sys.modules))\n"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    return ast.literal_eval(result.stdout.strip().splitlines()[-1])


def test_stepper_logic_imports_neither_textual_nor_torch():
    code = ("import gradviz.tui.timeline, gradviz.tui.scene, gradviz.tui.picture, gradviz.tui.drawing, "
            "gradviz.tui.inspector_text, gradviz.tui.actions, gradviz.tui.status_line")
    assert loaded_after(code) == []


def test_the_cli_loads_textual_only_when_step_runs():
    assert loaded_after("from gradviz.cli import build_parser\nbuild_parser().parse_args(['step', 'x1', '--at', 'x1=1'])") == []
