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
from typing import Callable, Sequence

import numpy as np

from gradviz.core.graph import Graph

# Canonical op names that write a fill value where a mask says so.
MASKING_OPS = frozenset({"masked_fill", "where", "index_put", "fill", "fill_", "masked_scatter", "full",
                         "full_like", "new_full", "scalar_tensor", "index_fill", "scatter", "copy"})


@dataclass(frozen=True)
class MaskRegion:
    """Where intended -inf starts (`origin`), how many positions it masks, and the finite ops that end it."""

    origin: int
    positions: int
    ends: tuple[int, ...]


def _canonical(op: str) -> str:
    return op.lower().rstrip("_")


def _only_minus_inf(value: np.ndarray) -> bool:
    if hasattr(value, "posinf_count"):  # a summaries-only trace's statistics
        return np.dtype(value.dtype).kind == "f" and value.nan_count == 0 and value.posinf_count == 0
    value = np.asarray(value)
    if not np.issubdtype(value.dtype, np.floating):
        return False
    return not np.any(np.isnan(value)) and not np.any(np.isposinf(value))


def _all_finite(value: np.ndarray) -> bool:
    return bool(np.all(np.isfinite(value)))


def masked_by_design(graph: Graph, values: Sequence[np.ndarray],
                     all_finite: Callable[[np.ndarray], bool] = _all_finite) -> set[int]:
    """Ids of the nodes whose non-finite values are intended masks (see the module docstring).

    `all_finite` answers np.all(np.isfinite(value)) (a trace passes its memo's).
    """
    def is_finite(value: np.ndarray) -> bool:  # only floats and complex numbers can be NaN/Inf
        if hasattr(value, "posinf_count"):  # a summaries-only trace's statistics
            return bool(value.finite)
        if isinstance(value, float):
            return all_finite(value)
        return np.asarray(value).dtype.kind not in "fc" or all_finite(value)

    bad = {node.id for node in graph.nodes if not is_finite(values[node.id])}
    if not bad:
        return set()
    plausible: set[int] = set()
    for node in graph.nodes:  # forward: where the -inf can have come from
        if node.id not in bad or not _only_minus_inf(values[node.id]):
            continue
        if node.kind == "constant" or (not node.is_leaf and (
                not node.inputs or _canonical(node.op) in MASKING_OPS or any(i in plausible for i in node.inputs))):
            plausible.add(node.id)
    outputs = set(graph.outputs.values())
    good: set[int] = set()
    for node in reversed(graph.nodes):  # backward: every use ends the region or continues it
        if node.id in plausible and node.id not in outputs and all(
                u in good or u not in bad for u in graph.users(node.id)) and graph.users(node.id):
            good.add(node.id)
    return good


def mask_regions(graph: Graph, values: Sequence[np.ndarray],
                 all_finite: Callable[[np.ndarray], bool] = _all_finite) -> list[MaskRegion]:
    """One region per place intended -inf starts: its count of -inf positions and the finite ops that end it."""
    good = masked_by_design(graph, values, all_finite)
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
        positions = max(_minus_inf_count(values[i]) for i in reached)
        regions.append(MaskRegion(node_id, positions, tuple(sorted(ends))))
    return regions


def _minus_inf_count(value: np.ndarray) -> int:
    if hasattr(value, "posinf_count"):
        return int(value.inf_count - value.posinf_count)
    return int(np.isneginf(np.asarray(value)).sum())
