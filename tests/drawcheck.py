"""Structural checks on a rasterised graph, shared by the drawing tests."""

from __future__ import annotations

import random
from collections import Counter

from gradviz.draw.layout import BoxSpec, EdgeSpec
from gradviz.draw.raster import ASCII, Glyphs, Grid

N, E, S, W = 1, 2, 4, 8
STEP = {N: (0, -1), E: (1, 0), S: (0, 1), W: (-1, 0)}
OPPOSITE = {N: S, S: N, E: W, W: E}


def random_dag(n: int, seed: int, clusters: bool = False, labels: bool = False) -> tuple[list[BoxSpec], list[EdgeSpec]]:
    """A random DAG shaped like a computation graph: few inputs, fan-in up to 3, wide fan-out."""
    rnd = random.Random(seed)
    boxes = []
    for i in range(n):
        lines = (f"n{i}",) + tuple("x" * rnd.randint(1, 12) for _ in range(rnd.randint(0, 2)))
        cluster = None
        if clusters and rnd.random() < 0.6:
            cluster = rnd.choice(["a", "a.b", "c", "c.d.e"])
        boxes.append(BoxSpec(f"k{i}", lines, cluster=cluster))
    edges = []
    for i in range(1, n):
        for _ in range(rnd.choice([1, 1, 2, 2, 3])):
            j = rnd.randrange(max(0, i - 15), i)
            label = f"e{len(edges)}" if labels and rnd.random() < 0.5 else None
            edges.append(EdgeSpec(f"k{j}", f"k{i}", label))
    return boxes, edges


def _arms_of(glyphs: Glyphs) -> dict[str, int]:
    return {g: mask for mask, g in enumerate(glyphs.by_arms) if mask and g not in "+"}


def traced_edges(grid: Grid) -> Counter:
    """Walk the glyphs from every port down (across: right) to the box it reaches; count (source, target) pairs.

    Between two boxes every cell must be a line, a corner (turn) or a crossing (go
    straight); a tee or a gap fails. Bordered boxes must show a tee where an edge leaves
    and an arrowhead, pointing the way it travels, where one arrives.
    """
    glyphs = grid.glyphs
    arms = _arms_of(glyphs)
    arrows = dict(zip(glyphs.arrows, (S, N, E, W)))
    found: Counter = Counter()
    for key in grid.box_keys:
        rect = grid.layout.boxes[key]
        box = grid.boxes[key]
        for x, y, _ in grid.ports_out[key]:
            if grid.layout.across:  # ranks left to right: edges leave the right border
                assert x == rect.right - 1 and rect.y < y < rect.bottom - 1, (key, x, y)
                assert grid.chars[y, x] == glyphs.side_port, (key, x, y)
                heading = E
            else:
                assert y == rect.bottom - 1, (key, x, y)
                if box.border:
                    assert grid.chars[y, x] == glyphs.port, (key, x, y)
                heading = S
            cx, cy = x, y
            for _ in range(grid.width * grid.height):
                dx, dy = STEP[heading]
                cx, cy = cx + dx, cy + dy
                g = str(grid.chars[cy, cx])
                owner = grid.owner_at(cx, cy)
                if owner is not None and owner[0] == "box":
                    if grid.boxes[owner[1]].border:
                        assert arrows.get(g) == heading, f"edge from {key} reaches {owner[1]} at {g!r}"
                    found[(key, owner[1])] += 1
                    break
                mask = arms[g] if g in arms else _ascii_mask(glyphs, g, heading)
                assert mask & OPPOSITE[heading], f"edge from {key} broken at ({cx},{cy}) {g!r}"
                if mask == N | E | S | W:
                    continue
                rest = mask & ~OPPOSITE[heading]
                assert rest in STEP, f"edge from {key} meets a junction at ({cx},{cy}) {g!r}"
                heading = rest
            else:
                raise AssertionError(f"edge from {key} never arrives")
    return found


def _ascii_mask(glyphs: Glyphs, g: str, heading: int) -> int:
    """ASCII corners are ambiguous by glyph alone ('.' is ┌ or ┐): use the direction of travel."""
    assert glyphs is ASCII, g
    if g == ".":
        return (S | E if heading == W else S | W) if heading in (E, W) else 0
    if g == "'":
        return (N | E if heading == W else N | W) if heading in (E, W) else (N | E | W)
    if g == "|":
        return N | S if heading in (N, S) else N | E | S | W
    raise AssertionError(f"unexpected glyph {g!r}")


def boxes_disjoint(grid: Grid) -> None:
    """No two boxes share a cell, and every cell of a box belongs to it."""
    rects = list(grid.layout.boxes.items())
    for key, rect in rects:
        owners = grid.owners[rect.y : rect.bottom, rect.x : rect.right]
        assert (owners == grid.box_keys.index(key)).all(), key
    cells = sum(rect.w * rect.h for _, rect in rects)
    taken = {(x, y) for _, r in rects for x in range(r.x, r.right) for y in range(r.y, r.bottom)}
    assert len(taken) == cells
