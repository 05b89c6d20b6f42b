"""Folding big graphs (draw/fold.py): stubs for hubs, modules folded by depth, focus views.

Every folded picture is rasterised and walked by drawcheck: each drawn edge leaves one
box and arrives at another, so a folding never leaves an edge hanging.
"""

from __future__ import annotations

import html
from collections import Counter

import networkx as nx
import pytest

from drawcheck import traced_edges
from tui_support import gpt_shaped_trace
from gradviz.cli import main
from gradviz.draw.fold import MODULE, box_count, fold_look, neighbourhood, plan_fold
from gradviz.draw.look import make_view, trace_look
from gradviz.draw.terminal import TraceDrawing
from gradviz.sources.expr import trace_expression


def _hub_expression(statements: int) -> str:
    """Each statement reuses the inputs x1 and x2: two hubs with `2 * statements` users."""
    lines = [f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)" for i in range(statements)]
    return "\n".join(lines)


@pytest.fixture(scope="module")
def hub_trace():
    return trace_expression(_hub_expression(40), {"x1": 0.3, "x2": 0.2})


def _all_edges(graph) -> set[tuple[int, int]]:
    return {(node.id, position) for node in graph.nodes for position in range(len(node.inputs))}


def _assert_attached(drawing: TraceDrawing) -> None:
    look = drawing.look()
    assert traced_edges(drawing.grid()) == Counter((e.src, e.dst) for e in look.edges)


def test_hubs_become_stubs_and_every_edge_is_still_drawn(hub_trace):
    graph = hub_trace.graph
    fold = plan_fold(graph)
    assert {graph.nodes[i].label for i in fold.stubs} == {"x1", "x2"}
    look = fold_look(graph, trace_look(hub_trace, make_view(hub_trace)), fold)
    # a stub stands for one edge each: the picture still draws every edge of the graph
    assert sorted(look.edge_ids) == sorted(_all_edges(graph))
    stubs = [box for box in look.boxes if box.key.startswith("s")]
    assert {look.node_of(box.key) for box in stubs} == fold.stubs
    assert all(box.lines in (("◂x1",), ("◂x2",)) for box in stubs)
    # no box has more than a few edges out: the hubs' 80 edges are gone from them
    out_degree = Counter(edge.src for edge in look.edges)
    assert max(out_degree.values()) <= 3
    _assert_attached(TraceDrawing(hub_trace, fold=fold))


def test_a_stub_stands_for_its_node(hub_trace):
    drawing = TraceDrawing(hub_trace)
    x1 = hub_trace.graph.find("x1").id
    stub = next(key for key in drawing.layout.boxes if key.startswith(f"s{x1}."))
    rect = drawing.layout.boxes[stub]
    assert drawing.node_at(rect.x, rect.y) == x1


@pytest.mark.parametrize("hops", [1, 2, 3])
def test_focus_is_exactly_the_k_hop_neighbourhood(hub_trace, hops):
    graph = hub_trace.graph
    center = graph.find("s20").id
    undirected = nx.Graph()
    undirected.add_edges_from((i, node.id) for node in graph.nodes for i in node.inputs)
    expected = set(nx.ego_graph(undirected, center, radius=hops))
    assert neighbourhood(graph, center, hops, hub_users=None) == expected
    fold = plan_fold(graph, focus=center, hops=hops, stub_users=None)
    shown = {i for i in range(len(graph.nodes)) if fold.box_of(i)}
    assert shown == expected
    _assert_attached(TraceDrawing(hub_trace, fold=fold))


def test_a_graph_over_budget_opens_focused_on_its_output_and_says_so():
    trace = trace_expression(_hub_expression(100), {"x1": 0.3, "x2": 0.2})
    fold = plan_fold(trace.graph, budget=60)
    assert fold.focus == trace.graph.outputs["s99"] and fold.hops >= 1
    groups = list(fold.groups)
    assert box_count(trace.graph, groups, fold.stubs) <= 60
    assert "too many to lay out at once" in fold.note and "--focus NODE --hops K" in fold.note
    _assert_attached(TraceDrawing(trace, fold=fold))


@pytest.fixture(scope="module")
def gpt_trace():
    return gpt_shaped_trace("2,16,2,8")


def test_modules_fold_to_the_depth_asked_for(gpt_trace):
    graph = gpt_trace.graph
    one = plan_fold(graph, depth=1)
    modules = {key[len(MODULE):] for key in one.groups if key.startswith(MODULE)}
    assert {"blocks", "wte", "ln_f"} <= modules and not any("." in m for m in modules)
    two = plan_fold(graph, depth=2)
    modules = {key[len(MODULE):] for key in two.groups if key.startswith(MODULE)}
    assert {"blocks.0", "blocks.1"} <= modules
    # every node of blocks.1 is in its box, and no node outside it
    inside = {i for i in range(len(graph.nodes)) if (graph.nodes[i].meta.get("module") or "").startswith("blocks.1")}
    assert set(two.members(MODULE + "blocks.1")) == inside
    for fold in (one, two):
        drawing = TraceDrawing(gpt_trace, fold=fold)
        _assert_attached(drawing)


