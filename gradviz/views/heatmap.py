"""A tensor at a glance: a small text heatmap of a 2-D slice, and one line of statistics.

Shade (` ░▒▓█`) shows magnitude relative to the slice's largest |value|, colour shows
sign (red above zero, blue below); NaN and Inf are marked in bold. A boolean tensor (a
dropout mask) shows kept units as `██` and dropped ones as `··`.
"""

from __future__ import annotations

import numpy as np
from rich.console import Console, ConsoleOptions, RenderResult
from rich.text import Text

from gradviz.core.fmt import fmt_scalar, fmt_shape
from gradviz.core.stats import TensorStats, tensor_stats

SHADES = " ░▒▓█"


def leading_slice(array: np.ndarray) -> tuple[np.ndarray, str]:
    """The 2-D slice shown: the last two axes at index 0 of the others, and its description."""
    array = np.asarray(array)
    if array.ndim == 0:
        return array.reshape(1, 1), ""
    if array.ndim == 1:
        return array.reshape(1, -1), ""
    lead = array.ndim - 2
    where = "[" + ", ".join(["0"] * lead + [":", ":"]) + "]" if lead else ""
    return array[(0,) * lead], where


class Heatmap:
    """Up to max_rows × max_cols cells of a tensor's leading 2-D slice, with a caption."""

    def __init__(self, array: np.ndarray, max_rows: int = 8, max_cols: int = 24):
        self.array = np.asarray(array)
        self.max_rows = max_rows
        self.max_cols = max_cols
        self._drawn: dict[int, list[Text]] = {}  # rows per width: measuring and drawing ask twice

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        plane, where = leading_slice(self.array)
        cols = max(1, min(self.max_cols, plane.shape[1], (options.max_width - 2) // 2))
        shown = plane[: self.max_rows, :cols]
        if cols not in self._drawn:
            self._drawn[cols] = self._rows(shown) + [self._caption(plane, shown, where)]
        yield from (text.copy() for text in self._drawn[cols])

    def _rows(self, shown: np.ndarray) -> list[Text]:
        if shown.dtype == bool:
            return [Text("".join("██" if kept else "··" for kept in row)) for row in shown]
        values = shown.astype(np.float64)
        finite = values[np.isfinite(values)]
        scale = float(np.abs(finite).max()) if finite.size else 0.0
        rows = []
        for row in values:
            text = Text()
            for x in row:
                if np.isnan(x):
                    text.append("??", style="bold red")
                elif np.isinf(x):
                    text.append("∞∞" if x > 0 else "-∞", style="bold red")
                else:
                    level = 0 if scale == 0 else int(round((len(SHADES) - 1) * min(1.0, abs(x) / scale)))
                    text.append(SHADES[level] * 2, style="red" if x > 0 else "blue" if x < 0 else "")
            rows.append(text)
        return rows

    def _caption(self, plane: np.ndarray, shown: np.ndarray, where: str) -> Text:
        rows, cols = plane.shape
        part = f"rows 0–{shown.shape[0] - 1} of {rows}, cols 0–{shown.shape[1] - 1} of {cols}"
        if shown.shape == plane.shape:
            part = f"all {rows}×{cols}"
        if shown.dtype == bool:
            legend = "██ kept · dropped"
        else:
            finite = shown[np.isfinite(shown)].astype(np.float64)
            scale = float(np.abs(finite).max()) if finite.size else 0.0
            legend = f"█ = |{short(scale)}|, red > 0, blue < 0"
        return Text(f"{where + ' ' if where else ''}{part}; {legend}", style="dim")


def short(x: float) -> str:
    """Three significant digits in at most 7 characters: 0.0352, -47.7, 2.2e-7, nan."""
    if not np.isfinite(x):
        return fmt_scalar(x)
    if x == 0:
        return "0"
    if abs(x) < 1e-3 or abs(x) >= 1e4:
        mantissa, exponent = f"{x:.1e}".split("e")
        return f"{mantissa}e{int(exponent)}"
    return f"{x:.3g}"


def stats_line(value: np.ndarray | None, what: str = "value", stats: TensorStats | None = None) -> Text:
    """'value 8×64 float32: mean 0.12 std 0.5 min -1 max 2 ‖·‖ 9.1 zeros 12%' (+ NaN/Inf in
    red); `stats`: the value's, when already known."""
    if value is None:
        return Text(f"{what}: — (not differentiated)", style="dim")
    s = tensor_stats(value) if stats is None else stats
    line = Text(f"{what} {fmt_shape(s.shape)} {s.dtype}: mean {short(s.mean)} std {short(s.std)} "
                f"min {short(s.min)} max {short(s.max)} ‖·‖ {short(s.norm)} zeros {s.zero_fraction:.0%}")
    if not s.finite:
        line.append(f"  NaN {s.nan_count} Inf {s.inf_count}", style="bold red")
    return line
