"""A character grid: boxes, orthogonal edges, labels and cluster frames, cell by cell.

Every cell records its glyph, a style key and its owner (a box, an edge or a cluster), so
that a viewer can map a mouse click to a node, and highlight the current node by changing
style keys alone (`paint_box`), without laying anything out again.

Edges are drawn by arms: each cell collects the directions (north, east, south, west) in
which edges leave it and shows the matching box-drawing glyph. Routing guarantees that two
edges meet only where one crosses the other straight, so a cell is a line, a corner or a
crossing (┼), never a tee: tees appear only where an edge leaves a box.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from gradviz.draw.layout import BoxSpec, EdgeSpec, text_cells
from gradviz.draw.route import Layout, Point, Rect

N, E, S, W = 1, 2, 4, 8


@dataclass(frozen=True)
class Glyphs:
    """One glyph set: edge glyphs by arm mask, ports, arrows, box and frame borders."""

    by_arms: tuple[str, ...]  # 16 entries, indexed by N|E|S|W
    port: str  # where an edge leaves a bordered box's bottom border
    arrows: tuple[str, str, str, str]  # pointing down, up, right, left
    box: str  # corners top-left, top-right, bottom-left, bottom-right, then horizontal, vertical
    frame: str  # the same six for cluster frames
    ellipsis: str


UNICODE = Glyphs(
    by_arms=(" ", "╵", "╶", "└", "╷", "│", "┌", "├", "╴", "┘", "─", "┴", "┐", "┤", "┬", "┼"),
    port="┬",
    arrows=("▼", "▲", "▶", "◀"),
    box="╭╮╰╯─│",
    frame="┌┐└┘╌╎",
    ellipsis="…",
)

# Edge corners are '.' and "'" so they never look like a box's '+'; a crossing shows the
# vertical line, which reads as one edge passing over the other.
ASCII = Glyphs(
    by_arms=(" ", "|", "-", "'", "|", "|", ".", "+", "-", "'", "-", "+", ".", "+", "+", "|"),
    port="+",
    arrows=("v", "^", ">", "<"),
    box="++++-|",
    frame="++++.:",
    ellipsis="~",
)

_ARMS_TABLE = {glyphs: np.array(glyphs.by_arms, dtype="<U3") for glyphs in (UNICODE, ASCII)}


def _runs(width: int, ys: np.ndarray, xs: np.ndarray, lengths: np.ndarray, vertical: bool = False) -> np.ndarray:
    """Flat cell indices of many straight runs at once (rightwards, or downwards if vertical)."""
    lengths = np.asarray(lengths, dtype=np.int64)
    starts = np.asarray(ys, dtype=np.int64) * width + np.asarray(xs, dtype=np.int64)
    offsets = np.repeat(np.cumsum(lengths) - lengths, lengths)
    steps = np.arange(int(lengths.sum()), dtype=np.int64) - offsets
    return np.repeat(starts, lengths) + steps * (width if vertical else 1)


class Grid:
    """A mutable canvas of cells over one Layout; `paint_*` restyle or re-text in place."""

    def __init__(self, layout: Layout, boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec], glyphs: Glyphs):
        self.layout = layout
        self.glyphs = glyphs
        self.width, self.height = layout.width, layout.height
        # two code points per cell: a character and one combining mark (the bar of v̄).
        self.chars = np.empty((self.height, self.width), dtype="<U2")
        self.chars.fill(" ")
        self.styles = np.zeros((self.height, self.width), dtype=np.int16)
        self.owners = np.full((self.height, self.width), -1, dtype=np.int32)
        self.style_keys: list[str] = [""]
        self._style_ids: dict[str, int] = {"": 0}
        self.boxes = {box.key: box for box in boxes}
        self.box_keys = tuple(box.key for box in boxes)
        self._box_ids = {key: i for i, key in enumerate(self.box_keys)}
        self.edges = tuple(edges)
        self.cluster_keys = tuple(layout.clusters)
        self.edge_cells: list[np.ndarray] = []  # flat indices of each edge's line cells
        # where edges leave (first point) and reach (last point) each box, and which edge
        self.ports_out: dict[str, list[tuple[int, int, int]]] = {key: [] for key in self.box_keys}
        self.ports_in: dict[str, list[tuple[int, int, int]]] = {key: [] for key in self.box_keys}
        for j, (edge, path) in enumerate(zip(self.edges, layout.paths)):
            self.ports_out[edge.src].append((*path[0], j))
            self.ports_in[edge.dst].append((*path[-1], j))

    # owners are one int per cell: boxes first, then edges, then clusters.
    def _edge_owner(self, j: int) -> int:
        return len(self.box_keys) + j

    def _cluster_owner(self, i: int) -> int:
        return len(self.box_keys) + len(self.edges) + i

    def style_id(self, key: str) -> int:
        """The small integer a style key is stored as in `styles`."""
        if key not in self._style_ids:
            self._style_ids[key] = len(self.style_keys)
            self.style_keys.append(key)
        return self._style_ids[key]

    def owner_at(self, x: int, y: int) -> tuple[str, str | int] | None:
        """What a cell belongs to: ('box', key), ('edge', index), ('cluster', path) or None."""
        if not (0 <= x < self.width and 0 <= y < self.height):
            return None
        owner = int(self.owners[y, x])
        if owner < 0:
            return None
        if owner < len(self.box_keys):
            return ("box", self.box_keys[owner])
        owner -= len(self.box_keys)
        if owner < len(self.edges):
            return ("edge", owner)
        return ("cluster", self.cluster_keys[owner - len(self.edges)])

    def _line_cells(self, text: str, width: int, align: str) -> list[str]:
        """One line of text as exactly `width` cells, cropped with an ellipsis."""
        cells = [cell[:2] for cell in text_cells(text)]
        if len(cells) > width:
            cells = cells[: max(width - 1, 0)] + [self.glyphs.ellipsis][:width]
        pad = (width - len(cells)) // 2 if align == "center" else 0
        return [" "] * pad + cells + [" "] * (width - pad - len(cells))

    def paint_box(
        self,
        key: str,
        lines: Sequence[str] | None = None,
        style: str | None = None,
        line_styles: Sequence[str | None] | None = None,
    ) -> None:
        """Redraw one box in place, with new text and/or style keys; the layout stays."""
        box = self.boxes[key]
        self.boxes[key] = BoxSpec(
            key,
            box.lines if lines is None else tuple(lines),
            box.style if style is None else style,
            box.cluster,
            box.line_styles if line_styles is None else tuple(line_styles),
            box.border,
        )
        self._paint_boxes([key])

    def _paint_boxes(self, keys: Sequence[str]) -> None:
        """Draw boxes: fill, borders, ports and text, batched into a few array writes."""
        if not keys:
            return
        rects = [self.layout.boxes[key] for key in keys]
        x = np.array([r.x for r in rects])
        y = np.array([r.y for r in rects])
        w = np.array([r.w for r in rects])
        h = np.array([r.h for r in rects])
        rows = np.arange(int(h.sum())) - np.repeat(np.cumsum(h) - h, h)
        fill = _runs(self.width, np.repeat(y, h) + rows, np.repeat(x, h), np.repeat(w, h))
        area = w * h
        self.styles.flat[fill] = np.repeat([self.style_id(self.boxes[k].style) for k in keys], area)
        self.owners.flat[fill] = np.repeat([self._box_ids[k] for k in keys], area)
        self.chars.flat[fill] = " "
        framed = np.array([self.boxes[k].border for k in keys])
        if framed.any():
            self._frames(x[framed], y[framed], w[framed], h[framed], self.glyphs.box)
        cells: list[str] = []
        where: list[int] = []
        styled: list[tuple[int, int, int, str]] = []
        ports: list[int] = []
        port_styles: list[int] = []
        for key, rect in zip(keys, rects):
            box = self.boxes[key]
            inset = 1 if box.border else 0
            if box.border:
                # a port is drawn in its edge's style: an active edge shows where it enters
                for px, _, j in self.ports_out[key]:
                    where.append((rect.bottom - 1) * self.width + px)
                    cells.append(self.glyphs.port)
                    ports.append(where[-1])
                    port_styles.append(self.style_id(self.edges[j].style))
                for px, _, j in self.ports_in[key]:
                    where.append(rect.y * self.width + px)
                    cells.append(self.glyphs.arrows[0])
                    ports.append(where[-1])
                    port_styles.append(self.style_id(self.edges[j].style))
            pad = 2 * inset  # a blank column either side of the text, inside the border
            width = rect.w - 2 * pad
            for i, text in enumerate(box.lines[: rect.h - 2 * inset]):
                row = rect.y + inset + i
                first = row * self.width + rect.x + pad
                where.extend(range(first, first + width))
                cells.extend(self._line_cells(text, width, "center"))
                if i < len(box.line_styles) and box.line_styles[i]:
                    styled.append((row, rect.x + inset, rect.w - 2 * inset, box.line_styles[i]))
        if where:
            self.chars.flat[np.array(where)] = cells
        for row, left, width, key in styled:
            self.styles[row, left : left + width] = self.style_id(key)
        if ports:
            self.styles.flat[np.array(ports)] = port_styles

    def _frames(self, x: np.ndarray, y: np.ndarray, w: np.ndarray, h: np.ndarray, chars: str) -> None:
        """Draw many rectangles' borders at once."""
        tl, tr, bl, br, horizontal, vertical = chars
        flat = self.chars.reshape(-1)
        inner_w, inner_h = np.maximum(w - 2, 0), np.maximum(h - 2, 0)
        flat[_runs(self.width, y, x + 1, inner_w)] = horizontal
        flat[_runs(self.width, y + h - 1, x + 1, inner_w)] = horizontal
        flat[_runs(self.width, y + 1, x, inner_h, vertical=True)] = vertical
        flat[_runs(self.width, y + 1, x + w - 1, inner_h, vertical=True)] = vertical
        flat[y * self.width + x] = tl
        flat[y * self.width + x + w - 1] = tr
        flat[(y + h - 1) * self.width + x] = bl
        flat[(y + h - 1) * self.width + x + w - 1] = br

    def paint_edge(self, j: int, style: str, label: str | None = None) -> None:
        """Restyle edge j (its line and its label) in place, and re-text its label if given."""
        edge = self.edges[j]
        label = edge.label if label is None else label
        self.edges = (*self.edges[:j], EdgeSpec(edge.src, edge.dst, label, style), *self.edges[j + 1 :])
        self.styles.flat[self.edge_cells[j]] = self.style_id(style)
        rect = self.layout.labels.get(j)
        if rect is not None:
            _write_label(self, rect, label or "")
            self.styles[rect.y : rect.bottom, rect.x : rect.right] = self.style_id(style + ".label")

    def text(self) -> str:
        """The grid as plain text, one line per row, without trailing blanks."""
        return "\n".join("".join(row).rstrip() for row in self.chars.tolist())

    def runs(self, y: int) -> list[tuple[str, str]]:
        """Row y as (text, style key) runs, trailing unstyled blanks dropped."""
        chars = self.chars[y]
        ids = self.styles[y]
        end = self.width
        while end > 0 and chars[end - 1] == " " and ids[end - 1] == 0:
            end -= 1
        if end == 0:
            return []
        cuts = [0, *(np.flatnonzero(ids[1:end] != ids[: end - 1]) + 1).tolist(), end]
        return [("".join(chars[a:b].tolist()), self.style_keys[ids[a]]) for a, b in zip(cuts, cuts[1:])]

    def copy(self) -> "Grid":
        """An independent copy to paint on (the layout is shared: it never changes)."""
        other = Grid.__new__(Grid)
        other.__dict__.update(self.__dict__)
        other.chars = self.chars.copy()
        other.styles = self.styles.copy()
        other.owners = self.owners.copy()
        other.style_keys = list(self.style_keys)
        other._style_ids = dict(self._style_ids)
        other.boxes = dict(self.boxes)
        return other


