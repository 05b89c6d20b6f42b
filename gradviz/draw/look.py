"""How a trace looks, once, for the terminal and the export alike: boxes, edges, styles.

`trace_look` turns (Trace, StepState, detail) into generic BoxSpecs and EdgeSpecs with
style keys; `STYLES` says what each key looks like in a terminal and in Graphviz.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

# _times spells a term the way the trace table does (−v̄5, v̄1·(1/x2)); one place for that.
from gradviz.core.explain import _times, bar, partial_formula
from gradviz.core.fmt import fmt_shape, fmt_value, is_finite
from gradviz.core.graph import Node
from gradviz.core.steps import StepState
from gradviz.core.trace import Trace
from gradviz.draw.layout import BoxSpec, EdgeSpec, text_width

DETAILS = ("full", "ops", "dots")
MODES = ("forward", "tangent", "reverse")
LOSS_OPS = frozenset({"bce", "mse", "mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
                      "binary_cross_entropy_with_logits", "huber_loss", "smooth_l1_loss"})
PENDING = "?"  # a number this step has not computed yet


@dataclass(frozen=True)
class KindStyle:
    """How one kind of node looks: a rich style for the terminal, Graphviz attributes for export."""

    meaning: str
    terminal: str
    shape: str
    fill: str
    border: str


STYLES: Mapping[str, KindStyle] = {
    "input": KindStyle("input (x1, x2, a batch)", "bold cyan", "ellipse", "#dff3f7", "#2b8cbe"),
    "parameter": KindStyle("parameter (trained weights)", "bold magenta", "box", "#f3e3f3", "#8e3b8e"),
    "constant": KindStyle("constant", "dim", "plain", "#f2f2f2", "#999999"),
    "op": KindStyle("operation", "", "box", "#ffffff", "#444444"),
    "output": KindStyle("output", "bold yellow", "box", "#fff2cc", "#b8860b"),
    "loss": KindStyle("loss (an output the model minimises)", "bold dark_orange", "box", "#fde0c5", "#d2691e"),
}
"""Node kinds, in the legend's order. On top of the kind, the state of the step:

- current: the node this step computes (reverse video in the terminal, yellow in export);
- pending: not computed yet in this pass (dimmed; '?' where its number will be);
- non-finite: a value, tangent or adjoint that is NaN or ±inf (red);
- an active edge carries what the current node is computed from (into it in forward and
  tangent mode, out of it in reverse mode: the contributions v̄_j·∂v_j/∂v_i it sums).
"""

STATE_TERMINAL = {"current": "reverse", "pending": "dim", "nonfinite": "bold red"}
EDGE_TERMINAL = {"edge": "grey62", "edge.pending": "grey35", "edge.active": "bold yellow",
                 "edge.label": "italic grey70", "edge.pending.label": "grey35", "edge.active.label": "bold yellow"}
CURRENT_FILL = "#ffe066"


@dataclass(frozen=True)
class GraphLook:
    """A trace as generic drawing specs; `edge_ids[e]` is edge e's (child id, input position)."""

    boxes: tuple[BoxSpec, ...]
    edges: tuple[EdgeSpec, ...]
    edge_ids: tuple[tuple[int, int], ...]


@dataclass(frozen=True)
class View:
    """What one picture shows: the phase, its pass, and what is known (from a StepState)."""

    phase: str  # 'forward' | 'tangent' | 'reverse'
    pass_key: str | None
    current: int | None
    values: frozenset[int] | None  # None: everything known
    tangents: frozenset[int] | None
    adjoints: frozenset[int] | None


def node_kind(trace: Trace, node: Node) -> str:
    """The legend kind of a node: input, parameter, constant, op, output or loss."""
    if trace.graph.output_label(node.id) is not None:
        return "loss" if node.op in LOSS_OPS or "loss" in node.label.lower() else "output"
    return node.kind


def make_view(trace: Trace, state: StepState | None = None, mode: str | None = None,
              wrt: str | None = None, output: str | None = None) -> View:
    """The View of a step, or (state None) of the finished `mode` pass."""
    if state is not None and state.step is not None:
        return View(state.phase, state.pass_key, state.current, state.values_known,
                    state.tangents_known, state.adjoints_known)
    if state is not None:  # step 0: the leaves only
        return View("forward", None, None, state.values_known, frozenset(), frozenset())
    if mode is None:
        mode = "reverse" if trace.adjoints else "tangent" if trace.tangents else "forward"
    key = None
    if mode == "tangent":
        key = wrt if wrt in trace.tangents else next(iter(trace.tangents), None)
    elif mode == "reverse":
        key = output if output in trace.adjoints else next(iter(trace.adjoints), None)
    if mode != "forward" and key is None:
        mode = "forward"
    return View(mode, key, None, None, None, None)


def _known(ids: frozenset[int] | None, node_id: int) -> bool:
    return ids is None or node_id in ids


def short_value(value: np.ndarray | None) -> str:
    """A number small enough for a box: scalars and short vectors in full, tensors as a shape."""
    if value is None:
        return "—"
    value = np.asarray(value)
    if value.size <= 4:
        return fmt_value(value)
    text = fmt_shape(value.shape)
    return text if is_finite(value) else text + " non-finite"


