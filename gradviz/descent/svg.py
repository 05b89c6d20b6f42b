"""A surface as a self-contained SVG: the shaded grid, axes with ticks, colour bar, tracks."""

from __future__ import annotations

from html import escape
from xml.etree import ElementTree as ET
from pathlib import Path
from typing import Sequence

import numpy as np

from gradviz.descent.scale import PATH_COLOURS, ColourScale, colour, hex_colour
from gradviz.descent.surface import Surface, Track
from gradviz.errors import ExportError

PLOT = 480  # plot area side in px
LEFT, TOP, RIGHT_PAD = 70, 40, 130


def _ticks(lo: float, hi: float, n: int = 5) -> list[float]:
    return [lo + (hi - lo) * i / (n - 1) for i in range(n)]


def map_svg(surface: Surface, tracks: Sequence[Track], title: str = "", scale: ColourScale | None = None,
            panel: str = "plot") -> str:
    """The SVG text of a map with its tracks and legends (`panel` names its clip path, unique per file)."""
    w = surface.window
    scale = scale or ColourScale.fit(surface.values)
    ny, nx = surface.values.shape
    t = scale.position(surface.values)
    cw, ch = PLOT / nx, PLOT / ny
    legend_h = 22 * len(tracks)
    width, height = LEFT + PLOT + RIGHT_PAD, TOP + PLOT + 50 + legend_h

    def px(x: float) -> float:
        return LEFT + (x - w.x0) / (w.x1 - w.x0) * PLOT

    def py(y: float) -> float:
        return TOP + (w.y1 - y) / (w.y1 - w.y0) * PLOT

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
           f'viewBox="0 0 {width} {height}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width}" height="{height}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>',
           f'<clipPath id="{panel}"><rect x="{LEFT}" y="{TOP}" width="{PLOT}" height="{PLOT}"/></clipPath>',
           '<g shape-rendering="crispEdges">']
    for r in range(ny):
        for c in range(nx):
            out.append(f'<rect x="{LEFT + c * cw:.2f}" y="{TOP + r * ch:.2f}" width="{cw + 0.5:.2f}" '
                       f'height="{ch + 0.5:.2f}" fill="{hex_colour(colour(t[r, c]))}"/>')
    out.append("</g>")
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{PLOT}" height="{PLOT}" fill="none" stroke="black"/>')
    for x in _ticks(w.x0, w.x1):
        out.append(f'<line x1="{px(x):.1f}" y1="{TOP + PLOT}" x2="{px(x):.1f}" y2="{TOP + PLOT + 5}" stroke="black"/>')
        out.append(f'<text x="{px(x):.1f}" y="{TOP + PLOT + 18}" text-anchor="middle">{x:.3g}</text>')
    for y in _ticks(w.y0, w.y1):
        out.append(f'<line x1="{LEFT - 5}" y1="{py(y):.1f}" x2="{LEFT}" y2="{py(y):.1f}" stroke="black"/>')
        out.append(f'<text x="{LEFT - 8}" y="{py(y) + 4:.1f}" text-anchor="end">{y:.3g}</text>')
    out.append(f'<text x="{LEFT + PLOT / 2}" y="{TOP + PLOT + 34}" text-anchor="middle">{escape(surface.xlabel)}</text>')
    out.append(f'<text x="18" y="{TOP + PLOT / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {TOP + PLOT / 2})">{escape(surface.ylabel)}</text>')
    out.extend(_colour_bar(scale, surface.zlabel))
    out.append(f'<g clip-path="url(#{panel})">')
    for i, track in enumerate(tracks):
        stroke = hex_colour(PATH_COLOURS[i % len(PATH_COLOURS)])
        pts = [(px(p[0]), py(p[1])) for p in track.points if np.all(np.isfinite(p)) and np.all(np.abs(p) < 1e12)]
        if not pts:
            continue
        line = " ".join(f"{x:.1f},{y:.1f}" for x, y in pts)
        if len(pts) > 1:  # a black halo under the coloured line keeps it visible on any shade
            out.append(f'<polyline points="{line}" fill="none" stroke="black" stroke-width="3" opacity="0.5"/>')
            out.append(f'<polyline points="{line}" fill="none" stroke="{stroke}" stroke-width="1.5"/>')
        for x, y in pts:
            out.append(f'<circle cx="{x:.1f}" cy="{y:.1f}" r="2" fill="{stroke}"/>')
        out.append(f'<circle cx="{pts[0][0]:.1f}" cy="{pts[0][1]:.1f}" r="5" fill="none" stroke="{stroke}" stroke-width="2"/>')
        out.append(f'<rect x="{pts[-1][0] - 4:.1f}" y="{pts[-1][1] - 4:.1f}" width="8" height="8" fill="{stroke}" stroke="black"/>')
    out.append("</g>")
    for i, track in enumerate(tracks):
        y = TOP + PLOT + 50 + 22 * i
        stroke = hex_colour(PATH_COLOURS[i % len(PATH_COLOURS)])
        out.append(f'<rect x="{LEFT}" y="{y - 9}" width="18" height="10" fill="{stroke}" stroke="black"/>')
        out.append(f'<text x="{LEFT + 26}" y="{y}">{escape(track.label)}  {escape(track.note)}</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def side_by_side(panels: Sequence[str]) -> str:
    """Several map SVGs (from map_svg) in one file, left to right, each moved into place by a <g>."""
    sizes = [(float(ET.fromstring(p).get("width")), float(ET.fromstring(p).get("height"))) for p in panels]
    width, height = sum(w for w, _ in sizes), max(h for _, h in sizes)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{width:.0f}" height="{height:.0f}" '
           f'viewBox="0 0 {width:.0f} {height:.0f}" font-family="sans-serif" font-size="12">',
           f'<rect width="{width:.0f}" height="{height:.0f}" fill="white"/>']
    x = 0.0
    for text, (w, _) in zip(panels, sizes):
        body = text.strip().splitlines()[1:-1]  # map_svg writes its <svg> and </svg> on lines of their own
        out.append(f'<g transform="translate({x:.0f},0)">')
        out.extend(body)
        out.append("</g>")
        x += w
    out.append("</svg>")
    return "\n".join(out) + "\n"


def _colour_bar(scale: ColourScale, name: str) -> list[str]:
    x, top, height, steps = LEFT + PLOT + 25, TOP, PLOT, 64
    parts = [f'<text x="{x}" y="{top - 8}">{escape(name)}{" (log)" if scale.log else ""}</text>']
    for i in range(steps):
        t = 1 - (i + 0.5) / steps
        parts.append(f'<rect x="{x}" y="{top + i * height / steps:.2f}" width="18" height="{height / steps + 0.5:.2f}" '
                     f'fill="{hex_colour(colour(t))}"/>')
    for t in (0.0, 0.25, 0.5, 0.75, 1.0):
        y = top + (1 - t) * height
        parts.append(f'<text x="{x + 24}" y="{y + 4:.1f}">{scale.value_at(t):.3g}</text>')
    return parts


def write_svg(text: str, path: str | Path) -> Path:
    """Write the SVG; ExportError (one line) when the path cannot be written or is not .svg."""
    path = Path(path)
    if path.suffix.lower() != ".svg":
        raise ExportError(f"{path}: maps are written as SVG; give a file name ending in .svg")
    from gradviz.files.write import check_svg_finite, write_atomic

    check_svg_finite(text, path)
    write_atomic(path, text, shown=path)
    return path
