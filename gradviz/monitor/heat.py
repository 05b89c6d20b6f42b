"""A heatmap of per-layer gradient norms over steps (log colour scale) and the mask grid.

Pure rich: the Textual widgets wrap these, and tests render them with a plain Console.
"""

from __future__ import annotations

import math
from typing import Any

from rich.color import Color
from rich.style import Style
from rich.text import Text

from gradviz.monitor.plot import sample_indices, styled_runs

# A dark-blue → teal → yellow ramp (viridis-like), readable on dark and light themes.
_RAMP = [(68, 1, 84), (59, 82, 139), (33, 145, 140), (94, 201, 98), (253, 231, 37)]
LABEL_WIDTH = 14
VALUE_WIDTH = 8


def ramp_color(t: float) -> Color:
    """Colour at t in [0, 1] along the ramp."""
    t = min(1.0, max(0.0, t)) * (len(_RAMP) - 1)
    i = min(int(t), len(_RAMP) - 2)
    f = t - i
    a, b = _RAMP[i], _RAMP[i + 1]
    return Color.from_rgb(*(round(a[k] + (b[k] - a[k]) * f) for k in range(3)))


def ramp_style(t: float, levels: int = 24) -> str:
    """A colour style for t in [0, 1], quantised so neighbouring cells share spans."""
    q = round(min(1.0, max(0.0, t)) * (levels - 1)) / (levels - 1)
    return ramp_color(q).triplet.hex


