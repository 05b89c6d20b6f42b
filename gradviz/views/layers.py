"""The layers view: backprop as the lecture writes it, z_k, lay_k, δ_k and ∂J/∂W_k per layer, with numbers.

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


DELTAS = ("lecture", "pre-activation")
DELTA_MEANING = {
    "lecture": "δk = ∂J/∂lay_k: taken after the activation, as on the slides",
    "pre-activation": "δk = ∂J/∂z_k: taken before the activation (the slides take it after)",
}


def head_lines(trace: Trace, backprop: Backprop, names: _Names, width: int) -> list[Text]:
    """The objective J with its value, the loss L and ∂J/∂h in closed form, as on the slide."""
    head = backprop.head
    last = backprop.layers[0].layer
    n = last.index
    value = trace.values[trace.graph.outputs[backprop.output]]
    if head is None:
        lines = [Text(""), Text("the objective", style="bold")]
        lines += _equation("J", names.label(trace.graph.outputs[backprop.output]), value, None, width)
        return lines + [Text(f"{INDENT}∂J/∂lay{n} is the trace's adjoint of {names.label(last.output)}: "
                             "the loss above it has no closed form here", style="dim")]
    mean = f" · 1/{head.rows}" if head.rows > 1 else ""
    y = names.label(head.target) if head.target is not None else "y"
    if head.kind == "bce":
        loss, grad = f"L = −[{y}·ln h + (1 − {y})·ln(1 − h)]", f"(h − {y}) / (h(1 − h)){mean}"
    else:
        loss, grad = f"L = (h − {y})²", f"2(h − {y}){mean}"
    objective = f"1/B·Σ L, the mean over B = {head.rows}" if head.rows > 1 else "L   (one example: the mean is L itself)"
    lines = [Text(""), Text(f"the objective, h = lay{n}", style="bold")]
    lines += _equation("J", objective, value, None, width)
    lines.append(Text(f"{INDENT}{loss}   ({y}: target (data))"))
    lines += _equation("∂J/∂h", grad, head.grad_h, _find(head.checks, "∂J/∂h"), width)
    lines.append(Text(f"{INDENT}∂h/∂lay{n} = 1   (h = lay{n}: the output of the last layer is the model's output)"))
    return lines


def _factor(grads: LayerGrads) -> tuple[str, str | None]:
    """act'(z_k) as the layer's own names write it, parenthesised as a factor; and the act's symbol."""
    layer = grads.layer
    k = layer.index
    act = ACTIVATIONS[layer.activation] if layer.activation else None
    if act is None:
        return "1", None
    prime = act[1].format(lay=f"lay{k}", z=f"z{k}")
    factor = f"({prime})" if " − " in re.sub(r"\([^()]*\)", "", prime) else prime  # (1 − lay1²)·x
    return factor, act[0]


def _forward_lines(grads: LayerGrads, names: _Names, width: int) -> list[Text]:
    """z_k = a·W_k + b_k and lay_k = act(z_k), both with their numbers."""
    layer = grads.layer
    k = layer.index
    affine = f"{names.input_of(grads)}·W{k}" + (f" + b{k}" if layer.bias is not None else "")
    _, symbol = _factor(grads)
    pre = names.trace.values[layer.pre]
    if symbol is None:
        return _equation(f"lay{k} = z{k}", affine, pre, None, width)
    return _equation(f"z{k}", affine, pre, None, width) + _equation(f"lay{k}", f"{symbol}(z{k})", grads.output, None, width)


def _tail_lines(grads: LayerGrads, names: _Names, width: int, product: str) -> list[Text]:
    """What both δ conventions share after ∂J/∂z_k: the weight's note, the bias and x's gradient."""
    layer = grads.layer
    k = layer.index
    lines = []
    if layer.transposed:
        lines.append(Text(f"{INDENT}  (torch stores W{k}ᵀ as {names.label(layer.weight)}: its gradient is this, transposed)",
                          style="dim"))
    if grads.grad_bias is not None:
        rows = f"Σ_rows {product}" if grads.delta.ndim > 1 else product
        lines += _equation(f"∂J/∂b{k}", rows, grads.grad_bias, _find(grads.checks, f"∂J/∂b{k}"), width)
    return lines


