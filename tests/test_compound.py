"""A folded model laid out module by module (draw/compound.py): every edge attached across
module frames, identical blocks laid out once, opening a module lays out only what changed."""

from __future__ import annotations

from collections import Counter

import pytest

from drawcheck import traced_edges
from tui_support import gpt_shaped_trace
from gradviz.draw import compound
from gradviz.draw.compound import CONTAINER, is_port, port_source
from gradviz.draw.fold import MODULE, FoldChoice, plan_fold
from gradviz.draw.terminal import TraceDrawing

pytest.importorskip("torch")


@pytest.fixture(scope="module")
def gpt4():
    """A GPT-2-shaped model of four identical blocks."""
    return gpt_shaped_trace("4,16,2,8")


@pytest.fixture
def dot_calls(monkeypatch):
    """The DOT texts `dot` is asked to lay out, with dot's memory of earlier answers cleared."""
    calls: list[str] = []
    real = compound.run_dot

    def counting(source, fmt, timeout_s=60.0):
        calls.append(source)
        return real(source, fmt, timeout_s)

    monkeypatch.setattr(compound, "_plain", {})
    monkeypatch.setattr(compound, "run_dot", counting)
    return calls


def _inside(inner, outer) -> bool:
    return outer.x < inner.x and inner.right < outer.right and outer.y < inner.y and inner.bottom < outer.bottom


@pytest.mark.parametrize("depth,expand", [(1, ()), (2, ()), (3, ()), (2, ("blocks.1",)), (3, ("blocks.2.attn",))])
def test_a_folded_model_keeps_every_edge_attached_across_module_frames(gpt4, depth, expand):
    graph = gpt4.graph
    fold = plan_fold(graph, depth=depth, expand=expand)
    drawing = TraceDrawing(gpt4, fold=fold)
    assert drawing.compound
    look = drawing.look()
    assert traced_edges(drawing.grid()) == Counter((e.src, e.dst) for e in look.edges)
    # every graph edge between two boxes in view is carried by a drawn edge
    carried = {ids for j in range(len(look.edges)) for ids in look.edges_drawn_by(j)}
    between = {(node.id, position) for node in graph.nodes for position, source in enumerate(node.inputs)
               if fold.groups[node.id] and fold.groups[source] and fold.groups[node.id] != fold.groups[source]}
    assert between and between <= carried
    # each module's members lie inside its frame; a port stands for its source's node
    rects = drawing.layout.boxes
    for box in look.boxes:
        if box.cluster:
            assert _inside(rects[box.key], rects[CONTAINER + box.cluster]), box.key
        if is_port(box.key):
            assert look.node_of(box.key) == look.node_of(port_source(box.key))


def _relative(drawing: TraceDrawing, module: str) -> list[tuple[int, int, int, int]]:
    frame = drawing.layout.boxes[CONTAINER + module]
    return sorted((r.x - frame.x, r.y - frame.y, r.w, r.h) for key, r in drawing.layout.boxes.items()
                  if key != CONTAINER + module and _inside(r, frame))


def test_identical_blocks_are_laid_out_once_and_look_the_same(gpt4, dot_calls):
    fold = plan_fold(gpt4.graph, depth=3)
    drawing = TraceDrawing(gpt4, fold=fold)
    scopes = 1 + sum(1 for box in drawing.look().boxes if box.key.startswith(CONTAINER))
    blocks = [f"blocks.{k}" for k in range(4)]
    assert len(dot_calls) == len(set(dot_calls)) < scopes - len(blocks) + 2  # four blocks: one dot run
    assert "blocks.0 … blocks.3: 4 alike, laid out once" in drawing.fold.note
    first = _relative(drawing, blocks[0])
    assert len(first) > 5 and all(_relative(drawing, block) == first for block in blocks[1:])
    TraceDrawing(gpt4, fold=fold)  # the same folding again: every scope is known
    assert len(dot_calls) == len(set(dot_calls))


def test_opening_a_module_lays_out_only_it_and_the_scopes_around_it(gpt4, dot_calls):
    graph = gpt4.graph
    choice = FoldChoice(depth=3)
    fold = choice.plan(graph)
    before = TraceDrawing(gpt4, fold=fold)
    known = len(dot_calls)
    node = next(i for i, key in enumerate(fold.groups) if key == MODULE + "blocks.2.attn")
    opened = choice.toggle_module(graph, fold, node)
    assert opened is not None and opened.expand == {"blocks.2.attn"}
    after = TraceDrawing(gpt4, fold=opened.plan(graph))
    # blocks.2.attn's inside, blocks.2, blocks and the top level: nothing else
    assert len(dot_calls) - known == 4
    for block in ("blocks.0", "blocks.1", "blocks.3"):
        assert _relative(after, block) == _relative(before, block)
    assert after.fold.box_of(node) != before.fold.box_of(node)
    assert "blocks.0, blocks.1, blocks.3: 3 alike, laid out once" in after.fold.note


