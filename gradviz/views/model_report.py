"""`gradviz trace SPEC.py` as rich renderables: tensors summarised, edge sums checked, findings.

A model's nodes hold tensors, so each row shows shape, dtype and the statistics of its
value (v) and adjoint (v̄) instead of numbers; `--show NODE` adds heatmaps.
"""

from __future__ import annotations

import numpy as np
from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from gradviz.core.findings import Finding, find_issues, none_found, note_kinds
from gradviz.core.fmt import fmt_scalar, fmt_shape
from gradviz.core.stats import ArrayFacts, TensorStats, facts_of, l2_norm, tensor_stats
from gradviz.core.trace import Trace
from gradviz.errors import GradvizError
from gradviz.views.heatmap import Heatmap, short, stats_line
from gradviz.views.whole_columns import WholeColumns

KIND_STYLE = {"input": "bold cyan", "parameter": "bold magenta", "constant": "dim", "op": "bold"}
STATS = ("mean", "std", "min", "max", "‖·‖", "zeros", "NaN/Inf")
MAX_SUM_ROWS = 40


def is_model_trace(trace: Trace) -> bool:
    """True for traces made from a model spec (their nodes hold tensors of a real run)."""
    return trace.info.get("source") == "model"


def header(trace: Trace) -> Text:
    """One line: which model, which level, which batch, which mode."""
    info = trace.info
    text = Text(f"model {info.get('name', '?')}", style="bold")
    level = {"module": "module level (torch.fx)", "aten": "aten level (make_fx)",
             "autograd": "recorded as it ran (fx could not trace it)"}.get(str(info.get("level")), str(info.get("level")))
    text.append(f" · {level} · batch of {info.get('batch_size', '?')}")
    if "examples" in info:
        text.append(f" from {info['examples']} examples")
    text.append(f" (seed {info.get('seed', 0)}) · {info.get('dtype', '?')} · "
                f"{'training' if info.get('training', True) else 'evaluation'} mode")
    return text


def _stat_cells(value: np.ndarray | None, with_bad: bool, facts: ArrayFacts | None = None) -> list[str]:
    if value is None:
        return ["—"] + [""] * (len(STATS) - (1 if with_bad else 2))
    if isinstance(value, TensorStats):  # --keep summaries holds statistics, not tensors
        s = value
    else:
        s = tensor_stats(value) if facts is None else facts.stats(value)
    cells = [short(s.mean), short(s.std), short(s.min), short(s.max), short(s.norm), f"{s.zero_fraction:.0%}"]
    if with_bad:
        cells.append(f"{s.nan_count}/{s.inf_count}" if not s.finite else "")
    return cells


