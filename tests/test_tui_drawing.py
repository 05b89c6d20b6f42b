"""Drawings: repainting only changed nodes gives exactly the picture a full repaint gives."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from gradviz.tui.drawing import DotDrawing, build_drawing
from gradviz.tui.picture import LayeredDrawing
from gradviz.tui.scene import Scene
from gradviz.tui.timeline import Timeline
from tui_support import expression_trace, lecture_trace

needs_dot = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def cells(drawing) -> list[list[tuple[str, str]]]:
    return [drawing.runs(y) for y in range(drawing.height)]


@needs_dot
@pytest.mark.parametrize("make", [lecture_trace, lambda: expression_trace("y = log(a - 1) * b + a", "a=0.5,b=2")])
def test_incremental_repaint_equals_a_fresh_paint_forwards_and_backwards(make):
    trace = make()
    timeline = Timeline(trace)
    stepped = DotDrawing(trace, "full")
    order = list(range(timeline.last + 1)) + list(range(timeline.last, -1, -1)) + [3, timeline.last - 3, 12, 0]
    for k in order:
        scene = Scene(timeline, k)
        stepped.paint(scene)
        fresh = DotDrawing(trace, "full")
        fresh.paint(scene)
        assert cells(stepped) == cells(fresh), f"step {k} differs from a fresh paint"


@needs_dot
def test_a_step_inside_a_pass_repaints_a_few_rows_and_a_new_pass_repaints_all():
    trace = lecture_trace()
    timeline = Timeline(trace)
    drawing = DotDrawing(trace, "full")
    assert drawing.paint(Scene(timeline, 2)) is None
    rows = drawing.paint(Scene(timeline, 3))
    assert rows and len(rows) < drawing.height
    assert drawing.paint(Scene(timeline, 7)) is None


def test_clicks_map_to_nodes_in_both_drawings():
    trace = lecture_trace()
    v2 = trace.graph.find("v2").id
    drawings = [LayeredDrawing(trace)] + ([DotDrawing(trace)] if shutil.which("dot") else [])
    for drawing in drawings:
        x, y, w, h = drawing.box(v2)
        assert drawing.node_at(x + w // 2, y + h // 2) == v2


def test_stand_in_when_dot_fails(monkeypatch):
    import gradviz.tui.drawing as module
    from gradviz.errors import ExportError

    def fail(*args, **kwargs):
        raise ExportError("`dot` took longer than 1 s")

    monkeypatch.setattr(module, "DotDrawing", fail)
    drawing = build_drawing(lecture_trace())
    assert isinstance(drawing, LayeredDrawing) and "took longer" in drawing.note
    drawing.paint(Scene(Timeline(lecture_trace()), 2))
    assert any("1.6487" in text for y in range(drawing.height) for text, _ in drawing.runs(y))
    assert np.all([drawing.width > 0, drawing.height > 0])
