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

from dataclasses import dataclass, replace
from typing import Sequence

import numpy as np

from gradviz.draw.cells import text_cells
from gradviz.draw.handoff import BoxSpec, EdgeSpec, Layout, Rect

N, E, S, W = 1, 2, 4, 8


@dataclass(frozen=True)
class Glyphs:
    """One glyph set: edge glyphs by arm mask, ports, arrows, box and frame borders."""

    by_arms: tuple[str, ...]  # 16 entries, indexed by N|E|S|W
    port: str  # where an edge leaves a bordered box's bottom border
    side_port: str  # where it leaves the right border (ranks left to right)
    arrows: tuple[str, str, str, str]  # pointing down, up, right, left
    box: str  # corners top-left, top-right, bottom-left, bottom-right, then horizontal, vertical
    frame: str  # the same six for cluster frames
    ellipsis: str


UNICODE = Glyphs(
    by_arms=(" ", "╵", "╶", "└", "╷", "│", "┌", "├", "╴", "┘", "─", "┴", "┐", "┤", "┬", "┼"),
    port="┬",
    side_port="├",
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
    side_port="+",
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
        # where edges leave and reach a box: its bottom and top borders, or right and left
        self.port_glyph = glyphs.side_port if layout.across else glyphs.port
        self.arrival_glyph = glyphs.arrows[2] if layout.across else glyphs.arrows[0]
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
        self._text_spans: dict[tuple[str, str], range] = {}  # (box, its text) -> columns; steps repeat texts
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
        cells = list(text) if text.isascii() else [cell[:2] for cell in text_cells(text)]
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
        self.paint_boxes([replace(
            box,
            lines=box.lines if lines is None else tuple(lines),
            style=box.style if style is None else style,
            line_styles=box.line_styles if line_styles is None else tuple(line_styles),
        )])

    def paint_boxes(self, boxes: Sequence[BoxSpec]) -> None:
        """Redraw many boxes in place at once (their keys name boxes of this layout)."""
        for box in boxes:
            self.boxes[box.key] = box
        self._paint_boxes([box.key for box in boxes])

    def _paint_boxes(self, keys: Sequence[str]) -> None:
        """Draw boxes: fill, borders, ports and text, batched into a few array writes."""
        if not keys:
            return
        hollow = [key for key in keys if self.boxes[key].hollow]
        if hollow:
            self._paint_hollow(hollow)
            keys = [key for key in keys if not self.boxes[key].hollow]
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
                # a port is drawn in its edge's style, so an active edge shows where it
                # enters; on the current box it keeps the box's highlight, which has no holes.
                current = box.style.endswith(".current")
                for px, py, j in self.ports_out[key]:
                    where.append(py * self.width + px)
                    cells.append(self.port_glyph)
                    ports.append(where[-1])
                    port_styles.append(self.style_id(box.style if current else self.edges[j].style))
                for px, py, j in self.ports_in[key]:
                    where.append(py * self.width + px)
                    cells.append(self.arrival_glyph)
                    ports.append(where[-1])
                    port_styles.append(self.style_id(box.style if current else self.edges[j].style))
            else:
                self._bar(key, rect, where, cells)
                continue
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

    def _paint_hollow(self, keys: Sequence[str]) -> None:
        """Frames whose inside others draw: border, title in the top border, ports."""
        for key in keys:
            box, rect = self.boxes[key], self.layout.boxes[key]
            border = np.concatenate([
                _runs(self.width, [rect.y, rect.bottom - 1], [rect.x, rect.x], [rect.w, rect.w]),
                _runs(self.width, [rect.y + 1, rect.y + 1], [rect.x, rect.right - 1], [rect.h - 2] * 2, vertical=True),
            ])
            self.styles.flat[border] = self.style_id(box.style)
            self.owners.flat[border] = self._box_ids[key]
            self._frames(*(np.array([v]) for v in (rect.x, rect.y, rect.w, rect.h)), self.glyphs.box)
            title = f" {box.lines[0]} " if box.lines else ""
            arrivals = {px for px, _, _ in self.ports_in[key]}
            width = min(len(title), rect.w - 4)
            # the title goes where no edge arrives: the first gap wide enough, else nowhere
            start = next((x for x in range(rect.x + 2, rect.right - 1 - width)
                          if not arrivals & set(range(x, x + width))), None) if title and width > 2 else None
            if start is not None:
                self.chars[rect.y, start : start + width] = self._line_cells(title, width, "left")
            for px, _, j in self.ports_out[key]:
                self.chars[rect.bottom - 1, px] = self.glyphs.port
                self.styles[rect.bottom - 1, px] = self.style_id(self.edges[j].style)
            for px, _, j in self.ports_in[key]:
                self.chars[rect.y, px] = self.glyphs.arrows[0]
                self.styles[rect.y, px] = self.style_id(self.edges[j].style)

    def _text_span(self, key: str) -> range:
        """The columns a one-row box's text spans (its ports there are text, in the box's style)."""
        rect, box = self.layout.boxes[key], self.boxes[key]
        line = box.lines[0] if box.lines else ""
        spans = self._text_spans
        if (key, line) not in spans:
            text = self._line_cells(line, rect.w, "center")
            marks = [i for i, cell in enumerate(text) if cell != " "]
            spans[(key, line)] = range(rect.x + min(marks), rect.x + max(marks) + 1) if marks else range(0)
        return spans[(key, line)]

    def _bar(self, key: str, rect: Rect, where: list[int], cells: list[str]) -> None:
        """A borderless box is one row: its text, on a line joining the ports of its edges."""
        arms = [0] * rect.w
        cols = [x - rect.x for x, _, _ in self.ports_out[key]] + [x - rect.x for x, _, _ in self.ports_in[key]]
        for x, _, _ in self.ports_out[key]:
            arms[x - rect.x] |= S
        for x, _, _ in self.ports_in[key]:
            arms[x - rect.x] |= N
        text = self._line_cells(self.boxes[key].lines[0] if self.boxes[key].lines else "", rect.w, "center")
        marks = [i for i, cell in enumerate(text) if cell != " "]
        if cols:
            lo, hi = min(cols + marks), max(cols + marks)
            for i in range(lo, hi):
                arms[i] |= E
                arms[i + 1] |= W
        table = self.glyphs.by_arms
        # spaces inside the text stay spaces (`v2 = exp(v1)  1.6487` reads as written);
        # the line joins the ports on either side of it
        inside = range(min(marks), max(marks) + 1) if marks else range(0)
        row = [cell if cell != " " or i in inside else table[arm] for i, (cell, arm) in enumerate(zip(text, arms))]
        first = rect.y * self.width + rect.x
        where.extend(range(first, first + rect.w))
        cells.extend(row)

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
        path = self.layout.paths[j]
        for key, (x, y) in ((edge.src, path[0]), (edge.dst, path[-1])):
            box = self.boxes[key]
            if box.border and box.style.endswith(".current"):
                self.styles[y, x] = self.style_id(box.style)  # as _paint_boxes draws a current box's ports
            elif not box.border and x in self._text_span(key):
                self.styles[y, x] = self.style_id(box.style)  # a one-row box's text where its port is
        rect = self.layout.labels.get(j)
        if rect is not None:
            _write_label(self, rect, label or "")
            self.styles[rect.y : rect.bottom, rect.x : rect.right] = self.style_id(style + ".label")

    def text(self) -> str:
        """The grid as plain text, one line per row, without trailing blanks."""
        return "\n".join("".join(row).rstrip() for row in self.chars.tolist())

    def runs(self, y: int) -> list[tuple[str, str]]:
        """Row y as (text, style key) runs, trailing blanks dropped (nothing ends in a styled blank)."""
        chars = self.chars[y]
        ids = self.styles[y]
        end = self.width
        while end > 0 and chars[end - 1] == " ":
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


# arm bit for a step (dx, dy) in {-1, 0, 1}², indexed by (dx + 1) * 3 + (dy + 1)
_ARM_OF_STEP = np.array([0, W, 0, N, 0, S, 0, E, 0], dtype=np.uint8)
_ARROW_OF_ARM = {S: 0, N: 1, E: 2, W: 3}


def _draw_edges(grid: Grid, layout: Layout, edges: Sequence[EdgeSpec]) -> None:
    """Write every edge's arms, glyphs, owners and styles in a few vectorised passes.

    A path's corners get the arms toward their neighbours; the cells between two corners
    get a straight line; a cell crossed by two edges ends up with all four arms (┼).
    """
    width = grid.width
    counts = np.array([len(path) for path in layout.paths], dtype=np.int64)
    points = np.array([p for path in layout.paths for p in path], dtype=np.int64).reshape(-1, 2)
    owner_of_point = np.repeat(np.arange(len(counts)), counts)
    last = np.cumsum(counts) - 1
    flat = points[:, 1] * width + points[:, 0]

    step = np.sign(np.diff(points, axis=0))  # from each point to the next
    same = owner_of_point[1:] == owner_of_point[:-1]  # the step stays inside one path
    arms = np.zeros(grid.height * width, dtype=np.uint8)
    corner_arms = np.zeros(len(points), dtype=np.uint8)
    toward_next = _ARM_OF_STEP[(step[:, 0] + 1) * 3 + step[:, 1] + 1]
    toward_prev = _ARM_OF_STEP[(1 - step[:, 0]) * 3 + 1 - step[:, 1]]
    corner_arms[:-1][same] |= toward_next[same]
    corner_arms[1:][same] |= toward_prev[same]

    # the cells strictly between consecutive corners
    seg_start = points[:-1][same]
    seg_end = points[1:][same]
    seg_owner = owner_of_point[:-1][same]
    vertical = seg_start[:, 0] == seg_end[:, 0]
    lo = np.minimum(seg_start, seg_end)
    length = np.abs(seg_end - seg_start).sum(axis=1) - 1
    v_idx = _runs(width, lo[vertical, 1] + 1, lo[vertical, 0], length[vertical], vertical=True)
    h_idx = _runs(width, lo[~vertical, 1], lo[~vertical, 0] + 1, length[~vertical])
    arms[v_idx] |= N | S
    arms[h_idx] |= E | W
    np.bitwise_or.at(arms, flat, corner_arms)
    drawn = np.flatnonzero(arms)
    grid.chars.flat[drawn] = _ARMS_TABLE[grid.glyphs][arms[drawn]]
    # an arrowhead where each path ends, pointing the way it arrives
    arrival = _ARM_OF_STEP[(step[last - 1, 0] + 1) * 3 + step[last - 1, 1] + 1]
    grid.chars.flat[flat[last]] = [grid.glyphs.arrows[_ARROW_OF_ARM[int(a)]] for a in arrival]

    idx = np.concatenate([v_idx, h_idx, flat])
    owner = np.concatenate([np.repeat(seg_owner[vertical], length[vertical]),
                            np.repeat(seg_owner[~vertical], length[~vertical]), owner_of_point])
    grid.owners.flat[idx] = owner + len(grid.box_keys)
    style_of_edge = np.array([grid.style_id(edge.style) for edge in edges], dtype=np.int16)
    grid.styles.flat[idx] = style_of_edge[owner]
    order = np.argsort(owner, kind="stable")
    grid.edge_cells = np.split(idx[order], np.cumsum(np.bincount(owner, minlength=len(edges)))[:-1])


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
        _draw_edges(grid, layout, edges)
    _draw_labels(grid, layout, edges)
    grid._paint_boxes(grid.box_keys)
    return grid
