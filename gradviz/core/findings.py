"""Debugging signals on any Trace: the first NaN, vanishing or exploding gradients, saturated
sigmoids, dead ReLUs, dropout in the wrong mode, and edge terms that do not add up.

numpy only: works on expression and model traces alike. Each finding names one node.
`CHECKS` is the one list of them: a new signal is one entry there (and its test). A check
reads a trace's numbers only through the trace's core.stats.ArrayFacts (facts_of: finite,
norm, extent, statistics, size, NaN/Inf counts…), which answers alike for arrays and for the
statistics a summaries-only trace keeps in their place, so no check asks which it has; what it needs from a
value's elements beyond statistics it names as `measure`, which a summaries-only capture
runs while the tensor exists (`element_facts`) and a full trace runs when asked.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from gradviz.core.explain import bar
from gradviz.core.fmt import fmt_scalar
from gradviz.core.graph import canonical_op
from gradviz.core.stats import ArrayFacts, facts_of
from gradviz.core.trace import Trace

VANISHING = 1e-7  # ‖v̄‖ relative to ‖∂loss/∂output‖ (the gradient the loss sends back)
EXPLODING = 1e4
SATURATED_DERIVATIVE = 0.01  # σ' or tanh' below this passes back less than 1% of the gradient
MOST = 0.5  # "most units": more than half
MIN_BATCH = 4
SUM_RTOL = 1e-5
# The activations checked, by their one name (core.rules.canonical_op: 'Sigmoid', 'sigmoid_'
# and 'sigmoid' are all 'sigmoid', whatever level they were traced at).
ACTIVATIONS = ("sigmoid", "tanh", "relu")


@dataclass(frozen=True)
class Finding:
    """One signal at one node: `kind` is a short tag, `message` says what and how much."""

    kind: str
    node: int
    message: str


@dataclass(frozen=True)
class Check:
    """One entry of CHECKS: what it looks for, the finding kinds it gives, and how.

    `find` reads the trace's numbers through facts_of(trace) only (so it runs on full and
    summaries-only traces alike, with no test of which it has). `clear` is its part of "findings: none (…)" ("" to say
    nothing there). `notes` are the kinds that say what was seen, not what is wrong.
    `measure(op, array)` is what the check needs from the elements of a value whose
    canonical op is in `measure_ops`, beyond statistics; `find` asks for it with
    `measured(trace, name, node)`.
    """

    name: str
    kinds: tuple[str, ...]
    find: Callable[[Trace], list[Finding]]
    clear: str = ""
    notes: tuple[str, ...] = ()
    measure: Callable[[str, np.ndarray], Any] | None = None
    measure_ops: tuple[str, ...] = ()


def find_issues(trace: Trace) -> list[Finding]:
    """Every finding, in CHECKS' order (most urgent first)."""
    found: list[Finding] = []
    for check in CHECKS:
        found += check.find(trace)
    return found


def none_found() -> str:
    """The sentence for a trace without findings, naming what the checks looked for."""
    return f"findings: none ({', '.join(check.clear for check in CHECKS if check.clear)})"


def note_kinds() -> frozenset[str]:
    """Finding kinds that say what was seen, not what is wrong (shown apart from problems)."""
    return frozenset(kind for check in CHECKS for kind in check.notes)


def needs_elements(op: str) -> bool:
    """Whether a check measures the elements of a value made by `op` (see element_facts)."""
    return canonical_op(op) in _MEASURED_OPS


def element_facts(op: str, value: np.ndarray) -> dict[str, Any]:
    """Check name → what it measured on the elements of `value` (made by `op`): the facts
    a summaries-only trace keeps because statistics do not hold them."""
    name = canonical_op(op)
    facts = {}
    for check in CHECKS:
        if check.measure is not None and name in check.measure_ops:
            fact = check.measure(op, value)
            if fact is not None:
                facts[check.name] = fact
    return facts


def measured(trace: Trace, check: str, node_id: int) -> Any:
    """What check `check` measured on node `node_id`'s value: kept by a summaries-only trace
    (trace.values.measured) or measured now on a full trace's array."""
    kept = getattr(trace.values, "measured", None)
    if kept is not None:
        return kept.get(node_id, {}).get(check)
    node = trace.graph.nodes[node_id]
    return _BY_NAME[check].measure(node.op, np.asarray(trace.values[node_id]))