def test_a_click_on_a_port_selects_its_node_and_stepping_inside_an_open_module_repaints_exactly(gpt4):
    from gradviz.tui.scene import Scene, changed_nodes
    from gradviz.tui.timeline import Timeline

    fold = plan_fold(gpt4.graph, depth=2, expand=("blocks.1",))
    drawing = TraceDrawing(gpt4, fold=fold)
    look = drawing.look()
    ports = [box.key for box in look.boxes if is_port(box.key)]
    assert any(key.startswith(compound.PORT_IN) for key in ports) and any(
        key.startswith(compound.PORT_OUT) for key in ports)
    for key in ports:
        rect = drawing.layout.boxes[key]
        assert drawing.node_at(rect.x + rect.w // 2, rect.y) == look.node_of(port_source(key))
    timeline = Timeline(gpt4)
    full = TraceDrawing(gpt4, fold=fold)
    previous = None
    total = len(timeline)
    for k in [0, *range(1, total + 1, max(1, total // 30)), total, 5]:
        scene = Scene(timeline, k)
        changed = None if previous is None else changed_nodes(previous, scene)
        drawing.repaint(scene.state, range(len(gpt4.graph.nodes)) if changed is None else changed)
        previous = scene
        full.grid(scene.state)
        rows = [drawing.runs(y) for y in range(drawing.height)]
        assert rows == [full.runs(y) for y in range(full.height)], f"step {k}"


@pytest.mark.parametrize("which", ["expression", "model"])
def test_a_layout_over_its_time_budget_is_drawn_smaller_with_edges_and_says_so(gpt4, monkeypatch, which):
    from gradviz.draw import layout
    from gradviz.draw.dot import LayoutTimeout
    from gradviz.draw.fold import box_count
    from gradviz.draw.terminal import laid_out
    from gradviz.sources.expr import trace_expression

    # boxes `dot` lays out "in time" here; more stand for a dot that takes minutes (a model is
    # laid out one module at a time, so its limit is on the biggest module: attention's inside)
    limit = 60 if which == "expression" else 12
    real = layout.run_dot

    def slow_past_limit(source, fmt, timeout_s=60.0):
        if source.count("[width=") > limit:
            raise LayoutTimeout(f"`dot` took longer than {timeout_s:.0f} s")
        return real(source, fmt, timeout_s)

    monkeypatch.setattr(layout, "run_dot", slow_past_limit)
    monkeypatch.setattr(compound, "run_dot", slow_past_limit)
    monkeypatch.setattr(compound, "_plain", {})
    if which == "expression":
        trace = trace_expression("\n".join(f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)"
                                           for i in range(60)), {"x1": 0.3, "x2": 0.2})
        asked = plan_fold(trace.graph)
    else:
        trace, asked = gpt4, plan_fold(gpt4.graph, depth=4)
    assert box_count(trace.graph, list(asked.groups), asked.stubs) > limit
    drawing = laid_out(trace, fold=asked, timeout_s=3)
    assert drawing.fold.note.startswith("laying out ") and "took over 3 s" in drawing.fold.note
    assert box_count(trace.graph, list(drawing.fold.groups), drawing.fold.stubs) < box_count(
        trace.graph, list(asked.groups), asked.stubs)
    look = drawing.look()
    assert look.edges and traced_edges(drawing.grid()) == Counter((e.src, e.dst) for e in look.edges)


def test_a_folded_model_formats_only_the_numbers_its_boxes_show(gpt4):
    # a folded module shows its output's numbers: its other members' are never worked out
    from gradviz.draw.fold import box_members
    from gradviz.draw.look import Numbers

    fold = plan_fold(gpt4.graph, depth=1)
    numbers = Numbers(gpt4)
    TraceDrawing(gpt4, fold=fold, numbers=numbers)
    members = box_members(gpt4.graph, fold)
    shown = {inside[-1] for inside in members.values()}
    formatted = {where[-1] for where in numbers._memo if where[0] in ("value", "reverse")}
    assert shown and formatted <= shown
    assert len(formatted) < len(gpt4.graph.nodes) // 4


def test_a_frame_keeps_its_title_clear_of_arriving_edges_and_the_time_budget_is_for_the_whole_layout(
        gpt4, monkeypatch):
    from gradviz.draw.dot import LayoutTimeout

    for depth, detail in [(2, "full"), (3, "ops"), (3, "dots")]:
        drawing = TraceDrawing(gpt4, detail, fold=plan_fold(gpt4.graph, depth=depth))
        grid = drawing.grid()
        for key, box in grid.boxes.items():
            if box.hollow:
                rect = drawing.layout.boxes[key]
                top = "".join(grid.chars[rect.y, rect.x:rect.right])
                arrivals = len(grid.ports_in[key])
                title = f" {box.lines[0]} "
                assert top.count(grid.glyphs.arrows[0]) == arrivals, (key, top)
                written = "".join(ch for ch in top if ch.isalnum() or ch in "._")
                assert written in (box.lines[0], ""), (key, top)  # whole, or left out: never cut by an arrow
                assert written or arrivals or rect.w - 4 < len(title), (key, top)
    # no time left: the layout stops at once instead of running dot scope after scope
    monkeypatch.setattr(compound, "_plain", {})
    with pytest.raises(LayoutTimeout):
        TraceDrawing(gpt4, fold=plan_fold(gpt4.graph, depth=3), timeout_s=0)