def _lecture_layer(backprop: Backprop, grads: LayerGrads, above: LayerGrads | None, names: _Names,
                   width: int) -> list[Text]:
    """Layer k with the slide's δk = ∂J/∂lay_k: δk = δ(k+1)·∂lay(k+1)/∂lay_k, ∂J/∂W_k = δk·∂lay_k/∂W_k."""
    layer = grads.layer
    k = layer.index
    a = names.input_of(grads)
    factor, symbol = _factor(grads)
    head = backprop.head if above is None else None
    if head is not None:
        source, check = f"∂J/∂h · ∂h/∂lay{k}", _find(head.checks, "∂J/∂h")
    elif grads.dropout is not None:
        drop = names.label(grads.dropout.node)
        source = f"∂J/∂{drop} ⊙ mask/(1−{grads.dropout.p:g})   (back through the dropout {drop})"
        check = _find(grads.checks, f"∂J/∂lay{k}")
    elif above is not None and not grads.upstream_from_trace:
        source, check = f"δ{k + 1}·∂lay{k + 1}/∂lay{k}   (from layer {k + 1})", _find(above.checks, f"∂J/∂lay{k}")
    else:
        source, check = f"the reverse pass's adjoint of {names.label(layer.output)}", None
    lines = _equation(f"δ{k} = ∂J/∂lay{k}", source, grads.upstream, check, width)
    product = f"(δ{k} ⊙ {factor})" if symbol else f"δ{k}"
    if symbol:
        formula = f"δ{k} ⊙ ∂lay{k}/∂z{k} = δ{k} ⊙ {factor}"
        closed = head.delta_form if head is not None else None
        lines += _equation(f"∂J/∂z{k}", formula + (f" = {closed}" if closed else ""),
                           grads.delta, _find(grads.checks, f"∂J/∂z{k}"), width)
        if closed:
            lines.append(Text(f"{INDENT}  {closed}: the slide's cancellation of σ′ against ∂L/∂h", style="dim"))
    lines += _equation(f"∂J/∂W{k}", f"δ{k}·∂lay{k}/∂W{k} = {a}ᵀ·{product}", grads.grad_weight,
                       _find(grads.checks, f"∂J/∂W{k}"), width)
    lines.append(Text(f"{INDENT}  per example, as on the slide: ∂lay{k}/∂W{k} = "
                      + (f"{factor}·{a}ᵀ" if symbol else f"{a}ᵀ"), style="dim"))
    lines += _tail_lines(grads, names, width, product)
    below = f"lay{k - 1}" if a == f"lay{k - 1}" else None
    if grads.chain is not None and below:
        note = " (first example)" if grads.output.ndim > 1 and grads.output.shape[0] > 1 else ""
        lines += _equation(f"∂lay{k}/∂{below}", (f"{factor}·" if symbol else "") + f"W{k}ᵀ{note}", grads.chain, None, width)
        lhs, formula = f"δ{k - 1} = ∂J/∂{below}", f"δ{k}·∂lay{k}/∂{below} = {product}·W{k}ᵀ   (passed down)"
    else:
        lhs, formula = f"∂J/∂{a}", f"{product}·W{k}ᵀ   (passed down)"
    lines += _equation(lhs, formula, grads.passed_down, _find(grads.checks, f"∂J/∂{'x' if k == 1 else f'lay{k - 1}'}"), width)
    return lines


