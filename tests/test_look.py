"""How a trace looks: kinds, step states, edge labels, and the lecture's graph in a terminal."""

from __future__ import annotations

import dataclasses
import io
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gradviz.core.graph import Graph, frozen_mapping
from gradviz.core.steps import build_steps, state_at
from gradviz.draw.layout import text_width
from gradviz.draw.look import make_view, node_kind, sizing_look, trace_look
from gradviz.draw.raster import rasterise
from gradviz.draw.terminal import TraceDrawing, render_trace_graph
from gradviz.sources.expr import trace_expression

SNAPSHOTS = Path(__file__).parent / "snapshots"


def _plain(renderable, width: int = 100) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None, legacy_windows=False)
    console.print(renderable)
    return "\n".join(line.rstrip() for line in console.file.getvalue().splitlines()) + "\n"


def _snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("GRADVIZ_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (GRADVIZ_UPDATE_SNAPSHOTS=1 to accept)"


@pytest.mark.parametrize(("ascii", "name"), [(False, "lecture_graph.txt"), (True, "lecture_graph_ascii.txt")])
def test_lecture_graph_in_a_terminal(lecture_trace, ascii, name):
    _snapshot(name, _plain(render_trace_graph(lecture_trace, ascii=ascii)))


def test_lecture_graph_mid_reverse_pass(lecture_trace):
    steps = build_steps(lecture_trace, ("forward", "reverse"))
    k = next(i + 1 for i, s in enumerate(steps) if s.phase == "reverse" and s.node == 2)  # v̄1
    text = _plain(render_trace_graph(lecture_trace, state_at(lecture_trace, steps, k), show_legend=False))
    _snapshot("lecture_graph_v1_step.txt", text)
    assert "v̄1 = 3.4731" in text and "x̄1 = ?" in text


def _box(look, label):
    return next(b for b in look.boxes if b.lines[0].startswith(label))


def test_boxes_show_definition_value_and_the_pass_number(lecture_trace):
    reverse = trace_look(lecture_trace, make_view(lecture_trace, mode="reverse"))
    assert _box(reverse, "v3 =").lines == ("v3 = v2 + v1", "2.1487", "v̄3 = 0.5000")
    tangent = trace_look(lecture_trace, make_view(lecture_trace, mode="tangent", wrt="x1"))
    assert _box(tangent, "v3 =").lines == ("v3 = v2 + v1", "2.1487", "v3' = 2.6487")
    assert [node_kind(lecture_trace, n) for n in lecture_trace.graph.nodes][::7] == ["input", "output"]


def test_reverse_labels_are_the_three_contributions_into_v1(lecture_trace):
    look = trace_look(lecture_trace, make_view(lecture_trace, mode="reverse"), labels=True, long_labels=True)
    v1 = next(b.key for b in look.boxes if b.lines[0].startswith("v1 ="))
    labels = sorted(e.label for e in look.edges if e.src == v1)
    assert labels == ["v̄2·e^{v1} = 0.8244", "v̄3 = 0.5000", "v̄5 = 2.1487"]


def test_steps_dim_what_is_not_computed_and_mark_the_current_node(lecture_trace):
    steps = build_steps(lecture_trace, ("forward",))
    look = trace_look(lecture_trace, make_view(lecture_trace, state_at(lecture_trace, steps, 2)))
    styles = {b.lines[0].split(" ")[0]: b.style for b in look.boxes}
    assert styles == {"x1": "input", "x2": "input", "v1": "op", "v2": "op.current", "v3": "op.pending",
                      "v4": "op.pending", "v5": "op.pending", "f": "output.pending"}
    assert _box(look, "v3 =").lines[1] == "?"
    active = [e for e in look.edges if e.style == "edge.active"]
    assert [(e.src, e.dst) for e in active] == [("n2", "n3")]


def test_non_finite_numbers_are_marked():
    trace = trace_expression("log(x) * y", at={"x": -1.0, "y": 2.0})
    look = trace_look(trace, make_view(trace, mode="reverse"))
    bad = [b for b in look.boxes if any(s and s.endswith("nonfinite") for s in b.line_styles)]
    # ȳ = v1 = log(-1) is NaN too
    assert {b.lines[0] for b in bad} == {"v1 = log(x)", "f = v1·y", "y"}
    # only the term into y (f̄·v1) is NaN; v̄1 = f̄·y and x̄ = v̄1/x stay finite
    red = {(e.src, e.dst) for e in look.edges if e.style.endswith(".nonfinite")}
    assert red == {("n1", "n3")}


def test_tensors_show_shape_and_norm_and_their_adjoints_a_norm():
    trace = trace_expression("sum(W @ x)", at={"W": [[3.0, 0, 0, 0]] * 3, "x": [1.0, 0, 0, 0]})
    look = trace_look(trace, make_view(trace, mode="reverse"))
    w = _box(look, "W")
    assert w.lines[1] == "3×4 ‖5.196‖" and w.lines[2] == "W̄ = ‖1.732‖"


def test_stepping_repaints_exactly_what_a_fresh_drawing_shows(lecture_trace):
    drawing = TraceDrawing(lecture_trace)
    steps = build_steps(lecture_trace)
    for k in (0, 3, len(steps) - 4, 6, len(steps)):
        state = state_at(lecture_trace, steps, k)
        grid = drawing.grid(state)
        fresh = drawing.look(state)
        expected = rasterise(drawing.layout, fresh.boxes, fresh.edges)
        assert grid.text() == expected.text()
        keys = np.array(grid.style_keys)[grid.styles]
        assert (keys == np.array(expected.style_keys)[expected.styles]).all()


def test_sizing_makes_every_box_as_wide_as_its_widest_step(lecture_trace):
    sizing = sizing_look(lecture_trace)
    widest = max(text_width(line) for line in ("x2' = 1.0000", "x̄2 = -3.8853", "x2 = ?"))
    assert text_width(_box(sizing, "x2").lines[2]) == widest


def test_drawing_imports_neither_textual_torch_nor_graphviz():
    code = (
        "import sys\n"
        "from gradviz.sources.expr import trace_expression\n"
        "from gradviz.draw.terminal import render_trace_graph\n"
        "render_trace_graph(trace_expression('exp(x) * y', at={'x': 1.0, 'y': 2.0}))\n"
        "print(sorted(m for m in ('textual', 'torch', 'graphviz') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_the_stepper_can_find_nodes_and_edges_by_cell(lecture_trace):
    drawing = TraceDrawing(lecture_trace, detail="ops")
    rect = drawing.rect_of(4)
    assert drawing.node_at(rect.x + 1, rect.y + 1) == 4
    x, y = drawing.layout.paths[0][0]  # the first edge leaves x1 here, its line starts below
    assert drawing.edge_at(x, y + 1) == (2, 0)  # x1 is input 0 of v1
    assert drawing.node_at(0, 0) is None


def _with_modules(trace, modules):
    nodes = tuple(dataclasses.replace(n, meta=frozen_mapping({**n.meta, "module": modules[n.label]}))
                  if n.label in modules else n for n in trace.graph.nodes)
    return dataclasses.replace(trace, graph=Graph(nodes, trace.graph.outputs))


def test_modules_are_frames_around_their_nodes_and_apart_from_each_other():
    trace = trace_expression("loss = bce(sigmoid(sigmoid(x @ W1 + b1) @ W2 + b2), y)",
                             shapes={"x": (4, 2), "W1": (2, 3), "b1": (3,), "W2": (3, 1), "b2": (1,)},
                             at={"y": [[0], [1], [1], [0]]})
    layer1 = {"W1", "b1", "v1", "v2", "v3"}
    layer2 = {"W2", "b2", "v4", "v5", "v6"}
    trace = _with_modules(trace, {**{k: "net.layer1" for k in layer1}, **{k: "net.layer2" for k in layer2}})
    drawing = TraceDrawing(trace)
    frames = drawing.layout.clusters
    assert set(frames) == {"net", "net.layer1", "net.layer2"}

    def inside(rect, frame):
        return frame.x < rect.x and rect.right < frame.right and frame.y < rect.y and rect.bottom < frame.bottom

    for node in trace.graph.nodes:
        rect = drawing.rect_of(node.id)
        if node.label in layer1 | layer2:
            assert inside(rect, frames["net.layer1" if node.label in layer1 else "net.layer2"]), node.label
        assert (node.label in layer1 | layer2) == inside(rect, frames["net"]), node.label
    one, two = frames["net.layer1"], frames["net.layer2"]
    assert one.right <= two.x or two.right <= one.x or one.bottom <= two.y or two.bottom <= one.y
    assert "layer1" in drawing.grid().text()
