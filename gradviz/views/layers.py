"""The layers view: backprop as the lecture writes it, δ_k and ∂L/∂W_k per layer, with numbers.

Renders a `core.layers.Backprop`; every quantity carries the check against the trace's
own adjoint (✓ or ✗ with the difference). Tensors of up to MAX_SHOWN elements are
written out in full, bigger ones as their shape and norm.
"""

from __future__ import annotations

import re

import numpy as np
from rich.console import Group
from rich.text import Text

from gradviz.core.fmt import fmt_scalar, fmt_shape, summary_line
from gradviz.core.layers import ACTIVATIONS, Backprop, Check, LayerGrads, no_layers_message
from gradviz.core.trace import Trace

MAX_SHOWN = 48
INDENT = "  "


def matrix_lines(value: np.ndarray | None, max_shown: int = MAX_SHOWN) -> list[str]:
    """A small tensor as aligned rows `[[ 0.1234, -0.5000], …]`; a big one as shape and norm."""
    if value is None:
        return ["—"]
    value = np.asarray(value)
    if value.size == 1:
        return [fmt_scalar(value.reshape(()))]
    if value.size > max_shown or value.ndim > 2:
        return [f"{fmt_shape(value.shape)} {summary_line(value)}"]
    rows = value.reshape(1, -1) if value.ndim == 1 else value
    cells = [[fmt_scalar(x) for x in row] for row in rows]
    width = max(len(c) for row in cells for c in row)
    lines = []
    for i, row in enumerate(cells):
        body = ", ".join(c.rjust(width) for c in row)
        if value.ndim == 1:
            lines.append(f"[{body}]")
        else:
            first, last = i == 0, i == len(cells) - 1
            lines.append(("[[" if first else " [") + body + ("]]" if last else "],"))
    return lines


def _check_text(check: Check | None) -> Text:
    if check is None:
        return Text()
    if check.ok:
        return Text(f"  ✓ equals the {check.against}", style="green")
    return Text(f"  ✗ differs from the {check.against} by {check.error:.2g}", style="bold red")


def _equation(lhs: str, formula: str, value: np.ndarray | None, check: Check | None, width: int,
              indent: str = INDENT) -> list[Text]:
    """`lhs = formula` with its check (on its own line when it does not fit), then
    `= numbers` aligned under it; numbers wider than the page become shape and norm."""
    head = Text(indent).append(lhs, style="bold").append(f" = {formula}" if formula else "")
    mark = _check_text(check)
    if head.cell_len + mark.cell_len <= width:
        lines = [head + mark]
    else:
        lines = [head] + ([Text(indent + "  ") + Text(mark.plain.strip(), style=mark.style)] if mark else [])
    if value is not None:
        pad = indent + " " * len(lhs)
        numbers = matrix_lines(value)
        if max(len(row) for row in numbers) + len(pad) + 3 > width:
            numbers = matrix_lines(value, max_shown=0)
        lines.append(Text(f"{pad} = {numbers[0]}"))
        lines.extend(Text(f"{pad}   {row}") for row in numbers[1:])
    return lines


def _find(checks: tuple[Check, ...], prefix: str) -> Check | None:
    return next((c for c in checks if c.what == prefix), None)


class _Names:
    """The lecture's symbols for the nodes of the trace: x, y, h, lay_k, z_k, W_k, b_k."""

    def __init__(self, trace: Trace, backprop: Backprop):
        self.trace = trace
        self.by_output = {g.layer.output: f"lay{g.layer.index}" for g in backprop.layers}

    def label(self, node_id: int) -> str:
        return self.trace.graph.nodes[node_id].label

    def input_of(self, grads: LayerGrads) -> str:
        node = grads.layer.input
        return self.by_output.get(node, self.label(node))