def test_a_folded_module_shows_its_output_and_opens_on_expand(gpt_trace):
    graph = gpt_trace.graph
    fold = plan_fold(graph, depth=2)
    look = fold_look(graph, trace_look(gpt_trace, make_view(gpt_trace)), fold)
    box = next(b for b in look.boxes if b.key == MODULE + "blocks.0")
    out = look.node_of(box.key)
    own = trace_look(gpt_trace, make_view(gpt_trace)).boxes[out]
    assert box.lines[0] == "▣ blocks.0" and box.lines[1] == f"{len(fold.members(box.key))} nodes"
    assert box.lines[2:] == own.lines[1:]  # the output's value and adjoint
    assert box.cluster == "blocks"
    opened = plan_fold(graph, depth=2, expand=["blocks.0"])
    keys = {key for key in opened.groups if key.startswith(MODULE + "blocks.0")}
    assert MODULE + "blocks.0" not in keys and MODULE + "blocks.0.attn" in keys
    assert MODULE + "blocks.1" in opened.groups


def test_the_current_step_lights_up_its_folded_module(gpt_trace):
    from gradviz.core.steps import forward_steps, state_at

    graph = gpt_trace.graph
    fold = plan_fold(graph, depth=2)
    steps = forward_steps(gpt_trace)
    k = next(i for i, step in enumerate(steps, 1) if fold.groups[step.node] == MODULE + "blocks.1")
    state = state_at(gpt_trace, steps, k)
    look = fold_look(graph, trace_look(gpt_trace, make_view(gpt_trace, state)), fold)
    styles = {box.key: box.style for box in look.boxes}
    assert styles[MODULE + "blocks.1"] == "module.current"
    assert styles[MODULE + "blocks.0"] == "module"


def test_cli_depth_focus_and_a_bad_focus(tmp_path, capsys):
    path = tmp_path / "hubs.expr"
    path.write_text("# at: x1=0.3, x2=0.2\n" + _hub_expression(30))
    assert main(["trace", f"@{path}", "--graph", "--focus", "s10", "--hops", "2", "--mode", "forward"]) == 0
    out = capsys.readouterr().out
    assert "(focus: the 2-hop neighbourhood of s10, 7 of 92 nodes)" in out
    assert main(["trace", f"@{path}", "--graph", "--focus", "nope"]) == 2
    assert capsys.readouterr().err.strip() == "gradviz: error: --focus nope: no such node (labels are in the trace table)"
    svg = tmp_path / "g.svg"
    assert main(["export", f"@{path}", "-o", str(svg), "--focus", "s10", "--hops", "1"]) == 0
    text = html.unescape(svg.read_text())
    assert 'id="n' in text and "1-hop neighbourhood of s10" in text


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fast_tensor_statistics_equal_the_float64_reference(dtype):
    import numpy as np

    from gradviz.core.fmt import summary_line
    from gradviz.core.stats import tensor_stats

    rng = np.random.default_rng(0)
    value = (rng.standard_normal((64, 33)) * 3 + 1).astype(dtype)
    value[value < -2] = 0
    stats = tensor_stats(value)
    ref = value.astype(np.float64)
    assert stats.mean == pytest.approx(ref.mean(), rel=1e-6)
    assert stats.std == pytest.approx(ref.std(), rel=1e-5)
    assert (stats.min, stats.max) == (ref.min(), ref.max())
    assert stats.norm == pytest.approx(np.linalg.norm(ref), rel=1e-6)
    assert stats.zero_fraction == pytest.approx((ref == 0).mean())
    assert (stats.nan_count, stats.inf_count) == (0, 0)
    assert summary_line(value) == f"‖{np.linalg.norm(ref):.4g}‖"
    value[0, 0], value[1, 1] = np.nan, np.inf
    bad = tensor_stats(value)
    assert (bad.nan_count, bad.inf_count) == (1, 1)
    finite = ref[np.isfinite(value)]
    assert bad.mean == pytest.approx(finite.mean()) and bad.norm == pytest.approx(np.linalg.norm(finite))
    assert summary_line(value).endswith("2×NaN/Inf")


def _rows(drawing: TraceDrawing) -> list:
    return [drawing.runs(y) for y in range(drawing.height)]


