"""The lecture's equations as text: a tangent or an adjoint spelled out term by term.

Views (the CLI table, the stepper's inspector, the exporter) show these strings; the
numbers come from the Trace, never recomputed here.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from gradviz.core.fmt import DECIMALS, fmt_value
from gradviz.core.trace import Trace


@dataclass(frozen=True)
class Term:
    """One edge's term v̄_j·∂v_j/∂v_i: the child's label, the partial's formula, its value."""

    child: int
    position: int
    formula: str
    value: np.ndarray | None


def partial_formula(trace: Trace, child: int, position: int) -> str:
    """The local derivative ∂v_j/∂v_i as a formula, or the symbol itself when unknown."""
    node = trace.graph.nodes[child]
    partials = node.meta.get("partials")
    if partials and position < len(partials):
        return partials[position]
    source = trace.graph.nodes[node.inputs[position]]
    return f"∂{node.label}/∂{source.label}"


MACRON = "\u0304"
DEFAULT_OUTPUT = "J"  # the slides' objective: the symbol of the output when a view does not say which


def bar(label: str, output: str | None = None) -> str:
    """The adjoint's symbol: v3 → v̄3, x1 → x̄1, f → f̄ (a macron over the one letter);
    any other name as ∂output/∂name (∂loss/∂fc1.weight): a bar over a long name lands on
    its last character and reads as a value once exported."""
    match = re.fullmatch(r"([A-Za-z])(\d*)", label)
    if match:
        return f"{match.group(1)}{MACRON}{match.group(2)}"
    return f"∂{output or DEFAULT_OUTPUT}/∂{label}"


def is_derivative_symbol(symbol: str) -> bool:
    """True for a ∂out/∂name symbol, which needs parentheses as a factor."""
    return symbol.startswith("∂")


def minus(text: str) -> str:
    """A number as an equation shows it: with the minus sign its operators use (−, not -)."""
    return "−" + text[1:] if text.startswith("-") else text


def _wrap(formula: str) -> str:
    """Parenthesise a formula that would read wrongly as a factor (sums, quotients)."""
    if formula.startswith("(") and formula.endswith(")"):
        return formula
    return f"({formula})" if any(op in formula for op in (" + ", " − ", "/")) else formula


def times_term(symbol: str, formula: str) -> str:
    """symbol·formula, dropping a factor of 1 and moving a leading minus to the front.

    A formula written in v̄ (a vector-Jacobian product such as 'v̄ @ W1ᵀ') takes the
    symbol in place of v̄ instead; a ∂out/∂name symbol is parenthesised as a factor."""
    factor = f"({symbol})" if is_derivative_symbol(symbol) else symbol
    if "v̄" in formula:
        return symbol if formula == "v̄" else formula.replace("v̄", factor)
    sign = ""
    if formula.startswith("−"):
        sign, formula = "−", formula[1:]
    if formula == "1":
        return sign + symbol
    return f"{sign}{factor}·{_wrap(formula)}"


def _join(parts: list[str]) -> str:
    """Join terms with + and −: ['a', '−b'] → 'a − b'."""
    text = parts[0] if parts else "0"
    text = minus(text)
    for part in parts[1:]:
        text += f" − {part[1:]}" if part.startswith(("−", "-")) else f" + {part}"
    return text


def adjoint_terms(trace: Trace, output: str, node_id: int) -> list[Term]:
    """The terms into v̄_i from each of its children (None where an edge does not reach output)."""
    return [Term(child, position, partial_formula(trace, child, position), value)
            for (child, position), value in trace.edge_terms(output, node_id)]


def adjoint_equation(trace: Trace, output: str, node_id: int, known: frozenset[int] | None = None,
                     decimals: int = DECIMALS) -> str:
    """'v̄1 = v̄2·e^{v1} + v̄3 + v̄5 = 0.8244 + 0.5000 + 2.1487 = 3.4731'.

    `known` (child ids whose adjoints are final at this step) marks other terms pending
    ('?'); None means everything is known.
    """
    graph = trace.graph
    label = graph.nodes[node_id].label
    shown = graph.shown_output(output)  # c₃ where the name c was assigned again
    symbol = bar(label, shown)
    if graph.outputs.get(output) == node_id:
        return f"{symbol} = 1 (the seed)" if is_derivative_symbol(symbol) else f"{symbol} = ∂{shown}/∂{label} = 1 (the seed)"
    terms = [t for t in adjoint_terms(trace, output, node_id) if t.value is not None]
    if not terms:
        return f"{symbol} = 0 ({label} does not reach {shown})"
    symbols = _join([times_term(bar(graph.nodes[t.child].label, shown), t.formula) for t in terms])
    numbers = [fmt_value(t.value, decimals) if known is None or t.child in known else "?" for t in terms]
    total = "?" if "?" in numbers else minus(fmt_value(trace.adjoints[output][node_id], decimals))
    text = f"{symbol} = {symbols}"
    if len(terms) > 1:
        text += " = " + _join(numbers)
    return text + f" = {total}"


def tangent_equation(trace: Trace, wrt: str, node_id: int, decimals: int = DECIMALS) -> str:
    """"v2' = e^{v1}·v1' = 1.6487": forward mode's chain rule at one node."""
    graph = trace.graph
    node = graph.nodes[node_id]
    value = minus(fmt_value(trace.tangents[wrt][node_id], decimals))
    if node.is_leaf:
        seed = "1 (the seed)" if node.label == wrt else "0"
        return f"{node.label}' = ∂{node.label}/∂{wrt} = {seed}"
    parts = []
    forms = node.meta.get("tangent_terms")
    for position, i in enumerate(node.inputs):
        source = graph.nodes[i]
        if source.op == "const" or i in graph.target_ids:  # a target is data: its tangent is 0, not a term
            continue
        if forms:
            parts.append(forms[position])
            continue
        formula = partial_formula(trace, node_id, position)
        sign = ""
        if formula.startswith("−"):
            sign, formula = "−", formula[1:]
        prime = f"{source.label}'"
        parts.append(sign + (prime if formula == "1" else f"{_wrap(formula)}·{prime}"))
    return f"{node.label}' = {_join(parts)} = {value}"
