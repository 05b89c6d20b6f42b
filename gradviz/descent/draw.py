"""A descent run as a map: its surface over the window, one track per path (terminal and SVG)."""

from __future__ import annotations

from rich.text import Text

from gradviz.descent.runs import DescentRun, path_label
from gradviz.descent.scale import ColourScale
from gradviz.descent.surface import Surface, Track, surface_of
from gradviz.descent.svg import map_svg
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


def run_svg(run: DescentRun, resolution: int = 90) -> str:
    """The SVG of the whole run."""
    return map_svg(run_surface(run, resolution, resolution), run_tracks(run), title(run))
