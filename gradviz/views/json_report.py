"""The `--json` schema: stable, documented in the README, version-stamped.

{"schema": 1, "source": str, "inputs": {name: value}, "outputs": [name], "output_nodes": {name: id},
 "nodes": [{"id": int, "label": str, "op": str, "kind": str, "inputs": [id],
            "definition": str, "shape": [int], "value": v,
            "tangents": {input: v}, "adjoints": {output: v},
            "terms": {output: [{"child": id, "position": int, "value": v}]}}],
 "gradients": {output: {input: v}}, "passes": {"forward_mode": n, "reverse_mode": m},
 "first_nonfinite": null | {"kind": "value"|"adjoint", "node": id, "label": str},
 "findings": [{"kind": str, "node": id, "label": str, "message": str}]}

Tensors are nested lists; non-finite numbers are the strings "nan", "inf", "-inf";
a constant's adjoint is null (constants are not differentiated).

Model traces add "model" (spec, level, batch size, seed, dtype, mode, notes) and, per
node, "dtype", "module" and for dropout nodes "dropout": {"p", "training", "keep_rate",
"mask"}. Their tensors are summaries, {"shape", "dtype", "mean", "std", "min", "max",
"norm", "zero_fraction", "nan", "inf"}, unless --full asks for every element (then the
mask is included too). An expression's tensors of more than LIST_LIMIT elements are
summaries too (schema 2: writing 2M-element arrays as lists took 62× the trace).

With an ArrayFile (`--arrays FILE.npz`) every summarised tensor is also written whole to
that .npz file: its summary gains "array": the key it has there, and the top level
"arrays": the file's name. One array shared by several entries is written once.
"""

from __future__ import annotations

import gc
import math
from functools import partial
from typing import Any, Callable, Iterator

import numpy as np

from gradviz.core.findings import find_issues
from gradviz.core.fmt import to_json
from gradviz.core.stats import ArrayFacts, TensorStats, facts_of, tensor_stats
from gradviz.core.trace import Trace

SCHEMA_VERSION = 2  # 2: an expression's tensors over LIST_LIMIT elements are summaries
LIST_LIMIT = 100  # elements: a tensor up to this size is written out, a bigger one summarised


class ArrayFile:
    """The tensors a JSON report summarises, kept to be written whole to one .npz file."""

    def __init__(self, name: str):
        self.name = name  # as the JSON names it
        self.arrays: dict[str, np.ndarray] = {}
        self._keys: dict[int, str] = {}  # id(array) → its key: a shared array is stored once
        self._kept: list[Any] = []  # the arrays themselves, so an id stays theirs

    def add(self, value: Any) -> str | None:
        """The key `value` has in the file (None for a summaries-only trace's statistics)."""
        if isinstance(value, TensorStats):
            return None
        key = self._keys.get(id(value))
        if key is None:
            key = f"a{len(self.arrays)}"
            self._keys[id(value)] = key
            self._kept.append(value)
            self.arrays[key] = np.asarray(value)
        return key

    def write(self, path: Any) -> None:
        """Write every array (uncompressed: each reads back bit for bit) via a temporary file."""
        import os
        from pathlib import Path

        path = Path(path)
        temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(temporary, "wb") as handle:
                np.savez(handle, **self.arrays)
            os.replace(temporary, path)
        finally:
            temporary.unlink(missing_ok=True)


def summary_json(value: np.ndarray | None, facts: ArrayFacts | None = None) -> dict[str, Any] | None:
    """A tensor as its statistics (non-finite statistics as strings, like values); `facts`
    (the trace's) keeps what it computes for the findings and the next view."""
    if value is None:
        return None
    if isinstance(value, TensorStats):  # --keep summaries holds statistics, not tensors
        s = value
    else:
        s = tensor_stats(value) if facts is None else facts.stats(value)

    def number(x: float) -> Any:
        x = float(x)
        return x if math.isfinite(x) else to_json(x)

    return {"shape": list(s.shape), "dtype": s.dtype, "mean": number(s.mean), "std": number(s.std),
            "min": number(s.min), "max": number(s.max), "norm": number(s.norm),
            "zero_fraction": s.zero_fraction, "nan": s.nan_count, "inf": s.inf_count}


