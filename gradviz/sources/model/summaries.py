"""`--keep summaries`: a model trace that keeps each tensor's statistics, not the tensor.

While the program runs, each node's value is summarised as soon as it is made (shape,
dtype, mean, std, min, max, norm, zeros, NaN/Inf: core.stats.tensor_stats) and let go
after its last use, so only what autograd itself saves stays alive. Tensor hooks
summarise each adjoint and each edge's contribution as the backward pass computes them;
the backward pass is a plain one (the parameters' gradients are its only results). What
the reports read besides statistics is worked out while the tensors exist: whether the
edge terms into a node sum to its adjoint (and the norm of their sum), and what each of
core.findings' CHECKS measures on a value's elements (core.findings.element_facts:
saturated and dead units). Memory above the model is then about a plain
forward and backward's.

A model with multi-output calls whose pieces' shares need extra backward passes (an
LSTM's outputs, say) is captured in full and summarised after, and says so.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from gradviz.core.findings import element_facts, needs_elements
from gradviz.core.stats import TensorStats, l2_norm, tensor_stats
from gradviz.core.trace import Edge, Trace
from gradviz.sources.model.capture import (VIEW_SPLITS, EmbeddedShare, build_graph, capture, container_pieces, execute,
                                           rng_state, set_rng_state)

DROPPED = ("values and adjoints kept as summaries only: every tensor (values, adjoints, edge terms, dropout masks) "
           "was dropped once its statistics were taken; commands that need the numbers "
           "(--show, --check, --format, --layers, --graph, --full, step, export) refuse such a trace")


@dataclass(frozen=True)
class Summary(TensorStats):
    """A tensor's statistics standing in for the tensor (what core.stats.ArrayFacts reads
    in its place: size, NaN/±Inf counts, extent, norm)."""


def summarise(tensor: Any) -> Summary:
    """The Summary of a tensor or array, computed as the full trace's reports compute it."""
    from gradviz.sources.model.arrays import numpy_of

    array = numpy_of(tensor) if isinstance(tensor, torch.Tensor) else np.asarray(tensor)
    stats = tensor_stats(array)
    return Summary(**{f.name: getattr(stats, f.name) for f in fields(TensorStats)})


def zeros_summary(shape: tuple[int, ...], dtype: torch.dtype) -> Summary:
    """The Summary of zeros_like: what a differentiable node that does not reach the loss gets."""
    return summarise(torch.zeros(shape, dtype=dtype))


def is_summaries(trace: Trace) -> bool:
    """True for a trace made with --keep summaries."""
    return bool(getattr(trace.values, "summaries_only", False))


class SummaryArrays(Sequence):
    """Per node, a Summary (or None), where a full trace has arrays."""

    summaries_only = True

    def __init__(self, items: list[Summary | None], sums: dict[int, tuple[float, float]] | None = None,
                 measured: dict[int, dict[str, Any]] | None = None):
        self._items = items
        self.sums = sums or {}  # node → (‖Σ edge terms‖, max |Σ − v̄|) where the terms are not just v̄
        self.measured = measured or {}  # node → core.findings.element_facts of its value

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        return self._items[index]

    def __iter__(self) -> Iterator[Any]:
        return iter(self._items)

    def __repr__(self) -> str:
        return f"SummaryArrays({len(self)} summaries)"


class AliasMark:
    """Stands in the run's edges for a per-use alias whose gradient a hook summarises."""

    __slots__ = ("key", "source")
    requires_grad = True

    def __init__(self, key: int, source: int):
        self.key, self.source = key, source


def _stand_in(value: torch.Tensor) -> torch.Tensor:
    """A tensor with value's shape, dtype and requires_grad but no data (build_graph reads those)."""
    meta = torch.empty(value.shape, dtype=value.dtype, device="meta")
    return meta.requires_grad_() if value.requires_grad else meta


