"""A surface as terminal cells (rich Text): half-blocks or shade characters, axes, legend, tracks."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from rich.style import Style
from rich.text import Text

from gradviz.descent.scale import PATH_COLOURS, PATH_MARKERS, ColourScale, colour, shade
from gradviz.descent.surface import Surface, Track
from gradviz.textfit import fit_words

LABEL_WIDTH = 9  # y tick labels plus the axis line


def short(x: float) -> str:
    """A tick or legend number in at most ~7 characters."""
    return f"{x:.3g}"


def _rgb(c: tuple[int, int, int]) -> str:
    return f"rgb({c[0]},{c[1]},{c[2]})"


def track_cells(track: Track, surface: Surface, cols: int, rows: int) -> dict[tuple[int, int], str]:
    """Which cells a track covers and with what glyph: '·' between steps, '•' at steps,
    '○' at the start and the track's marker at its end (later glyphs win)."""
    window = surface.window
    cells: dict[tuple[int, int], str] = {}
    points = [p for p in track.points]
    for a, b in zip(points, points[1:]):
        ca, cb = window.cell(a, cols * 4, rows * 4), window.cell(b, cols * 4, rows * 4)
        if ca is None or cb is None:
            continue
        n = max(abs(cb[0] - ca[0]), abs(cb[1] - ca[1]), 1)
        for s in range(1, n):
            p = a + (b - a) * s / n
            cell = window.cell(p, cols, rows)
            if cell is not None:
                cells.setdefault(cell, "·")
    for p in points:
        cell = window.cell(p, cols, rows)
        if cell is not None:
            cells[cell] = "•"
    return cells


