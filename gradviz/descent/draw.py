"""A descent run as a map: its surface over the window, one track per path (terminal and SVG)."""

from __future__ import annotations

from dataclasses import replace

from rich.table import Table
from rich.text import Text

from gradviz.descent.runs import DescentRun, path_label
from gradviz.descent.scale import ColourScale
from gradviz.descent.surface import Surface, Track, surface_of
from gradviz.descent.svg import map_svg, side_by_side
from gradviz.descent.terminal import render_map


def run_surface(run: DescentRun, nx: int, ny: int) -> Surface:
    """f over the run's window at nx × ny points."""
    names = run.objective.names
    return surface_of(run.objective.grid, run.window, nx, ny, (names[0], names[1], "f"))


def run_tracks(run: DescentRun, upto: int | None = None) -> list[Track]:
    """One track per path, cut after step `upto` when given (the app's growing paths)."""
    several = len({tuple(p.start) for p in run.paths}) > 1
    tracks = []
    for p in run.paths:
        points = p.thetas if upto is None else p.thetas[: upto + 1]
        note = p.verdict if upto is None or upto >= p.end_step else f"step {min(upto, len(p.steps) - 1)}"
        tracks.append(Track(path_label(p, several), points, note))
    return tracks


def title(run: DescentRun) -> str:
    """'f(x, y) = x**2 + 10*y**2'."""
    return f"f({', '.join(run.objective.names)}) = {' '.join(run.objective.text.split())}"


def run_map(run: DescentRun, width: int, height: int, cells: str = "half", upto: int | None = None,
            surface: Surface | None = None) -> Text:
    """The terminal map of the run (paths cut at `upto`)."""
    tracks = run_tracks(run, upto)
    if surface is None:
        cols = max(10, width - 10)
        rows = max(4, height - 4 - len(tracks))
        surface = run_surface(run, cols, rows * 2 if cells == "half" else rows)
    return render_map(surface, tracks, width, height, cells=cells, title=title(run),
                      scale=ColourScale.fit(surface.values))


def by_optimizer(run: DescentRun) -> list[DescentRun]:
    """One run per optimizer (its rates and starts), sharing the window: the side-by-side panels."""
    names = list(dict.fromkeys(p.optimizer for p in run.paths))
    return [replace(run, paths=tuple(p for p in run.paths if p.optimizer == name)) for name in names]


def run_svg(run: DescentRun, resolution: int = 90, layout: str = "overlay", upto: int | None = None,
            surface: Surface | None = None) -> str:
    """The SVG of the run (paths cut after step `upto`): all paths on one map, or one map
    per optimizer side by side."""
    surface = surface or run_surface(run, resolution, resolution)
    if layout == "overlay":
        return map_svg(surface, run_tracks(run, upto), title(run))
    scale = ColourScale.fit(surface.values)  # one colour scale, so the panels compare
    return side_by_side([map_svg(surface, run_tracks(part, upto), f"{title(part)}  ({part.paths[0].optimizer})", scale,
                                 panel=f"plot{i}") for i, part in enumerate(by_optimizer(run))])


def run_svg_frames(run: DescentRun, resolution: int = 90, layout: str = "overlay") -> list[str]:
    """The run as frames whose paths grow step by step (a GIF), the whole run last; one
    surface and window for all, so nothing but the paths moves."""
    from gradviz.draw.chart_file import growth_steps

    surface = run_surface(run, resolution, resolution)
    longest = max(len(p.thetas) for p in run.paths) - 1
    return [run_svg(run, resolution, layout, k, surface) for k in growth_steps(longest)] + \
        [run_svg(run, resolution, layout, None, surface)]


def side_by_side_map(run: DescentRun, width: int, height: int, cells: str = "half") -> Table:
    """One terminal map per optimizer, next to each other, sharing the window and colour scale."""
    parts = by_optimizer(run)
    each = max(24, width // len(parts) - 1)
    rows = max(4, height - 4 - max(len(p.paths) for p in parts))
    cols = max(10, each - 10)
    surface = run_surface(run, cols, rows * 2 if cells == "half" else rows)
    grid = Table.grid(padding=(0, 1))
    for _ in parts:
        grid.add_column(width=each, no_wrap=True)
    grid.add_row(*[render_map(surface, run_tracks(part), each, height, cells=cells,
                              title=f"{part.paths[0].optimizer}: {title(part)}", scale=ColourScale.fit(surface.values))
                   for part in parts])
    return grid
