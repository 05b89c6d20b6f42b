"""`gradviz trace`'s printed report (views/trace_report.py), read back as a person sees it."""

from __future__ import annotations

import io

from rich.console import Console

from gradviz.sources.expr import trace_expression
from gradviz.views.trace_report import trace_report


def _render(text: str, width: int = 80) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    console.print(trace_report(trace_expression(text, {})))
    return console.file.getvalue()


def test_an_expression_of_constants_prints_no_empty_gradients_table() -> None:
    """With no input there is no gradient to show: no table whose title stands one letter a line."""
    out = _render("c = 2.0 * 3.0\nd = c + 1")
    lines = [line.strip() for line in out.splitlines()]
    assert "g" not in lines and "gradients" not in lines
    assert "d = c + 1" in out and "7.0000" in out  # the table itself is still there, with d's value
