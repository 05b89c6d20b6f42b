"""An output whose name was assigned again (`c = x * 2; c += 1; c = c * c`) keeps its name
as the key (outputs["c"], gradient("c", "x")), but every surface a person reads names it by
its node's label, c₃: the row labelled c is the first value, 6, not the output, 49."""

from __future__ import annotations

import io
import json
import re

import pytest
from rich.console import Console

from gradviz.cli import main
from gradviz.sources.expr import trace_expression

REBOUND = "c = x * 2; c += 1; c = c * c"


def _trace():
    return trace_expression(REBOUND, at={"x": 3.0})


def _text(renderable, width: int = 120) -> str:
    console = Console(file=io.StringIO(), width=width, record=True, color_system=None)
    console.print(renderable)
    return console.export_text()


def test_the_graph_keeps_the_name_as_key_and_shows_the_label():
    trace = _trace()
    assert list(trace.graph.outputs) == ["c"]
    assert trace.graph.nodes[trace.graph.outputs["c"]].label == "c₃"
    assert float(trace.values[trace.graph.outputs["c"]]) == 49.0
    assert float(trace.gradient("c", "x")) == 28.0  # d/dx (2x+1)² = 4(2x+1)
    assert trace.graph.shown_output("c") == "c₃"
    # never rebound, or unnamed: the name itself
    assert trace_expression("y = x * 2", at={"x": 1.0}).graph.shown_output("y") == "y"
    assert trace_expression("x * 2", at={"x": 1.0}).graph.shown_output("f") == "f"
    # an input assigned again: x₂ is the output, x stays the input
    again = trace_expression("x = x * 2", at={"x": 1.0})
    assert again.graph.shown_output("x") == "x₂"


def test_trace_report_names_the_output_by_its_label(capsys):
    assert main(["trace", REBOUND, "--at", "x=3"]) == 0
    out = capsys.readouterr().out
    assert "adjoint ∂c₃/∂·" in out
    assert "∂c₃/∂c₂ = (∂c₃/∂c₃)·c₂ + (∂c₃/∂c₃)·c₂ = 7.0000 + 7.0000 = 14.0000" in out
    gradients = out[out.index("gradients"):out.index("passes")]
    assert [line.split() for line in gradients.splitlines() if "28.0000" in line] == [["c₃", "│", "28.0000"]]
    assert "∂c/" not in out


def test_show_names_the_adjoint_by_the_output_label(capsys):
    assert main(["trace", REBOUND, "--at", "x=3", "--show", "c₂"]) == 0
    out = capsys.readouterr().out
    assert "adjoint ∂c₃/∂c₂:" in out and "∂c/" not in out