_DIRECTION = {(0, 1): S, (0, -1): N, (1, 0): E, (-1, 0): W}


def _draw_edges(grid: Grid, layout: Layout, edges: Sequence[EdgeSpec], borders: dict[str, bool]) -> None:
    """Collect every edge's runs and corners, then write arms, glyphs, owners and styles in bulk."""
    runs: list[tuple[int, int, int, bool, int]] = []  # y, x, length, vertical, edge
    corners: list[int] = []
    corner_arms: list[int] = []
    arrows: list[int] = []
    arrow_glyphs: list[str] = []
    for j, path in enumerate(layout.paths):
        for i, (px, py) in enumerate(path):
            arms = 0
            if i > 0:
                arms |= _DIRECTION[_sign(path[i - 1][0] - px, path[i - 1][1] - py)]
            if i + 1 < len(path):
                arms |= _DIRECTION[_sign(path[i + 1][0] - px, path[i + 1][1] - py)]
            elif i > 0:
                heading = _sign(px - path[i - 1][0], py - path[i - 1][1])
                arrows.append(py * grid.width + px)
                arrow_glyphs.append(grid.glyphs.arrows[(S, N, E, W).index(_DIRECTION[heading])])
            if i == 0 and not borders[edges[j].src]:
                arms |= N  # leaves the borderless box above
            corners.append(py * grid.width + px)
            corner_arms.append(arms)
        for (x0, y0), (x1, y1) in zip(path, path[1:]):
            if x0 == x1:
                runs.append((min(y0, y1) + 1, x0, abs(y1 - y0) - 1, True, j))
            else:
                runs.append((y0, min(x0, x1) + 1, abs(x1 - x0) - 1, False, j))
    arms = np.zeros(grid.height * grid.width, dtype=np.uint8)
    table = np.array(runs, dtype=np.int64).reshape(-1, 5)
    cells = []
    for vertical, bits in ((True, N | S), (False, E | W)):
        part = table[table[:, 3] == int(vertical)]
        idx = _runs(grid.width, part[:, 0], part[:, 1], part[:, 2], vertical)
        arms[idx] |= bits
        cells.append((idx, np.repeat(part[:, 4], part[:, 2])))
    corner_idx = np.array(corners, dtype=np.int64)
    np.bitwise_or.at(arms, corner_idx, np.array(corner_arms, dtype=np.uint8))
    counts = np.array([len(path) for path in layout.paths], dtype=np.int64)
    cells.append((corner_idx, np.repeat(np.arange(len(layout.paths)), counts)))
    idx = np.concatenate([c[0] for c in cells])
    owner = np.concatenate([c[1] for c in cells])
    drawn = np.flatnonzero(arms)
    grid.chars.flat[drawn] = _ARMS_TABLE[grid.glyphs][arms[drawn]]
    grid.chars.flat[np.array(arrows, dtype=np.int64)] = arrow_glyphs
    grid.owners.flat[idx] = owner + len(grid.box_keys)
    style_of_edge = np.array([grid.style_id(edge.style) for edge in edges], dtype=np.int16)
    grid.styles.flat[idx] = style_of_edge[owner]
    order = np.argsort(owner, kind="stable")
    grid.edge_cells = np.split(idx[order], np.cumsum(np.bincount(owner, minlength=len(edges)))[:-1])