def trace_to_json(trace: Trace, source: str = "", tensor: Callable[[Any], Any] | None = None,
                  full: bool = False, arrays: ArrayFile | None = None) -> dict[str, Any]:
    """The whole trace as JSON-ready data; a model's tensors, and an expression's of more
    than LIST_LIMIT elements, are summarised unless `full`; `arrays` keeps them whole."""
    # Hundreds of thousands of small dicts and lists, none in a cycle: each time their count
    # passed a threshold, the cyclic collector would walk the whole trace again (a third of
    # --json's time on a 10,000-node expression). It runs as usual once they are made.
    enabled = gc.isenabled()
    gc.disable()
    try:
        return _trace_to_json(trace, source, tensor, full, arrays)
    finally:
        if enabled:
            gc.enable()


def _trace_to_json(trace: Trace, source: str, tensor: Callable[[Any], Any] | None, full: bool,
                   arrays: ArrayFile | None) -> dict[str, Any]:
    model = trace.info.get("source") == "model"
    graph = trace.graph
    values = trace.values
    targets = graph.target_ids
    count = len(graph.nodes)
    if tensor is None:
        if full:
            tensor = to_json
        else:
            limit = 0 if model else LIST_LIMIT
            facts = facts_of(trace)
            facts.prefetch_stats(a for a in _summarised(trace) if a is not None and np.size(a) > limit)
            summarise = _once(partial(summary_json, facts=facts))
            if arrays is not None:
                summarise = _naming(summarise, arrays)
            tensor = summarise if model else partial(_listed_or_summarised, summarise=summarise)
    # Column by column (one pass per sequence, not one small dict comprehension per node):
    # the same calls of `tensor` on the same arrays, assembled into the same entries.
    # A loss's target is data, as the table shows it: no tangent pass seeded at it, no adjoint,
    # no edge terms into it and no gradient with respect to it (the passes leave it out too).
    data_labels = {graph.nodes[i].label for i in targets}
    tangents = _per_node(count, {wrt: [tensor(t[i]) for i in range(count)] for wrt, t in trace.tangents.items()
                                 if wrt not in data_labels})
    adjoints = _per_node(count, {out: [None if i in targets else tensor(a[i]) for i in range(count)]
                                 for out, a in trace.adjoints.items()})
    terms = _per_node(count, {out: _terms_json(trace, out, tensor, targets) for out in trace.adjoints})
    nodes = []
    for node in graph.nodes:
        i = node.id
        value = values[i]
        entry = {
            "id": i,
            "label": node.label,
            "op": node.op,
            "kind": node.kind,
            "data": i in targets,  # a loss's target: not counted in "passes"
            "inputs": list(node.inputs),
            "definition": node.definition,
            "shape": list(value.shape),
            "value": tensor(value),
            "tangents": tangents[i],
            "adjoints": adjoints[i],
            "terms": terms[i],
        }
        if model:
            entry.update(_model_fields(trace, i, full))
        nodes.append(entry)
    first = trace.first_nonfinite()
    input_ids = graph.input_ids
    data = {
        "schema": SCHEMA_VERSION,
        "source": source,
        "inputs": {graph.nodes[i].label: tensor(trace.values[i]) for i in input_ids},
        "outputs": list(graph.outputs),
        "output_nodes": dict(graph.outputs),  # a reassigned name's output is its latest node (g₂), not label g
        "nodes": nodes,
        "gradients": {
            out: {graph.nodes[i].label: None if i in targets else tensor(trace.adjoints[out][i]) for i in input_ids}
            for out in trace.adjoints
        },
        "passes": trace.pass_counts(),
        "first_nonfinite": None if first is None else
        {"kind": first[0], "node": first[1], "label": graph.nodes[first[1]].label},
        "findings": [{"kind": f.kind, "node": f.node, "label": graph.nodes[f.node].label, "message": f.message}
                     for f in find_issues(trace)],
    }
    if model:
        data["model"] = {key: value for key, value in trace.info.items() if key != "source"}
    if arrays is not None:
        data["arrays"] = arrays.name
    return data


