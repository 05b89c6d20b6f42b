"""Debugging signals on any Trace: the first NaN, vanishing or exploding gradients, saturated
sigmoids, dead ReLUs, dropout in the wrong mode, and edge terms that do not add up.

numpy only: works on expression and model traces alike. Each finding names one node.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradviz.core.explain import bar
from gradviz.core.fmt import fmt_scalar
from gradviz.core.graph import Node
from gradviz.core.stats import ArrayFacts, TensorStats, facts_of
from gradviz.core.trace import Trace

VANISHING = 1e-7  # ‖v̄‖ relative to ‖∂loss/∂output‖ (the gradient the loss sends back)
EXPLODING = 1e4
SATURATED_DERIVATIVE = 0.01  # σ' or tanh' below this passes back less than 1% of the gradient
MOST = 0.5  # "most units": more than half
MIN_BATCH = 4
SUM_RTOL = 1e-5
# Canonical names of ops, whatever level they were traced at.
SIGMOID = {"sigmoid", "Sigmoid"}
TANH = {"tanh", "Tanh"}
RELU = {"relu", "ReLU", "relu_"}
ACTIVATIONS = SIGMOID | TANH | RELU


@dataclass(frozen=True)
class Finding:
    """One signal at one node: `kind` is a short tag, `message` says what and how much."""

    kind: str
    node: int
    message: str


def find_issues(trace: Trace) -> list[Finding]:
    """Every finding, most urgent first: non-finite, sum mismatch, gradient scale, activations, dropout."""
    own = getattr(trace.values, "findings", None)  # a summaries-only trace checks its statistics
    if own is not None:
        return own(trace)
    found: list[Finding] = []
    found += non_finite(trace)
    found += sum_mismatches(trace)
    found += gradient_scale(trace)
    found += activations(trace)
    found += dropout_modes(trace)
    found += intended_masks(trace)
    return found


def _bad_count(value: np.ndarray) -> str:
    if isinstance(value, TensorStats):  # a --keep summaries trace: the counts were kept
        if np.dtype(value.dtype).kind != "f":
            return "non-finite"
        nan, inf, size = value.nan_count, value.inf_count, int(np.prod(value.shape, dtype=np.int64))
    else:
        value = np.asarray(value)
        if not np.issubdtype(value.dtype, np.floating):
            return "non-finite"
        nan, inf, size = int(np.isnan(value).sum()), int(np.isinf(value).sum()), value.size
    parts = [f"{nan} NaN" if nan else "", f"{inf} Inf" if inf else ""]
    return " and ".join(p for p in parts if p) + f" of {size}"


def non_finite(trace: Trace) -> list[Finding]:
    """The first node whose value (forward order) or else adjoint (reverse order) is NaN/Inf."""
    first = trace.first_nonfinite()
    if first is None:
        return []
    kind, node_id = first
    node = trace.graph.nodes[node_id]
    if kind == "value":
        inputs = "its inputs are finite" if node.inputs else LEAF_BLAME.get(node.kind, "an op with no tensor inputs made it")
        return [Finding("non-finite", node_id, f"first non-finite value: {_bad_count(trace.values[node_id])}; {inputs}")]
    finite = facts_of(trace).finite
    output = next(o for o, a in trace.adjoints.items() if a[node_id] is not None and not finite(a[node_id]))
    return [Finding("non-finite", node_id,
                    f"first non-finite adjoint {_adjoint_name(node.label, output)}: "
                    f"{_bad_count(trace.adjoints[output][node_id])}; every value and later adjoint is finite")]


LEAF_BLAME = {"input": "it is the data", "parameter": "it is a parameter",
              "constant": "it is a constant (a buffer or a tensor the code builds)"}


def intended_masks(trace: Trace) -> list[Finding]:
    """A note per attention mask: -inf put there on purpose and made finite downstream (not an error)."""
    from gradviz.core.masks import mask_regions

    found = []
    for region in mask_regions(trace.graph, trace.values, facts_of(trace).finite):
        ends = ", ".join(trace.graph.nodes[i].label for i in region.ends)
        found.append(Finding("masked", region.origin, f"{region.positions} masked position"
                                                      f"{'s' if region.positions != 1 else ''}, -inf by design "
                                                      f"(made finite again by {ends})"))
    return found


def sum_mismatches(trace: Trace) -> list[Finding]:
    """Nodes whose edge contributions do not sum to their adjoint (rtol 1e-5)."""
    found = []
    graph = trace.graph
    facts = facts_of(trace)
    finite = facts.finite
    for output, adjoints in trace.adjoints.items():
        oid = graph.outputs[output]
        incoming = _incoming_terms(trace, output)
        for node in graph.nodes:
            adjoint = adjoints[node.id]
            if adjoint is None or node.id == oid or not graph.users(node.id):
                continue
            terms = incoming[node.id]
            if len(terms) == 1 and terms[0] is adjoint:
                continue  # a node's only edge carries its adjoint itself: they differ by exactly 0
            a = _float_scalar(adjoint)
            numbers = _float_scalars(terms) if a is not None else None
            if numbers:  # one float each: the same float64 sum and maxima, in Python floats
                total = numbers[0]
                for x in numbers[1:]:
                    total += x
                if not (math.isfinite(total) and math.isfinite(a)) and (
                        not math.isfinite(a) or not all(map(math.isfinite, numbers))):
                    continue  # non-finite numbers are reported as such
                difference, bound = abs(total - a), max(max(map(abs, numbers)), abs(a))
            else:
                if not finite(adjoint) or not all(finite(t) for t in terms):
                    continue  # non-finite numbers are reported as such
                if not terms:
                    if np.any(adjoint != 0):
                        found.append(Finding("adjoint-sum", node.id, f"no edge contributions were captured for {bar(node.label, output)}"))
                    continue
                difference, bound = _array_sum_gap(facts, adjoint, terms)
            if difference > SUM_RTOL * bound + 1e-30:
                found.append(Finding("adjoint-sum", node.id,
                                     f"the {len(terms)} edge contributions differ from {bar(node.label, output)} "
                                     f"by up to {fmt_scalar(difference, 3)}"))
    return found


def _incoming_terms(trace: Trace, output: str) -> list[list[np.ndarray]]:
    """Per node, the values of its edge terms toward `output` (edge_terms less the Nones)."""
    contributions = trace.contributions.get(output, {})
    nodes = trace.graph.nodes
    incoming: list[list[np.ndarray]] = [[] for _ in nodes]
    for child in nodes:
        for position, source in enumerate(child.inputs):
            term = contributions.get((child.id, position))
            if term is not None and 0 <= source < len(incoming):
                incoming[source].append(term)
    return incoming


_FLOAT_TYPES = (np.float64, np.float32, np.float16)  # what one float64 holds exactly


def _float_scalar(value: object) -> float | None:
    """A one-number float (Python or numpy scalar, 0-d array) as a Python float, else None."""
    if isinstance(value, float):
        return float(value)
    if type(value) is np.ndarray:
        return float(value) if value.ndim == 0 and value.dtype.type in _FLOAT_TYPES else None
    return float(value) if isinstance(value, _FLOAT_TYPES) else None


def _float_scalars(values: list) -> list[float] | None:
    """Each value as by _float_scalar, or None unless every one is such a number."""
    numbers = []
    for value in values:
        x = _float_scalar(value)
        if x is None:
            return None
        numbers.append(x)
    return numbers


def _abs_max(facts: ArrayFacts, value: object) -> float:
    """float(np.max(np.abs(value))) of a finite, non-empty array: max(−min, max)."""
    if isinstance(value, np.ndarray) and value.dtype.kind == "f":
        low, high = facts.extent(value)
        return max(-low, high)
    return float(np.max(np.abs(value)))


def _array_sum_gap(facts: ArrayFacts, adjoint: object, terms: list) -> tuple[float, float]:
    """(max |Σ terms − adjoint|, the largest |term| or |adjoint|): the sum in float64, in order."""
    arrays = [np.asarray(t) for t in terms]
    total = arrays[0].astype(np.float64)
    for t in arrays[1:]:
        if t.shape == total.shape and t.dtype.kind == "f":
            np.add(total, t, out=total)  # what total + t gives, without a new array
        else:
            total = total + t
    scale = max(_abs_max(facts, t) if np.size(t) else 0.0 for t in terms)
    if total.size:
        if isinstance(adjoint, np.ndarray) and adjoint.dtype.kind == "f" and adjoint.shape == total.shape:
            np.subtract(total, adjoint, out=total)
            difference = float(np.abs(total, out=total).max())
        else:
            difference = float(np.max(np.abs(total - adjoint)))
    else:
        difference = 0.0
    adjoint_max = _abs_max(facts, adjoint) if np.size(adjoint) else 0.0
    return difference, max(scale, max(adjoint_max, 0.0))


def _adjoint_name(label: str, output: str) -> str:
    """v̄1 (∂f/∂v1) for the lecture's names; ∂loss/∂fc1 alone for others (it says it all)."""
    symbol = bar(label, output)
    return symbol if symbol.startswith("∂") else f"{symbol} (∂{output}/∂{label})"


