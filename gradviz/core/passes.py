"""The three passes of the lecture, as pure functions over a graph and its leaf values."""

from __future__ import annotations

from typing import Mapping

import numpy as np

from gradviz.core.graph import Graph, Node
from gradviz.core.rules import rule_for, unbroadcast
from gradviz.core.trace import Edge, Trace
from gradviz.errors import GradvizError, ShapeError


def _shape_text(value: np.ndarray) -> str:
    return "scalar" if value.ndim == 0 else "(" + ", ".join(map(str, value.shape)) + ")"


def forward_values(graph: Graph, leaves: Mapping[str, np.ndarray], dtype: str = "float64") -> tuple[np.ndarray, ...]:
    """Evaluate every node in topological order; errors name the node that failed."""
    values: list[np.ndarray] = []
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            if node.op == "const":
                values.append(np.asarray(node.attrs["value"], dtype=dtype))
            elif node.is_leaf:
                values.append(np.asarray(leaves[node.label], dtype=dtype))
            else:
                args = tuple(values[i] for i in node.inputs)
                values.append(_evaluate(graph, node, args, dtype))
    return tuple(values)


def _evaluate(graph: Graph, node: Node, args: tuple[np.ndarray, ...], dtype: str) -> np.ndarray:
    try:
        out = rule_for(node.op).evaluate(args, node.attrs)
    except ValueError as exc:
        if not any(word in str(exc) for word in ("broadcast", "mismatch", "shape", "dimension")):
            raise GradvizError(f"cannot evaluate {node.definition}: {exc}") from exc
        shapes = " and ".join(f"{graph.nodes[i].label} {_shape_text(a)}" for i, a in zip(node.inputs, args))
        raise ShapeError(f"shapes do not fit at {node.definition}: {shapes}") from exc
    return np.asarray(out, dtype=dtype)


def tangent_pass(graph: Graph, values: tuple[np.ndarray, ...], wrt: int) -> tuple[np.ndarray | None, ...]:
    """Forward mode: v'_i = Σ_p ∂v_i/∂v_p · v'_p, seeded with ones at leaf `wrt`."""
    tangents: list[np.ndarray | None] = []
    constants = graph.constant_ids
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            value = values[node.id]
            if node.is_leaf:
                tangents.append(np.ones_like(value) if node.id == wrt else np.zeros_like(value))
                continue
            rule = rule_for(node.op)
            args = tuple(values[i] for i in node.inputs)
            total = np.zeros_like(value)
            for position, i in enumerate(node.inputs):
                t = tangents[i]
                if i not in constants and np.any(t):
                    total = total + rule.jvps[position](t, value, args, node.attrs)
            tangents.append(np.asarray(total, dtype=value.dtype).reshape(value.shape))
    return tuple(tangents)


def reverse_pass(
    graph: Graph, values: tuple[np.ndarray, ...], output: int
) -> tuple[tuple[np.ndarray | None, ...], dict[Edge, np.ndarray]]:
    """Reverse mode: v̄_i = Σ_children v̄_j·∂v_j/∂v_i, keeping every edge's term.

    Only ancestors of `output` receive terms; other nodes get a zero adjoint, and
    constants (and ops on constants only, like `1 + 1`) get None: nothing
    differentiates a constant.
    """
    adjoints: list[np.ndarray | None] = [None] * len(graph.nodes)
    contributions: dict[Edge, np.ndarray] = {}
    constants = graph.constant_ids
    adjoints[output] = np.ones_like(values[output])
    with np.errstate(all="ignore"):
        for node in reversed(graph.nodes[: output + 1]):
            g = adjoints[node.id]
            if node.is_leaf or g is None:
                continue
            rule = rule_for(node.op)
            args = tuple(values[i] for i in node.inputs)
            for position, i in enumerate(node.inputs):
                if i in constants:
                    continue
                term = unbroadcast(rule.vjps[position](g, values[node.id], args, node.attrs), values[i].shape)
                term = term.astype(values[i].dtype, copy=False)
                contributions[(node.id, position)] = term
                adjoints[i] = term.copy() if adjoints[i] is None else adjoints[i] + term
    for node in graph.nodes:
        if adjoints[node.id] is None and node.id not in constants:
            adjoints[node.id] = np.zeros_like(values[node.id])
    return tuple(adjoints), contributions


def local_partials(graph: Graph, values: tuple[np.ndarray, ...]) -> dict[Edge, np.ndarray]:
    """∂v_j/∂v_i as numbers for every edge where that is a scalar or elementwise Jacobian."""
    partials: dict[Edge, np.ndarray] = {}
    with np.errstate(all="ignore"):
        for node in graph.nodes:
            if node.is_leaf:
                continue
            rule = rule_for(node.op)
            args = tuple(values[i] for i in node.inputs)
            out = values[node.id]
            if rule.derivs is not None:
                derivs = rule.derivs(args, out, node.attrs)
                for position, d in enumerate(derivs):
                    partials[(node.id, position)] = np.broadcast_to(d, out.shape).astype(out.dtype)
            elif out.size == 1 and all(a.size == 1 for a in args):
                for position in range(len(args)):
                    one = np.ones_like(out)
                    partials[(node.id, position)] = np.asarray(rule.vjps[position](one, out, args, node.attrs)).reshape(args[position].shape)
    return partials


def run_passes(
    graph: Graph,
    leaves: Mapping[str, np.ndarray],
    dtype: str = "float64",
    modes: tuple[str, ...] = ("tangent", "reverse"),
) -> Trace:
    """Forward values, then (as asked) one tangent pass per input and one reverse pass per output."""
    values = forward_values(graph, leaves, dtype)
    tangents, adjoints, contributions = {}, {}, {}
    if "tangent" in modes:
        for i in graph.input_ids:
            tangents[graph.nodes[i].label] = tangent_pass(graph, values, i)
    if "reverse" in modes:
        for name, oid in graph.outputs.items():
            adjoints[name], contributions[name] = reverse_pass(graph, values, oid)
    return Trace(graph, values, tangents, adjoints, contributions, local_partials(graph, values))
