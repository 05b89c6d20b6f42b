"""Piped output wraps at the width asked (COLUMNS), or 80: never at the width of a table's rows."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def piped_trace(columns: str | None) -> str:
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    env.pop("COLUMNS", None)
    if columns:
        env["COLUMNS"] = columns
    done = subprocess.run([sys.executable, "-m", "gradviz", "trace", "a*b + exp(a)", "--at", "a=1,b=2"],
                          capture_output=True, text=True, env=env, timeout=120, cwd=REPO)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_a_tables_title_is_one_line_when_piped():
    out = piped_trace(None)
    lines = out.splitlines()
    assert any(line.strip() == "tangents (forward mode, ∂·/∂a)" for line in lines), out
    assert any(line.strip() == "adjoints as sums of edge contributions" for line in lines), out
    assert max(len(line) for line in lines) <= 80


def test_piped_text_wraps_at_the_width_asked():
    out = piped_trace("60")
    assert max(len(line) for line in out.splitlines()) <= 60
    assert any(line.strip() == "tangents (forward mode, ∂·/∂a)" for line in out.splitlines()), out
