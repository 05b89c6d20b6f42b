"""Ranks left to right (`across`): the route stage's other orientation, for wide short panes."""

from __future__ import annotations

import re
from collections import Counter

import pytest

from drawcheck import boxes_disjoint, random_dag, traced_edges
from gradviz.draw.handoff import BoxSpec, EdgeSpec
from gradviz.draw.layout import measure
from gradviz.draw.pipeline import layout_graph
from gradviz.draw.raster import rasterise
from gradviz.draw.terminal import TraceDrawing
from tui_support import lecture_trace


@pytest.mark.parametrize(("n", "seed"), [(12, 0), (40, 1), (120, 2)])
def test_random_dags_across_draw_every_edge_from_a_right_border_to_a_left_border(n, seed):
    boxes, edges = random_dag(n, seed)
    layout = layout_graph(boxes, edges, tight=True, across=True)
    grid = rasterise(layout, boxes, edges)
    assert traced_edges(grid) == Counter((e.src, e.dst) for e in edges)  # every edge, whole, to its target
    boxes_disjoint(grid)
    text = grid.text()
    for box in boxes:
        assert len(re.findall(rf"\b{box.lines[0]}\b", text)) == 1, box.lines[0]
    for edge in edges:  # every edge runs rightwards: ranks are columns
        assert layout.boxes[edge.src].right < layout.boxes[edge.dst].x, edge


def test_the_lecture_across_is_as_many_columns_as_the_downward_drawing_has_rows_of_boxes():
    trace = lecture_trace()
    down = TraceDrawing(trace, "compact", current_labels=True)
    across = TraceDrawing(trace, "compact", current_labels=True, across=True)

    def order(rects, axis):
        return sorted({getattr(rect, axis) for rect in rects.values()})

    # the same ranks: a box's column across is the rank of its row down
    rank_down = {key: order(down.layout.boxes, "y").index(rect.y) for key, rect in down.layout.boxes.items()}
    rank_across = {key: order(across.layout.boxes, "x").index(rect.x) for key, rect in across.layout.boxes.items()}
    assert rank_down == rank_across and max(rank_down.values()) == 4
    # five ranks: across is the wide, short one (for a wide pane), down the narrow, tall one
    assert across.width > down.width and across.height < down.height
    grid = across.grid(mode="reverse")
    text = grid.text()
    for node in trace.graph.nodes:  # each box whole: definition and value, and its adjoint
        assert f"{node.definition}  " in text, node.label


def test_across_refuses_what_it_cannot_draw():
    boxes = [BoxSpec("a", ("a",)), BoxSpec("b", ("b",), border=False)]
    with pytest.raises(ValueError, match="no border"):
        measure(boxes, [EdgeSpec("a", "b")], across=True)
    with pytest.raises(ValueError, match="edge labels"):
        measure(boxes[:1] + [BoxSpec("c", ("c",))], [EdgeSpec("a", "c", "3.5")], across=True)


@pytest.mark.parametrize("detail", ["full", "compact", "ops"])
def test_the_floor_on_an_across_width_is_never_above_the_width_across(detail):
    # the stepper skips laying out across what this floor says cannot fit: it must not lie
    from tui_support import expression_trace

    for trace in (lecture_trace(), expression_trace("f = x * y + sin(x)\ng = exp(x) / y", "x=0.5,y=2")):
        down = TraceDrawing(trace, detail, current_labels=True)
        across = TraceDrawing(trace, detail, current_labels=True, across=True)
        assert across.across and down.least_across_width() <= across.width
        assert down.least_across_width() >= across.width * 0.8  # and near enough to be of use
