"""The drawing's forms: compact boxes (definition and value on one line, the pass's
derivative on a second), one-line boxes, and the most detailed form that fits a width."""

from __future__ import annotations

from gradviz.core.steps import StepState  # noqa: F401  (the type trace_look's views come from)
from gradviz.draw.look import make_view, trace_look
from gradviz.draw.terminal import TraceDrawing, fitted
from tui_support import lecture_trace


def test_compact_and_line_boxes_hold_the_definition_the_value_and_the_passs_derivative():
    trace = lecture_trace()
    view = make_view(trace, mode="reverse")
    v2 = trace.graph.find("v2").id
    compact = trace_look(trace, view, "compact").boxes[v2]
    assert compact.lines == ("v2 = exp(v1)  1.6487", "v̄2 = 0.5000") and compact.border
    line = trace_look(trace, view, "line").boxes[v2]
    assert line.lines == ("v2 = exp(v1)  1.6487",) and not line.border


def test_a_line_plus_box_holds_the_value_and_the_passs_number_on_one_row():
    trace = lecture_trace()
    v4 = trace.graph.find("v4").id
    reverse = trace_look(trace, make_view(trace, mode="reverse"), "line+").boxes[v4]
    assert reverse.lines == ("v4 = log(x2)  0  v̄4 -2.1487",) and not reverse.border
    # ∂v4/∂x2 = 1/x2 = 1 at x2 = 1
    tangent = trace_look(trace, make_view(trace, mode="tangent", wrt="x2"), "line+").boxes[v4]
    assert tangent.lines == ("v4 = log(x2)  0  v4' 1.0000",)
    forward = trace_look(trace, make_view(trace, mode="forward"), "line+").boxes[v4]
    assert forward.lines == ("v4 = log(x2)  0",)  # no pass, no number


def test_each_form_is_smaller_than_the_one_before_and_keeps_every_value():
    trace = lecture_trace()
    sizes = {}
    for detail in ("full", "compact", "line+", "line"):
        drawing = TraceDrawing(trace, detail)
        text = "\n".join("".join(t for t, _ in drawing.grid(None, mode="reverse").runs(y)) for y in range(drawing.height))
        for value in ("0.5000", "1.0000", "1.6487", "2.1487", "1.0744"):
            assert value in text, (detail, text)
        sizes[detail] = drawing.width * drawing.height
    assert sizes["full"] > sizes["compact"] > sizes["line+"] > sizes["line"]


def test_fitted_takes_the_most_detailed_form_no_wider_than_asked():
    trace = lecture_trace()
    full = TraceDrawing(trace, "full")
    assert fitted(trace, full.width).detail == "full"
    compact = TraceDrawing(trace, "compact")
    narrow = fitted(trace, full.width - 1)
    assert narrow.detail == ("compact" if compact.width < full.width else "line")
    assert fitted(trace, 10).detail == "line"  # nothing fits: the narrowest form with values


def test_trace_graph_fits_the_terminal_by_default_and_detail_names_a_form(capsys, monkeypatch):
    from rich.cells import cell_len

    from gradviz.cli import main

    monkeypatch.setenv("COLUMNS", "40")  # narrower than the full drawing
    source = ["(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1", "--graph"]
    full_width = TraceDrawing(lecture_trace(), "full").width
    assert full_width > 40
    assert main(["trace", *source]) == 0
    fit = capsys.readouterr().out
    assert "v2 = exp(v1)  1.6487" in fit  # a compact form, values kept
    assert "was cut at" not in fit and max(map(cell_len, fit.splitlines())) <= 40
    assert main(["trace", *source, "--detail", "full"]) == 0
    full = " ".join(capsys.readouterr().out.split())  # the note wraps at 40 columns
    assert f"the drawing is {full_width} columns wide and was cut at 40" in full
    assert main(["trace", *source, "--detail", "ops"]) == 0
    ops = capsys.readouterr().out
    assert "v2 exp" in ops and "1.6487 " not in ops.split("v2 exp")[1][:20]
