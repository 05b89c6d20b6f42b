"""`gradviz trace` as rich renderables: the lecture's trace table, gradients, passes, outline."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from gradviz.core.explain import adjoint_equation, bar, tangent_equation
from gradviz.core.fmt import fmt_value, is_finite
from gradviz.core.trace import Trace
from gradviz.views.whole_columns import WholeColumns

KIND_STYLE = {"input": "bold cyan", "parameter": "bold magenta", "constant": "dim", "op": ""}
OUTLINE_LIMIT = 60


def _number(value, style: str = "") -> Text:
    text = fmt_value(value)
    return Text(text, style="bold red" if not is_finite(value) else style)


def trace_table(trace: Trace, mode: str = "all", wrt: str | None = None) -> Table:
    """The lecture's table: node, definition, value, tangent (w.r.t. `wrt`), adjoint(s)."""
    show_tangent = mode in ("tangent", "all") and wrt in trace.tangents
    show_adjoint = mode in ("reverse", "all") and bool(trace.adjoints)
    table = Table(title="trace", title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("node", no_wrap=True)
    table.add_column("definition")
    table.add_column("value", justify="right")
    if show_tangent:
        table.add_column(Text(f"tangent ∂·/∂{wrt}"), justify="right")
    if show_adjoint:
        for output in trace.adjoints:
            table.add_column(Text(f"adjoint ∂{trace.graph.shown_output(output)}/∂·"), justify="right")
    first = trace.first_nonfinite()
    for node in trace.graph.nodes:
        if node.op == "const":
            continue
        label = Text(node.label, style=KIND_STYLE[node.kind])
        if first and first[1] == node.id:
            label.stylize("bold red")
            label.append(" ◀", style="bold red")
        target = node.id in trace.graph.target_ids
        row: list[RenderableType] = [label, Text(node.definition if not node.is_leaf else ("target (data)" if target else node.kind), style="" if not node.is_leaf else "dim"), _number(trace.values[node.id])]
        derivatives = int(show_tangent) + (len(trace.adjoints) if show_adjoint else 0)
        if target:  # data: nobody differentiates with respect to a target, so it has no tangent or adjoint
            row += [Text("data", style="dim") for _ in range(derivatives)]
            table.add_row(*row)
            continue
        if show_tangent:
            row.append(_number(trace.tangents[wrt][node.id]))
        if show_adjoint:
            row += [_number(adjoints[node.id]) for adjoints in trace.adjoints.values()]
        table.add_row(*row)
    return table


def summed_adjoints(trace: Trace, output: str) -> list[int]:
    """The nodes whose adjoint of `output` is a sum of more than one edge contribution."""
    ids = []
    for node in trace.graph.nodes:
        if node.op == "const" or node.id == trace.graph.outputs[output] or node.id in trace.graph.target_ids:
            continue
        if len([v for _, v in trace.edge_terms(output, node.id) if v is not None]) > 1:
            ids.append(node.id)
    return ids


def adjoint_sums(trace: Trace) -> Table | None:
    """Each adjoint with more than one term, written out as the lecture's sum; with several
    outputs, under each output's name (v̄ means ∂f/∂v there)."""
    title = "adjoints as sums of edge contributions"
    table = Table(title=title, title_justify="left", min_width=len(title),  # a title never wraps at its rows' width
                  show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column()
    rows = 0
    several = len(trace.adjoints) > 1
    for output in trace.adjoints:
        ids = summed_adjoints(trace, output)
        if several:
            shown = trace.graph.shown_output(output)
            table.add_row(Text(f"of {shown} (v̄ = ∂{shown}/∂v):" if ids else f"of {shown}: every adjoint has one term",
                               style="bold"))
        for node_id in ids:
            table.add_row(Text(("  " if several else "") + adjoint_equation(trace, output, node_id)))
            rows += 1
    return table if rows else None


def tangent_chain(trace: Trace, wrt: str) -> Table:
    """Forward mode's chain rule at each op node, for input `wrt`."""
    title = f"tangents (forward mode, ∂·/∂{wrt})"
    table = Table(title=Text(title, style="table.title"), title_justify="left",
                  min_width=len(title),  # a title never wraps at its rows' width
                  show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column()
    for node in trace.graph.nodes:
        if not node.is_leaf:
            table.add_row(Text(tangent_equation(trace, wrt, node.id)))
    return table


def _gradient_inputs(trace: Trace) -> list[str]:
    """The inputs a gradient is taken with respect to: every input but a target, which is data."""
    targets = {trace.graph.nodes[i].label for i in trace.graph.target_ids}
    return [label for label in trace.input_labels if label not in targets]


def gradients_table(trace: Trace) -> Table:
    """∂output/∂input for every pair: the gradient, or with several outputs the Jacobian."""
    title = "gradients" if len(trace.adjoints) == 1 else "Jacobian (rows: outputs)"
    table = Table(title=title, title_justify="left", min_width=len(title), show_edge=False, pad_edge=False,
                  header_style="bold")
    table.add_column("")
    labels = _gradient_inputs(trace)
    for label in labels:
        table.add_column(Text(f"∂·/∂{label}"), justify="right")
    for output in trace.adjoints:
        table.add_row(Text(trace.graph.shown_output(output)), *[_number(trace.gradient(output, label)) for label in labels])
    return table


def passes_line(trace: Trace) -> Text:
    """How many passes each mode needs for the whole gradient or Jacobian."""
    counts = trace.pass_counts()
    fwd, rev = counts["forward_mode"], counts["reverse_mode"]
    text = Text("passes for the full ")
    text.append("gradient" if rev == 1 else "Jacobian")
    text.append(f": forward mode {fwd} (one per input element), reverse mode {rev} (one per output element)")
    return text


def outline(trace: Trace, limit: int = OUTLINE_LIMIT) -> Tree:
    """The graph as a tree from each output; a shared node is expanded once, then referred to."""
    root = Tree("graph", guide_style="dim")
    seen: set[int] = set()
    lines = [0]

    def add(parent: Tree, node_id: int) -> None:
        node = trace.graph.nodes[node_id]
        lines[0] += 1
        if lines[0] > limit:
            return
        if node.is_leaf:
            kind = "target (data)" if node_id in trace.graph.target_ids else node.kind
            parent.add(Text(f"{node.label} ({kind})", style=KIND_STYLE[node.kind] or "dim"))
            return
        if node_id in seen:
            parent.add(Text(f"{node.label} (shared, see above)", style="dim"))
            return
        seen.add(node_id)
        branch = parent.add(Text(node.definition))
        for i in dict.fromkeys(node.inputs):
            add(branch, i)

    for oid in trace.graph.outputs.values():
        add(root, oid)
    if lines[0] > limit:
        root.add(Text(f"… {lines[0] - limit} more lines (use --graph or gradviz export for the whole graph)", style="dim"))
    return root


def nonfinite_note(trace: Trace) -> Text | None:
    """A red line naming the first node whose value or adjoint became NaN/Inf."""
    first = trace.first_nonfinite()
    if first is None:
        return None
    kind, node_id = first
    node = trace.graph.nodes[node_id]
    output = next(iter(trace.adjoints), None)
    what = "value" if kind == "value" else f"adjoint {bar(node.label, output and trace.graph.shown_output(output))}"
    return Text(f"non-finite: the first {what} to become NaN/Inf is at {node.definition}", style="bold red")


def rebinding_note(trace: Trace) -> Text | None:
    """Which labels are later values of a name assigned again (c₂ of c), or None."""
    lines = [f"{node.label}: a later value of {node.meta['rebinds']} (the name was assigned again)"
             for node in trace.graph.nodes if node.meta.get("rebinds")]
    return Text("\n".join(lines), style="dim") if lines else None


def trace_report(trace: Trace, mode: str = "all", wrt: str | None = None) -> Group:
    """Everything `gradviz trace` prints, in order (a model's tensors: see model_report)."""
    from gradviz.views.model_report import is_model_trace, model_report

    if is_model_trace(trace):
        return model_report(trace)
    parts: list[RenderableType] = [WholeColumns(trace_table(trace, mode, wrt)), Text()]
    rebound = rebinding_note(trace)
    if rebound is not None:
        parts += [rebound, Text()]
    if mode in ("tangent", "all") and wrt in trace.tangents:
        parts += [tangent_chain(trace, wrt), Text()]
    if mode in ("reverse", "all"):
        sums = adjoint_sums(trace)
        if sums is not None:
            parts += [sums, Text()]
    if mode != "forward" and trace.adjoints and _gradient_inputs(trace):
        parts += [WholeColumns(gradients_table(trace)), Text()]
    parts += [passes_line(trace), Text(), outline(trace)]
    note = nonfinite_note(trace)
    if note is not None:
        parts += [Text(), note]
    return Group(*parts)


def node_details(trace: Trace, label: str) -> Group:
    """One node in full (`--show NODE`): definition, value and each adjoint element by element."""
    from gradviz.core.fmt import fmt_full, fmt_shape
    from gradviz.errors import GradvizError
    from gradviz.views.model_report import is_model_trace, model_node_details

    if is_model_trace(trace):
        return model_node_details(trace, label)
    node = trace.graph.find(label)
    if node is None:
        raise GradvizError(f"--show {label}: no such node")
    value = trace.values[node.id]
    parts: list[RenderableType] = [Text(f"{node.definition}  [{fmt_shape(value.shape)}]", style="bold"),
                                   Text("value:"), Text(fmt_full(value))]
    for output, adjoints in trace.adjoints.items():
        parts += [Text(f"adjoint ∂{trace.graph.shown_output(output)}/∂{label}:"), Text(fmt_full(adjoints[node.id]))]
    return Group(*parts)