def graph_table(trace: Trace, findings: list[Finding] | None = None) -> Table:
    """One row per node: its definition, shape, dtype and module (the grouping); flagged nodes marked."""
    flagged = {f.node for f in (find_issues(trace) if findings is None else findings) if f.kind not in NOTES}
    table = Table(title="graph", title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("node", no_wrap=True)
    table.add_column("definition")
    table.add_column("shape", no_wrap=True)
    table.add_column("dtype", no_wrap=True)
    table.add_column("module")
    for node in trace.graph.nodes:
        label = Text(node.label, style=KIND_STYLE[node.kind])
        if node.id in flagged:
            label.append(" ◀", style="bold red")
        kind = "target (data)" if node.id in trace.graph.target_ids else node.kind
        definition = Text(kind, style="dim") if node.is_leaf else Text(node.definition.partition(" = ")[2])
        scaling = dropout_form(trace, node.id)
        if scaling:
            definition.append(f" = {scaling}", style="dim")
        if node.meta.get("names"):  # one tensor under several names (tied weights)
            definition.append(" shared: " + " = ".join(node.meta["names"]), style="dim")
        value = trace.values[node.id]
        table.add_row(label, definition, fmt_shape(value.shape), Text(str(node.meta.get("dtype", value.dtype))),
                      Text(node.meta.get("module") or "", style="dim"))
    return table


def dropout_form(trace: Trace, node_id: int) -> str | None:
    """A dropout node as the slides write it: 'relu·mask/(1−0.1)' (kept units scaled by
    1/(1−p)), 'relu (evaluation: nothing dropped)', or None for any other node."""
    data = trace.aux.get(node_id, {})
    if "p" not in data:
        return None
    node = trace.graph.nodes[node_id]
    source = trace.graph.nodes[node.inputs[0]].label if node.inputs else "x"
    if not data.get("training"):
        return f"{source} (evaluation: nothing dropped)"
    return f"{source}·mask/(1−{float(data['p']):g})"


def objective_line(trace: Trace, output: str = "loss") -> Text | None:
    """'J = loss = 0.6931': the slides' objective over this batch, with its value."""
    if output not in trace.graph.outputs:
        return None
    value = trace.values[trace.graph.outputs[output]]
    if isinstance(value, TensorStats):  # --keep summaries: a scalar's mean is the scalar
        number = value.mean if value.shape == () else None
    else:
        number = float(np.asarray(value).reshape(())) if np.size(value) == 1 else None
    if number is None:
        return None
    batch = trace.info.get("batch_size")
    over = f" over the batch of {batch} (the slides' J = 1/B·Σ L when the loss is a mean)" if batch else ""
    return Text(f"objective J = {output} = {fmt_scalar(number)}{over}", style="bold")


def tensor_table(trace: Trace, output: str = "loss") -> Table:
    """Per node, the statistics of its value (v) and its adjoint (v̄ = ∂output/∂node)."""
    adjoints = trace.adjoints.get(output)
    with_bad = trace.first_nonfinite() is not None
    facts = facts_of(trace)  # each tensor's statistics once, shared with --json and the drawing
    facts.prefetch_stats([*trace.values, *(adjoints or ())])
    table = Table(title=Text(f"tensors: value v, then (dim) adjoint v̄ = ∂{output}/∂·", style="table.title"),
                  title_justify="left", show_edge=False, pad_edge=False, header_style="bold")
    table.add_column("node", no_wrap=True, max_width=24, overflow="ellipsis")
    for name in STATS if with_bad else STATS[:-1]:
        table.add_column(name, justify="right", no_wrap=True)
    for node in trace.graph.nodes:
        adjoint = None if adjoints is None else adjoints[node.id]
        cells = [Text(a + "\n").append(b, style="dim")
                 for a, b in zip(_stat_cells(trace.values[node.id], with_bad, facts),
                                 _stat_cells(adjoint, with_bad, facts))]
        table.add_row(Text(node.label, style=KIND_STYLE[node.kind]), *cells)
    return table


def edge_sums(trace: Trace, output: str = "loss") -> Table | None:
    """Nodes with more than one edge term: each term's norm, their sum, and torch's adjoint."""
    adjoints = trace.adjoints.get(output)
    if adjoints is None:
        return None
    table = Table(title="adjoints as sums of edge contributions (v̄ = Σ v̄_j·∂v_j/∂v)", title_justify="left",
                  show_edge=False, pad_edge=False, header_style="bold")
    for name, justify in (("node", "left"), ("terms: child ‖v̄_j·∂v_j/∂v‖", "left"), ("‖Σ terms‖", "right"),
                          ("‖v̄‖ (torch)", "right"), ("max |Σ − v̄|", "right")):
        table.add_column(name, justify=justify)
    rows = 0
    sums = getattr(adjoints, "sums", None)  # --keep summaries: Σ and its difference, taken during the capture
    for node in trace.graph.nodes:
        adjoint = adjoints[node.id]
        terms = [(child, v) for (child, _), v in trace.edge_terms(output, node.id) if v is not None]
        if adjoint is None or len(terms) < 2:
            continue
        rows += 1
        if rows > MAX_SUM_ROWS:
            continue
        parts = ", ".join(f"{trace.graph.nodes[c].label} {fmt_scalar(_norm(v), 3)}" for c, v in terms)
        if sums is not None:
            total_norm, difference = sums.get(node.id, (float("nan"), float("nan")))
        else:
            total = sum(np.asarray(v, dtype=np.float64) for _, v in terms)
            total_norm = l2_norm(total)
            difference = float(np.max(np.abs(total - adjoint))) if np.size(adjoint) else 0.0
        table.add_row(Text(node.label), Text(parts), fmt_scalar(total_norm, 3), fmt_scalar(_norm(adjoint), 3),
                      fmt_scalar(difference, 2))
    if rows > MAX_SUM_ROWS:
        table.caption = f"… and {rows - MAX_SUM_ROWS} more nodes"
    return table if rows else None


def _norm(value) -> float:
    return value.norm if isinstance(value, TensorStats) else l2_norm(value)


NOTES = note_kinds()  # findings that say what was seen, not what is wrong


def findings_list(findings: list[Finding], trace: Trace) -> RenderableType:
    """The short list printed after the table: kind, node, what is wrong."""
    if not findings:
        return Text(none_found(), style="green")
    table = Table(title="findings", title_justify="left", show_header=False, show_edge=False, pad_edge=False, box=None)
    table.add_column(style="bold red")
    table.add_column(style="bold")
    table.add_column()
    for f in findings:
        table.add_row(Text(f.kind, style="bold cyan" if f.kind in NOTES else ""), Text(trace.graph.nodes[f.node].label),
                      Text(f.message))
    return table


def model_report(trace: Trace) -> Group:
    """Everything `gradviz trace SPEC.py` prints, in order."""
    parts: list[RenderableType] = [header(trace)]
    for note in trace.info.get("notes", []):
        parts.append(Text(f"note: {note}", style="yellow"))
    findings = find_issues(trace)
    parts += [Text(), WholeColumns(graph_table(trace, findings)), Text()]
    objective = objective_line(trace)
    if objective is not None:
        parts += [objective, Text()]
    parts += [WholeColumns(tensor_table(trace)), Text()]
    sums = edge_sums(trace)
    if sums is not None:
        parts += [WholeColumns(sums), Text()]
    counts = trace.pass_counts()
    parts.append(Text(f"forward-mode tangents are not computed for models: the full gradient would take "
                      f"{counts['forward_mode']} forward-mode passes (one per input and parameter element); "
                      f"reverse mode took {counts['reverse_mode']}.", style="dim"))
    parts += [Text(), findings_list(findings, trace)]
    return Group(*parts)


def model_node_details(trace: Trace, label: str) -> Group:
    """`--show NODE` for a model: definition, statistics and heatmaps of value, adjoint and mask."""
    node = trace.graph.find(label)
    if node is None:
        raise GradvizError(f"--show {label}: no such node (labels are in the first column)")
    parts: list[RenderableType] = [Text(node.definition if not node.is_leaf else f"{node.label}: {node.kind}",
                                        style="bold")]
    if node.meta.get("module"):
        parts.append(Text(f"module {node.meta['module']}", style="dim"))
    value = trace.values[node.id]
    parts += [stats_line(value, "value"), Heatmap(value)]
    for output, adjoints in trace.adjoints.items():
        adjoint = adjoints[node.id]
        parts.append(stats_line(adjoint, f"adjoint ∂{output}/∂{label}"))
        if adjoint is not None:
            parts.append(Heatmap(adjoint))
        terms = [(c, v) for (c, _), v in trace.edge_terms(output, node.id) if v is not None]
        for child, term in terms if len(terms) > 1 else []:
            parts.append(Text(f"  term from {trace.graph.nodes[child].label}: ‖·‖ {fmt_scalar(l2_norm(term), 3)}"))
    data = trace.aux.get(node.id, {})
    if data.get("mask") is not None:
        mask = np.asarray(data["mask"])
        parts.append(Text(f"dropout mask (p={float(data['p']):g}, {'active' if data.get('training') else 'inactive'}): "
                          f"kept {mask.mean():.1%} of {mask.size}", style="bold"))
        parts.append(Heatmap(mask))
    elif "training" in data:
        parts.append(Text(f"dropout p={float(data['p']):g}: inactive (nothing dropped)", style="bold"))
    return Group(*parts)
