"""Line plots drawn with braille characters (2×4 dots per cell), as rich Text.

Rendering cost is bounded by the plot's size, not by the run's length: each series is
sampled at a few points per dot column before drawing.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from rich.text import Text

# Bit of each dot in a braille cell, indexed [row][column] (Unicode's dot numbering).
_DOTS = ((0x01, 0x08), (0x02, 0x10), (0x04, 0x20), (0x40, 0x80))
AXIS_WIDTH = 9  # characters for the y labels left of the plot


@dataclass(frozen=True)
class Line:
    """One series: its name for the legend, x and y values, a colour, points drawn as dots."""

    name: str
    xs: list[float]
    ys: list[float]
    color: str
    markers: bool = False


class BrailleCanvas:
    """A grid of braille cells addressed in dots: (0, 0) is the top-left dot."""

    def __init__(self, cells_wide: int, cells_high: int):
        self.cells_wide, self.cells_high = cells_wide, cells_high
        self.width, self.height = 2 * cells_wide, 4 * cells_high
        self._bits = [[0] * cells_wide for _ in range(cells_high)]
        self._colors: list[list[str | None]] = [[None] * cells_wide for _ in range(cells_high)]

    def dot(self, x: int, y: int, color: str) -> None:
        """Set one dot; dots outside the canvas are ignored."""
        if 0 <= x < self.width and 0 <= y < self.height:
            row, col = y // 4, x // 2
            self._bits[row][col] |= _DOTS[y % 4][x % 2]
            self._colors[row][col] = color

    def line(self, x0: int, y0: int, x1: int, y1: int, color: str) -> None:
        """Draw a straight line between two dots (Bresenham)."""
        dx, dy = abs(x1 - x0), -abs(y1 - y0)
        sx, sy = (1 if x0 < x1 else -1), (1 if y0 < y1 else -1)
        err = dx + dy
        while True:
            self.dot(x0, y0, color)
            if x0 == x1 and y0 == y1:
                return
            e2 = 2 * err
            if e2 >= dy:
                err += dy
                x0 += sx
            if e2 <= dx:
                err += dx
                y0 += sy

    def rows(self, cursor_col: int | None = None) -> list[Text]:
        """The canvas as one Text per row; cursor_col gets a faint vertical mark."""
        out = []
        for bits, colors in zip(self._bits, self._colors):
            chars = [chr(0x2800 + b) for b in bits]
            styles = [color or "" for color in colors]
            if cursor_col is not None and 0 <= cursor_col < len(chars):
                if bits[cursor_col] == 0:
                    chars[cursor_col] = "│"
                styles[cursor_col] = f"{colors[cursor_col] or 'yellow'} on grey23"
            out.append(styled_runs(chars, styles))
        return out


def styled_runs(chars: list[str], styles: list[str]) -> Text:
    """Text from per-cell characters and styles, one span per run of equal style (fast to render)."""
    text = Text()
    start = 0
    for i in range(1, len(chars) + 1):
        if i == len(chars) or styles[i] != styles[start]:
            text.append("".join(chars[start:i]), style=styles[start])
            start = i
    return text


def sample_indices(n: int, at_most: int) -> list[int]:
    """At most `at_most` evenly spaced indices of n items, always with the last one."""
    if n <= at_most:
        return list(range(n))
    step = (n - 1) / (at_most - 1)
    return [round(i * step) for i in range(at_most)]


def render_plot(lines: list[Line], width: int, height: int, log: bool = False, x_range: tuple[float, float] | None = None,
                cursor_x: float | None = None, empty: str = "waiting for data…") -> list[Text]:
    """A plot of the lines with y labels on the left and x labels below: height rows of Text."""
    plot_w, plot_h = max(1, width - AXIS_WIDTH), max(1, height - 1)
    transform = (lambda v: math.log10(v) if v > 0 else math.nan) if log else (lambda v: v)
    sampled = []
    for line in lines:
        idx = sample_indices(len(line.xs), 2 * plot_w)  # one point per dot column
        pts = [(line.xs[i], transform(line.ys[i])) for i in idx]
        sampled.append((line, [(x, y) for x, y in pts if math.isfinite(y)]))
    xs = [x for _, pts in sampled for x, _ in pts]
    ys = [y for _, pts in sampled for _, y in pts]
    if not ys:
        return [Text(empty, style="dim")] + [Text("")] * (height - 1)
    x_lo, x_hi = x_range if x_range else (min(xs), max(xs))
    y_lo, y_hi = min(ys), max(ys)
    if y_hi - y_lo < 1e-12:
        y_lo, y_hi = y_lo - 0.5 * (abs(y_lo) or 1), y_hi + 0.5 * (abs(y_hi) or 1)
    x_span = (x_hi - x_lo) or 1.0
    canvas = BrailleCanvas(plot_w, plot_h)

    def to_dot(x: float, y: float) -> tuple[int, int]:
        px = round((x - x_lo) / x_span * (canvas.width - 1))
        py = round((y_hi - y) / (y_hi - y_lo) * (canvas.height - 1))
        return px, py

    for line, pts in sampled:
        dots = [to_dot(x, y) for x, y in pts]
        if line.markers or len(dots) == 1:
            for px, py in dots:
                canvas.dot(px, py, line.color)
        for (ax, ay), (bx, by) in zip(dots, dots[1:]):
            canvas.line(ax, ay, bx, by, line.color)
    cursor_col = None
    if cursor_x is not None:
        cursor_col = to_dot(cursor_x, y_lo)[0] // 2
    labels = _y_labels(y_lo, y_hi, plot_h, log)
    rows = []
    for label, row in zip(labels, canvas.rows(cursor_col)):
        rows.append(Text(label.rjust(AXIS_WIDTH - 1)[: AXIS_WIDTH - 1] + "┤", style="dim") + row)
    left, right = _fmt(x_lo), _fmt(x_hi)
    axis = " " * AXIS_WIDTH + left + right.rjust(max(1, plot_w - len(left)))
    rows.append(Text(axis, style="dim"))
    return rows


def legend(lines: list[Line], log: bool, values: dict[str, str] | None = None, width: int | None = None) -> Text:
    """Coloured series names with their values at the cursor, and the scale (where it fits in width)."""
    values = values or {}
    text = Text()
    for line in lines:
        text.append("━ ", style=line.color).append(line.name)
        if line.name in values:
            text.append(" " + values[line.name], style="bold")
        text.append("  ")
    scale = "log" if log else "linear"
    if width is None or text.cell_len + len(scale) <= width:
        text.append(scale, style="dim")
    return text


def _y_labels(lo: float, hi: float, rows: int, log: bool) -> list[str]:
    """Labels at the top, middle and bottom rows; blank elsewhere."""
    labels = [""] * rows
    show = (lambda v: _fmt(10 ** v)) if log else _fmt
    labels[0] = show(hi)
    labels[-1] = show(lo)
    if rows >= 5:
        labels[rows // 2] = show((hi + lo) / 2)
    return labels


def _fmt(value: float) -> str:
    """A short number for an axis label."""
    if value == 0:
        return "0"
    if abs(value) >= 1e4 or abs(value) < 1e-2:
        return f"{value:.1e}"
    if float(value).is_integer():
        return str(int(value))
    return f"{value:.3g}"