def test_json_keeps_the_name_as_key_and_findings_read_the_label(capsys):
    # c₂ = c·1e-9 and c = x·1e-9: x's adjoint is 1e-9 of what c₂ sends back, a vanishing finding
    assert main(["trace", "c = x * 1e-9; c = c * 1e-9", "--at", "x=1", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["outputs"] == ["c"] and doc["gradients"]["c"]["x"] == pytest.approx(1e-18)
    assert doc["nodes"][doc["output_nodes"]["c"]]["label"] == "c₂"
    messages = [f["message"] for f in doc["findings"] if f["kind"] == "vanishing"]
    assert messages and all("∂c₂/∂output" in m for m in messages), doc["findings"]
    assert not any("∂c/" in f["message"] for f in doc["findings"])


def test_handouts_name_the_output_by_its_label():
    from gradviz.views.handout import to_latex_handout, to_markdown_handout
    from gradviz.views.trace_table import to_csv

    markdown = to_markdown_handout(_trace())
    assert "| node | definition | value | ∂·/∂x | ∂c₃/∂· |" in markdown
    assert "adjoints v̄ = ∂c₃/∂v as sums" in markdown
    assert "- ∂c₃/∂c₂ = (∂c₃/∂c₃)·c₂ + (∂c₃/∂c₃)·c₂ = 7.0000 + 7.0000 = 14.0000" in markdown
    assert "∂c/" not in markdown
    latex = to_latex_handout(_trace())
    assert r"$\bar v_i = \partial c_{3}/\partial v_i$" in latex
    assert r"\item $\partial c_{3}/\partial c_{2} = " in latex
    assert r"\partial c/" not in latex and r"\partial c_{3}/\partial c_{3})" in latex
    assert to_csv(_trace()).splitlines()[0].endswith("∂c₃/∂·")


@pytest.mark.parametrize("size", [(80, 24), (120, 40), (200, 60)])
def test_stepper_names_the_output_by_its_label(size):
    from tui_support import expression_trace, run_async, screen_text

    from gradviz.tui.app import StepperApp
    from gradviz.tui.widgets.inspector import Inspector
    from gradviz.tui.widgets.tape import Tape

    @run_async
    async def walk():
        app = StepperApp(expression_trace(REBOUND, "x=3"), source=REBOUND)
        async with app.run_test(size=size) as pilot:
            screen = app.screen
            while screen.k < screen.timeline.last:
                await pilot.press("n")
            graph = screen.trace.graph
            while graph.nodes[screen.scene.current].label != "c₂":  # back along the reverse pass: x, c, c₂
                await pilot.press("left")
            await pilot.pause()
            assert screen.scene.phase == "reverse"
            console = Console(width=78, color_system=None, file=io.StringIO(), record=True)
            console.print(screen.query_one(Inspector).report)
            screens = [screen_text(app)]
            await pilot.press("v")  # the tape in the graph's place (or back)
            await pilot.pause()
            screens.append(screen_text(app))
            assert [c[0] for c in screen.query_one(Tape).columns][-1] == "∂c₃/∂·"
            return screens, console.export_text()

    screens, inspector = walk()
    for text in screens:
        assert "REVERSE MODE  ∂c₃/∂·  pass 1 of 1" in text, text
        assert "adjoint ∂c₃/∂c₂ (reverse mode)" in text, text
        assert "∂c/" not in text
    tape_header = [line for text in screens for line in text.splitlines() if "node  definition" in line]
    header = re.compile(r"│node +definition +value +∂·/∂x +∂c₃/∂· *│")  # the whole row, up to its border
    assert tape_header and all(header.search(line) for line in tape_header), tape_header
    assert "∂c₃/∂c₂ = (∂c₃/∂c₃)·∂c₃/∂c₂ + (∂c₃/∂c₃)·∂c₃/∂c₂" in inspector, inspector
    assert "∂c/" not in inspector


def test_switching_passes_and_the_tape_header_name_the_output_by_its_label():
    from gradviz.tui.actions import switch_pass
    from gradviz.tui.timeline import Timeline

    timeline = Timeline(_trace())
    _, message = switch_pass(timeline, 0, "reverse")
    assert message == "reverse pass 1 of 1: ∂c₃/∂·"
    start = timeline.phase_passes("reverse")[0].start
    assert switch_pass(timeline, start, "reverse")[1] == "only one output (c₃): one reverse pass"


def test_the_html_stepper_names_the_output_by_its_label(tmp_path):
    from gradviz.html.stepper_page import tape_data
    from gradviz.tui.timeline import Timeline

    assert tape_data(Timeline(_trace()))["header"] == ["node", "definition", "value", "∂·/∂x", "∂c₃/∂·"]
    page = tmp_path / "step.html"
    assert main(["export", REBOUND, "--at", "x=3", "--html", str(page)]) == 0
    html = page.read_text()
    assert "∂c₃/∂·" in html and "adjoint ∂c₃/∂c₂ (reverse mode)" in html
    # ∂c/∂x is the first c's own local partial (2), which the page rightly shows; nothing else says ∂c/
    assert re.findall(r"∂c/∂[^x]", html) == [] and "∂c/∂x = 2" in html


@pytest.mark.parametrize("suffix", ["svg", "dot"])
def test_export_names_the_output_by_its_label(tmp_path, suffix):
    path = tmp_path / f"graph.{suffix}"
    assert main(["export", REBOUND, "--at", "x=3", "-o", str(path)]) == 0
    text = path.read_text()
    assert "(∂c₃/∂·)" in text  # the title: the reverse pass of c₃
    assert "c̄ = ∂c₃/∂c = 14" in text  # c's tooltip: the adjoint of the first c toward c₃
    assert "∂c/" not in text


def test_methods_names_the_output_by_its_label(capsys):
    pytest.importorskip("sympy")
    assert main(["methods", REBOUND, "--at", "x=3"]) == 0
    out = capsys.readouterr().out
    assert "∂c₃/∂x = 8*x + 4" in out and "c₃ = (2*x + 1)**2" in out
    assert "∂c₃/∂x = 28" in out  # reverse mode's number, d/dx (2x+1)² at 3
    assert "∂c/" not in out


def test_the_notebook_line_names_the_output_by_its_label_and_the_api_keeps_the_name():
    import gradviz

    traced = gradviz.trace(REBOUND, x=3.0)
    assert traced.outputs == ["c"] and float(traced.gradients["x"]) == 28.0
    html = traced._repr_html_()
    assert "∂c₃/∂x = 28.0000" in html and "∂c/" not in html
