"""`gradviz methods` as text: the three derivatives side by side, the error curve, the swell."""

from __future__ import annotations

import math

from rich.console import Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from gradviz.methods.compare import Comparison
from gradviz.methods.numeric import EPS, FORMULAS, SLOPES, THEORY, Sweep
from gradviz.methods.symbolic import MAX_TREE
from gradviz.views.whole_columns import WholeColumns

MARKS = {"forward": "f", "central": "c"}
STYLES = {"forward": "yellow", "central": "cyan"}


def _num(x: float) -> str:
    return "nan" if math.isnan(x) else f"{x:.12g}"


def _err(x: float) -> str:
    return "nan" if math.isnan(x) else ("0" if x == 0 else f"{x:.1e}")


def _h(h: float) -> str:
    return f"1e{round(math.log10(h)):d}"


def side_by_side(c: Comparison) -> Table:
    """One row per method: its derivative for every input and its error against AD."""
    table = Table(title="the three derivatives side by side", title_justify="left", box=None, pad_edge=False)
    table.add_column("method", no_wrap=True)
    for name in c.point:
        table.add_column(f"∂{c.output}/∂{name}", justify="right")
    table.add_column("error vs AD", justify="right", no_wrap=True)
    table.add_column("how")
    names = list(c.point)
    worse: list[str] = []  # per method: the partial whose error the column shows
    for index, method in enumerate(("forward", "central")):
        sweeps = [c.sweeps[name][index] for name in names]
        steps = sorted({_h(s.best_step) for s in sweeps})
        errors = [s.best_error for s in sweeps]
        worse.append(f"{method} ∂{c.output}/∂{names[_largest(errors)]}")
        table.add_row(f"{method} differences", *(_num(s.estimates[s.best]) for s in sweeps), _err(max(errors)),
                      f"best h {', '.join(steps)}")
    if c.symbolic is not None:
        errors = [abs(c.symbolic.values[n] - c.ad[n]) / (abs(c.ad[n]) or 1.0) for n in names]
        worse.append(f"symbolic ∂{c.output}/∂{names[_largest(errors)]}" if max(errors) > 0 else "symbolic exact")
        sizes = ", ".join(str(c.symbolic.sizes[n]) for n in names)
        table.add_row("symbolic (SymPy)", *(_num(c.symbolic.values[n]) for n in names), _err(max(errors)),
                      f"{sizes} ops")
    else:
        table.add_row("symbolic (SymPy)", *("—" for _ in c.point), "—", "stopped: see below")
    ad_note = "1 reverse pass"
    table.add_row("automatic (AD)", *(_num(c.ad[n]) for n in c.point), "reference", ad_note)
    if len(names) > 1:  # one column for several partials: say whose error it is
        table.caption = Text(f"error vs AD: the larger relative error of the {len(names)} partials, here "
                             + ", ".join(worse), style="dim")
        table.caption_justify = "left"
    return table


def _largest(errors: list[float]) -> int:
    """The index of the largest error (a NaN, an overflowed step, counts as largest)."""
    return max(range(len(errors)), key=lambda i: (math.isnan(errors[i]), errors[i]))


