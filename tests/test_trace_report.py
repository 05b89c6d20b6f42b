"""`gradviz trace`'s printed report (views/trace_report.py), read back as a person sees it."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gradviz.cli import main
from gradviz.sources.expr import trace_expression
from gradviz.views.trace_report import trace_report


def _render(text: str, width: int = 80, at: dict | None = None) -> str:
    console = Console(file=io.StringIO(), width=width, color_system=None, legacy_windows=False)
    trace = trace_expression(text, at or {})
    console.print(trace_report(trace, "all", next(iter(at), None) if at else None))
    return console.file.getvalue()


def test_an_expression_of_constants_prints_no_empty_gradients_table() -> None:
    """With no input there is no gradient to show: no table whose title stands one letter a line."""
    out = _render("c = 2.0 * 3.0\nd = c + 1")
    lines = [line.strip() for line in out.splitlines()]
    assert "g" not in lines and "gradients" not in lines
    assert "d = c + 1" in out and "7.0000" in out  # the table itself is still there, with d's value


def test_show_of_an_unknown_node_is_one_line_and_no_report(capsys) -> None:
    assert main(["trace", "c = a * 2\nc = c + 1", "--at", "a=3", "--show", "zz"]) == 2
    out, err = capsys.readouterr()
    assert out == ""
    assert err.strip().splitlines() == ["gradviz: error: --show zz: no such node"]


def test_show_of_a_later_value_prints_that_value(capsys) -> None:
    """c₂, the second value of c, is shown by its own label with its own value (7, not c's 6)."""
    assert main(["trace", "c = a * 2\nc = c + 1", "--at", "a=3", "--show", "c₂"]) == 0
    out = capsys.readouterr().out
    details = out[out.index("c₂ = c + 1  ["):]
    assert details.splitlines()[1:3] == ["value:", "7.0000"]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_section_titles_stay_whole_over_short_equations(width: int) -> None:
    """A chain of short equations is narrower than its title: the title is not wrapped to it."""
    out = _render("y = a * b", width, {"a": 3.0, "b": 2.0})
    lines = [line.rstrip() for line in out.splitlines()]
    assert "tangents (forward mode, ∂·/∂a)" in lines
    assert "y' = b·a' + a·b' = 2.0000" in lines
    out = _render("y = a * b\nz = a + b", width, {"a": 3.0, "b": 2.0})
    assert "Jacobian (rows: outputs)" in [line.rstrip() for line in out.splitlines()]