def _bad_count(facts: ArrayFacts, value: object) -> str:
    counts = facts.nonfinite_counts(value)
    if counts is None:
        return "non-finite"
    parts = [f"{counts.nan} NaN" if counts.nan else "", f"{counts.inf} Inf" if counts.inf else ""]
    return " and ".join(p for p in parts if p) + f" of {counts.size}"


def non_finite(trace: Trace) -> list[Finding]:
    """The first node whose value (forward order) or else adjoint (reverse order) is NaN/Inf."""
    first = trace.first_nonfinite()
    if first is None:
        return []
    kind, node_id = first
    node = trace.graph.nodes[node_id]
    facts = facts_of(trace)
    if kind == "value":
        inputs = "its inputs are finite" if node.inputs else LEAF_BLAME.get(node.kind, "an op with no tensor inputs made it")
        return [Finding("non-finite", node_id, f"first non-finite value: {_bad_count(facts, trace.values[node_id])}; {inputs}")]
    finite = facts.finite
    output = next(o for o, a in trace.adjoints.items() if a[node_id] is not None and not finite(a[node_id]))
    return [Finding("non-finite", node_id,
                    f"first non-finite adjoint {_adjoint_name(node.label, trace.graph.shown_output(output))}: "
                    f"{_bad_count(facts, trace.adjoints[output][node_id])}; every value and later adjoint is finite")]


LEAF_BLAME = {"input": "it is the data", "parameter": "it is a parameter",
              "constant": "it is a constant (a buffer or a tensor the code builds)"}


def intended_masks(trace: Trace) -> list[Finding]:
    """A note per attention mask: -inf put there on purpose and made finite downstream (not an error)."""
    from gradviz.core.masks import mask_regions

    found = []
    for region in mask_regions(trace.graph, trace.values, facts_of(trace)):
        ends = ", ".join(trace.graph.nodes[i].label for i in region.ends)
        found.append(Finding("masked", region.origin, f"{region.positions} masked position"
                                                      f"{'s' if region.positions != 1 else ''}, -inf by design "
                                                      f"(made finite again by {ends})"))
    return found


