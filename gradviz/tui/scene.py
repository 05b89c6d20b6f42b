"""What every pane shows at step k, derived from the Timeline alone (so stepping back is exact).

A Scene answers, for any node, which of its numbers are known at k and how the node
looks: 'pending', 'known', 'current', 'bad' (non-finite) or 'off' (not in this pass).
Panes ask only about the nodes they draw, so a step costs little on big graphs.
Textual-free.
"""

from __future__ import annotations

from functools import cached_property

import numpy as np

from gradviz.core.fmt import fmt_value
from gradviz.core.stats import facts_of
from gradviz.core.steps import StepState
from gradviz.tui.timeline import Timeline

PREFIX = {"value": "= ", "tangent": "′ ", "adjoint": "¯ "}


class Scene:
    """The view at step k: the StepState plus the tangent and adjoint columns in play."""

    def __init__(self, timeline: Timeline, k: int):
        self.timeline = timeline
        self.trace = timeline.trace
        self.k = k
        self.state: StepState = timeline.state(k)
        self._known: dict[tuple[str, str | None], frozenset[int]] = {}

    @property
    def phase(self) -> str:
        return self.state.phase

    @property
    def current(self) -> int | None:
        return self.state.current

    @cached_property
    def wrt(self) -> str | None:
        """The input whose tangents are in play: this pass's, else the last one finished."""
        if self.phase == "tangent":
            return self.state.pass_key
        finished = [p.key for p in self.timeline.phase_passes("tangent") if p.stop <= self.k]
        inputs = list(self.trace.tangents)
        return finished[-1] if finished else (inputs[0] if inputs else None)

    @cached_property
    def output(self) -> str | None:
        """The output whose adjoints are in play: this pass's, else the first."""
        if self.phase == "reverse":
            return self.state.pass_key
        outputs = list(self.trace.adjoints)
        return outputs[0] if outputs else None

    def known(self, kind: str, key: str | None = None) -> frozenset[int]:
        """Nodes whose value / tangent (w.r.t. key) / adjoint (of key) is known at k."""
        if kind == "value":
            return self.state.values_known
        phase = "tangent" if kind == "tangent" else "reverse"
        if (phase, key) not in self._known:
            if phase == self.phase and key == self.state.pass_key:
                known = self.state.tangents_known if phase == "tangent" else self.state.adjoints_known
            else:
                known = self.timeline.known(self.k, phase, key)
            self._known[(phase, key)] = known
        return self._known[(phase, key)]

    def number(self, kind: str, node: int, key: str | None = None):
        """The number itself (an array, or None when the trace has none for this node)."""
        trace = self.trace
        if kind == "value":
            return trace.values[node]
        table = trace.tangents if kind == "tangent" else trace.adjoints
        column = table.get(key) if key is not None else None
        return None if column is None else column[node]

    def text(self, kind: str, node: int, key: str | None = None) -> str:
        """The number as text, '?' while pending, '' where there is nothing to show."""
        if key is None and kind != "value":
            return ""
        if kind != "value" and node in self.trace.graph.target_ids:
            return "data"  # a loss's target: nothing is differentiated with respect to it
        if node not in self.known(kind, key):
            return "?"
        texts = self.timeline.texts
        text = texts.get((kind, node, key))
        if text is None:
            text = texts[(kind, node, key)] = fmt_value(self.number(kind, node, key), norm=facts_of(self.trace).norm)
        return text

    def is_finite(self, kind: str, node: int, key: str | None = None) -> bool:
        """Whether every element of the number is finite (None counts as finite), once per number."""
        finite = self.timeline.finite
        known = finite.get((kind, node, key))
        if known is None:
            number = self.number(kind, node, key)
            known = finite[(kind, node, key)] = number is None or facts_of(self.trace).finite(number)
        return known

    @cached_property
    def derivative(self) -> tuple[str, str | None] | None:
        """The derivative the graph shows beside values: this phase's, if any."""
        if self.phase == "tangent":
            return ("tangent", self.wrt)
        if self.phase == "reverse":
            return ("adjoint", self.output)
        return None

    @cached_property
    def pass_nodes(self) -> dict[int, int] | None:
        """The nodes the current pass visits (None before any pass)."""
        p = self.timeline.pass_at(self.k)
        return None if p is None else p.position

    def slot_text(self, slot: str, node: int) -> str:
        """What a box's number line reads: 'value', 'derivative' or the phase's 'current'."""
        if slot == "current":
            slot = "value" if self.derivative is None else "derivative"
        if slot == "value":
            return PREFIX["value"] + self.text("value", node)
        if self.derivative is None or self.trace.graph.nodes[node].op == "const":
            return ""
        kind, key = self.derivative
        if self.pass_nodes is not None and node not in self.pass_nodes:
            return ""
        return PREFIX[kind] + self.text(kind, node, key)

    def look(self, node: int) -> str:
        """How a node is drawn at k: 'current', 'bad', 'pending', 'off' or 'known'."""
        if node == self.current:
            return "current"
        if node in self.state.values_known and not self.is_finite("value", node):
            return "bad"
        if self.derivative is not None:
            kind, key = self.derivative
            if self.pass_nodes is not None and node not in self.pass_nodes:
                return "off"
            if node in self.known(kind, key):
                return "bad" if not self.is_finite(kind, node, key) else "known"
            return "pending"
        return "known" if node in self.state.values_known else "pending"


def changed_nodes(old: Scene, new: Scene) -> set[int] | None:
    """Nodes that may look different between two steps; None means repaint everything."""
    if old.derivative != new.derivative or old.phase != new.phase or old.state.pass_key != new.state.pass_key:
        return None
    changed = set(old.state.values_known ^ new.state.values_known)
    if new.derivative is not None:
        kind, key = new.derivative
        changed |= old.known(kind, key) ^ new.known(kind, key)
    changed |= {n for n in (old.current, new.current) if n is not None}
    return changed


def first_bad_step(timeline: Timeline) -> tuple[int, int] | None:
    """(k, node) of the first non-finite value or adjoint, as `!` jumps to it."""
    trace = timeline.trace
    first = trace.first_nonfinite()
    if first is None:
        return None
    kind, node = first
    if kind == "value":
        return (timeline.step_of(node, "forward") or 0, node)
    for output, adjoints in trace.adjoints.items():
        a = adjoints[node]
        if a is not None and not np.all(np.isfinite(a)):
            k = timeline.step_of(node, "reverse", output)
            if k is not None:
                return (k, node)
    return (0, node)