@pytest.mark.parametrize("which", ["stubs", "modules"])
def test_stepping_a_folded_drawing_node_by_node_equals_a_full_paint(which, hub_trace, gpt_trace):
    from gradviz.tui.scene import Scene, changed_nodes
    from gradviz.tui.timeline import Timeline

    trace = hub_trace if which == "stubs" else gpt_trace
    fold = plan_fold(trace.graph, depth=None if which == "stubs" else 2)
    assert not fold.is_identity
    timeline = Timeline(trace)
    stepped, full = TraceDrawing(trace, fold=fold), TraceDrawing(trace, fold=fold)
    total = len(timeline)
    previous = None
    for k in [0, *range(1, total + 1, max(1, total // 40)), total, 3, 0]:
        scene = Scene(timeline, k)
        changed = None if previous is None else changed_nodes(previous, scene)
        stepped.repaint(scene.state, range(len(trace.graph.nodes)) if changed is None else changed)
        previous = scene
        full.grid(scene.state)
        assert _rows(stepped) == _rows(full), f"step {k}"


def test_an_exported_folded_model_draws_its_module_boxes_with_their_edges(gpt_trace, tmp_path):
    # DOT reads 'a:b' in an edge as node a, port b: a module's key must not contain ':'
    import xml.etree.ElementTree as ET

    from gradviz.draw.export import export_trace, make_picture

    fold = plan_fold(gpt_trace.graph, depth=2)
    picture = make_picture(gpt_trace, fold=fold)
    path = export_trace(gpt_trace, tmp_path / "folded.svg", fold=fold)
    svg = "{http://www.w3.org/2000/svg}"
    root = ET.parse(path).getroot()
    groups = list(root.iter(svg + "g"))
    nodes = {g.get("id") for g in groups if g.get("class", "").startswith("node")}
    edges = [g.find(svg + "title").text for g in groups if g.get("class") == "edge"]
    assert nodes == {box.key for box in picture.look.boxes}
    assert len(edges) == len(picture.look.edges)
    into_blocks = [e for e in edges if e.endswith("->" + MODULE + "blocks.1")]
    assert into_blocks, edges


def test_a_big_model_opens_folded_in_a_terminal_and_open_in_an_export(gpt_trace):
    from gradviz.draw.fold import TERMINAL_MODULE_BUDGET, FoldChoice

    graph = gpt_trace.graph
    terminal = plan_fold(graph, module_budget=30)
    assert terminal.depth is not None
    assert box_count(graph, list(terminal.groups), terminal.stubs) <= 30
    assert plan_fold(graph, module_budget=3).depth == 1  # nothing fits: the top level, not a focus
    assert plan_fold(graph).is_identity  # the export's budget holds it open
    assert len(graph.nodes) < TERMINAL_MODULE_BUDGET  # the small model opens open in a terminal too
    assert FoldChoice().plan(graph).is_identity
    # opening one module keeps the depth that was chosen: only that module changes
    choice = FoldChoice().toggle_module(graph, terminal, next(i for i, k in enumerate(terminal.groups)
                                                             if k.startswith(MODULE)))
    assert choice.depth == terminal.depth and len(choice.expand) == 1


def test_z_folds_a_module_of_a_graph_drawn_open(gpt_trace):
    # the graph opens unfolded; folding the module around a node must draw that module's box
    from gradviz.draw.fold import FoldChoice

    graph = gpt_trace.graph
    open_fold = FoldChoice().plan(graph)
    assert open_fold.is_identity
    node = next(n.id for n in graph.nodes if (n.meta.get("module") or "") == "blocks.0.ln1" and not n.is_leaf)
    choice = FoldChoice().toggle_module(graph, open_fold, node)
    fold = choice.plan(graph)
    assert not fold.is_identity and fold.box_of(node) == MODULE + "blocks.0.ln1"
    _assert_attached(TraceDrawing(gpt_trace, fold=fold))
    # the stepper's pane title says what was folded by hand (not "stubs": there are none)
    from gradviz.tui.widgets.graph_pane import fold_title

    assert not fold.stubs and fold_title(gpt_trace, fold) == " · 1 module folded (z opens)"


def test_a_focused_drawing_works_out_only_the_nodes_in_view(hub_trace):
    # a focus on 1,000 nodes of 100,000 must cost what 1,000 cost: nothing outside is formatted
    from gradviz.draw.look import Numbers

    graph = hub_trace.graph
    fold = plan_fold(graph, focus=len(graph.nodes) - 1, hops=3)
    assert fold.shown is not None and 3 < len(fold.shown) < len(graph.nodes) // 4
    numbers = Numbers(hub_trace)
    drawing = TraceDrawing(hub_trace, fold=fold, numbers=numbers)
    _assert_attached(drawing)
    touched = {where[-1] if where[0] in ("value", "tangent", "reverse") else where[-2] for where in numbers._memo}
    assert touched and touched <= fold.shown
    # a node that uses one input twice (x1 * x1) lists that user once
    square = trace_expression("y = x1 * x1 + x1", {"x1": 0.5}).graph
    x1 = square.find("x1").id
    assert len(square.users(x1)) == len(set(square.users(x1))) == 2


def test_a_long_tape_column_is_sized_without_formatting_every_number_and_never_too_narrow():
    import numpy as np

    from gradviz.core.fmt import fmt_value
    from gradviz.tui.widgets.tape import MEASURED, _column_width

    column = [np.float64(0.5)] * (MEASURED + 500)
    column[-1] = np.float64(-999999.99994)  # the widest a scalar gets, past the measured ones
    assert _column_width("value", column) >= len(fmt_value(column[-1])) == 12
    short = [np.float64(0.5)] * 10  # a short column is measured exactly
    assert _column_width("value", short) == max(7, len("value"), len(fmt_value(short[0])))