def gradient_scale(trace: Trace) -> list[Finding]:
    """Where adjoints start to vanish (below 1e-7 of the loss gradient) or explode (above 1e4×)."""
    found = []
    graph = trace.graph
    facts = facts_of(trace)
    norm, finite = facts.norm, facts.finite
    for output, adjoints in trace.adjoints.items():
        oid = graph.outputs[output]
        out_node = graph.nodes[oid]
        refs = [norm(adjoints[i]) for i in out_node.inputs if adjoints[i] is not None and finite(adjoints[i])]
        reference = max(refs, default=0.0)
        if out_node.is_leaf or reference == 0 or not np.isfinite(reference):
            continue
        reached = graph.ancestors(oid) - {oid}
        ratio: dict[int, float] = {}
        for i in reached:
            a = adjoints[i]
            if a is None:
                continue
            x = _float_scalar(a)
            if x is not None:  # one float: finite and ‖·‖ = √(x·x) as l2_norm has it, at once
                if math.isfinite(x):
                    ratio[i] = math.sqrt(x * x) / reference
            elif _is_float(a) and finite(a):
                ratio[i] = norm(a) / reference
        vanishing = {i for i, r in ratio.items() if r < VANISHING}
        for i in sorted(vanishing):
            users = [u for u in graph.users(i) if u in reached or u == oid]
            if any(u not in vanishing for u in users):  # the node where it starts
                before = len(graph.ancestors(i) & vanishing) - 1
                more = f"; {before} node{'s' if before != 1 else ''} before it vanish too" if before else ""
                found.append(Finding("vanishing", i, f"‖{bar(graph.nodes[i].label, output)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                     f"‖∂{output}/∂output‖{more}"))
        for i in sorted(i for i, r in ratio.items() if r > EXPLODING):
            found.append(Finding("exploding", i, f"‖{bar(graph.nodes[i].label, output)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                 f"‖∂{output}/∂output‖"))
    return found


def _is_float(value: object) -> bool:
    """np.issubdtype(np.asarray(value).dtype, np.floating), without making an array."""
    if isinstance(value, (float, np.floating)):
        return True
    if isinstance(value, np.ndarray):
        return value.dtype.kind == "f"
    if isinstance(value, TensorStats):  # statistics standing in for a tensor
        return np.dtype(value.dtype).kind == "f"
    return np.asarray(value).dtype.kind == "f"


def activations(trace: Trace) -> list[Finding]:
    """Saturated sigmoids/tanh (derivative below 0.01 for most units) and dead ReLUs."""
    found = []
    for node in trace.graph.nodes:
        if node.is_leaf or node.op not in ACTIVATIONS:
            continue
        value = np.asarray(trace.values[node.id])
        if not np.issubdtype(value.dtype, np.floating) or value.size == 0:
            continue
        if node.op in SIGMOID or node.op in TANH:
            found += _saturation(node, value)
        elif node.op in RELU:
            found += _dead_relu(node, value)
    return found


def _saturation(node: Node, value: np.ndarray) -> list[Finding]:
    if value.ndim == 0 and value.dtype == np.float64:  # one float64: the same arithmetic in Python
        v = float(value)
        d = v * (1 - v) if node.op in SIGMOID else 1 - v * v
        if not math.isfinite(d):
            return []
        fraction = float(d < SATURATED_DERIVATIVE)
    else:
        with np.errstate(all="ignore"):
            derivative = value * (1 - value) if node.op in SIGMOID else 1 - value * value
        flat = derivative[np.isfinite(derivative)]
        if flat.size == 0:
            return []
        fraction = float((flat < SATURATED_DERIVATIVE).mean())
    if fraction <= MOST:
        return []
    name = "σ'" if node.op in SIGMOID else "tanh'"
    return [Finding("saturated", node.id, f"saturated: {fraction:.0%} of units have {name} < {SATURATED_DERIVATIVE:g}, "
                                          f"so almost no gradient passes back through them")]


def _dead_relu(node: Node, value: np.ndarray) -> list[Finding]:
    # A unit is dead when it outputs 0 for every example of the batch (axis 0). With
    # fewer than MIN_BATCH examples, half the units are 0 by chance: only all-zero counts.
    batched = value.ndim >= 2
    units = value.reshape(value.shape[0], -1) if batched else value.reshape(1, -1)
    dead = np.all(units == 0, axis=0)
    fraction = float(dead.mean())
    needed = MOST if batched and value.shape[0] >= MIN_BATCH else 1.0
    if fraction < needed:
        return []
    scope = "for the whole batch" if value.ndim >= 2 else ""
    return [Finding("dead-relu", node.id, f"dead ReLU: {int(dead.sum())} of {dead.size} units output 0 {scope}".rstrip()
                                          + "; no gradient passes back through them")]


def dropout_modes(trace: Trace) -> list[Finding]:
    """A dropout not active while the model trains, or active while it is evaluated."""
    found = []
    for node_id, data in trace.aux.items():
        if "training" not in data or "model_training" not in data or float(data.get("p", 0)) == 0:
            continue
        active, model_training = bool(data["training"]), bool(data["model_training"])
        if active and not model_training:
            found.append(Finding("dropout", node_id, f"dropout (p={float(data['p']):g}) is active although the model "
                                                     "is in evaluation mode (F.dropout without training=self.training?)"))
        elif model_training and not active:
            found.append(Finding("dropout", node_id, f"dropout (p={float(data['p']):g}) is not active although the "
                                                     "model is training"))
    return found
