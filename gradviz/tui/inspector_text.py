"""The inspector's text for one node at step k: definition, inputs, partials, tangent, adjoint.

Rich renderables only (no textual), built from core.explain's equations so the numbers
are the Trace's; terms whose child adjoint is not final yet read '?'.
"""

from __future__ import annotations

import numpy as np
from rich.cells import cell_len
from rich.console import Group, RenderableType
from rich.text import Text

from gradviz.core.explain import (
    adjoint_equation,
    adjoint_terms,
    bar,
    is_derivative_symbol,
    minus,
    partial_formula,
    tangent_equation,
)
from gradviz.core.fmt import fmt_shape, fmt_value
from gradviz.core.stats import facts_of
from gradviz.core.steps import tangent_keys
from gradviz.tui.scene import Scene
from gradviz.views.heatmap import Heatmap, stats_line

MAX_TANGENT_INPUTS = 4
DATA_NOTE = "{} is data (the loss's target): nothing is differentiated with respect to it, so no pass runs for it"
HEADING = "bold underline"

INTRO = """Step 0: only the inputs are known.

Keys
{keys}

The steps follow the lecture: first every value (forward), then one tangent pass per \
input (forward mode), then one adjoint pass per output (reverse mode)."""  # the terminal's and the page's


def _num(value, trace) -> str:
    """A number as the inspector's equations write it: with their minus sign (−); a
    tensor's norm from the trace's memo (taken once per tensor, not once per step)."""
    return minus(fmt_value(value, norm=facts_of(trace).norm))


def _number_style(value, trace) -> str:
    return "bold red" if value is not None and not facts_of(trace).finite(value) else "bold"


def _pending(equation: str) -> str:
    """An equation with its result replaced by '?'."""
    head, _, _ = equation.rpartition(" = ")
    return f"{head} = ?"


def inspector_report(scene: Scene, node_id: int, pinned: bool = False) -> Group:
    """Everything the inspector shows for `node_id` at the scene's step."""
    trace = scene.trace
    node = trace.graph.nodes[node_id]
    value = trace.values[node_id]
    kind = "data (the loss's target)" if node_id in trace.graph.target_ids else node.kind
    title = Text(node.definition if not node.is_leaf else f"{node.label}: {kind}", style="bold")
    title.append(f"   [{fmt_shape(value.shape)}]", style="dim")
    parts: list[RenderableType] = [title]
    if node.meta.get("module"):
        parts.append(Text(f"module {node.meta['module']}", style="dim"))
    parts.append(Text("selected (esc follows the current node)" if pinned else "current node", style="dim italic"))
    sections = [_value_section, _inputs_section, _tangent_section, _adjoint_section]
    # Lead with what this step computes, so a short pane shows the equation that matters.
    lead = {"tangent": _tangent_section, "reverse": _adjoint_section}.get(scene.phase)
    if lead is not None:
        sections.remove(lead)
        sections.insert(0, lead)
    for section in sections:
        parts += section(scene, node_id)
    return Group(*parts)


def _value_section(scene: Scene, node_id: int) -> list[RenderableType]:
    label = scene.trace.graph.nodes[node_id].label
    value = scene.trace.values[node_id]
    line = Text(f"{label} = ")
    if node_id in scene.known("value"):
        line.append(_num(value, scene.trace), style=_number_style(value, scene.trace))
    else:
        line.append("?  (computed at its forward step)", style="dim")
    parts: list[RenderableType] = [Text(), Text("value", style=HEADING), line]
    if value.size > 1 and node_id in scene.known("value"):
        parts += tensor_summary(value, "value", scene.trace)
    return parts


def _inputs_section(scene: Scene, node_id: int) -> list[RenderableType]:
    trace = scene.trace
    node = trace.graph.nodes[node_id]
    if node.is_leaf:
        return []
    parts: list[RenderableType] = [Text(), Text("inputs and local partials", style=HEADING)]
    known = node_id in scene.known("value")
    for position, i in enumerate(node.inputs):
        source = trace.graph.nodes[i]
        line = Text(f"{source.label} = ")
        line.append(minus(scene.text("value", i)) if i in scene.known("value") else "?")
        if source.op != "const":
            line.append("    " + partial_text(trace, node_id, position, known))
        parts.append(line)
    return parts


def partial_text(trace, node_id: int, position: int, known: bool = True) -> str:
    """What edge (node, position) contributes locally, named for what it is: a partial
    ∂v/∂u (a scalar), an elementwise partial ∂vᵢ/∂uᵢ (a diagonal Jacobian, shown as its
    diagonal), or a vector-Jacobian product v̄ ↦ … (no partial is written out)."""
    node = trace.graph.nodes[node_id]
    source = trace.graph.nodes[node.inputs[position]]
    formula = partial_formula(trace, node_id, position)
    if "v̄" in formula:
        return f"vector-Jacobian product: v̄ ↦ {formula}  (v̄ = {bar(node.label, _shown_output(trace))})"
    partial = trace.partials.get((node_id, position))
    if partial is not None and np.asarray(partial).size > 1:
        text = f"elementwise ∂{node.label}ᵢ/∂{source.label}ᵢ = {formula}"
        return text if _is_number(formula) else text + " = " + (_num(partial, trace) if known else "?")
    text = f"∂{node.label}/∂{source.label} = {formula}"
    if partial is not None and not _is_number(formula):
        text += " = " + (_num(partial, trace) if known else "?")
    return text


def _is_number(formula: str) -> bool:
    try:
        float(formula.replace("−", "-"))
    except ValueError:
        return False
    return True


