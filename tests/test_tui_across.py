"""The stepper's fit tries ranks left to right too: a wide, short pane shows the lecture's
graph whole in its most detailed form, read from the screen."""

from __future__ import annotations

import asyncio

import pytest

from gradviz.tui.app import StepperApp
from screencheck import region_text, stepper_defects
from tui_support import lecture_trace, screen_text, wait_for_graph

LECTURE_VALUES = {"x1": "0.5000", "x2": "1.0000", "v1": "0.5000", "v2": "1.6487", "v3": "2.1487",
                  "v4": "0", "v5": "0.5000", "f": "1.0744"}
LECTURE_ADJOINTS = {"x1": "3.4731", "x2": "-3.8853", "v1": "3.4731", "v2": "0.5000", "v3": "0.5000",
                    "v4": "-2.1487", "v5": "2.1487", "f": "1.0000"}


async def _end_of_reverse_pass(size):
    """The graph pane at step 30 (x1's adjoint, the last step): its drawing, its text, and
    the text its cells in the current node's style spell."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    trace = lecture_trace()
    app = StepperApp(trace, source="lecture", start=30)
    async with app.run_test(size=size) as pilot:
        await wait_for_graph(pilot)
        await pilot.pause(0.3)
        pane = app.screen.query_one(GraphPane)
        assert (pane.scroll_x, pane.scroll_y) == (0, 0)
        text = screen_text(app)
        x1 = next(node.id for node in trace.graph.nodes if node.label == "x1")
        current = pane.drawing.style(pane.drawing._drawing._grid.boxes[f"n{x1}"].style)
        lit = "".join(segment.text for y in range(pane.scrollable_content_region.height)
                      for segment in pane.render_line(y) if segment.style == current)
        return (pane.drawing.detail, pane.drawing.across, "\n".join(region_text(text, pane.content_region)),
                lit, stepper_defects(app, text), pane.border_title)


@pytest.mark.parametrize("size", [(160, 30), (200, 30)], ids=["160x30", "200x30"])
def test_a_wide_short_pane_shows_the_lectures_full_boxes_left_to_right(size):
    """Down, the full form needs 29 rows and the compact 24: a 30-row terminal gave the graph
    17 and fell back to one-line boxes without adjoints. Across, the full form is 17 rows."""
    detail, across, graph_text, lit, defects, title = asyncio.run(_end_of_reverse_pass(size))
    assert (detail, across) == ("full", True) and "full across" in title
    assert not defects, defects
    for node in lecture_trace().graph.nodes:
        assert node.definition in graph_text and LECTURE_VALUES[node.label] in graph_text, node.label
        symbol = node.label[0] + "\u0304" + node.label[1:]  # x̄1: the bar over the letter
        assert f"{symbol} = {LECTURE_ADJOINTS[node.label]}" in graph_text, node.label
    # the current node, x1, is the highlighted box: its name, value and adjoint
    assert "x1" in lit and "0.5000" in lit and "3.4731" in lit


def test_where_the_downward_form_fits_the_stepper_keeps_it():
    # 200x60 fits the full form top to bottom: fit prefers it to the same form across
    detail, across, *_ = asyncio.run(_end_of_reverse_pass((200, 60)))
    assert (detail, across) == ("full", False)
