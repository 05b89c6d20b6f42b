"""Narrow tables print whole columns, never cut numbers; piped reports keep no trailing spaces."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

from rich.cells import cell_len
from rich.console import Console
from rich.table import Table

from gradviz.core.fmt import fmt_value
from gradviz.views.trace_report import trace_report
from gradviz.views.whole_columns import WholeColumns
from screencheck import text_defects

ROOT = Path(__file__).resolve().parent.parent


def printed(renderable, width: int) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None)
    console.print(renderable)
    return console.file.getvalue()


def test_the_lecture_trace_at_40_columns_keeps_every_number_whole(lecture_trace):
    """At 40 columns rich cut the table's cells (`-3.88…`, `defin…`, `exp(v…`); now the table
    comes in two parts of whole columns, each row named, every value and adjoint whole."""
    text = printed(trace_report(lecture_trace, "all", "x1"), 40)
    assert not text_defects(text), text_defects(text)
    assert max(cell_len(line) for line in text.splitlines()) <= 40
    assert "trace (continued)" in text and "adjoint ∂f/∂·" in text and "tangent ∂·/∂x1" in text
    for node in lecture_trace.graph.nodes:
        row = next(line for line in text.splitlines() if line.startswith(f"{node.label} ") and "│" in line)
        assert node.definition in row or node.is_leaf, row
        assert fmt_value(lecture_trace.values[node.id]) in row
        adjoint = fmt_value(lecture_trace.adjoints["f"][node.id])
        assert any(line.startswith(f"{node.label} ") and line.rstrip().endswith(adjoint)
                   for line in text.splitlines()), (node.label, adjoint)


def test_a_table_that_fits_is_printed_as_it_is(lecture_trace):
    assert "(continued)" not in printed(trace_report(lecture_trace, "all", "x1"), 80)


def test_a_column_too_wide_beside_the_names_is_stacked_under_them():
    table = Table(title="t")
    table.add_column("node")
    table.add_column("value")
    table.add_row("alpha", "-1.234567e-05")
    text = printed(WholeColumns(table), 18)  # side by side, with the table's borders, takes 26
    assert [line.rstrip() for line in text.splitlines()[1:]] == ["alpha", "  value", "    -1.234567e-05"]


def test_trace_piped_at_40_columns_has_no_trailing_spaces_and_no_cut_number():
    """The command itself, through a pipe: rich padded the title and the chain lines to the
    table's width with spaces."""
    env = {**os.environ, "COLUMNS": "40", "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-m", "gradviz", "trace", "@samples/lecture.expr"], cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == []
    assert not text_defects(out.stdout), text_defects(out.stdout)
    assert "-3.8853" in out.stdout and "tangents (forward mode, ∂·/∂x1)" in lines
