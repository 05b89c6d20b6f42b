"""What each stage of a terminal drawing hands to the next, in pipeline order.

    look (look.py, fold.py, bridge.py)        -> boxes and edges: BoxSpec, EdgeSpec
    measure (layout.measure)                  -> Sized: every box's and label's size in cells
    rank (layout.rank, `dot`)                 -> Ranked: ranks, cross positions, edge stations
    route (route.place)                       -> Layout: rectangles and orthogonal edge paths
    raster (raster.rasterise)                 -> Grid: characters, styles and owners per cell

Each stage takes the previous stage's result and returns its own; pipeline.py runs them,
compound.py runs them once per module scope. All are plain frozen data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

Point = tuple[int, int]


@dataclass(frozen=True)
class BoxSpec:
    """One node to draw: its text lines, a style key, and an optional dotted cluster path.
    A `hollow` box is a frame with its first line as a title in the top border, and what
    lies inside drawn by others (compound.py's containers)."""

    key: str
    lines: tuple[str, ...]
    style: str = "node"
    cluster: str | None = None
    line_styles: tuple[str | None, ...] = ()
    border: bool = True
    hollow: bool = False


@dataclass(frozen=True)
class EdgeSpec:
    """One edge to draw from box `src` to box `dst`, with an optional label and a style key;
    a heavier `weight` asks `dot` to keep the edge short and straight."""

    src: str
    dst: str
    label: str | None = None
    style: str = "edge"
    weight: int = 1


@dataclass(frozen=True)
class Sized:
    """The boxes and edges with their sizes in cells (width, height): what `dot` is asked
    to rank, and what routing spaces. `ports`: per box, the edges it needs port cells for."""

    boxes: tuple[BoxSpec, ...]
    edges: tuple[EdgeSpec, ...]
    sizes: tuple[tuple[int, int], ...]
    label_sizes: Mapping[int, tuple[int, int]]
    ports: Mapping[str, int]
    across: bool = False  # ranks as columns, left to right (ranks as rows, top to bottom, if not)


@dataclass(frozen=True)
class Station:
    """Where an edge crosses a rank between its ends: a bare column or its label box."""

    rank: int
    cross: float
    label: bool = False


@dataclass(frozen=True)
class Ranked:
    """What gradviz keeps of dot's layout of `sized`: ranks, cross positions (cells), edge stations."""

    sized: Sized
    ranks: Mapping[str, int]
    centers: Mapping[str, float]
    stations: tuple[tuple[Station, ...], ...]
    label_centers: Mapping[int, float]


@dataclass(frozen=True, slots=True)
class Rect:
    """A rectangle of cells: left column, top row, width, height."""

    x: int
    y: int
    w: int
    h: int

    @property
    def right(self) -> int:
        """One past the last column."""
        return self.x + self.w

    @property
    def bottom(self) -> int:
        """One past the last row."""
        return self.y + self.h


@dataclass(frozen=True)
class Layout:
    """Everything in cells: boxes, one orthogonal path per edge, label and cluster rectangles.

    Each path starts on its source's port (a cell of its bottom row: the border, or a
    borderless box's only row) and ends on its target's port (a cell of its top row);
    `across` (ranks left to right): on its right border and its left border.
    """

    width: int
    height: int
    boxes: Mapping[str, Rect]
    paths: tuple[tuple[Point, ...], ...]
    labels: Mapping[int, Rect]
    clusters: Mapping[str, Rect]
    across: bool = False
