"""Issue 21's acceptance, read from the screen: the lecture's eight nodes, each with its value
and the current pass's tangent or adjoint, all in the graph pane without scrolling at 80×24
(one-row boxes, line+), 120×40 (compact) and 200×60 (full, with the current node's edge
contributions), the current node's cells in the current style."""

from __future__ import annotations

import asyncio

import pytest

from gradviz.tui.app import StepperApp
from screencheck import region_text, stepper_defects
from test_tui_across import LECTURE_ADJOINTS, LECTURE_VALUES
from tui_support import lecture_trace, screen_text, wait_for_graph

# ∂·/∂x1 at x1 = 0.5, x2 = 1: v1' = 1/x2, v2' = e^{v1}·v1', v3' = v2' + v1', v4' = 0,
# v5' = v1' − v4', f' = v3'·v5 + v3·v5' = 2.6487·0.5 + 2.1487·1 (= x̄1, as it must)
LECTURE_TANGENTS_X1 = {"x1": "1.0000", "x2": "0", "v1": "1.0000", "v2": "1.6487", "v3": "2.6487",
                       "v4": "0", "v5": "1.0000", "f": "3.4731"}
SIZES = {(80, 24): "line+", (120, 40): "compact", (200, 60): "full"}


async def _graph_at(size, step_of):
    """The graph pane at the step `step_of(timeline)`: its form, scroll, the text inside it,
    the text its cells in the current node's style spell, the current node, and defects."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    trace = lecture_trace()
    app = StepperApp(trace, source="lecture")
    k = step_of(app.timeline)
    app = StepperApp(trace, source="lecture", start=k)
    async with app.run_test(size=size) as pilot:
        await wait_for_graph(pilot)
        await pilot.pause(0.3)
        pane = app.screen.query_one(GraphPane)
        text = screen_text(app)
        current = pane.scene.current
        style = pane.drawing.style(pane.drawing._drawing._grid.boxes[f"n{current}"].style)
        lit = "".join(segment.text for y in range(pane.scrollable_content_region.height)
                      for segment in pane.render_line(y) if segment.style == style)
        return {"detail": pane.drawing.detail, "scroll": (pane.scroll_x, pane.scroll_y),
                "graph": "\n".join(region_text(text, pane.content_region)), "lit": lit,
                "current": trace.graph.nodes[current], "defects": stepper_defects(app, text)}


def _last_step(phase, key):
    return lambda timeline: timeline.find_pass(phase, key).stop


def _number(symbol: str, number: str, detail: str) -> str:
    """How a box writes a tangent or adjoint: `v̄4 -2.1487` on one row, `v̄4 = -2.1487` on its own line."""
    return f"{symbol} {number}" if detail == "line+" else f"{symbol} = {number}"


def _bar(label: str) -> str:
    return label[0] + "\u0304" + label[1:]  # v̄4: the bar over the letter


@pytest.mark.parametrize("size", list(SIZES), ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_node_shows_its_value_and_adjoint_at_the_end_of_the_reverse_pass(size):
    seen = asyncio.run(_graph_at(size, _last_step("reverse", "f")))
    assert seen["detail"] == SIZES[size] and seen["scroll"] == (0, 0) and not seen["defects"], seen
    graph = seen["graph"]
    for node in lecture_trace().graph.nodes:
        assert node.definition in graph and LECTURE_VALUES[node.label] in graph, (node.label, graph)
        assert _number(_bar(node.label), LECTURE_ADJOINTS[node.label], seen["detail"]) in graph, (node.label, graph)
    # the current node, x1 (the last adjoint the pass computes), is lit: name, value, adjoint
    assert seen["current"].label == "x1"
    assert "x1" in seen["lit"] and "0.5000" in seen["lit"] and "3.4731" in seen["lit"], seen["lit"]


@pytest.mark.parametrize("size", list(SIZES), ids=[f"{w}x{h}" for w, h in SIZES])
def test_every_node_shows_its_value_and_tangent_at_the_end_of_x1s_tangent_pass(size):
    seen = asyncio.run(_graph_at(size, _last_step("tangent", "x1")))
    assert seen["detail"] == SIZES[size] and seen["scroll"] == (0, 0) and not seen["defects"], seen
    graph = seen["graph"]
    for node in lecture_trace().graph.nodes:
        assert node.definition in graph and LECTURE_VALUES[node.label] in graph, (node.label, graph)
        assert _number(f"{node.label}'", LECTURE_TANGENTS_X1[node.label], seen["detail"]) in graph, (node.label, graph)
    assert seen["current"].label == "f"
    assert "f = v3·v5" in seen["lit"] and "1.0744" in seen["lit"] and "3.4731" in seen["lit"], seen["lit"]


def _at_v1s_reverse_step_at_200x60():
    return asyncio.run(_graph_at((200, 60), lambda timeline: timeline.step_of(
        lecture_trace().graph.find("v1").id, "reverse", "f")))


def test_at_200x60_the_current_nodes_edges_carry_their_contributions():
    """v̄1 = v̄2·e^{v1} + v̄3 + v̄5 = 0.8244 + 0.5000 + 2.1487: the terms beside their edges."""
    seen = _at_v1s_reverse_step_at_200x60()
    assert seen["detail"] == "full" and seen["current"].label == "v1" and not seen["defects"], seen
    graph = seen["graph"]
    assert "0.8244" in graph, graph  # v̄2·e^{v1} = 0.5·1.6487: a number no box shows
    # v̄3·1 = 0.5000 is also x1's, v1's, v5's values and v̄2's, v̄3's adjoints: five boxes and its edge
    assert graph.count("0.5000") == 6, graph
    assert "v̄1 = 3.4731" in graph and "v̄1 = 3.4731" in seen["lit"]


def test_at_200x60_the_short_edge_v1_to_v5_carries_its_contribution_too():
    """Without rows of its own, v1 -> v5 (a corner right under v1's port) found no blank spot
    for its term; with the pane's spare rows the full form gives each edge's number a row."""
    graph = _at_v1s_reverse_step_at_200x60()["graph"]
    # v3's value, v̄5, v̄4 (as -2.1487), and the term v̄5·1 on the edge v1 -> v5
    assert graph.count("2.1487") == 4, graph


def _centred_offset(pane) -> tuple[float, float]:
    """Where the scroll would put the current node's box in the middle of the pane, as far as
    the scroll range allows."""
    x, y, w, h = pane.drawing.box(pane.scene.current)
    region = pane.scrollable_content_region
    return (min(max(x + w / 2 - region.width / 2, 0), pane.max_scroll_x),
            min(max(y + h / 2 - region.height / 2, 0), pane.max_scroll_y))


def test_the_opening_picture_centres_the_current_node_whatever_the_timing():
    """The pane was centred on the node at its size before the screen proportioned the panes,
    and not again after: two_layer_mlp opened at scroll 7 or 15 (120×40), 0 or 2 (80×24),
    depending on whether the loop was busy. A resize after opening is the same race, made
    certain: 200×60 → 120×40 → 80×24, each picture centred on the current node."""
    pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec
    from gradviz.tui.widgets.graph_pane import GraphPane
    from tui_support import SAMPLES

    spec = str(SAMPLES / "two_layer_mlp.py")
    trace = trace_spec(spec)

    async def run():
        app = StepperApp(trace, source="samples/two_layer_mlp.py", spec_path=spec, start=9)
        seen = []
        async with app.run_test(size=(200, 60)) as pilot:
            await wait_for_graph(pilot)
            for size in ((120, 40), (80, 24)):
                await pilot.resize_terminal(*size)
                await wait_for_graph(pilot)
                await pilot.pause(0.3)
                pane = app.screen.query_one(GraphPane)
                seen.append((size, pane.drawing.detail, (pane.scroll_x, pane.scroll_y), _centred_offset(pane),
                             stepper_defects(app, screen_text(app))))
        return seen

    for size, detail, scroll, centred, defects in asyncio.run(run()):
        assert not defects, (size, defects)
        assert abs(scroll[0] - centred[0]) <= 1 and abs(scroll[1] - centred[1]) <= 1, (size, detail, scroll, centred)


def test_where_only_values_fit_the_stepper_says_it_dropped_the_adjoints():
    """64 columns: line+ (75 wide) does not fit, line (46) does; the fit says what it gave up."""
    from gradviz.tui.widgets.graph_pane import GraphPane

    async def run():
        app = StepperApp(lecture_trace(), source="lecture", start=30)
        async with app.run_test(size=(64, 24), notifications=True) as pilot:
            await wait_for_graph(pilot)
            await pilot.pause(0.3)
            pane = app.screen.query_one(GraphPane)
            return pane.drawing.detail, [n.message for n in app._notifications]

    detail, messages = asyncio.run(run())
    assert detail == "line", detail
    assert any("no drawing with tangents or adjoints fits" in m and "values only" in m for m in messages), messages