class Watch:
    """What execute() tells as it runs (values, aliases, containers) and the hooks' results."""

    def __init__(self, steps: list[Any]):
        self.steps = steps
        self.values: dict[int, Summary] = {}
        self.adjoints: dict[int, Summary] = {}
        self.alias_terms: dict[int, Summary] = {}
        self.shares: dict[int, Summary] = {}  # view piece's step → the Summary of its share of the input
        self.places: dict[int, tuple] = {}  # view piece's step → where it sits in its input
        self.split_inputs: dict[int, tuple] = {}  # split call → (storage, offset, shape, dtype) of its input
        self.leaf_values: dict[int, torch.Tensor] = {}  # call steps whose value is a leaf (a parameter)
        self.measured: dict[int, dict[str, Any]] = {}
        self.need_sum: dict[int, list[tuple]] = {}  # node → its terms' kinds, when not just its adjoint
        self.held: dict[tuple, Any] = {}  # terms held until their node's adjoint arrives
        self.sums: dict[int, tuple[float, float]] = {}
        self.wanted: set[tuple] = set()
        self._aliases = 0

    # -- forward ------------------------------------------------------------------------
    def alias(self, alias: torch.Tensor, source: int) -> AliasMark:
        mark = AliasMark(self._aliases, source)
        self._aliases += 1
        alias.register_hook(lambda grad, key=mark.key: self._alias_grad(key, grad))
        return mark

    def container(self, step: Any, passed: dict[int, Any]) -> None:
        tensors = [t for t in passed.values() if isinstance(t, torch.Tensor)]
        if step.op in VIEW_SPLITS and len(tensors) == 1 and tensors[0].is_contiguous():
            t = tensors[0]
            self.split_inputs[step.index] = (t.untyped_storage().data_ptr(), t.storage_offset(), tuple(t.shape), t.dtype)

    def value(self, step: Any, value: torch.Tensor, edges: list) -> torch.Tensor:
        index = step.index
        self.values[index] = summarise(value)
        if needs_elements(step.op) and value.is_floating_point() and value.numel():
            from gradviz.sources.model.arrays import numpy_of

            self.measured[index] = element_facts(step.op, numpy_of(value))
        if len(edges) == 1 and step.op == "getitem" and edges[0][2] in self.split_inputs:
            ptr, offset, shape, dtype = self.split_inputs[edges[0][2]]
            if value.untyped_storage().data_ptr() == ptr and value.dtype == dtype:
                self.places[index] = (shape, dtype, tuple(value.shape), value.stride(), value.storage_offset() - offset)
        if value.requires_grad:
            if value.is_leaf:
                self.leaf_values[index] = value
            else:
                value.register_hook(lambda grad, key=index: self._adjoint(key, grad))
        return _stand_in(value)

    # -- backward (hooks) ---------------------------------------------------------------
    def _alias_grad(self, key: int, grad: torch.Tensor) -> None:
        self.alias_terms[key] = summarise(grad)
        if ("alias", key) in self.wanted:
            self.held[("alias", key)] = grad

    def _adjoint(self, step: int, grad: torch.Tensor) -> None:
        self.adjoints[step] = summarise(grad)
        if step in self.places:
            share = EmbeddedShare(grad, *self.places[step])
            self.shares[step] = summarise(share.materialize())
            if ("share", step) in self.wanted:
                self.held[("share", step)] = share
        if step in self.need_sum:
            self._sum(step, grad)

    def _sum(self, step: int, adjoint: torch.Tensor) -> None:
        """Σ of the node's edge terms against its adjoint, as the full trace's report does it."""
        from gradviz.sources.model.arrays import numpy_of

        terms = []
        for kind in self.need_sum.pop(step):
            if kind == ("adjoint",):
                terms.append(numpy_of(adjoint))
                continue
            held = self.held.pop(kind, None)
            if held is not None:
                terms.append(numpy_of(held.materialize() if kind[0] == "share" else held))
        gap = edge_sum(numpy_of(adjoint), terms)
        if gap is not None:
            self.sums[step] = gap

    def plan_sums(self, run: Any, isolated: set[tuple[int, int]]) -> None:
        """Before the backward pass: which nodes' terms to hold until their adjoint arrives."""
        kinds: dict[int, list[tuple]] = {}
        for step in run.nodes:
            for position, (source, alias, _) in enumerate(run.edges[step]):
                if (step, position) in isolated:
                    kind: tuple = ("share", step)
                elif alias is None:
                    kind = ("adjoint",)
                else:
                    kind = ("alias", alias.key)
                kinds.setdefault(source, []).append(kind)
        self.need_sum = {s: k for s, k in kinds.items() if any(kind != ("adjoint",) for kind in k) or len(k) > 1}
        self.wanted = {kind for k in self.need_sum.values() for kind in k if kind != ("adjoint",)}


def edge_sum(adjoint: np.ndarray, terms: list[np.ndarray]) -> tuple[float, float] | None:
    """(‖Σ terms‖, max |Σ − v̄|), summed in float64 in order as the full report sums them;
    None without terms or when a number is NaN/Inf (those are reported as such)."""
    if not terms or not np.all(np.isfinite(adjoint)) or not all(np.all(np.isfinite(t)) for t in terms):
        return None
    total = sum(terms[1:], terms[0].astype(np.float64))
    return l2_norm(total), float(np.max(np.abs(total - adjoint))) if total.size else 0.0


def capture_summaries(program: Any, x: torch.Tensor, y: torch.Tensor, split_edges: bool,
                      info: Mapping[str, Any]) -> Trace:
    """The summaries-only Trace of one forward and backward run of `program` on (x, y)."""
    state = rng_state()
    watch = Watch(program.steps)
    run = execute(program, x, y, split_edges, watch=watch)
    pieces = container_pieces(run) if run.containers and run.split_edges else {}
    isolated = {(step, p) for step, positions in pieces.items() for p in positions}
    if any(step not in watch.places for step, _ in isolated):
        del run, watch
        set_rng_state(state)
        full = capture(program, x, y, split_edges, info)
        note = ("the model has multi-output calls whose per-output shares need the autograd graph: it was "
                "captured in full and summarised after (memory not reduced)")
        return summarise_trace(full, note)
    watch.plan_sums(run, isolated)
    leaves = {step: t for step, t in run.tensors.items() if t.requires_grad and t.device.type != "meta"}
    leaves.update(watch.leaf_values)
    run.env.clear()
    grads: dict[int, Any] = {}
    differentiated = run.loss.requires_grad and bool(leaves)
    if differentiated:
        found = torch.autograd.grad(run.loss, list(leaves.values()), allow_unused=True)
        for step, grad in zip(leaves, found):
            if grad is not None:
                watch._adjoint(step, grad)
        del found
    run.loss = run.loss.detach()
    graph, ids, _, gid_of = build_graph(program, run)
    return _assemble(program, run, watch, graph, ids, gid_of, isolated, differentiated, info)


