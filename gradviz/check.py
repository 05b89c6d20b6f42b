"""Oracles for `--check` and the tests: finite differences, and torch on the same graph.

torch is imported only here and only when asked for: the expression path stays fast.
"""

from __future__ import annotations

import functools
import importlib.util
from dataclasses import dataclass, field
from typing import Mapping

import numpy as np

from gradviz.core.graph import Graph
from gradviz.core.passes import forward_values
from gradviz.core.rules import RULES
from gradviz.core.trace import Trace

FD_MAX_ELEMENTS = 64  # per input: enough to catch a wrong rule, cheap on big tensors


def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    both_nan = np.isnan(a) & np.isnan(b)
    same_inf = np.isinf(a) & (a == b)
    diff = np.where(both_nan | same_inf, 0.0, np.abs(a - b) / np.maximum(1.0, np.maximum(np.abs(a), np.abs(b))))
    diff = np.where(np.isnan(diff), np.inf, diff)
    return float(diff.max()) if diff.size else 0.0


def finite_difference_gradients(trace: Trace, step: float | None = None) -> dict[str, dict[str, np.ndarray]]:
    """Central differences of sum(output) for each output and input (a sample of elements
    for large inputs: the others are NaN)."""
    graph = trace.graph
    dtype = trace.values[0].dtype if trace.values else np.float64
    h = step or (1e-6 if dtype == np.float64 else 1e-3)
    leaves = {graph.nodes[i].label: trace.values[i].astype(np.float64) for i in graph.input_ids}
    result: dict[str, dict[str, np.ndarray]] = {out: {} for out in graph.outputs}
    for label, base in leaves.items():
        grads = {out: np.full(base.shape, np.nan) for out in graph.outputs}
        flat_index = np.linspace(0, base.size - 1, min(base.size, FD_MAX_ELEMENTS)).astype(int)
        for flat in np.unique(flat_index):
            index = np.unravel_index(flat, base.shape)
            plus, minus = dict(leaves), dict(leaves)
            plus[label] = base.copy()
            plus[label][index] += h
            minus[label] = base.copy()
            minus[label][index] -= h
            up = forward_values(graph, plus, "float64")
            down = forward_values(graph, minus, "float64")
            for out, oid in graph.outputs.items():
                grads[out][index] = (up[oid].sum() - down[oid].sum()) / (2 * h)
        for out in graph.outputs:
            result[out][label] = grads[out]
    return result


@functools.cache
def _oracle(op: str):
    """torch's version of `op`, resolved from its rule on first use (core imports no torch)."""
    import torch

    return RULES[op].oracle(torch)


def torch_forward(graph: Graph, leaves: Mapping[str, "object"]) -> list:
    """Evaluate `graph` with torch ops (an implementation independent of gradviz's rules)."""
    import torch

    dtype = next(iter(leaves.values())).dtype if leaves else torch.float64
    values: list = []
    for node in graph.nodes:
        if node.op == "const":
            values.append(torch.as_tensor(np.asarray(node.attrs["value"]), dtype=dtype))
        elif node.is_leaf:
            values.append(leaves[node.label])
        else:
            values.append(_oracle(node.op)(*(values[i] for i in node.inputs), **node.attrs))
    return values


def torch_gradients(trace: Trace) -> dict[str, dict[str, np.ndarray]]:
    """∂sum(output)/∂input by torch.autograd on the same graph and leaf values."""
    import torch

    graph = trace.graph
    leaves = {graph.nodes[i].label: torch.tensor(trace.values[i], dtype=torch.float64, requires_grad=True)
              for i in graph.input_ids}
    values = torch_forward(graph, leaves)
    result: dict[str, dict[str, np.ndarray]] = {}
    for out, oid in graph.outputs.items():
        grads = torch.autograd.grad(values[oid].sum(), list(leaves.values()), retain_graph=True, allow_unused=True)
        result[out] = {label: (np.zeros(leaves[label].shape) if g is None else g.detach().numpy())
                       for label, g in zip(leaves, grads)}
    return result


def torch_tangents(trace: Trace) -> dict[str, dict[str, np.ndarray]]:
    """Forward-mode tangents of each output along the all-ones direction of each input (torch.func.jvp)."""
    import torch
    from torch.func import jvp

    graph = trace.graph
    labels = [graph.nodes[i].label for i in graph.input_ids]
    primals = tuple(torch.tensor(trace.values[i], dtype=torch.float64) for i in graph.input_ids)

    def outputs(*xs):
        values = torch_forward(graph, dict(zip(labels, xs)))
        return tuple(values[oid] for oid in graph.outputs.values())

    result: dict[str, dict[str, np.ndarray]] = {}
    for k, label in enumerate(labels):
        tangents = tuple(torch.ones_like(p) if j == k else torch.zeros_like(p) for j, p in enumerate(primals))
        _, out_tangents = jvp(outputs, primals, tangents)
        result[label] = {out: t.numpy() for out, t in zip(graph.outputs, out_tangents)}
    return result


@dataclass
class CheckResult:
    """Largest relative errors of gradviz's derivatives against each oracle."""

    errors: dict[str, float] = field(default_factory=dict)
    skipped: list[str] = field(default_factory=list)

    @property
    def worst(self) -> float:
        return max(self.errors.values(), default=0.0)

    def summary(self) -> str:
        parts = [f"{name}: {err:.2e}" for name, err in self.errors.items()]
        parts += [f"{name}: skipped" for name in self.skipped]
        verdict = "ok" if self.worst < 1e-4 else "MISMATCH"
        return f"check ({verdict}), largest relative error — " + "; ".join(parts)

    def to_json(self) -> dict:
        """The check as `--check --json` prints it under "check"."""
        return {"ok": self.worst < 1e-4, "errors": dict(self.errors), "skipped": list(self.skipped)}


def check_trace(trace: Trace, source: str = "") -> CheckResult:
    """Compare the trace's gradients and tangents with finite differences and torch."""
    graph = trace.graph
    result = CheckResult()
    fd = finite_difference_gradients(trace)
    result.errors["finite differences"] = max(
        (_relative_error(trace.gradient(out, label)[~np.isnan(fd[out][label])], fd[out][label][~np.isnan(fd[out][label])])
         for out in fd for label in fd[out]), default=0.0)
    if importlib.util.find_spec("torch") is None:
        result.skipped.append("torch.autograd (torch is not installed)")
        return result
    tg = torch_gradients(trace)
    result.errors["torch.autograd"] = max(
        (_relative_error(trace.gradient(out, label), tg[out][label]) for out in tg for label in tg[out]), default=0.0)
    if trace.tangents:
        tt = torch_tangents(trace)
        result.errors["torch.func.jvp"] = max(
            (_relative_error(trace.tangents[label][oid], tt[label][out])
             for label in tt for out, oid in graph.outputs.items()), default=0.0)
    return result
