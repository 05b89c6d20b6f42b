"""The `--json` schema: stable, documented in the README, version-stamped.

{"schema": 1, "source": str, "inputs": {name: value}, "outputs": [name],
 "nodes": [{"id": int, "label": str, "op": str, "kind": str, "inputs": [id],
            "definition": str, "shape": [int], "value": v,
            "tangents": {input: v}, "adjoints": {output: v},
            "terms": {output: [{"child": id, "position": int, "value": v}]}}],
 "gradients": {output: {input: v}}, "passes": {"forward_mode": n, "reverse_mode": m},
 "first_nonfinite": null | {"kind": "value"|"adjoint", "node": id, "label": str}}

Tensors are nested lists; non-finite numbers are the strings "nan", "inf", "-inf";
a constant's adjoint is null (constants are not differentiated).
"""

from __future__ import annotations

from typing import Any, Callable

from gradviz.core.fmt import to_json
from gradviz.core.trace import Trace

SCHEMA_VERSION = 1


def trace_to_json(trace: Trace, source: str = "", tensor: Callable[[Any], Any] = to_json) -> dict[str, Any]:
    """The whole trace as JSON-ready data; `tensor` turns each array into JSON (full by default)."""
    graph = trace.graph
    nodes = []
    for node in graph.nodes:
        nodes.append({
            "id": node.id,
            "label": node.label,
            "op": node.op,
            "kind": node.kind,
            "inputs": list(node.inputs),
            "definition": node.definition,
            "shape": list(trace.values[node.id].shape),
            "value": tensor(trace.values[node.id]),
            "tangents": {wrt: tensor(t[node.id]) for wrt, t in trace.tangents.items()},
            "adjoints": {out: tensor(a[node.id]) for out, a in trace.adjoints.items()},
            "terms": {
                out: [{"child": child, "position": position, "value": tensor(value)}
                      for (child, position), value in trace.edge_terms(out, node.id) if value is not None]
                for out in trace.adjoints
            },
        })
    first = trace.first_nonfinite()
    return {
        "schema": SCHEMA_VERSION,
        "source": source,
        "inputs": {graph.nodes[i].label: tensor(trace.values[i]) for i in graph.input_ids},
        "outputs": list(graph.outputs),
        "nodes": nodes,
        "gradients": {
            out: {graph.nodes[i].label: tensor(trace.adjoints[out][i]) for i in graph.input_ids}
            for out in trace.adjoints
        },
        "passes": trace.pass_counts(),
        "first_nonfinite": None if first is None else
        {"kind": first[0], "node": first[1], "label": graph.nodes[first[1]].label},
    }
