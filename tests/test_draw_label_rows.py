"""The stepper's full form with a row for each edge's number (label_rows): at every step,
every edge of the current node that carries a number shows it whole in its own spot, and
that number is the trace's (the contribution v̄_j·∂v_j/∂v_i in reverse mode); the other
edges' spots are blank."""

from __future__ import annotations

import random
import shutil

import numpy as np
import pytest

from gradviz.core.steps import build_steps, state_at
from gradviz.draw.cells import text_width
from gradviz.draw.look import Numbers, edge_label, make_view
from gradviz.draw.terminal import TraceDrawing
from gradviz.sources.expr import trace_expression

pytestmark = pytest.mark.skipif(shutil.which("dot") is None, reason="Graphviz's dot is not installed")

LECTURE = ("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", {"x1": 0.5, "x2": 1.0})


def _random_expression(seed: int) -> tuple[str, dict[str, float]]:
    """A small expression over x1..x3 whose subterms are reused (so nodes have fan-out)."""
    rng = random.Random(seed)
    terms = ["x1", "x2", "x3"]
    for _ in range(rng.randint(4, 8)):
        a, b = rng.choice(terms), rng.choice(terms)
        terms.append(rng.choice([f"({a} + {b})", f"({a} * {b})", f"({a} - {b})", f"exp({a})", f"sin({a})",
                                 f"tanh({a})", f"({a} * 2)"]))
    expression = " + ".join(terms[-3:])
    at = {name: round(rng.uniform(0.2, 1.5), 2) for name in ("x1", "x2", "x3")}
    return expression, {name: value for name, value in at.items() if name in expression}


def _label_text(drawing: TraceDrawing, j: int) -> str:
    grid, rect = drawing._grid, drawing.layout.labels[j]
    return "\n".join("".join(grid.chars[y, rect.x : rect.right].tolist()).rstrip() for y in range(rect.y, rect.bottom))


def _check_every_step(expression: str, at: dict[str, float]) -> int:
    trace = trace_expression(expression, at=at)
    drawing = TraceDrawing(trace, current_labels=True, label_rows=True)
    assert drawing.active_labels_only and drawing.layout.labels, "small graphs get a row per edge label"
    numbers = Numbers(trace)
    steps = build_steps(trace)
    every = range(len(trace.graph.nodes))
    shown = 0
    for k in range(len(steps) + 1):
        state = state_at(trace, steps, k)
        drawing.repaint(state, every)
        view = make_view(trace, state)
        for j, edge in enumerate(drawing._grid.edges):
            if j not in drawing.layout.labels:
                continue
            (child, position), = drawing._sizing.edges_drawn_by(j)
            text = _label_text(drawing, j)
            if not edge.style.startswith("edge.active"):
                assert text == "", (k, j, text)  # only the current node's edges carry numbers
                continue
            expected = edge_label(numbers, child, position, view)
            assert text == expected and text_width(expected) <= drawing.layout.labels[j].w, (k, j, text, expected)
            if state.phase == "reverse" and expected:
                term = trace.contributions[state.pass_key][(child, position)]
                assert float(text.replace("−", "-")) == pytest.approx(float(np.asarray(term)), rel=1e-3, abs=1e-4)
            shown += bool(expected)
        # every edge into or out of the current node that the pass lights has its spot
        if state.current is not None:
            for j in drawing._edges_of[state.current]:
                if drawing._grid.edges[j].style.startswith("edge.active"):
                    source = trace.graph.nodes[drawing._sizing.edges_drawn_by(j)[0][0]].inputs[
                        drawing._sizing.edges_drawn_by(j)[0][1]]
                    assert j in drawing.layout.labels or trace.graph.nodes[source].op == "const", (k, j)
    return shown


def test_the_lecture_shows_each_current_edge_number_at_every_step_of_every_pass():
    assert _check_every_step(*LECTURE) > 0


@pytest.mark.parametrize("seed", [1, 2, 3, 4])
def test_random_graphs_show_each_current_edge_number_at_every_step(seed):
    assert _check_every_step(*_random_expression(seed)) > 0


def test_repainting_named_nodes_with_label_rows_equals_a_full_paint_both_ways():
    trace = trace_expression(LECTURE[0], at=LECTURE[1])
    steps = build_steps(trace)
    stepped = TraceDrawing(trace, current_labels=True, label_rows=True)
    full = TraceDrawing(trace, current_labels=True, label_rows=True)
    every = range(len(trace.graph.nodes))
    for k in [*range(len(steps) + 1), *range(len(steps), -1, -1)]:
        state = state_at(trace, steps, k)
        stepped.repaint(state, every)
        full.grid(state)
        assert [stepped.runs(y) for y in range(stepped.height)] == [full.runs(y) for y in range(full.height)], k


def test_without_room_for_label_rows_a_large_graph_keeps_numbers_beside_its_lines():
    """Label rows are for small graphs (as `trace --graph`'s labels): past LABEL_LIMIT nodes the
    stepper's full form has no rows for them and writes numbers beside the lines."""
    from gradviz.draw.terminal import LABEL_LIMIT

    expression = " + ".join(f"exp(x1 * {i})" for i in range(1, LABEL_LIMIT // 2 + 2))
    trace = trace_expression(expression, at={"x1": 0.1})
    assert len(trace.graph.nodes) > LABEL_LIMIT
    drawing = TraceDrawing(trace, current_labels=True, label_rows=True)
    assert not drawing.active_labels_only and not drawing.layout.labels