def _pre_activation_layer(backprop: Backprop, grads: LayerGrads, last: bool, names: _Names, width: int) -> list[Text]:
    """Layer k with δk = ∂J/∂z_k: δk = (δ(k+1)·W(k+1)ᵀ) ⊙ act'(z_k), ∂J/∂W_k = aᵀ·δk."""
    layer = grads.layer
    k = layer.index
    a = names.input_of(grads)
    checks = grads.checks
    factor, symbol = _factor(grads)
    upstream = f"∂J/∂lay{k}"
    chained = not grads.upstream_from_trace and grads.dropout is None  # lay_k feeds layer k+1 directly
    if last and backprop.head is not None:
        upstream = f"∂J/∂h · ∂h/∂lay{k}"
    elif grads.dropout is not None:
        upstream = f"(∂J/∂{names.label(grads.dropout.node)} ⊙ mask/(1−{grads.dropout.p:g}))"
    elif chained:
        upstream = f"(δ{k + 1}·W{k + 1}ᵀ)"
    formula = f"{upstream} ⊙ {factor}" if symbol else upstream
    if last and backprop.head is not None and backprop.head.delta_form:
        formula += f" = {backprop.head.delta_form}"
    lines = _equation(f"δ{k} = ∂J/∂z{k}", formula, grads.delta, _find(checks, f"∂J/∂z{k}"), width)
    if last and backprop.head is not None and backprop.head.delta_form:
        closed = _find(backprop.head.checks, f"∂J/∂z{k} = {backprop.head.delta_form}")
        lines += _equation(f"  ∂J/∂h · {factor}", f"{backprop.head.delta_form}   (the slide's cancellation)",
                           None, closed, width)
    grad_w = f"{a}ᵀ·δ{k}"
    if not last and chained and symbol:
        grad_w += f" = {a}ᵀ·[(δ{k + 1}·W{k + 1}ᵀ) ⊙ {factor}]"
    lines += _equation(f"∂J/∂W{k}", grad_w, grads.grad_weight, _find(checks, f"∂J/∂W{k}"), width)
    if not last and chained and symbol:
        lines.append(Text(f"{INDENT}  the slide writes it {a}ᵀ·δ{k + 1}·W{k + 1}·{factor}", style="dim"))
    lines += _tail_lines(grads, names, width, f"δ{k}")
    lines += _equation(f"∂J/∂{a}", f"δ{k}·W{k}ᵀ   (passed down: ∂z{k}/∂{a} = W{k}ᵀ)", grads.passed_down,
                       _find(checks, f"∂J/∂{'x' if k == 1 else f'lay{k - 1}'}"), width)
    return lines


def layer_lines(backprop: Backprop, grads: LayerGrads, above: LayerGrads | None, names: _Names, width: int,
                delta: str = "lecture") -> list[Text]:
    """One layer: z_k and lay_k, δk, ∂J/∂W_k, ∂J/∂b_k and what it passes down (`above`: layer k+1)."""
    k = grads.layer.index
    last = above is None
    lines = [Text(""), Text(f"layer {k}" + (" (computed first: backprop runs from the last layer down)" if last else ""),
                            style="bold")]
    lines += _forward_lines(grads, names, width)
    if delta == "pre-activation":
        return lines + _pre_activation_layer(backprop, grads, last, names, width)
    return lines + _lecture_layer(backprop, grads, above, names, width)


def layers_report(trace: Trace, backprop: Backprop, width: int = 100, delta: str = "lecture") -> Group:
    """The whole layers view as one rich renderable, laid out for `width` columns; `delta`
    chooses which δ the chain is written with (DELTAS)."""
    message = no_layers_message(backprop)
    if message is not None:  # the callers refuse this first; a direct caller still gets the reason
        return Group(Text(f"backprop by layers: {message}", style="yellow"))
    names = _Names(trace, backprop)
    lines = layers_header(trace, backprop, names, width)
    lines.append(Text(f"{INDENT}{DELTA_MEANING[delta]}", style="dim"))
    lines += head_lines(trace, backprop, names, width)
    above = None
    for grads in backprop.layers:
        lines += layer_lines(backprop, grads, above, names, width, delta)
        above = grads
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


def terminal_theme(theme: str = "light"):
    """Rich's colours for an exported page: ink on white paper (light), or rich's own dark look."""
    from rich.terminal_theme import SVG_EXPORT_THEME, TerminalTheme

    if theme == "dark":
        return SVG_EXPORT_THEME
    ink = [(30, 30, 30), (170, 0, 0), (0, 120, 0), (140, 100, 0), (0, 60, 170), (140, 0, 140), (0, 110, 130),
           (90, 90, 90)]
    return TerminalTheme((255, 255, 255), (30, 30, 30), ink, ink)


def write_layers(trace: Trace, backprop: Backprop, path, width: int = 100, title: str = "gradviz layers",
                 delta: str = "lecture", theme: str = "light") -> None:
    """Write the layers view as a self-contained SVG or HTML page (light paper by default), or as plain text."""
    import io
    from pathlib import Path

    from rich.console import Console

    path = Path(path)
    # Recorded, not shown: the screen copy goes to a buffer that needs no closing.
    console = Console(record=True, width=width, file=io.StringIO(), color_system="truecolor")
    console.print(layers_report(trace, backprop, width, delta))
    from gradviz.files.write import write_atomic

    if path.suffix == ".svg":
        write_atomic(path, console.export_svg(title=title, theme=terminal_theme(theme)), shown=path)
    elif path.suffix == ".html":
        write_atomic(path, console.export_html(theme=terminal_theme(theme)), shown=path)
    else:
        write_atomic(path, console.export_text(), shown=path)