def _sign(dx: int, dy: int) -> tuple[int, int]:
    return ((dx > 0) - (dx < 0), (dy > 0) - (dy < 0))


def _write_label(grid: Grid, rect: Rect, label: str) -> None:
    lines = label.split("\n")
    for i in range(rect.h):
        text = lines[i] if i < len(lines) else ""
        grid.chars[rect.y + i, rect.x : rect.right] = grid._line_cells(text, rect.w, "left")


def _draw_labels(grid: Grid, layout: Layout, edges: Sequence[EdgeSpec]) -> None:
    for j, rect in layout.labels.items():
        _write_label(grid, rect, edges[j].label or "")
        grid.styles[rect.y : rect.bottom, rect.x : rect.right] = grid.style_id(edges[j].style + ".label")
        grid.owners[rect.y : rect.bottom, rect.x : rect.right] = grid._edge_owner(j)


def _draw_clusters(grid: Grid, layout: Layout) -> None:
    style = grid.style_id("cluster")
    # outer frames first, so that inner ones draw over them where they touch.
    order = sorted(enumerate(layout.clusters.items()), key=lambda item: item[1][0].count("."))
    for i, (path, rect) in order:
        grid._frames(*(np.array([v]) for v in (rect.x, rect.y, rect.w, rect.h)), grid.glyphs.frame)
        title = f" {path.rsplit('.', 1)[-1]} "
        if rect.w > 4:
            width = min(len(title), rect.w - 4)
            grid.chars[rect.y, rect.x + 2 : rect.x + 2 + width] = grid._line_cells(title, width, "left")
        for part in (
            grid.styles[rect.y : rect.bottom, rect.x],
            grid.styles[rect.y : rect.bottom, rect.right - 1],
            grid.styles[rect.y, rect.x : rect.right],
            grid.styles[rect.bottom - 1, rect.x : rect.right],
        ):
            part[...] = style
        grid.owners[rect.y, rect.x : rect.right] = grid._cluster_owner(i)


def rasterise(layout: Layout, boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec], ascii: bool = False) -> Grid:
    """Draw a Layout into a fresh Grid: cluster frames, then edges, labels and boxes on top."""
    grid = Grid(layout, boxes, edges, ASCII if ascii else UNICODE)
    _draw_clusters(grid, layout)
    if edges:
        _draw_edges(grid, layout, edges, {box.key: box.border for box in boxes})
    _draw_labels(grid, layout, edges)
    grid._paint_boxes(grid.box_keys)
    return grid