def derivative_line(trace: Trace, node: Node, view: View) -> tuple[str, bool]:
    """The tangent or adjoint line of a box for this view, and whether its number is finite."""
    if node.op == "const" or view.phase == "forward" or view.pass_key is None:
        return "", True
    if view.phase == "tangent":
        symbol, known, numbers = f"{node.label}'", view.tangents, trace.tangents[view.pass_key]
    else:
        symbol, known, numbers = bar(node.label), view.adjoints, trace.adjoints[view.pass_key]
    if not _known(known, node.id):
        return f"{symbol} = {PENDING}", True
    return f"{symbol} = {short_value(numbers[node.id])}", is_finite(numbers[node.id])


def box_text(trace: Trace, node: Node, view: View, detail: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """A node's lines at one detail level, and per line whether it shows a non-finite number."""
    if detail == "dots":
        return ("●",), ()
    if detail == "ops" or node.op == "const":
        text = node.label if node.is_leaf else node.op if len(node.label) > 4 else f"{node.label} {node.op}"
        return (text,), ()
    value_known = _known(view.values, node.id)
    value = trace.values[node.id]
    lines = [node.definition, short_value(value) if value_known else PENDING]
    bad = [False, value_known and not is_finite(value)]
    if trace.tangents or trace.adjoints:
        text, finite = derivative_line(trace, node, view)
        lines.append(text)
        bad.append(not finite)
    return tuple(lines), tuple(bad)


def box_style(trace: Trace, node: Node, view: View) -> str:
    """The style key of a box: its kind, with '.current' or '.pending' for this step."""
    kind = node_kind(trace, node)
    if view.current == node.id:
        return kind + ".current"
    known = {"forward": view.values, "tangent": view.tangents, "reverse": view.adjoints}[view.phase]
    if node.op != "const" and not _known(known, node.id):
        return kind + ".pending"
    return kind


def edge_label(trace: Trace, child: int, position: int, view: View, long: bool = False) -> str:
    """The label of edge (child, position): its partial, or in reverse mode its contribution."""
    graph = trace.graph
    formula = partial_formula(trace, child, position)
    if view.phase == "reverse" and view.pass_key is not None:
        term = _times(bar(graph.nodes[child].label), formula)
        if not _known(view.adjoints, child):
            return term if long else ""
        value = trace.contributions.get(view.pass_key, {}).get((child, position))
        number = "0" if value is None else short_value(value)
        return f"{term} = {number}" if long else number
    partial = trace.partials.get((child, position))
    if view.phase == "tangent" and not long:
        return formula if partial is None else short_value(partial)
    if long and partial is not None and formula != short_value(partial):
        return f"{formula} = {short_value(partial)}"
    return formula


def edge_style(trace: Trace, child: int, source: int, view: View) -> str:
    """'edge', 'edge.active' (feeds the current step) or 'edge.pending' (not flowed yet)."""
    if view.current is not None:
        if view.phase == "reverse" and source == view.current:
            return "edge.active"
        if view.phase != "reverse" and child == view.current:
            return "edge.active"
    known = {"forward": view.values, "tangent": view.tangents, "reverse": view.adjoints}[view.phase]
    return "edge" if _known(known, child) else "edge.pending"


def trace_look(trace: Trace, view: View, detail: str = "full", labels: bool = False,
               long_labels: bool = False) -> GraphLook:
    """Boxes and edges for one picture of the trace (edge labels only where `labels`)."""
    graph = trace.graph
    boxes = []
    for node in graph.nodes:
        lines, bad = box_text(trace, node, view, detail)
        style = box_style(trace, node, view)
        line_styles = tuple(style + ".nonfinite" if flag else None for flag in bad) if any(bad) else ()
        boxes.append(BoxSpec(f"n{node.id}", lines, style, node.meta.get("module") or None,
                             line_styles, border=detail != "dots"))
    edges = []
    edge_ids = []
    for node in graph.nodes:
        for position, source in enumerate(node.inputs):
            label = None
            if labels and graph.nodes[source].op != "const":
                label = edge_label(trace, node.id, position, view, long_labels)
            edges.append(EdgeSpec(f"n{source}", f"n{node.id}", label, edge_style(trace, node.id, source, view)))
            edge_ids.append((node.id, position))
    return GraphLook(tuple(boxes), tuple(edges), tuple(edge_ids))


def all_views(trace: Trace) -> list[View]:
    """The finished view of every pass the trace holds (forward, each tangent, each adjoint)."""
    views = [View("forward", None, None, None, None, None)]
    views += [View("tangent", key, None, None, None, None) for key in trace.tangents]
    views += [View("reverse", key, None, None, None, None) for key in trace.adjoints]
    # reverse mode before its pass reaches an edge shows the term without its number
    views += [View("reverse", key, None, None, None, frozenset()) for key in trace.adjoints]
    return views


def sizing_look(trace: Trace, detail: str = "full", labels: bool = False, long_labels: bool = False) -> GraphLook:
    """Every box and label at its widest over all steps, so one layout serves every step."""
    looks = [trace_look(trace, view, detail, labels, long_labels) for view in all_views(trace)]
    first = looks[0]
    boxes = []
    for i, box in enumerate(first.boxes):
        slots = max(len(look.boxes[i].lines) for look in looks)
        lines = tuple(
            max((look.boxes[i].lines[s] for look in looks if s < len(look.boxes[i].lines)), key=text_width)
            for s in range(slots)
        )
        boxes.append(BoxSpec(box.key, lines, box.style, box.cluster, (), box.border))
    edges = []
    for j, edge in enumerate(first.edges):
        texts = [look.edges[j].label for look in looks if look.edges[j].label]
        edges.append(EdgeSpec(edge.src, edge.dst, max(texts, key=text_width) if texts else None, edge.style))
    return GraphLook(tuple(boxes), tuple(edges), first.edge_ids)