def discarded_values(trace: Trace) -> list[Finding]:
    """A note per region of NaN/Inf that a later op throws away before the loss (not an error)."""
    if trace.first_nonfinite() is not None and trace.first_nonfinite()[0] == "value":
        return []  # a real NaN/Inf reached an output: the regions were not computed as discarded
    found = []
    for region in trace.discarded_regions():
        ends = ", ".join(trace.graph.nodes[i].label for i in region.ends) or "nothing"
        found.append(Finding("discarded", region.origin,
                             f"{region.count} NaN/Inf never reach the loss or its gradient: thrown away by {ends}"))
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
            a = facts.one_float(adjoint)
            numbers = _float_scalars(facts, terms) if a is not None else None
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
                    if facts.any_nonzero(adjoint):
                        found.append(Finding("adjoint-sum", node.id, f"no edge contributions were captured for {bar(node.label, graph.shown_output(output))}"))
                    continue
                gap = _sum_gap(facts, adjoints, node.id, adjoint, terms)
                if gap is None:
                    continue  # its one term is its adjoint itself
                difference, bound = gap
            if difference > SUM_RTOL * bound + 1e-30:
                found.append(Finding("adjoint-sum", node.id,
                                     f"the {len(terms)} edge contributions differ from {bar(node.label, graph.shown_output(output))} "
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


def _float_scalars(facts: ArrayFacts, values: list) -> list[float] | None:
    """Each value as by ArrayFacts.one_float, or None unless every one is such a number."""
    numbers = []
    for value in values:
        x = facts.one_float(value)
        if x is None:
            return None
        numbers.append(x)
    return numbers


def _sum_gap(facts: ArrayFacts, adjoints: Any, node_id: int, adjoint: object,
             terms: list) -> tuple[float, float] | None:
    """(max |Σ terms − v̄|, the largest |term| or |v̄|): the gap a summaries-only trace measured
    while its tensors existed (its adjoints' `sums`: node → (‖Σ‖, max |Σ − v̄|)), else computed
    now from the arrays; None where such a trace kept none (the one term is v̄ itself)."""
    kept = getattr(adjoints, "sums", None)
    if kept is None:
        return _array_sum_gap(facts, adjoint, terms)
    if node_id not in kept:
        return None
    return kept[node_id][1], max(facts.abs_max(v) for v in (*terms, adjoint))


def _array_sum_gap(facts: ArrayFacts, adjoint: object, terms: list) -> tuple[float, float]:
    """(max |Σ terms − adjoint|, the largest |term| or |adjoint|): the sum in float64, in order."""
    arrays = [np.asarray(t) for t in terms]
    total = arrays[0].astype(np.float64)
    for t in arrays[1:]:
        if t.shape == total.shape and t.dtype.kind == "f":
            np.add(total, t, out=total)  # what total + t gives, without a new array
        else:
            total = total + t
    scale = max(facts.abs_max(t) for t in terms)
    if total.size:
        if isinstance(adjoint, np.ndarray) and adjoint.dtype.kind == "f" and adjoint.shape == total.shape:
            np.subtract(total, adjoint, out=total)
            difference = float(np.abs(total, out=total).max())
        else:
            difference = float(np.max(np.abs(total - adjoint)))
    else:
        difference = 0.0
    return difference, max(scale, facts.abs_max(adjoint))


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
        shown = graph.shown_output(output)  # c₃ where the name c was assigned again
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
            x = facts.one_float(a)
            if x is not None:  # one float: finite and ‖·‖ = √(x·x) as l2_norm has it, at once
                if math.isfinite(x):
                    ratio[i] = math.sqrt(x * x) / reference
            elif facts.is_float(a) and finite(a):
                ratio[i] = norm(a) / reference
        vanishing = {i for i, r in ratio.items() if r < VANISHING}
        for i in sorted(vanishing):
            users = [u for u in graph.users(i) if u in reached or u == oid]
            if any(u not in vanishing for u in users):  # the node where it starts
                before = len(graph.ancestors(i) & vanishing) - 1
                more = f"; {before} node{'s' if before != 1 else ''} before it vanish too" if before else ""
                reason = _structural_zero(trace, i, ratio, vanishing)
                if reason is not None:
                    found.append(Finding("structural-zero", i, f"‖{bar(graph.nodes[i].label, shown)}‖ is "
                                                               f"{fmt_scalar(ratio[i], 2)} × ‖∂{shown}/∂output‖: "
                                                               f"zero by construction, {reason}"))
                    continue
                found.append(Finding("vanishing", i, f"‖{bar(graph.nodes[i].label, shown)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                     f"‖∂{shown}/∂output‖{more}"))
        for i in sorted(i for i, r in ratio.items() if r > EXPLODING):
            found.append(Finding("exploding", i, f"‖{bar(graph.nodes[i].label, shown)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                 f"‖∂{shown}/∂output‖"))
    return found


STRUCTURAL_SEARCH = 400  # nodes looked at downstream for the op that makes a shift vanish
NORMALISATIONS = ("batch_norm", "batchnorm", "layer_norm", "layernorm", "group_norm", "groupnorm",
                  "instance_norm", "instancenorm")


def _structural_zero(trace: Trace, node_id: int, ratio: dict[int, float], vanishing: set[int]) -> str | None:
    """Why a vanishing adjoint is exactly zero by construction, or None when it may be a real problem.

    A tensor broadcast into a bigger one (a bias over a batch, over positions) gets the sum
    of the bigger one's adjoint over the broadcast positions. When that adjoint is not small
    but its sum is, the terms cancel: the loss does not change when the tensor shifts. The
    downstream op that makes a shift change nothing names the reason: a softmax (adding the
    same amount to every score of a row, as a key projection's bias does) or a normalisation
    that subtracts the mean (BatchNorm after a convolution with a bias)."""
    graph = trace.graph
    size = facts_of(trace).size
    users = [u for u in graph.users(node_id) if u in ratio and u not in vanishing]
    if not users or any(size(trace.values[u]) <= size(trace.values[node_id]) for u in users):
        return None
    seen, frontier = set(users), list(users)
    while frontier and len(seen) < STRUCTURAL_SEARCH:
        nxt = []
        for n in frontier:
            op, label = graph.nodes[n].op.lower(), graph.nodes[n].label
            if "softmax" in op:
                named = label if "softmax" in label.lower() else f"the softmax {label}"
                return f"{named} is shift-invariant: the same amount added to every score of a row changes nothing"
            if any(name in op for name in NORMALISATIONS):
                named = label if "norm" in label.lower() or "bn" in label.lower() else f"the normalisation {label}"
                return f"{named} subtracts the mean: a constant shift before it changes nothing"
            for u in graph.users(n):
                if u not in seen:
                    seen.add(u)
                    nxt.append(u)
        frontier = nxt
    return None


def activations(trace: Trace) -> list[Finding]:
    """Saturated sigmoids/tanh (derivative below 0.01 for most units) and dead ReLUs."""
    found = []
    for node in trace.graph.nodes:
        if node.is_leaf or canonical_op(node.op) not in ACTIVATIONS:
            continue
        fact = measured(trace, "activations", node.id)
        if fact is None:
            continue
        if canonical_op(node.op) in ("sigmoid", "tanh"):
            if fact > MOST:
                name = "σ'" if canonical_op(node.op) == "sigmoid" else "tanh'"
                found.append(Finding("saturated", node.id, f"saturated: {fact:.0%} of units have {name} < "
                                                           f"{SATURATED_DERIVATIVE:g}, so almost no gradient passes "
                                                           f"back through them"))
        else:
            dead, units, batched, needed = fact
            if units and dead / units >= needed:
                scope = "for the whole batch" if batched else ""
                found.append(Finding("dead-relu", node.id, f"dead ReLU: {dead} of {units} units output 0 {scope}".rstrip()
                                                           + "; no gradient passes back through them"))
    return found


def unit_facts(op: str, value: np.ndarray) -> Any:
    """What the activation check reads from an activation's output: for a sigmoid or tanh the
    fraction of its finite derivatives below SATURATED_DERIVATIVE (None when none is finite);
    for a ReLU (dead units, units, batched?, the fraction that counts as most). None for an
    empty or non-float value."""
    if value.dtype.kind != "f" or value.size == 0:
        return None
    if canonical_op(op) == "relu":
        return _dead_units(value)
    return _saturated_fraction(canonical_op(op) == "sigmoid", value)


def _saturated_fraction(sigmoid: bool, value: np.ndarray) -> float | None:
    if value.ndim == 0 and value.dtype == np.float64:  # one float64: the same arithmetic in Python
        v = float(value)
        d = v * (1 - v) if sigmoid else 1 - v * v
        if not math.isfinite(d):
            return None
        return float(d < SATURATED_DERIVATIVE)
    with np.errstate(all="ignore"):
        derivative = value * (1 - value) if sigmoid else 1 - value * value
    flat = derivative[np.isfinite(derivative)]
    if flat.size == 0:
        return None
    return float((flat < SATURATED_DERIVATIVE).mean())


def _dead_units(value: np.ndarray) -> tuple[int, int, bool, float]:
    # A unit is dead when it outputs 0 for every example of the batch (axis 0). With
    # fewer than MIN_BATCH examples, half the units are 0 by chance: only all-zero counts.
    batched = value.ndim >= 2
    units = value.reshape(value.shape[0], -1) if batched else value.reshape(1, -1)
    dead = np.all(units == 0, axis=0)
    needed = MOST if batched and value.shape[0] >= MIN_BATCH else 1.0
    return int(dead.sum()), int(dead.size), batched, needed


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


# The one list: find_issues runs these in this order, on full and summaries-only traces.
CHECKS: tuple[Check, ...] = (
    Check("non-finite", ("non-finite",), non_finite, clear="no NaN/Inf"),
    Check("edge sums", ("adjoint-sum",), sum_mismatches),
    Check("gradient scale", ("vanishing", "exploding", "structural-zero"), gradient_scale,
          clear="no vanishing or exploding adjoints", notes=("structural-zero",)),
    Check("activations", ("saturated", "dead-relu"), activations, clear="no saturated or dead units",
          measure=unit_facts, measure_ops=ACTIVATIONS),
    Check("dropout", ("dropout",), dropout_modes),
    Check("masks", ("masked",), intended_masks, notes=("masked",)),
    Check("discarded", ("discarded",), discarded_values, notes=("discarded",)),
)
_BY_NAME = {check.name: check for check in CHECKS}
_MEASURED_OPS = frozenset(op for check in CHECKS if check.measure is not None for op in check.measure_ops)