def _assemble(program: Any, run: Any, watch: Watch, graph: Any, ids: list[int], gid_of: dict[int, int],
              isolated: set[tuple[int, int]], differentiated: bool, info: Mapping[str, Any]) -> Trace:
    tensors = run.tensors
    values: list[Summary | None] = []
    adjoints: list[Summary | None] = []
    for step in ids:
        tensor = tensors[step]
        values.append(watch.values.get(step) or summarise(tensor))
        if not differentiated or not tensor.requires_grad:
            adjoints.append(None)
        else:
            adjoints.append(watch.adjoints.get(step) or zeros_summary(tuple(tensor.shape), tensor.dtype))
    terms: dict[Edge, Summary] = {}
    for step in run.nodes:
        child = gid_of[step]
        for position, (source, alias, _) in enumerate(run.edges[step]):
            gid = gid_of[source]
            if adjoints[gid] is None:
                continue
            if (step, position) in isolated:
                target = tensors[source]
                terms[(child, position)] = watch.shares.get(step) or zeros_summary(tuple(target.shape), target.dtype)
            elif alias is None:
                terms[(child, position)] = adjoints[gid]
            else:
                term = watch.alias_terms.get(alias.key)
                terms[(child, position)] = term or zeros_summary(tuple(tensors[source].shape), tensors[source].dtype)
    sums = {gid_of[step]: total for step, total in watch.sums.items() if step in gid_of}
    measured = {gid_of[step]: facts for step, facts in watch.measured.items() if step in gid_of and facts}
    aux = {gid_of[step]: _aux_summary(data) for step, data in run.aux.items() if step in gid_of}
    info = {**info, "keep": "summaries", "notes": [*info.get("notes", []), DROPPED]}
    return Trace(graph, SummaryArrays(values, measured=measured), {}, {"loss": SummaryArrays(adjoints, sums)},
                 {"loss": terms}, {}, aux, info)


def _aux_summary(data: Mapping[str, Any]) -> dict[str, Any]:
    """A dropout's record with its mask replaced by the fraction it kept."""
    mask = data.get("mask")
    out = {key: value for key, value in data.items() if key != "mask"}
    out["mask"] = None
    if mask is not None:
        out["keep_rate"] = float(np.mean(np.asarray(mask.numpy(force=True) if isinstance(mask, torch.Tensor) else mask)))
    return out


def summarise_trace(trace: Trace, note: str | None = None) -> Trace:
    """A full model trace turned into a summaries-only one (the same statistics, the same checks)."""
    graph = trace.graph
    values = [summarise(v) for v in trace.values]
    adjoints_full = trace.adjoints.get("loss")
    cache: dict[int, Summary | None] = {}

    def once(array: Any) -> Summary | None:
        if array is None:
            return None
        if id(array) not in cache:
            cache[id(array)] = summarise(array)
        return cache[id(array)]

    adjoints = [once(adjoints_full[i]) for i in range(len(graph.nodes))] if adjoints_full is not None else None
    terms: dict[Edge, Summary] = {}
    sums: dict[int, tuple[float, float]] = {}
    full_terms = trace.contributions.get("loss", {})
    for node in graph.nodes:
        if adjoints_full is None or adjoints_full[node.id] is None:
            continue
        edges = trace.edge_terms("loss", node.id)
        arrays = []
        for edge, array in edges:
            if array is not None:
                terms[edge] = once(array)
                arrays.append(np.asarray(array))
        a = np.asarray(adjoints_full[node.id])
        if len(arrays) > 1 or (arrays and arrays[0] is not a):  # one term that is v̄ itself adds up
            gap = edge_sum(a, arrays)
            if gap is not None:
                sums[node.id] = gap
    del full_terms
    measured = {}
    for node in graph.nodes:
        if needs_elements(node.op):
            facts = element_facts(node.op, np.asarray(trace.values[node.id]))
            if facts:
                measured[node.id] = facts
    aux = {i: _aux_summary(data) for i, data in trace.aux.items()}
    notes = [*trace.info.get("notes", []), *([note] if note else []), DROPPED]
    info = {**trace.info, "keep": "summaries", "notes": notes}
    adjoint_map = {"loss": SummaryArrays(adjoints, sums)} if adjoints is not None else {}
    return Trace(graph, SummaryArrays(values, measured=measured), {}, adjoint_map,
                 {"loss": terms} if adjoints is not None else {}, {}, aux, info)