def render_map(surface: Surface, tracks: Sequence[Track], width: int, height: int, *, cells: str = "half",
               title: str = "", scale: ColourScale | None = None) -> Text:
    """The map with its axes, colour legend and track legend, fitting width × height cells."""
    cols = max(10, width - LABEL_WIDTH - 1)
    rows = max(4, height - (1 if title else 0) - 3 - len(tracks))
    pixel_rows = rows * 2 if cells == "half" else rows
    grid = surface.sample(cols, pixel_rows)
    scale = scale or ColourScale.fit(surface.values)
    t = scale.position(grid)
    overlay: dict[tuple[int, int], tuple[str, int]] = {}
    for i, track in enumerate(tracks):
        for cell, glyph in track_cells(track, surface, cols, rows).items():
            if glyph != "·" or cell not in overlay:
                overlay[cell] = (glyph, i)
        ends = [(0, "○"), (len(track.points) - 1, PATH_MARKERS[i % len(PATH_MARKERS)])]
        for index, glyph in ends:
            cell = surface.window.cell(track.points[index], cols, rows) if len(track.points) else None
            if cell is not None:
                overlay[cell] = (glyph, i)

    out = Text(no_wrap=True, overflow="crop")
    if title:
        out.append(title[:width] + "\n", style="bold")
    w = surface.window
    for r in range(rows):
        label = _y_label(surface, r, rows)
        out.append(label, style="dim")
        ticked = label.strip() and r in (0, rows // 2, rows - 1)
        out.append("┤" if ticked else "│", style="dim")  # a tick where a number labels the row
        for c in range(cols):
            if cells == "half":
                top, bottom = colour(t[2 * r, c]), colour(t[2 * r + 1, c])
                mark = overlay.get((c, r))
                if mark is None:
                    out.append("▀", style=Style(color=_rgb(top), bgcolor=_rgb(bottom)))
                else:
                    mid = tuple((a + b) // 2 for a, b in zip(top, bottom))
                    out.append(mark[0], style=Style(color=_rgb(PATH_COLOURS[mark[1] % len(PATH_COLOURS)]),
                                                    bgcolor=_rgb(mid), bold=True))  # type: ignore[arg-type]
            else:
                mark = overlay.get((c, r))
                if mark is None:
                    out.append(shade(t[r, c]), style=Style(color=_rgb(colour(t[r, c]))))
                else:
                    out.append(mark[0], style=Style(color=_rgb(PATH_COLOURS[mark[1] % len(PATH_COLOURS)]), bold=True))
        out.append("\n")
    out.append(" " * (LABEL_WIDTH - 1) + "└" + "─" * cols + "\n", style="dim")
    out.append(_x_labels(w.x0, w.x1, cols, surface.xlabel) + "\n", style="dim")
    out.append_text(_legend(scale, surface.zlabel, width, cells))
    if not np.all(np.isfinite(grid)):
        out.append("  ?: not finite" if cells == "shade" else "  grey: not finite", style="dim")
    for i, track in enumerate(tracks):
        out.append("\n")
        marker = PATH_MARKERS[i % len(PATH_MARKERS)]
        out.append(f"{marker} ", style=Style(color=_rgb(PATH_COLOURS[i % len(PATH_COLOURS)]), bold=True))
        out.append(legend_entry(track.label, track.note, width - 2))
    return out


def legend_entry(label: str, verdict: str, width: int) -> str:
    """A path's legend line in `width` cells, shortened by one declared rule: the optimizer,
    η and the verdict's number stay; '(oscillating)' becomes '(osc.)', then goes, then the
    verdict's words shorten ('converged at step 110' → 'conv. 110', 'diverged at step' →
    'div.', 'still moving after 200 steps' → 'moving at 200')."""
    short = verdict.replace("(oscillating)", "(osc.)")
    plain = short.replace(" (osc.)", "")
    shorter = (plain.replace("converged at step ", "conv. ").replace("diverged at step ", "div. ")
               .replace("still moving after ", "moving at ").replace(" steps", ""))
    forms = [f"{label}  {v}" for v in (short, plain, shorter)]
    return fit_words(f"{label}  {verdict}", width, forms)


def _y_label(surface: Surface, r: int, rows: int) -> str:
    """Row r's tick label: the ends' numbers, and the middle's with the axis name; where the
    name and number do not fit LABEL_WIDTH - 1 cells the name takes the row above, shortened
    to its first word if need be (`PC2 (24%)` → `PC2`), never cut inside a word or number."""
    w, room = surface.window, LABEL_WIDTH - 1
    middle = short((w.y0 + w.y1) / 2)
    together = f"{surface.ylabel} {middle}"
    if r == 0:
        text = short(w.y1)
    elif r == rows - 1:
        text = short(w.y0)
    elif r == rows // 2:
        text = together if len(together) <= room else middle
    elif r == rows // 2 - 1 and len(together) > room and r > 0:
        text = fit_words(surface.ylabel, room - 1, [surface.ylabel.split(" ")[0]]) + " "  # not against the axis
    else:
        text = ""
    return text.rjust(room) if len(text) <= room else ""


def _x_labels(x0: float, x1: float, cols: int, name: str) -> str:
    """The x axis's numbers at its ends and its middle (with the axis name); a label that
    would run into another is left out (the middle first), never overwritten."""
    left, mid, right = short(x0), f"{short((x0 + x1) / 2)} {name}", short(x1)
    line = [" "] * (LABEL_WIDTH + cols)
    placed: list[tuple[int, int]] = []
    for text, at in ((left, LABEL_WIDTH), (right, LABEL_WIDTH + cols - len(right)),
                     (mid, LABEL_WIDTH + cols // 2 - len(mid) // 2)):
        span = (at - 1, at + len(text) + 1)  # a blank column either side
        if at < 0 or at + len(text) > len(line) or any(a < span[1] and span[0] < b for a, b in placed):
            continue
        placed.append((at, at + len(text)))
        for i, ch in enumerate(text):
            line[at + i] = ch
    return "".join(line)


def _legend(scale: ColourScale, name: str, width: int, cells: str) -> Text:
    """'f  0.0012 ▇▇▇…▇ 312.4  (log scale)': the colour bar with its end values."""
    lo, hi = short(scale.vmin), short(scale.vmax)
    note = " log scale" if scale.log else ""
    bar_len = max(8, min(40, width - len(lo) - len(hi) - len(name) - len(note) - 6))
    text = Text()
    text.append(f"{name} {lo} ", style="dim")
    for i in range(bar_len):
        t = (i + 0.5) / bar_len
        glyph = "█" if cells == "half" else shade(t)
        text.append(glyph, style=Style(color=_rgb(colour(t))))
    text.append(f" {hi}{note}", style="dim")
    return text