def layers_header(trace: Trace, backprop: Backprop, names: _Names, width: int) -> list[Text]:
    """What the layers are: each as the lecture's formula and the trace nodes it groups."""
    graph = trace.graph
    lines = [Text(f"backprop by layers · {graph.nodes[graph.outputs[backprop.output]].definition}", style="bold")]
    for grads in reversed(backprop.layers):
        layer = grads.layer
        k = layer.index
        act = ACTIVATIONS[layer.activation][0] if layer.activation else ""
        affine = f"{names.input_of(grads)}·W{k}" + (f" + b{k}" if layer.bias is not None else "")
        formula = f"{act}({affine})" if act else affine
        members = " ".join(names.label(i) for i in layer.nodes)
        line = Text(f"{INDENT}lay{k} = {formula}", style="cyan")
        line.append(f"   nodes {members}", style="dim")
        params = [f"W{k} = {names.label(layer.weight)}" + ("ᵀ" if layer.transposed else "")]
        if layer.bias is not None:
            params.append(f"b{k} = {names.label(layer.bias)}")
        params = [p for p in params if len(set(p.split(" = "))) > 1]  # 'W1 = W1' says nothing
        if layer.name != f"lay{k}":
            params.insert(0, layer.name)
        extra = Text(f"   ({', '.join(params)})", style="dim") if params else Text()
        if line.cell_len + extra.cell_len <= width:
            lines.append(line + extra)
        else:
            lines += [line, Text(INDENT * 2) + Text(extra.plain.strip(), style="dim")]
    return lines


def head_lines(trace: Trace, backprop: Backprop, names: _Names, width: int) -> list[Text]:
    """The loss and ∂L/∂h in closed form, as on the slide."""
    head = backprop.head
    last = backprop.layers[0].layer
    n = last.index
    if head is None:
        return [Text(""), Text(f"{INDENT}∂L/∂lay{n} is the trace's adjoint of {names.label(last.output)}: "
                     "the loss above it has no closed form here", style="dim")]
    mean = f" · 1/{head.rows}" if head.rows > 1 else ""
    y = names.label(head.target) if head.target is not None else "y"
    if head.kind == "bce":
        loss, grad = f"L = −[{y}·ln h + (1 − {y})·ln(1 − h)]", f"(h − {y}) / (h(1 − h)){mean}"
    else:
        loss, grad = f"L = (h − {y})²", f"2(h − {y}){mean}"
    where = f", L the mean over its {head.rows} elements" if head.rows > 1 else ""
    lines = [Text(""), Text(f"the loss, h = lay{n}{where}", style="bold"), Text(f"{INDENT}{loss}")]
    lines += _equation("∂L/∂h", grad, head.grad_h, _find(head.checks, "∂L/∂h"), width)
    lines.append(Text(f"{INDENT}∂h/∂lay{n} = 1   (h = lay{n}: the output of the last layer is the model's output)"))
    return lines