def _factor(symbol: str) -> str:
    return f"({symbol})" if is_derivative_symbol(symbol) else symbol


def _shown_output(trace) -> str | None:
    output = next(iter(trace.adjoints), None)
    return None if output is None else trace.graph.shown_output(output)


def _tangent_section(scene: Scene, node_id: int) -> list[RenderableType]:
    trace = scene.trace
    if not trace.tangents or trace.graph.nodes[node_id].op == "const":
        return []
    inputs = tangent_keys(trace)
    parts: list[RenderableType] = [Text(), Text("tangent (forward mode: one pass per input)", style=HEADING)]
    if node_id in trace.graph.target_ids:
        return parts + [Text(DATA_NOTE.format(trace.graph.nodes[node_id].label), style="dim")]
    if scene.phase in ("start", "forward"):
        parts.append(Text(f"pending: the tangent passes come after the values ({', '.join(inputs[:8])})",
                          style="dim"))
        return parts
    shown = inputs if len(inputs) <= MAX_TANGENT_INPUTS else [scene.wrt]
    for wrt in shown:
        equation = tangent_equation(trace, wrt, node_id)
        known = node_id in scene.known("tangent", wrt)
        marker = "▶ " if scene.phase == "tangent" and wrt == scene.wrt else "  "
        parts.append(Text(marker + f"∂/∂{wrt}: " + (equation if known else _pending(equation)),
                          style="" if known else "dim"))
    return parts


def _adjoint_section(scene: Scene, node_id: int) -> list[RenderableType]:
    trace = scene.trace
    output = scene.output
    node = trace.graph.nodes[node_id]
    if output is None or node.op == "const":
        return []
    shown = trace.graph.shown_output(output)  # c₃ where c was assigned again
    parts: list[RenderableType] = [Text(), Text(f"adjoint ∂{shown}/∂{node.label} (reverse mode)", style=HEADING)]
    if node_id in trace.graph.target_ids:
        return parts + [Text(DATA_NOTE.format(node.label), style="dim")]
    if scene.phase in ("start", "forward", "tangent"):
        parts.append(Text(f"pending: the reverse pass comes last (one pass per output: "
                          f"{', '.join(map(trace.graph.shown_output, trace.adjoints))})", style="dim"))
        return parts
    known_children = scene.known("adjoint", output)
    terms = [t for t in adjoint_terms(trace, output, node_id) if t.value is not None]
    equation = adjoint_equation(trace, output, node_id, known=known_children)
    done = node_id in known_children
    equation = equation if done or "?" in equation else _pending(equation)
    if terms and trace.graph.outputs.get(output) != node_id:
        # The lecture's rule first (v̄i = Σ v̄j·∂vj/∂vi over the children), then its terms.
        symbol = bar(node.label, shown)
        generic = " + ".join(_factor(bar(trace.graph.nodes[t.child].label, shown))
                             + f"·∂{trace.graph.nodes[t.child].label}/∂{node.label}" for t in terms)
        parts.append(Text(f"{symbol} = {generic}"))
        # Then one line for the local partials and one for the numbers, '=' under '='.
        pieces = equation.split(" = ")[1:]
        lines = [pieces[0], " = ".join(pieces[1:])] if len(pieces) >= 3 else [" = ".join(pieces)]
        indent = " " * cell_len(symbol)
        for line in lines:
            parts.append(Text(f"{indent} = {line}", style="bold" if done else ""))
    else:
        parts.append(Text(equation, style="bold" if done else ""))
    for t in terms:
        child = trace.graph.nodes[t.child]
        line = Text(f"  from {child.label}: {bar(child.label, shown)} = ")
        if t.child in known_children:
            adjoint = trace.adjoints[output][t.child]
            partial = trace.partials.get((t.child, t.position))
            if t.formula and "v̄" in t.formula:  # a vector-Jacobian product, no partial to multiply by
                line.append(f"{_num(adjoint, trace)}, through {t.formula} → ")
            elif partial is not None and np.asarray(partial).size > 1:
                diagonal = t.formula if _is_number(t.formula) else _num(partial, trace)
                line.append(f"{_num(adjoint, trace)} ⊙ ∂{child.label}ᵢ/∂{node.label}ᵢ ({diagonal}) → ")
            else:
                factor = f" ({_num(partial, trace)})" if partial is not None else ""
                line.append(f"{_num(adjoint, trace)} × ∂{child.label}/∂{node.label}{factor} → ")
            line.append(_num(t.value, trace), style=_number_style(t.value, trace))
        else:
            line.append("? (pending: its adjoint is not final yet)", style="dim")
        parts.append(line)
    adjoint = trace.adjoints[output][node_id]
    if done and adjoint is not None and np.asarray(adjoint).size > 1:
        parts += tensor_summary(adjoint, "adjoint", trace)
    return parts


SMALL_TENSOR = 8  # rows and columns: a tensor this small is shown as its numbers, as on a slide


def tensor_summary(value: np.ndarray, what: str = "value", trace=None) -> list[RenderableType]:
    """A small tensor (up to 8×8) as its numbers; a bigger one as shape, statistics and a
    small heatmap (gradviz.views.heatmap's)."""
    value = np.asarray(value)
    if value.ndim <= 2 and all(n <= SMALL_TENSOR for n in value.shape):
        numbers = np.array2string(value, precision=4, suppress_small=True, max_line_width=10_000)
        return [Text(f"{what}, all {fmt_shape(value.shape)} numbers:", style="dim"), Text(numbers.replace("-", "−"))]
    stats = facts_of(trace).stats(value) if trace is not None else None  # once per tensor, not per step
    return [stats_line(value, what, stats), Heatmap(value)]