def error_plot(forward: Sweep, central: Sweep, width: int = 72, height: int = 12) -> list[Text]:
    """Error against h on log-log axes (h grows to the right), best h and the two regions marked."""
    steps = list(reversed(forward.steps))  # 1e-15 … 1e-1, left to right
    # A step whose f(x ± h) overflowed has a NaN/Inf error: it has no place on the axis, skip it.
    logs = {m: [math.log10(max(e, 1e-17)) if math.isfinite(e) else None for e in reversed(s.errors)]
            for m, s in (("forward", forward), ("central", central))}
    finite = [v for values in logs.values() for v in values if v is not None] or [0.0]
    top = math.ceil(max(finite))
    bottom = math.floor(min(finite))
    top = max(top, bottom + 1)
    label_width = 7
    plot_width = max(len(steps) * 2, width - label_width - 4)  # room for half a tick label at the right
    spacing = (plot_width - 1) / (len(steps) - 1)
    columns = [round(i * spacing) for i in range(len(steps))]
    grid = [[" "] * plot_width for _ in range(height)]
    colours: dict[tuple[int, int], str] = {}
    for method in ("forward", "central"):
        for col, value in zip(columns, logs[method]):
            if value is None:
                continue
            row = round((top - value) / (top - bottom) * (height - 1))
            mark = MARKS[method]
            grid[row][col] = "*" if grid[row][col] not in (" ", mark) else mark
            colours[(row, col)] = STYLES[method] if grid[row][col] == mark else "bold"
    lines = [Text("relative error vs AD over the step h, log-log:  f forward  c central  * both", style="bold")]
    for r in range(height):
        value = top - r * (top - bottom) / (height - 1)
        label = f"1e{round(value):d}" if r in (0, height - 1) or r == (height - 1) // 2 else ""
        line = Text(f"{label:>{label_width}}┤")
        for col, ch in enumerate(grid[r]):
            line.append(ch, style=colours.get((r, col), ""))
        lines.append(line)
    axis = [" "] * plot_width
    for col in columns:
        axis[col] = "┬"
    lines.append(Text(" " * label_width + "└" + "".join(axis).replace(" ", "─") + " h"))
    ticks = [" "] * (plot_width + 6)
    for i, col in enumerate(columns):
        if i % 2 == 0:
            text = _h(steps[i])
            start = max(0, col - len(text) // 2)
            ticks[start:start + len(text)] = list(text)
    lines.append(Text(" " * (label_width + 1) + "".join(ticks).rstrip()))
    for sweep in (forward, central):
        lines.append(_region_line(sweep, columns, plot_width, label_width))
    return lines


def _region_line(sweep: Sweep, columns: list[int], plot_width: int, label_width: int) -> Text:
    """`◀ rounding ∝ ε/h ┼ truncation ∝ h ▶` with ┼ under the best h."""
    best_col = columns[len(sweep.steps) - 1 - sweep.best]
    left = f" rounding ∝ ε/h "
    right = f" truncation ∝ {SLOPES[sweep.method]} "
    row = ["─"] * plot_width
    row[best_col] = "┼"
    for text, centre in ((left, best_col // 2), (right, (best_col + plot_width) // 2)):
        start = max(0, min(plot_width - len(text), centre - len(text) // 2))
        if start < best_col < start + len(text):
            continue  # no room on this side
        row[start:start + len(text)] = list(text)
    line = Text(f"{sweep.method[:7]:>{label_width}} ", style=STYLES[sweep.method])
    line.append("".join(row), style=STYLES[sweep.method])
    return line


def sweep_table(forward: Sweep, central: Sweep) -> Table:
    """Every step h with both estimates and errors, the best ones marked."""
    table = Table(box=None, pad_edge=False)
    for name in ("h", "forward", "error", "central", "error", "region (forward / central)"):
        table.add_column(name, justify="right" if name != "region (forward / central)" else "left")
    for i, h in enumerate(forward.steps):
        marks = [("◀ best" if s.best == i else "") for s in (forward, central)]
        table.add_row(_h(h), _num(forward.estimates[i]), _err(forward.errors[i]) + (" ◀" if marks[0] else ""),
                      _num(central.estimates[i]), _err(central.errors[i]) + (" ◀" if marks[1] else ""),
                      f"{forward.region(i)} / {central.region(i)}")
    return table


FORM_LINES = 3  # a closed form longer than this many lines is cut: its size is the point, not its text


def _form(prefix: str, expr: object, ops: int, width: int) -> Padding:
    """`prefix expr   (N ops)`, indented, the expression cut with … to about FORM_LINES lines of `width`."""
    text = str(expr)
    room = max(40, FORM_LINES * width - len(prefix) - 24)
    if len(text) > room:
        text = text[:room].rstrip() + " …"
    return indented(Text(f"{prefix}{text}   ({ops:,} ops)"))


def indented(text: Text, by: int = 2) -> Padding:
    """A line of a list, every one of its wrapped lines `by` columns in (a Text's own leading
    spaces indent only its first line)."""
    return Padding(text, (0, 0, 0, by))


def symbolic_lines(c: Comparison, width: int = 100) -> list[RenderableType]:
    """SymPy's closed forms and sizes, or where and why symbolic differentiation stopped."""
    lines = [Text(""), Text("symbolic differentiation (SymPy): exact closed forms", style="bold")]
    if c.symbolic is None:
        lines.append(Text(c.stop or "stopped", style="yellow"))
        lines.append(Text("finite differences and AD only need f's value at the point, so they go on", style="dim"))
        return lines
    s = c.symbolic
    lines.append(_form(f"{c.output} = ", s.expr, s.size_f, width))
    for name in c.point:
        lines.append(_form(f"∂{c.output}/∂{name} = ", s.derivatives[name], s.sizes[name], width))
    return lines


def swell_table(c: Comparison) -> Table | None:
    """Expression swell: the closed form's size for a chain of growing depth, beside AD's graph."""
    if not c.swell:
        return None
    table = Table(box=None, pad_edge=False)
    for name in ("depth k", f"SymPy's ∂/∂{c.wrt} (ops)", "AD's graph (nodes)", "ratio"):
        table.add_column(name, justify="right")
    for row in c.swell:
        table.add_row(str(row.depth), f"{row.symbolic_ops:,}", f"{row.ad_nodes:,}",
                      f"{row.symbolic_ops / row.ad_nodes:,.0f}×")
    return table


def methods_report(c: Comparison, width: int = 100, full: bool = False) -> Group:
    """The whole `gradviz methods` output for `width` columns."""
    point = ", ".join(f"{k} = {v:g}" for k, v in c.point.items())
    what = c.source if "=" in c.source else f"{c.output} = {c.source}"  # statements name their output
    parts: list = [Text(f"three ways to differentiate {what}", style="bold"),
                   Text(f"at {point}", style="bold"), Text("")]
    parts.append(WholeColumns(side_by_side(c)))  # never a number cut to `…` at a narrow width
    forward, central = c.sweeps[c.wrt]
    parts += [Text(""), Text(f"numerical differentiation of ∂{c.output}/∂{c.wrt}: forward {FORMULAS['forward']}, "
                             f"central {FORMULAS['central']}", style="bold")]
    parts += error_plot(forward, central, width=min(width, 100))
    parts.append(Text(f"theory (ε = {EPS:.1e}): forward best near √ε ≈ {THEORY['forward']:.0e} with error ≈ √ε, "
                      f"central near ∛ε ≈ {THEORY['central']:.0e} with error ≈ ε^⅔ ≈ {EPS ** (2 / 3):.0e}; "
                      f"measured: forward {_err(forward.best_error)} at h = {_h(forward.best_step)}, "
                      f"central {_err(central.best_error)} at h = {_h(central.best_step)}", style="dim"))
    if full:
        parts.append(sweep_table(forward, central))
    parts += symbolic_lines(c, width)
    table = swell_table(c)
    if table is not None:
        parts += [Text(""), Text(f"expression swell: {c.output} composed k times through {c.wrt} "
                                 f"(the loop `for _ in range(k): {c.wrt} = {c.output}(…)` unrolled)", style="bold"),
                  table]
        if len(c.swell) < c.depth:
            parts.append(Text(f"deeper chains skipped: their closed forms grow past what SymPy does in seconds "
                              f"(more than {MAX_TREE:,} operations written out, or the time budget)", style="dim"))
    parts += [Text(""), Text("automatic differentiation", style="bold"),
              indented(Text(f"reverse mode: one backward pass over {c.ad_nodes} nodes gives every ∂{c.output}/∂· as a "
                            "number at this point: " + ", ".join(f"∂{c.output}/∂{n} = {_num(v)}"
                                                                 for n, v in c.ad.items())))]
    return Group(*parts)
