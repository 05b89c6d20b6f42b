"""draw's public repaint: repainting named nodes gives the picture a full paint gives."""

from __future__ import annotations

import shutil

import pytest

from gradviz.core.steps import build_steps, state_at
from gradviz.draw.terminal import TraceDrawing
from gradviz.sources.expr import trace_expression

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")


def rows(drawing: TraceDrawing) -> list:
    return [drawing.runs(y) for y in range(drawing.height)]


@pytest.mark.parametrize("current_labels", [False, True])
def test_repaint_forwards_and_backwards_equals_a_full_paint(current_labels):
    trace = trace_expression("f = exp(x1/x2)*x2 + log(x2)", at={"x1": 0.5, "x2": 1.0})
    steps = build_steps(trace)
    stepped = TraceDrawing(trace, current_labels=current_labels)
    full = TraceDrawing(trace, current_labels=current_labels)
    every = range(len(trace.graph.nodes))
    for k in [*range(len(steps) + 1), *range(len(steps), -1, -1), 4, 17]:
        state = state_at(trace, steps, k)
        stepped.repaint(state, every)
        full.grid(state)
        assert rows(stepped) == rows(full), f"step {k}"


def test_repaint_redraws_only_what_changed_and_says_which_rows():
    trace = trace_expression("y = sigmoid(a*b) + a", at={"a": 2.0, "b": -1.0})
    steps = build_steps(trace)
    drawing = TraceDrawing(trace)
    every = range(len(trace.graph.nodes))
    assert drawing.repaint(state_at(trace, steps, 0), every)  # the first paint: rows change
    assert drawing.repaint(state_at(trace, steps, 0), every) == set()  # the same step again: nothing
    node = steps[0].node  # step 1 computes this node
    changed = drawing.repaint(state_at(trace, steps, 1), [node])
    rect = drawing.rect_of(node)
    assert set(range(rect.y, rect.y + rect.h)) <= changed < set(range(drawing.height))


def test_a_full_paint_after_repaints_forgets_nothing():
    trace = trace_expression("y = sigmoid(a*b) + a", at={"a": 2.0, "b": -1.0})
    steps = build_steps(trace)
    drawing = TraceDrawing(trace)
    drawing.grid(state_at(trace, steps, 0))
    drawing.repaint(state_at(trace, steps, len(steps)), range(len(trace.graph.nodes)))
    drawing.grid(state_at(trace, steps, 0))
    assert rows(drawing) == rows(_painted(TraceDrawing(trace), state_at(trace, steps, 0)))


def _painted(drawing: TraceDrawing, state) -> TraceDrawing:
    drawing.grid(state)
    return drawing


def _active_edges(drawing: TraceDrawing) -> set[tuple[int, int]]:
    """The edges (child, input position) whose drawn cells carry the active style."""
    grid = drawing._grid
    active = {grid.style_id(key) for key in ("edge.active", "edge.active.nonfinite")}
    return {drawing._sizing.edge_ids[j] for j, cells in enumerate(grid.edge_cells)
            if len(cells) and int(grid.styles.flat[cells[0]]) in active}


@pytest.mark.parametrize("paint", ["grid", "repaint"])
def test_an_edge_is_active_only_where_it_adds_to_the_current_outputs_adjoint(paint):
    from gradviz.core.explain import adjoint_terms
    from gradviz.core.steps import stepper_steps

    trace = trace_expression("f = x * y + sin(x)\ng = exp(x) / y", at={"x": 0.5, "y": 2.0})  # jacobian.expr
    steps = stepper_steps(trace)
    x = next(n.id for n in trace.graph.nodes if n.label == "x")
    k = next(i for i, s in enumerate(steps, start=1) if s.phase == "reverse" and s.pass_key == "g" and s.node == x)
    drawing = TraceDrawing(trace)
    state = state_at(trace, steps, k)
    drawing.grid(state) if paint == "grid" else drawing.repaint(state, range(len(trace.graph.nodes)))
    users = {(n.id, p) for n in trace.graph.nodes for p, i in enumerate(n.inputs) if i == x}
    assert len(users) == 3  # x feeds v1 = x·y and sin(x) (into f) and exp(x) (into g)
    terms = adjoint_terms(trace, "g", x)  # what the inspector lists as the sum into x̄
    into_g = {(t.child, t.position) for t in terms if t.value is not None}
    assert len(into_g) == 1
    assert _active_edges(drawing) == into_g


def test_the_stepper_writes_the_numbers_of_the_current_nodes_edges_only():
    """current_labels: no label rows; at v1's reverse step each number written beside an
    edge is the contribution that edge carries into v̄1, and a step later they are gone."""
    from gradviz.core.steps import stepper_steps

    trace = trace_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", at={"x1": 0.5, "x2": 1.0})
    steps = stepper_steps(trace)
    v1 = next(n.id for n in trace.graph.nodes if n.label == "v1")
    k = next(i for i, s in enumerate(steps, start=1) if s.phase == "reverse" and s.node == v1)
    every = range(len(trace.graph.nodes))
    drawing, labelled = TraceDrawing(trace, current_labels=True), TraceDrawing(trace)
    assert drawing.layout.labels == {} and labelled.layout.labels  # no rows kept for labels
    assert drawing.height < labelled.height
    drawing.repaint(state_at(trace, steps, k), every)
    grid = drawing._grid
    written = {}
    for j, cells in drawing._overlays.items():
        written[drawing._sizing.edge_ids[j]] = "".join(grid.chars.flat[cells].tolist())
    out_of_v1 = {(n.id, p) for n in trace.graph.nodes for p, i in enumerate(n.inputs) if i == v1}
    assert written and set(written) <= out_of_v1
    for (child, position), text in written.items():
        assert float(text) == pytest.approx(float(trace.contributions["f"][(child, position)]), abs=5e-5)
    drawing.repaint(state_at(trace, steps, k + 1), every)
    assert not {drawing._sizing.edge_ids[j] for j in drawing._overlays} & out_of_v1
    stale = [c for j, cells in drawing._overlays.items() for c in cells]
    blank = set(range(grid.width * grid.height)) - set(stale)
    assert all(grid.owners.flat[c] >= 0 or grid.chars.flat[c] == " " for c in blank)  # nothing else left