def render_heatmap(layers: list[str], columns: dict[str, list[float]], upto: int, width: int, height: int,
                   selected: int = 0, fmt: Any = str) -> list[Text]:
    """Rows of layer × step cells coloured by log10 of the norm, with the value at `upto`.

    `columns[layer]` holds one norm per logged step; cells sample them evenly up to and
    including index `upto`, so the cost is bounded by the widget's size.
    """
    label_width = min(LABEL_WIDTH, max((len(name) for name in layers), default=1) + 1)
    cells = max(1, width - label_width - VALUE_WIDTH - 1)
    idx = sample_indices(upto + 1, cells)
    lo, hi = log_range(layers, columns, idx)
    span = (hi - lo) or 1.0
    # Taller rows when there is room; keep the selected layer visible when there is not.
    per_layer = max(1, min(3, height // max(1, len(layers))))
    shown = max(1, height // per_layer)
    first = min(max(0, selected - shown // 2), max(0, len(layers) - shown))
    rows = []
    for k in range(first, min(len(layers), first + shown)):
        layer = layers[k]
        values = columns.get(layer, [])
        chars, styles = [], []
        for i in idx:
            v = values[i] if i < len(values) else math.nan
            if not math.isfinite(v):
                chars.append("×")
                styles.append("bold red")
            elif v <= 0:
                chars.append(" ")
                styles.append("")
            else:
                chars.append("█")
                styles.append(ramp_style((math.log10(v) - lo) / span))
        cells_text = styled_runs(chars, styles)
        latest = values[upto] if upto < len(values) else math.nan
        label = layer if len(layer) <= label_width - 1 else "…" + layer[-(label_width - 2):]
        label_style = "reverse bold" if k == selected else ""
        for line in range(per_layer):
            text = Text((label if line == 0 else "").ljust(label_width), style=label_style if line == 0 else "")
            text.append_text(cells_text)
            if line == 0:
                text.append(" " + fmt(latest).rjust(VALUE_WIDTH), style="bold red" if not math.isfinite(latest) else "")
            rows.append(text)
    return rows


def log_range(layers: list[str], columns: dict[str, list[float]], idx: list[int]) -> tuple[float, float]:
    """Smallest and largest log10 of the positive, finite norms shown."""
    logs = []
    for layer in layers:
        values = columns.get(layer, [])
        for i in idx:
            if i < len(values) and 0 < values[i] < math.inf:
                logs.append(math.log10(values[i]))
    return (min(logs), max(logs)) if logs else (0.0, 1.0)


def heat_legend(lo: float, hi: float, fmt: Any = str) -> Text:
    """The colour ramp with its end values."""
    text = Text(fmt(lo) + " ", style="dim")
    for k in range(12):
        text.append("█", style=Style(color=ramp_color(k / 11)))
    return text.append(" " + fmt(hi), style="dim")


def render_mask(name: str, layer: dict[str, Any], width: int, max_rows: int) -> list[Text]:
    """One dropout layer: a title with the observed rate against p, then kept/dropped cells."""
    kept = layer.get("kept", "")
    p = layer.get("p")
    rate = layer.get("keep_rate")
    title = Text(name, style="bold")
    if isinstance(p, (int, float)):
        title.append(f" p={p:.2f}")
    ran = isinstance(rate, (int, float)) and math.isfinite(rate)
    # The long form where it fits, else a short one: a title is never cut.
    if ran and title.cell_len + len(f" dropped {1 - rate:.1%}") <= width:
        title.append(f" dropped {1 - rate:.1%}")
    elif ran:
        title.append(f" {1 - rate:.0%} off")
    elif title.cell_len + 27 <= width:
        title.append(" (not run in training mode)", style="dim")
    else:
        title.append(" (not run)", style="dim")
    shape = layer.get("shape") or []
    here = f" · here {kept.count('0')}/{len(kept)}"
    if kept and title.cell_len + len(here) <= width:
        title.append(here, style="dim")
    rows = [title]
    if not kept:
        return rows
    # Rows follow the mask's last dimension when it fits (attention: one row per query),
    # else the largest power of two that fits, so 64 units read as 2 rows of 32.
    if shape and 0 < shape[-1] <= width:
        per_row = shape[-1]
    else:
        per_row = 1 << max(0, int(width).bit_length() - 1)
    for start in range(0, len(kept), per_row):
        if len(rows) > max_rows:
            # Out of rows: keep the grid rows shown (a short panel still shows a mask) and say
            # how many units they cover, where that fits whole.
            shown = f" (first {start} of {len(kept)})"
            if rows[0].cell_len + len(shown) <= width:
                rows[0].append(shown, style="dim")
            break
        bits = kept[start:start + per_row]
        row = styled_runs(["█" if b == "1" else "·" for b in bits], ["green" if b == "1" else "bold red" for b in bits])
        rows.append(row)
    return rows


def axis_number(value: float, fmt: Any, width: int) -> str:
    """`fmt(value)` if it fits `width` cells, else the same number in shorter e-notation,
    whole (never '-1.00e-0' for -1.00e-05)."""
    for text in (fmt(value), f"{value:.1e}", f"{value:.0e}"):
        if len(text) <= width:
            return text
    return ""


def render_distribution(frames: list[list[int]], edges: list[float], upto: int, width: int, height: int,
                        fmt: Any = str) -> list[Text]:
    """One layer's gradient-value histograms over time: columns are logged steps (sampled
    up to `upto`), rows are value bins (positive at the top), colour is log(1 + count)."""
    bins = len(edges) - 1
    rows_n = max(1, min(height, bins))
    label_width = 9
    cells = max(1, width - label_width)
    idx = sample_indices(min(upto + 1, len(frames)), cells)
    # Adjacent bins merge into one row when the panel is shorter than the bin count.
    groups = [(bins * r // rows_n, bins * (r + 1) // rows_n) for r in range(rows_n)]
    top = max((math.log1p(sum(frames[i][a:b])) for i in idx for a, b in groups), default=1.0) or 1.0
    rows = []
    previous = None
    for a, b in reversed(groups):
        low, high = edges[a], edges[b]
        mid = high if low < 0 else low  # the magnitude nearest zero names the row
        name = axis_number(mid, fmt, label_width - 1)
        # a name the row above already gave says nothing new: a blank, not a repeat
        label = Text(("" if name == previous else name).rjust(label_width - 1) + " ", style="dim")
        previous = name
        chars, styles = [], []
        for i in idx:
            count = sum(frames[i][a:b])
            chars.append("█" if count else " ")
            styles.append(ramp_style(math.log1p(count) / top) if count else "")
        rows.append(label + styled_runs(chars, styles))
    return rows