def layer_lines(backprop: Backprop, grads: LayerGrads, names: _Names, last: bool, width: int) -> list[Text]:
    """One layer: output, δ_k, ∂L/∂W_k, ∂L/∂b_k, the chain factor, what it passes down."""
    layer = grads.layer
    k = layer.index
    a = names.input_of(grads)
    checks = grads.checks
    lines = [Text(""), Text(f"layer {k}" + (" (computed first: backprop runs from the last layer down)" if last else ""),
                            style="bold")]
    act = ACTIVATIONS[layer.activation] if layer.activation else None
    affine = f"{a}·W{k}" + (f" + b{k}" if layer.bias is not None else "")
    lines += _equation(f"lay{k}", f"{act[0]}({affine})" if act else affine, grads.output, None, width)
    prime = act[1].format(lay=f"lay{k}", z=f"z{k}") if act else "1"
    factor = f"({prime})" if " − " in re.sub(r"\([^()]*\)", "", prime) else prime  # (1 − lay1²)·x
    upstream = f"∂L/∂lay{k}"
    if last and backprop.head is not None:
        upstream = f"∂L/∂h · ∂h/∂lay{k}"
    elif not grads.upstream_from_trace:
        upstream = f"(δ{k + 1}·W{k + 1}ᵀ)"
    formula = f"{upstream} ⊙ {factor}" if act else upstream
    if last and backprop.head is not None and backprop.head.delta_form:
        formula += f" = {backprop.head.delta_form}"
    lines += _equation(f"δ{k} = ∂L/∂z{k}", formula, grads.delta, _find(checks, f"δ{k}"), width)
    if last and backprop.head is not None and backprop.head.delta_form:
        closed = _find(backprop.head.checks, f"δ{k} = {backprop.head.delta_form}")
        lines += _equation(f"  ∂L/∂h · {factor}", f"{backprop.head.delta_form}   (the slide's cancellation)",
                           None, closed, width)
    grad_w = f"{a}ᵀ·δ{k}"
    if not last and not grads.upstream_from_trace and act:
        grad_w += f" = {a}ᵀ·[(δ{k + 1}·W{k + 1}ᵀ) ⊙ {factor}]"
    lines += _equation(f"∂L/∂W{k}", grad_w, grads.grad_weight, _find(checks, f"∂L/∂W{k}"), width)
    if not last and not grads.upstream_from_trace and act:
        lines.append(Text(f"{INDENT}  the slide writes it {a}ᵀ·δ{k + 1}·W{k + 1}·{factor}", style="dim"))
    lines.append(Text(f"{INDENT}  per example, as on the slide: ∂lay{k}/∂W{k} = {factor}·{a}", style="dim"))
    if layer.transposed:
        lines.append(Text(f"{INDENT}  (torch stores W{k}ᵀ as {names.label(layer.weight)}: its gradient is this, transposed)",
                          style="dim"))
    if grads.grad_bias is not None:
        lines += _equation(f"∂L/∂b{k}", f"Σ_rows δ{k}" if grads.delta.ndim > 1 else f"δ{k}", grads.grad_bias,
                           _find(checks, f"∂L/∂b{k}"), width)
    if grads.chain is not None:
        note = " (first example)" if grads.output.ndim > 1 and grads.output.shape[0] > 1 else ""
        lines += _equation(f"∂lay{k}/∂{a}", f"{factor}·W{k}ᵀ{note}", grads.chain, None, width)
    lines += _equation(f"∂L/∂{a}", f"δ{k}·W{k}ᵀ   (passed down)", grads.passed_down,
                       _find(checks, f"∂L/∂{'x' if k == 1 else f'lay{k - 1}'}"), width)
    return lines


def layers_report(trace: Trace, backprop: Backprop, width: int = 100) -> Group:
    """The whole layers view as one rich renderable, laid out for `width` columns."""
    message = no_layers_message(backprop)
    if message is not None:  # the callers refuse this first; a direct caller still gets the reason
        return Group(Text(f"backprop by layers: {message}", style="yellow"))
    names = _Names(trace, backprop)
    lines = layers_header(trace, backprop, names, width)
    lines += head_lines(trace, backprop, names, width)
    for position, grads in enumerate(backprop.layers):
        lines += layer_lines(backprop, grads, names, position == 0, width)
    checks = backprop.checks
    worst = max((c.error for c in checks), default=0.0)
    lines.append(Text(""))
    if backprop.ok:
        lines.append(Text(f"all {len(checks)} matrix-form quantities equal the reverse pass's adjoints "
                          f"(largest relative difference {worst:.1g})", style="green"))
    else:
        bad = [c.what for c in checks if not c.ok]
        lines.append(Text(f"{len(bad)} of {len(checks)} quantities differ from the trace: {', '.join(bad)}",
                          style="bold red"))
    for note in backprop.notes:
        lines.append(Text(note, style="dim"))
    return Group(*lines)


LAYER_FORMATS = (".svg", ".html", ".txt")


def write_layers(trace: Trace, backprop: Backprop, path, width: int = 100, title: str = "gradviz layers") -> None:
    """Write the layers view as a self-contained SVG or HTML page, or as plain text."""
    import io
    from pathlib import Path

    from rich.console import Console

    path = Path(path)
    # Recorded, not shown: the screen copy goes to a buffer that needs no closing.
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    console.print(layers_report(trace, backprop, width))
    from gradviz.files.write import write_atomic

    if path.suffix == ".svg":
        write_atomic(path, console.export_svg(title=title), shown=path)
    elif path.suffix == ".html":
        write_atomic(path, console.export_html(), shown=path)
    else:
        write_atomic(path, console.export_text(), shown=path)
