"""Text gradviz did not write reaches the person as written: rich reads `[a > 0]` as markup
and drops it unless it is escaped. Every rule's partials, every finding and every error go
through the terminal and piped consoles (and the handout tables) and are compared with the
plain text the rule, finding or error declares."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from rich.console import Console

from gradviz.core.explain import adjoint_equation, tangent_equation
from gradviz.core.findings import CHECKS, Finding
from gradviz.core.rules import RULES
from gradviz.sources.expr import trace_expression
from gradviz.views.model_report import findings_list
from gradviz.views.trace_report import trace_report
from gradviz.views.trace_table import to_latex, to_markdown

OPERATORS = {"add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "pow": "a ** b",
             "matmul": "a @ b", "neg": "-a", "transpose": "a.T"}


def _expression(rule) -> str:
    if not rule.names:
        return OPERATORS[rule.name]
    return f"{rule.names[0]}({', '.join('ab'[:rule.arity])})"


def _render(renderable, terminal: bool) -> str:
    """What a terminal (colours, then stripped of escape codes) or a pipe receives."""
    console = Console(file=io.StringIO(), width=400, force_terminal=terminal, color_system="truecolor" if terminal else None,
                      record=True)
    console.print(renderable)
    return console.export_text(styles=False)


CASES = sorted(RULES)


@pytest.mark.parametrize("op", CASES)
@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_every_rules_partials_reach_the_console_whole(op, terminal):
    rule = RULES[op]
    text = _expression(rule)
    names = "ab"[:rule.arity]
    if op in ("matmul", "transpose"):
        trace = trace_expression(text, shapes={k: (2, 2) for k in names})
    else:
        trace = trace_expression(text, at={k: v for k, v in zip(names, (0.6, 0.3))})
    shown = _render(trace_report(trace, "all", "a"), terminal)
    lines = {line.strip() for line in shown.splitlines()}
    for node in trace.graph.nodes:
        if node.is_leaf:
            continue
        assert tangent_equation(trace, "a", node.id) in lines, (op, shown)
        for partial in node.meta.get("partials", ()):
            if "[" in partial:  # relu/max/min: the factors rich used to drop
                assert partial in shown, (op, partial, shown)
    for node in trace.graph.nodes:
        if node.op == "const" or node.id == trace.graph.outputs["f"]:
            continue
        if len([v for _, v in trace.edge_terms("f", node.id) if v is not None]) > 1:
            assert adjoint_equation(trace, "f", node.id) in lines, (op, shown)


def test_the_issues_relu_and_max_partials_are_printed():
    trace = trace_expression("relu(a) + max(a, b)", at={"a": 2.0, "b": 1.0})
    shown = _render(trace_report(trace, "all", "a"), terminal=False)
    assert "v1' = [a > 0]·a' = 1.0000" in shown
    assert "v2' = [a ≥ b]·a' + [b ≥ a]·b' = 1.0000" in shown
    assert "a\u0304 = v\u03041·[a > 0] + v\u03042·[a ≥ b] = 1.0000 + 1.0000 = 2.0000" in shown


def test_handout_tables_keep_definitions_whole():
    trace = trace_expression("relu(a) + max(a, b)", at={"a": 2.0, "b": 1.0})
    assert "| v2 | v2 = max(a, b) |" in to_markdown(trace)
    assert r"\max(a, b)" in to_latex(trace)  # a function name as the slides write it


FINDING_KINDS = tuple(kind for check in CHECKS for kind in check.kinds)


@pytest.mark.parametrize("terminal", [True, False], ids=["terminal", "piped"])
def test_every_finding_reaches_the_console_whole(terminal):
    trace = trace_expression("relu(a) + max(a, b)", at={"a": 2.0, "b": 1.0})
    # A label and message holding what rich would read as markup: [bold], [/], [a > 0].
    findings = [Finding(kind, 2, f"[bold]{kind}[/] at [a > 0] of [x]") for kind in FINDING_KINDS]
    shown = _render(findings_list(findings, trace), terminal)
    rows = [" ".join(line.split()) for line in shown.splitlines()]
    for kind in FINDING_KINDS:
        assert f"{kind} v1 [bold]{kind}[/] at [a > 0] of [x]" in rows, shown


def test_an_error_naming_markup_reaches_stderr_whole():
    result = subprocess.run([sys.executable, "-m", "gradviz", "trace", "[bold]a[/] + 1"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "[bold]a[/] + 1" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_file_name_holding_markup_is_printed_as_written(tmp_path, capsys, monkeypatch):
    from gradviz.cli import main

    # wide enough for the whole path on one line: rich breaks a word longer than the width
    # (pytest-xdist's temporary folders are ten characters deeper, past 80 columns)
    monkeypatch.setenv("COLUMNS", "400")
    svg = tmp_path / "[red]curve.svg"  # rich would read [red] as a style and drop it
    assert main(["methods", "x1 * x2", "--at", "x1=0.5,x2=1", "--svg", str(svg)]) == 0
    assert f"wrote {svg}" in " ".join(capsys.readouterr().out.split())
    assert svg.exists()


def test_the_stepper_findings_list_shows_messages_whole():
    pytest.importorskip("textual")
    from textual.visual import visualize

    from gradviz.tui.widgets.findings import FindingsList

    trace = trace_expression("relu(a) + max(a, b)", at={"a": 2.0, "b": 1.0})
    findings = [Finding("vanishing", 2, "[bold]ratio[/] at [a > 0]")]
    widget = FindingsList(trace, findings)
    shown = visualize(widget, widget.get_option_at_index(0).prompt).plain
    assert shown == "vanishing: v1: [bold]ratio[/] at [a > 0]"
