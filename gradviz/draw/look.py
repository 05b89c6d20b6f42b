"""How a trace looks, once, for the terminal and the export alike: boxes, edges, styles.

`trace_look` turns (Trace, StepState, detail) into generic BoxSpecs and EdgeSpecs with
style keys; `STYLES` says what each key looks like in a terminal and in Graphviz.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Container, Mapping, Sequence

import numpy as np

# times_term spells a term the way the trace table does (−v̄5, v̄1·(1/x2)); one place for that.
from gradviz.core.explain import bar, minus, partial_formula, times_term
from gradviz.core.fmt import fmt_value, summary_line
from gradviz.core.stats import facts_of, l2_norm
from gradviz.core.graph import LOSS_OPS, Node  # noqa: F401  (LOSS_OPS: the legend's 'loss' kind)
from gradviz.core.steps import StepState
from gradviz.core.trace import Trace
from gradviz.draw.cells import text_width
from gradviz.draw.handoff import BoxSpec, EdgeSpec

DETAILS = ("full", "compact", "line+", "line", "ops", "dots")
"""The forms a box takes, most detailed first: full (definition, value and the pass's
derivative on three lines; edge labels on small graphs), compact (`v2 = exp(v1)  1.6487`
on one line, the pass's derivative on a second), line+ (one borderless row: that first
line and the pass's derivative, `v4 = log(x2)  0  v̄4 -2.1487`), line (the first line
alone), ops (the op's name), dots. The first four show values."""
WITH_VALUES = ("full", "compact", "line+", "line")
ONE_ROW = ("line+", "line", "dots")  # forms whose boxes are one bare row


def bordered(detail: str) -> bool:
    """Whether boxes of this form have a border (one-row forms and dots are one bare row)."""
    return detail not in ONE_ROW


def derivative_slot(detail: str) -> int | None:
    """Which of a box's lines holds the pass's tangent or adjoint at this form (None: no line)."""
    return {"full": 2, "compact": 1}.get(detail)
PENDING = "?"  # a number this step has not computed yet


@dataclass(frozen=True)
class KindStyle:
    """How one kind of node looks: a rich style for the terminal, Graphviz attributes for export."""

    terminal: str
    shape: str
    fill: str
    border: str


STYLES: Mapping[str, KindStyle] = {
    "input": KindStyle("bold cyan", "ellipse", "#dff3f7", "#2b8cbe"),
    "parameter": KindStyle("bold magenta", "box", "#f3e3f3", "#8e3b8e"),
    "constant": KindStyle("dim", "plain", "#f2f2f2", "#999999"),
    "op": KindStyle("", "box", "#ffffff", "#444444"),
    "output": KindStyle("bold yellow", "box", "#fff2cc", "#b8860b"),
    "loss": KindStyle("bold dark_orange", "box", "#fde0c5", "#d2691e"),
    "module": KindStyle("bold blue", "box3d", "#e6ecf7", "#4a6fa5"),
}
"""Node kinds, in the legend's order: input (x1, x2, a batch), parameter (trained
weights), constant, op, output, loss (an output the model minimises), module (a folded
module: one box for all its nodes, see fold.py). On top of the
kind, the state of the step:

- current: the node this step computes (reverse video in the terminal, yellow in export);
- pending: not computed yet in this pass (dimmed; '?' where its number will be);
- non-finite: a value, tangent or adjoint that is NaN or ±inf (red);
- an active edge carries what the current node is computed from (into it in forward and
  tangent mode, out of it in reverse mode: the contributions v̄_j·∂v_j/∂v_i it sums).
"""

STATE_TERMINAL = {"current": "reverse", "pending": "dim", "nonfinite": "bold red"}
# edge keys: 'edge', 'edge.pending' or 'edge.active', then '.nonfinite' and/or '.label'
EDGE_TERMINAL = {"edge": "grey62", "edge.pending": "grey35", "edge.active": "bold yellow",
                 "edge.label": "italic grey70", "edge.pending.label": "grey35", "edge.active.label": "bold yellow"}
CURRENT_FILL = "#ffe066"


@dataclass(frozen=True)
class GraphLook:
    """A trace as generic drawing specs; `edge_ids[e]` is edge e's (child id, input position),
    None for an edge that stands for several (into or out of a folded module); `targets`
    maps a box that is not a node's own (a folded module, a stub) to the node it stands for."""

    boxes: tuple[BoxSpec, ...]
    edges: tuple[EdgeSpec, ...]
    edge_ids: tuple[tuple[int, int] | None, ...]
    targets: Mapping[str, int] = field(default_factory=dict)
    merged: Mapping[int, tuple[tuple[int, int], ...]] = field(default_factory=dict)  # edge -> the edges it stands for
    stands_for: Mapping[str, str] = field(default_factory=dict)  # a module's port -> the box it is named after

    def edges_drawn_by(self, j: int) -> tuple[tuple[int, int], ...]:
        """The graph edges (child, position) drawn edge j stands for."""
        own = self.edge_ids[j]
        return (own,) if own is not None else self.merged.get(j, ())

    def node_of(self, key: str) -> int | None:
        """The node a box stands for: its own ('n12'), a module's output, a stub's node."""
        if key in self.targets:
            return self.targets[key]
        return int(key[1:]) if key.startswith("n") and key[1:].isdigit() else None


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
    if node.id in trace.graph.outputs.values():
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


def short_value(value: np.ndarray | None, norm: Callable[[np.ndarray], float] = l2_norm) -> str:
    """A value for a box: numbers and short vectors in full, a tensor as shape and norm."""
    return fmt_value(value, norm=norm)


def short_number(value: np.ndarray | None, norm: Callable[[np.ndarray], float] = l2_norm) -> str:
    """A derivative beside its node's value: a tensor's shape is already shown, so its norm."""
    if value is None:
        return "—"
    value = np.asarray(value)
    if value.size == 1 or (value.ndim == 1 and value.size <= 3):
        return fmt_value(value)
    return summary_line(value, norm)


class Numbers:
    """A trace's numbers, each formatted on first use and kept: stepping re-reads them.

    Entries are (text, finite); an edge's is None where it carries no number.
    """

    def __init__(self, trace: Trace):
        self.trace = trace
        self._memo: dict[tuple, tuple[str, bool] | None] = {}
        self.facts = facts_of(trace)
        self.kinds = tuple(node_kind(trace, node) for node in trace.graph.nodes)
        self.targets = trace.graph.target_ids

    def _get(self, where: tuple, value: np.ndarray | None, format) -> tuple[str, bool] | None:
        if where not in self._memo:
            # norms and finiteness come from the trace's memo: the report, --json and every
            # drawing of the trace take each array's once (core.stats.ArrayFacts)
            self._memo[where] = None if value is None else (format(value, self.facts.norm), self.facts.finite(value))
        return self._memo[where]

    def value(self, node_id: int) -> tuple[str, bool]:
        """A node's value as a box shows it."""
        return self._get(("value", node_id), self.trace.values[node_id], short_value) or ("—", True)

    def derivative(self, phase: str, key: str, node_id: int) -> tuple[str, bool]:
        """A node's tangent (phase 'tangent', key the input) or adjoint (key the output)."""
        numbers = self.trace.tangents[key] if phase == "tangent" else self.trace.adjoints[key]
        return self._get((phase, key, node_id), numbers[node_id], short_number) or ("—", True)

    def edge(self, phase: str, key: str | None, child: int, position: int) -> tuple[str, bool] | None:
        """An edge's contribution to `key`'s adjoints (reverse) or its local partial."""
        if phase == "reverse" and key is not None:
            value = self.trace.contributions.get(key, {}).get((child, position))
            return self._get(("term", key, child, position), value, short_number)
        return self._get(("partial", child, position), self.trace.partials.get((child, position)), short_number)


def derivative_line(numbers: Numbers, node: Node, view: View) -> tuple[str, bool]:
    """The tangent or adjoint line of a box for this view, and whether its number is finite."""
    if node.op == "const" or view.phase == "forward" or view.pass_key is None:
        return "", True
    if node.id in numbers.targets:
        return "data (the target)", True
    if view.phase == "tangent":
        symbol, known = f"{node.label}'", view.tangents
    else:
        symbol, known = bar(node.label, numbers.trace.graph.shown_output(view.pass_key)), view.adjoints
    if not _known(known, node.id):
        return f"{symbol} = {PENDING}", True
    text, finite = numbers.derivative(view.phase, view.pass_key, node.id)
    return f"{symbol} = {text}", finite


def box_text(numbers: Numbers, node: Node, view: View, detail: str) -> tuple[tuple[str, ...], tuple[bool, ...]]:
    """A node's lines at one detail level, and per line whether it shows a non-finite number."""
    if detail == "dots":
        return ("●",), ()
    if detail == "ops" or node.op == "const":
        text = node.label if node.is_leaf else node.op if len(node.label) > 4 else f"{node.label} {node.op}"
        return (text,), ()
    value_known = _known(view.values, node.id)
    value, finite = numbers.value(node.id)
    value = value if value_known else PENDING
    if detail == "full":
        lines, bad = [node.definition, value], [False, value_known and not finite]
    else:  # compact and the one-row forms: the definition and its value on one line
        lines, bad = [f"{node.definition}  {value}"], [value_known and not finite]
    if detail == "line+" and (numbers.trace.tangents or numbers.trace.adjoints):
        text, finite = derivative_line(numbers, node, view)
        if text:  # the pass's number after the value, without its '=' (two cells a box)
            lines, bad = [f"{lines[0]}  {text.replace(' = ', ' ', 1)}"], [bad[0] or not finite]
    if derivative_slot(detail) is not None and (numbers.trace.tangents or numbers.trace.adjoints):
        text, finite = derivative_line(numbers, node, view)
        lines.append(text)
        bad.append(not finite)
    return tuple(lines), tuple(bad)


def box_style(numbers: Numbers, node: Node, view: View) -> str:
    """The style key of a box: its kind, with '.current' or '.pending' for this step."""
    kind = numbers.kinds[node.id]
    if view.current == node.id:
        return kind + ".current"
    known = {"forward": view.values, "tangent": view.tangents, "reverse": view.adjoints}[view.phase]
    if node.op != "const" and node.id not in numbers.targets and not _known(known, node.id):
        return kind + ".pending"
    return kind


def edge_number(numbers: Numbers, child: int, position: int, view: View) -> tuple[str, bool] | None:
    """The number an edge carries in this view (its contribution in reverse mode, once the
    child's adjoint is known; else its local partial), as (text, finite), or None."""
    if view.phase == "reverse" and view.pass_key is not None and not _known(view.adjoints, child):
        return None
    return numbers.edge(view.phase, view.pass_key, child, position)


def edge_label(numbers: Numbers, child: int, position: int, view: View, long: bool = False) -> str:
    """The label of edge (child, position): its partial, or in reverse mode its contribution."""
    trace = numbers.trace
    formula = partial_formula(trace, child, position)
    number = edge_number(numbers, child, position, view)
    if view.phase == "reverse" and view.pass_key is not None:
        term = times_term(bar(trace.graph.nodes[child].label, trace.graph.shown_output(view.pass_key)), formula)
        if not _known(view.adjoints, child):
            return term if long else ""
        text = "0" if number is None else number[0]  # the edge does not reach the output
        return f"{term} = {minus(text)}" if long else text  # one minus sign in a formula's line
    if view.phase == "tangent" and not long:
        return formula if number is None else number[0]
    if long and number is not None and not _is_literal(formula):
        return f"{formula} = {minus(number[0])}"
    return formula


def _is_literal(formula: str) -> bool:
    """True for a partial that is a plain number ('1', '−1', '2'): '1 = 1.0000' says nothing."""
    try:
        float(formula.replace("−", "-"))
    except ValueError:
        return False
    return True


def edge_style(numbers: Numbers, child: int, position: int, view: View) -> str:
    """'edge', 'edge.active' (feeds the current step) or 'edge.pending' (not flowed yet),
    with '.nonfinite' added where the number it carries is NaN or ±inf. In reverse mode an
    edge out of the current node is active only where it carries a term of the sum into its
    adjoint: an edge into a node that does not reach the output adds nothing to it."""
    source = numbers.trace.graph.nodes[child].inputs[position]
    known = {"forward": view.values, "tangent": view.tangents, "reverse": view.adjoints}[view.phase]
    style = "edge" if _known(known, child) else "edge.pending"
    number = edge_number(numbers, child, position, view)
    if view.current is not None:
        if view.phase == "reverse" and source == view.current and number is not None:
            style = "edge.active"
        elif view.phase != "reverse" and child == view.current:
            style = "edge.active"
    if number is not None and not number[1]:
        style += ".nonfinite"
    return style


HIDDEN_BOX = BoxSpec("", ())  # what trace_look puts for a node out of view (never drawn)
HIDDEN_EDGE = EdgeSpec("", "")


@dataclass(frozen=True)
class Visible:
    """What a folded picture needs worked out: per node the key of the box that draws it
    ('' out of view), and the nodes whose text shows (their own boxes, folded modules'
    outputs). Other nodes in view need only a style (their module lights up with them);
    an edge needs working out only where it joins two boxes."""

    groups: Sequence[str]
    texts: Container[int]


def trace_look(trace: Trace, view: View, detail: str = "full", labels: bool = False,
               long_labels: bool = False, numbers: Numbers | None = None,
               visible: Visible | None = None) -> GraphLook:
    """Boxes and edges for one picture of the trace (edge labels only where `labels`);
    pass the same `numbers` to every call on one trace to format each number once. With
    `visible` (a folding), only what it shows is worked out: a focus on 1,000 nodes of
    100,000, or a model folded to 100 boxes, costs what those boxes cost."""
    numbers = numbers or Numbers(trace)
    graph = trace.graph
    boxes = []
    for node in graph.nodes:
        if visible is not None and node.id not in visible.texts:
            if not visible.groups[node.id]:
                boxes.append(HIDDEN_BOX)
            else:
                boxes.append(BoxSpec(f"n{node.id}", (), box_style(numbers, node, view), node.meta.get("module") or None,
                                     border=bordered(detail)))
            continue
        lines, bad = box_text(numbers, node, view, detail)
        style = box_style(numbers, node, view)
        line_styles = tuple(style + ".nonfinite" if flag else None for flag in bad) if any(bad) else ()
        boxes.append(BoxSpec(f"n{node.id}", lines, style, node.meta.get("module") or None,
                             line_styles, border=bordered(detail)))
    edges = []
    edge_ids = []
    for node in graph.nodes:
        for position, source in enumerate(node.inputs):
            if visible is not None and (not visible.groups[source] or not visible.groups[node.id]
                                        or visible.groups[source] == visible.groups[node.id]):
                edges.append(HIDDEN_EDGE)
                edge_ids.append((node.id, position))
                continue
            label = None
            if labels and graph.nodes[source].op != "const":
                label = edge_label(numbers, node.id, position, view, long_labels)
            edges.append(EdgeSpec(f"n{source}", f"n{node.id}", label, edge_style(numbers, node.id, position, view)))
            edge_ids.append((node.id, position))
    return GraphLook(tuple(boxes), tuple(edges), tuple(edge_ids))


SIZING_PASSES = 3  # passes measured for box widths; later ones reuse the widest scalar


def sizing_views(trace: Trace) -> list[View]:
    """The finished views box widths are measured on: forward, then a few passes of each mode."""
    views = [View("forward", None, None, None, None, None)]
    views += [View("tangent", key, None, None, None, None) for key in list(trace.tangents)[:SIZING_PASSES]]
    for key in list(trace.adjoints)[:SIZING_PASSES]:
        views.append(View("reverse", key, None, None, None, None))
        # before the pass reaches an edge, a long label shows its term without a number
        views.append(View("reverse", key, None, None, None, frozenset()))
    return views


# the widest a scalar gets: fmt_scalar's e-notation, e.g. -1.234e-05
WIDEST_SCALAR = "-0.000e-00"


def sizing_look(trace: Trace, detail: str = "full", labels: bool = False, long_labels: bool = False,
                numbers: Numbers | None = None, visible: Visible | None = None) -> GraphLook:
    """Every box and label at its widest over all steps, so one layout serves every step
    (of what `visible` shows, as trace_look)."""
    numbers = numbers or Numbers(trace)
    looks = [trace_look(trace, view, detail, labels, long_labels, numbers, visible) for view in sizing_views(trace)]
    first = looks[0]
    unmeasured = len(trace.tangents) > SIZING_PASSES or len(trace.adjoints) > SIZING_PASSES
    boxes = []
    for i, box in enumerate(first.boxes):
        if not box.lines:  # out of view, or inside a folded module: never drawn on its own
            boxes.append(box)
            continue
        variants = [look.boxes[i].lines for look in looks]
        node = trace.graph.nodes[i]
        slot = derivative_slot(detail)
        if unmeasured and slot is not None and node.op != "const" and np.size(trace.values[i]) == 1:
            # a pass not measured may hold any scalar: leave room for the widest
            variants.append(("",) * slot + (f"{node.label}' = {WIDEST_SCALAR}",))
        elif unmeasured and detail == "line+" and node.op != "const" and np.size(trace.values[i]) == 1:
            variants.append((f"{first.boxes[i].lines[0]}  {node.label}' {WIDEST_SCALAR}",))
        slots = max(len(lines) for lines in variants)
        lines = tuple(
            max((lines[s] for lines in variants if s < len(lines)), key=text_width) for s in range(slots)
        )
        boxes.append(BoxSpec(box.key, lines, box.style, box.cluster, (), box.border))
    edges = []
    for j, edge in enumerate(first.edges):
        if edge is HIDDEN_EDGE:
            edges.append(edge)
            continue
        texts = [look.edges[j].label for look in looks if look.edges[j].label]
        edges.append(EdgeSpec(edge.src, edge.dst, max(texts, key=text_width) if texts else None, edge.style))
    return GraphLook(tuple(boxes), tuple(edges), first.edge_ids)
