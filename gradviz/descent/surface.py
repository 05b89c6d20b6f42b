"""A surface over a window of two coordinates, and the tracks (paths) drawn on it."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class Window:
    """The rectangle [x0, x1] × [y0, y1] a map shows."""

    x0: float
    x1: float
    y0: float
    y1: float

    def xs(self, n: int) -> np.ndarray:
        """n pixel-centre x coordinates, left to right."""
        return self.x0 + (np.arange(n) + 0.5) / n * (self.x1 - self.x0)

    def ys(self, n: int) -> np.ndarray:
        """n pixel-centre y coordinates, top (y1) to bottom (y0)."""
        return self.y1 - (np.arange(n) + 0.5) / n * (self.y1 - self.y0)

    def cell(self, point: np.ndarray, cols: int, rows: int) -> tuple[int, int] | None:
        """The (col, row) a point falls in on a cols × rows raster, or None outside."""
        x, y = float(point[0]), float(point[1])
        if not (np.isfinite(x) and np.isfinite(y)):
            return None
        col = int(np.floor((x - self.x0) / (self.x1 - self.x0) * cols))
        row = int(np.floor((self.y1 - y) / (self.y1 - self.y0) * rows))
        if 0 <= col < cols and 0 <= row < rows:
            return col, row
        return None


@dataclass(frozen=True)
class Surface:
    """Values on a grid: values[r, c] at (xs[c], ys[r]); ys run top to bottom."""

    window: Window
    values: np.ndarray
    xlabel: str = "x"
    ylabel: str = "y"
    zlabel: str = "f"

    def sample(self, cols: int, rows: int) -> np.ndarray:
        """The values resampled (nearest grid point) to a cols × rows raster."""
        ny, nx = self.values.shape
        ci = np.minimum((np.arange(cols) + 0.5) / cols * nx, nx - 1).astype(int)
        ri = np.minimum((np.arange(rows) + 0.5) / rows * ny, ny - 1).astype(int)
        return self.values[np.ix_(ri, ci)]


@dataclass(frozen=True)
class Track:
    """A path to draw: its points in the surface's coordinates, a label and a note."""

    label: str
    points: np.ndarray  # (n, 2)
    note: str = ""


def surface_of(fn: Callable[[np.ndarray, np.ndarray], np.ndarray], window: Window, nx: int, ny: int,
               labels: tuple[str, str, str] = ("x", "y", "f")) -> Surface:
    """Evaluate fn(xs, ys) → (ny, nx) grid over the window."""
    values = np.asarray(fn(window.xs(nx), window.ys(ny)), dtype=float)
    return Surface(window, values, *labels)


def fit_window(points: Sequence[np.ndarray], pad: float = 0.15, min_span: float = 1.0) -> Window:
    """The smallest window holding all finite points, padded on each side, at least min_span wide."""
    stacked = np.concatenate([np.atleast_2d(p) for p in points]) if points else np.zeros((1, 2))
    finite = stacked[np.all(np.isfinite(stacked), axis=1)]
    if finite.size == 0:
        finite = np.zeros((1, 2))
    lo, hi = finite.min(axis=0), finite.max(axis=0)
    centre, half = (lo + hi) / 2, np.maximum((hi - lo) / 2 * (1 + 2 * pad), min_span / 2)
    return Window(centre[0] - half[0], centre[0] + half[0], centre[1] - half[1], centre[1] + half[1])
