"""Folding in the stepper: a big graph opens folded, z opens and folds a module, Z focuses,
a step inside a folded module lights it up, a click on a stub selects its node."""

from __future__ import annotations


import pytest

from gradviz.draw.fold import MODULE, FoldChoice
from gradviz.tui.app import StepperApp
from gradviz.tui.widgets.graph_pane import GraphPane
from gradviz.tui.widgets.status import StatusBar
from tui_support import expression_trace, gpt_shaped_trace, run_async, wait_until

SIZE = (140, 45)


@pytest.fixture(scope="module")
def gpt_trace():
    pytest.importorskip("torch")
    return gpt_shaped_trace("2,16,2,8")


def _drawn(app, choice: FoldChoice):
    pane = app.screen.query_one(GraphPane)
    return pane.drawing is not None and pane.drawing.choice == choice and not pane.loading


@run_async
async def test_z_opens_and_folds_a_module_and_a_step_inside_lights_it(gpt_trace):
    graph = gpt_trace.graph
    app = StepperApp(gpt_trace, source="gpt", choice=FoldChoice(depth=2))
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _drawn(app, FoldChoice(depth=2)))
        pane = app.screen.query_one(GraphPane)
        assert "modules folded at depth 2" in str(pane.border_title)  # "(z opens one)" only where it fits whole
        # step to the first op computed inside blocks.1: its folded box is the current one
        stepper = app.screen
        def inside(k: int) -> bool:
            node = graph.nodes[stepper.timeline.state(k).current]
            return (node.meta.get("module") or "").startswith("blocks.1") and node.meta["module"] != node.label

        k = next(k for k in range(1, stepper.timeline.last + 1) if inside(k))
        stepper.k = k
        await pilot.pause()
        node = stepper.scene.current
        assert pane.drawing.fold.box_of(node) == MODULE + "blocks.1"
        rect = pane.drawing.box(node)
        runs = [run for y in range(rect[1], rect[1] + rect[3]) for run in pane.drawing.runs(y)]
        assert any(key == "module.current" for _, key in runs)
        status = str(app.screen.query_one(StatusBar).render())
        assert f"in {graph.nodes[node].meta['module']}" in status
        # z opens blocks.1 (its children fold at the next level) and z again folds it back
        await pilot.press("z")
        opened = FoldChoice(depth=2, expand=frozenset({"blocks.1"}))
        await wait_until(pilot, lambda: _drawn(app, opened))
        assert pane.drawing.fold.box_of(node) != MODULE + "blocks.1"
        await pilot.press("z")
        await wait_until(pilot, lambda: pane.drawing.fold.box_of(node) != pane.drawings[(pane.detail, opened)].fold.box_of(node))
        # Z: the neighbourhood of the current node alone, and back
        await pilot.press("Z")
        await wait_until(pilot, lambda: pane.drawing is not None and pane.drawing.fold.focus == node)
        assert "focus on" in str(pane.border_title)
        await pilot.press("Z")
        await wait_until(pilot, lambda: pane.drawing.fold.focus is None)


@run_async
async def test_a_click_on_a_stub_selects_its_node():
    lines = "\n".join(f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)" for i in range(12))
    trace = expression_trace(lines, "x1=0.3,x2=0.2")
    app = StepperApp(trace, source="hubs")
    async with app.run_test(size=SIZE) as pilot:
        await wait_until(pilot, lambda: _drawn(app, FoldChoice()))
        pane = app.screen.query_one(GraphPane)
        x1 = trace.graph.find("x1").id
        assert x1 in pane.drawing.fold.stubs
        drawing = pane.drawing._drawing
        key = next(k for k in drawing.layout.boxes if k.startswith(f"s{x1}."))
        rect = drawing.layout.boxes[key]
        pane.scroll_to(rect.x, rect.y, animate=False, immediate=True)
        await pilot.pause()
        gutter = pane.gutter  # the border: click offsets count from the widget's outer edge
        offset = (rect.x - int(pane.scroll_x) + gutter.left, rect.y - int(pane.scroll_y) + gutter.top)
        await pilot.click(GraphPane, offset=offset)
        await pilot.pause()
        assert app.screen.selected == x1
