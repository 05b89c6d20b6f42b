"""Symbolic differentiation with SymPy: the graph as one closed form, differentiated exactly.

Each node becomes a SymPy expression built from its inputs' ones, so the closed form is
the graph with every shared node copied into each place that uses it: the tree that
SymPy differentiates. A branch (relu, abs, max, min) is taken as a program takes it,
`x if x > 0 else 0`; on a symbol that condition has no truth value, and symbolic
differentiation stops there (the lecture: no conditions, no loops), while AD and finite
differences only ever need the value at the point. SymPy is imported here only.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import sympy as sp

from gradviz.budgets import time_bound
from gradviz.core.graph import Graph, Node
from gradviz.core.rules import RULES
from gradviz.errors import GradvizError

DIGITS = 30  # SymPy evaluates the derivative to this many digits: the exact reference
# The closed form writes every shared node out at each use; beyond this many operations
# SymPy takes minutes (and the point, expression swell, is made): stop before asking it.
MAX_TREE = 3_000  # measured: a 3,643-operation tree took 10 s of CPU, the lecture f∘…∘f (2,912) 1.5 s


class SymbolicStop(GradvizError):
    """Symbolic differentiation cannot go on at this node (a branch, a random mask)."""


def tree_size(graph: Graph, output: str) -> int:
    """How many operations `output` has written out as one formula (shared nodes copied per use)."""
    sizes: list[int] = []
    for node in graph.nodes:
        sizes.append(0 if node.is_leaf else 1 + sum(sizes[i] for i in node.inputs))
    return sizes[graph.outputs[output]]


def to_sympy(graph: Graph, output: str) -> tuple[Any, dict[str, sp.Symbol]]:
    """The closed form of `output` and the symbol of each input; SymbolicStop where it cannot go on."""
    size = tree_size(graph, output)
    if size > MAX_TREE:
        raise SymbolicStop(f"symbolic differentiation stops before it starts: written out as one formula, {output} "
                           f"has {size:,} operations ({len(graph)} graph nodes): expression swell")
    symbols: dict[str, sp.Symbol] = {}
    exprs: list[Any] = []
    for node in graph.nodes:
        exprs.append(_node_expr(node, exprs, symbols))
    return exprs[graph.outputs[output]], symbols


def _node_expr(node: Node, exprs: list[Any], symbols: dict[str, sp.Symbol]) -> Any:
    if node.op == "const":
        value = node.attrs["value"]
        if getattr(value, "size", 1) != 1:
            raise SymbolicStop(f"symbolic differentiation stops at the constant {node.label}: a tensor, "
                               "and the closed form here is of scalars")
        return sp.nsimplify(float(value))
    if node.is_leaf:
        symbols[node.label] = sp.Symbol(node.label, real=True)
        return symbols[node.label]
    if node.op == "dropout":
        raise SymbolicStop(f"symbolic differentiation stops at {node.definition}: dropout draws a random mask, "
                           "not a function of its input")
    rule = RULES.get(node.op)
    if rule is None or rule.sympy is None:
        raise SymbolicStop(f"symbolic differentiation stops at {node.definition}: no SymPy form for {node.op}")
    try:
        return rule.sympy(sp)(*(exprs[i] for i in node.inputs))
    except TypeError as exc:
        if rule.branch is not None:
            raise SymbolicStop(f"symbolic differentiation stops at {node.definition}: the branch "
                               f"'{rule.branch}' has no truth value on a symbol ({exc})") from None
        raise


def count_ops(expr: Any) -> int:
    """The size of a closed form: SymPy's count of its operations, the tree written out."""
    return int(sp.count_ops(expr, visual=False))


@dataclass(frozen=True)
class Symbolic:
    """SymPy's closed form of f and of each ∂f/∂input, their sizes, and their exact values."""

    expr: Any
    derivatives: dict[str, Any]
    sizes: dict[str, int]
    values: dict[str, float]  # each derivative evaluated at the point to DIGITS digits
    size_f: int


def differentiate(graph: Graph, output: str, point: dict[str, float]) -> Symbolic:
    """Differentiate the closed form with respect to every input and evaluate at the point."""
    expr, symbols = to_sympy(graph, output)
    subs = {symbols[name]: sp.nsimplify(value, rational=True) for name, value in point.items() if name in symbols}
    derivatives, sizes, values = {}, {}, {}
    for name, symbol in symbols.items():
        d = sp.diff(expr, symbol)
        derivatives[name] = d
        sizes[name] = count_ops(d)
        value = sp.N(d.xreplace(subs), DIGITS)
        # zoo, nan or a complex number (sqrt at 0, log below 0): no real derivative to compare.
        if not (value.is_real and value.is_finite):
            raise SymbolicStop(f"symbolic differentiation stops: ∂{output}/∂{name} is not finite at this point "
                               f"(SymPy gives {value})")
        values[name] = float(value)
    return Symbolic(expr, derivatives, sizes, values, count_ops(expr))


@dataclass(frozen=True)
class SwellRow:
    """The chain f(f(…f(x)…)) of one depth: the derivative's size against AD's graph."""

    depth: int
    symbolic_ops: int
    ad_nodes: int
    seconds: float


def swell(graph: Graph, output: str, wrt: str, max_depth: int = 6, budget: float = 3.0) -> list[SwellRow]:
    """Compose f with itself through input `wrt` (the loop `for _ in range(k): wrt = f(…)`,
    unrolled) and measure, per depth, ∂/∂wrt's closed-form size beside AD's node count.

    Stops early when the time budget (seconds, SymPy's work) runs out."""
    from gradviz.methods.chain import chain_graph

    expr, symbols = to_sympy(graph, output)
    symbol = symbols[wrt]
    rows: list[SwellRow] = []
    composed = symbol
    start = time.perf_counter()
    for depth in range(1, max_depth + 1):
        chained = chain_graph(graph, output, wrt, depth)
        if tree_size(chained, output) > MAX_TREE:
            break  # SymPy would take minutes; the rows so far show the trend
        begun = time.perf_counter()
        if begun - start >= budget:
            break
        try:
            with time_bound(budget - (begun - start), lambda: SymbolicStop("out of time")):
                composed = expr.xreplace({symbol: composed})
                size = count_ops(sp.diff(composed, symbol))
        except SymbolicStop:
            break  # the rows so far show the trend
        took = time.perf_counter() - begun
        rows.append(SwellRow(depth, size, len(chained), took))
        # Each level costs a few times the one before: stop before the budget would run out.
        if time.perf_counter() - start + 4 * took > budget:
            break
    return rows