def dump_json(report: dict[str, Any], stream: Any) -> None:
    """Write the report, indented, through orjson (C; json's indenting encoder is pure Python
    and took 2.8 s where orjson takes 0.11 s on a 1,001-node trace of 10×10 tensors);
    the standard json module where orjson is not installed. Both write the same data."""
    try:
        import orjson
    except ModuleNotFoundError:
        import json

        json.dump(report, stream, indent=1)
        stream.write("\n")
        return
    data = orjson.dumps(report, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY | orjson.OPT_APPEND_NEWLINE,
                        default=_plain)
    buffer = getattr(stream, "buffer", None)
    if buffer is not None:
        stream.flush()
        buffer.write(data)
    else:
        stream.write(data.decode("utf-8"))


def _plain(value: Any) -> Any:
    """What orjson cannot write itself: numpy scalars and anything else as json would see it."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (tuple, set, frozenset)):
        return list(value)
    raise TypeError(f"{type(value).__name__} is not JSON serialisable")


def _listed_or_summarised(value: Any, summarise: Callable[[Any], Any]) -> Any:
    """A small tensor written out; a bigger one as its summary (LIST_LIMIT)."""
    if value is None or isinstance(value, float) or np.size(value) <= LIST_LIMIT:
        return to_json(value)
    return summarise(value)


def _naming(summarise: Callable[[Any], dict | None], arrays: ArrayFile) -> Callable[[Any], dict | None]:
    """`summarise`, each summary naming the key its tensor has in `arrays`."""
    def summarise_and_keep(value: Any) -> dict | None:
        summary = summarise(value)
        key = arrays.add(value) if summary is not None else None
        if key is not None:
            summary["array"] = key
        return summary

    return summarise_and_keep


def _summarised(trace: Trace) -> Iterator[Any]:
    """Every array the JSON summarises: values, tangents, adjoints and edge terms."""
    count = len(trace.graph.nodes)
    for sequence in (trace.values, *trace.tangents.values(), *trace.adjoints.values()):
        for i in range(count):
            yield sequence[i]
    for contributions in trace.contributions.values():
        for edge in contributions:
            yield contributions[edge]


def _per_node(count: int, columns: dict[str, list[Any]]) -> list[dict[str, Any]]:
    """{name: [x per node]} as [{name: x} per node], names in their order."""
    rows: list[dict[str, Any]] = [{} for _ in range(count)]
    for name, column in columns.items():
        for row, x in zip(rows, column):
            row[name] = x
    return rows


def _terms_json(trace: Trace, output: str, tensor: Callable[[Any], Any],
                skipped: frozenset[int] = frozenset()) -> list[list[dict[str, Any]]]:
    """Per node, its edge terms toward `output` (those that lead there), as JSON; none into
    the `skipped` nodes (data)."""
    contributions = trace.contributions.get(output, {})
    nodes = trace.graph.nodes
    rows: list[list[dict[str, Any]]] = [[] for _ in nodes]
    for child in nodes:  # one walk over the edges: children in order, then input positions (edge_terms' order)
        for position, source in enumerate(child.inputs):
            term = contributions.get((child.id, position))
            if term is not None and 0 <= source < len(rows) and source not in skipped:
                rows[source].append({"child": child.id, "position": position, "value": tensor(term)})
    return rows


def _once(summarise: Callable[[Any], dict | None]) -> Callable[[Any], dict | None]:
    """`summarise`, computed once per array (each caller gets its own dict): a value with one
    use has its adjoint as its edge term, and inputs and gradients appear twice. The trace
    holds every array, so an id stays one array's for the whole call."""
    done: dict[int, dict | None] = {}

    def summarise_once(value: Any) -> dict | None:
        if value is None:
            return None
        key = id(value)
        if key not in done:
            done[key] = summarise(value)
        summary = done[key]
        return None if summary is None else dict(summary)

    return summarise_once


def _model_fields(trace: Trace, node_id: int, full: bool) -> dict[str, Any]:
    node = trace.graph.nodes[node_id]
    fields: dict[str, Any] = {"dtype": node.meta.get("dtype"), "module": node.meta.get("module")}
    data = trace.aux.get(node_id, {})
    if "training" in data:
        mask = data.get("mask")
        dropout = {"p": data.get("p"), "training": data.get("training"),
                   "keep_rate": data.get("keep_rate") if mask is None else float(np.mean(mask))}
        if full and mask is not None:
            dropout["mask"] = np.asarray(mask).tolist()
        fields["dropout"] = dropout
    return fields
