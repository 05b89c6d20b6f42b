"""-inf put there on purpose: attention masks that a softmax or logsumexp turns finite.

A causal mask (`scores.masked_fill(mask, -inf)`, an additive mask buffer, SDPA's own
`where(tril, 0, -inf)`) fills a tensor with -inf on purpose; the softmax after it makes
those positions exactly 0, and the loss and every gradient stay finite. Such a region is
not a NaN/Inf problem. numpy only.

A node's -inf is *by design* when (1) its value holds no NaN and no +inf, (2) the -inf
came from a masking op (masked_fill, where, index_put, fill…), from a constant (a buffer,
a literal the code creates: `full`, `scalar_tensor`), or from an input already masked
by design, and (3) every use of it is either masked by design too or finite (the softmax
that ends the region). -inf in the data or a parameter, or one an ordinary op made
(log(0)), is never by design; nor is any NaN.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gradviz.core.graph import Graph, canonical_op
from gradviz.core.stats import ArrayFacts

# Canonical op names that write a fill value where a mask says so.
MASKING_OPS = frozenset({"masked_fill", "where", "index_put", "fill", "fill_", "masked_scatter", "full",
                         "full_like", "new_full", "scalar_tensor", "index_fill", "scatter", "copy"})


@dataclass(frozen=True)
class MaskRegion:
    """Where intended -inf starts (`origin`), how many positions it masks, and the finite ops that end it."""

    origin: int
    positions: int
    ends: tuple[int, ...]


def _only_minus_inf(facts: ArrayFacts, value: object) -> bool:
    counts = facts.nonfinite_counts(value)
    return counts is not None and counts.nan == 0 and counts.posinf == 0


def masked_by_design(graph: Graph, values: Sequence[np.ndarray], facts: ArrayFacts | None = None) -> set[int]:
    """Ids of the nodes whose non-finite values are intended masks (see the module docstring).

    `facts` answers what is asked of each value (a trace passes its own: core.stats.facts_of).
    """
    facts = ArrayFacts() if facts is None else facts
    bad = {node.id for node in graph.nodes if not facts.finite(values[node.id])}
    if not bad:
        return set()
    plausible: set[int] = set()
    for node in graph.nodes:  # forward: where the -inf can have come from
        if node.id not in bad or not _only_minus_inf(facts, values[node.id]):
            continue
        if node.kind == "constant" or (not node.is_leaf and (
                not node.inputs or canonical_op(node.op) in MASKING_OPS or any(i in plausible for i in node.inputs))):
            plausible.add(node.id)
    outputs = set(graph.outputs.values())
    good: set[int] = set()
    for node in reversed(graph.nodes):  # backward: every use ends the region or continues it
        if node.id in plausible and node.id not in outputs and all(
                u in good or u not in bad for u in graph.users(node.id)) and graph.users(node.id):
            good.add(node.id)
    return good


def mask_regions(graph: Graph, values: Sequence[np.ndarray], facts: ArrayFacts | None = None) -> list[MaskRegion]:
    """One region per place intended -inf starts: its count of -inf positions and the finite ops that end it."""
    facts = ArrayFacts() if facts is None else facts
    good = masked_by_design(graph, values, facts)
    regions = []
    for node_id in sorted(good):
        if any(i in good for i in graph.nodes[node_id].inputs):
            continue  # carried on from a masked input: counted where it started
        reached, frontier, ends = {node_id}, [node_id], set()
        while frontier:
            for user in graph.users(frontier.pop()):
                if user in good and user not in reached:
                    reached.add(user)
                    frontier.append(user)
                elif user not in good:
                    ends.add(user)
        # Counted where the mask is widest: SDPA's scalar_tensor(-inf) is one number, the scores it masks many.
        positions = max(facts.nonfinite_counts(values[i]).neginf for i in reached)
        regions.append(MaskRegion(node_id, positions, tuple(sorted(ends))))
    return regions


# Non-finite values that a later op throws away: T5's relative-position bucketing takes
# log(0) = -inf, casts it to an integer (a meaningless number) and then discards exactly those
# positions with where(is_small, …). The loss never sees them: a note, not an error. What
# "reaches" is tracked per position ("taint") through elementwise ops, where and masked_fill;
# any other op that takes a tainted input is assumed to spread it to every position it makes.
ELEMENTWISE_OPS = frozenset({
    "add", "sub", "rsub", "mul", "div", "true_divide", "floor_divide", "neg", "abs", "log", "log2", "log10",
    "log1p", "exp", "sqrt", "rsqrt", "pow", "minimum", "maximum", "min", "max", "clamp", "clamp_min", "clamp_max",
    "_to_copy", "to", "type", "type_as", "float", "double", "half", "long", "int", "floor", "ceil", "round",
    "trunc", "sign", "lt", "gt", "le", "ge", "eq", "ne", "relu", "sigmoid", "tanh", "clone", "contiguous",
})
# Ops that pick some of their input's positions (indexing, slicing, gathering, a lookup).
SELECTION_OPS = frozenset({"index", "index_select", "gather", "masked_select", "take", "take_along_dim", "getitem",
                           "__getitem__", "select", "slice", "narrow", "embedding", "unfold_copy"})
# Ops whose result does not carry their input's numbers (a shape, a fill, a NaN test).
VALUE_FREE_OPS = frozenset({"full_like", "zeros_like", "ones_like", "empty_like", "isinf", "isnan", "isfinite",
                            "isneginf", "isposinf"})


@dataclass(frozen=True)
class DiscardedRegion:
    """Non-finite values starting at `origin` (`count` of them) that `ends` throw away before any output."""

    origin: int
    count: int
    ends: tuple[int, ...]
    nodes: frozenset[int]  # every node holding the region's numbers (the origin included)


def _taint_of(graph: Graph, node, values: Sequence[np.ndarray], taint: dict[int, np.ndarray]) -> np.ndarray | None:
    """Which positions of `node`'s value carry a non-finite input's numbers (None: none do)."""
    tainted = [i for i in node.inputs if i in taint]
    if not tainted:
        return None
    op = canonical_op(node.op)
    shape = np.shape(values[node.id])
    everything = np.ones(shape, dtype=bool)
    if op in VALUE_FREE_OPS:
        return None

    def spread(i: int) -> np.ndarray:  # an input's taint at the output's positions, or all of it
        own = taint.get(i)
        if own is None:
            return np.zeros(shape, dtype=bool)
        try:
            return np.broadcast_to(own, shape)
        except ValueError:
            return everything if own.any() else np.zeros(shape, dtype=bool)

    if op == "where" and len(node.inputs) == 3 and np.asarray(values[node.inputs[0]]).dtype == bool:
        if node.inputs[0] in taint:
            return everything
        condition = np.broadcast_to(np.asarray(values[node.inputs[0]]), shape)
        return np.where(condition, spread(node.inputs[1]), spread(node.inputs[2]))
    if op == "masked_fill" and len(node.inputs) >= 2 and np.asarray(values[node.inputs[1]]).dtype == bool:
        if node.inputs[1] in taint:
            return everything
        return spread(node.inputs[0]) & ~np.broadcast_to(np.asarray(values[node.inputs[1]]), shape)
    if op in SELECTION_OPS and _picked_none(node, values, taint, tainted):
        return None
    if op in ELEMENTWISE_OPS:
        try:
            np.broadcast_shapes(shape, *(np.shape(values[i]) for i in node.inputs))
        except ValueError:
            return everything
        out = np.zeros(shape, dtype=bool)
        for i in tainted:
            out |= spread(i)
        return out
    return everything


def _picked_none(node, values: Sequence[np.ndarray], taint: dict[int, np.ndarray], tainted: list[int]) -> bool:
    """Whether a selection took none of the tainted positions: they are exactly its inputs'
    NaN/Inf (no cast made them finite numbers), and what it picked is all finite."""
    out = np.asarray(values[node.id])
    if out.dtype.kind not in "fc" or not np.all(np.isfinite(out)):
        return False
    for i in tainted:
        value = np.asarray(values[i])
        if value.dtype.kind not in "fc" or not np.array_equal(taint[i], ~np.isfinite(value)):
            return False
    return True


def discarded_nonfinite(graph: Graph, values: Sequence[np.ndarray], bad: set[int]) -> list[DiscardedRegion]:
    """The regions of non-finite values (nodes in `bad`) whose positions no output receives;
    empty when any output does (then the non-finite values are a real problem)."""
    if not bad:
        return []
    taint: dict[int, np.ndarray] = {}
    origins: list[int] = []
    ends: set[int] = set()
    for node in graph.nodes:
        if node.id in bad and not any(i in bad or i in taint for i in node.inputs):
            value = np.asarray(values[node.id])
            if value.dtype.kind not in "fc":
                return []
            taint[node.id] = ~np.isfinite(value)
            origins.append(node.id)
            continue
        mask = _taint_of(graph, node, values, taint)
        if mask is not None and mask.any():
            taint[node.id] = np.array(mask)
        elif any(i in taint for i in node.inputs) and canonical_op(node.op) not in VALUE_FREE_OPS:
            ends.add(node.id)  # it took the numbers and dropped them (full_like only took a shape)
        if node.id in bad and node.id not in taint:
            return []  # a NaN/Inf of its own making, or one this tracking lost: not discarded
    if any(o in taint for o in graph.outputs.values()):
        return []
    regions = []
    for origin in origins:
        reached, frontier = {origin}, [origin]
        while frontier:
            for user in graph.users(frontier.pop()):
                if user in taint and user not in reached:
                    reached.add(user)
                    frontier.append(user)
        found = tuple(sorted(e for e in ends if any(i in reached for i in graph.nodes[e].inputs)))
        regions.append(DiscardedRegion(origin, int(taint[origin].sum()), found, frozenset(reached)))
    return regions
