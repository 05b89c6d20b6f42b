"""The character grid: every edge a connected path of glyphs, boxes apart, labels once."""

from __future__ import annotations

import re
from collections import Counter

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from drawcheck import boxes_disjoint, random_dag, traced_edges
from gradviz.draw.layout import BoxSpec, EdgeSpec
from gradviz.draw.raster import ASCII, UNICODE, rasterise
from gradviz.draw.pipeline import layout_graph


def _draw(n: int, seed: int, clusters: bool = False, labels: bool = False, ascii: bool = False):
    boxes, edges = random_dag(n, seed, clusters=clusters, labels=labels)
    return boxes, edges, rasterise(layout_graph(boxes, edges), boxes, edges, ascii)


@pytest.mark.parametrize(
    ("n", "seed", "clusters", "labels"),
    [(30, 0, False, False), (30, 1, False, True), (60, 2, True, False), (60, 3, True, True), (250, 4, False, False)],
)
def test_random_dags_draw_every_edge_as_a_path_from_source_to_target(n, seed, clusters, labels):
    boxes, edges, grid = _draw(n, seed, clusters, labels)
    assert traced_edges(grid) == Counter((e.src, e.dst) for e in edges)
    boxes_disjoint(grid)
    text = grid.text()
    for box in boxes:
        assert len(re.findall(rf"\b{box.lines[0]}\b", text)) == 1, box.lines[0]
    for edge in edges:
        if edge.label:
            assert len(re.findall(rf"\b{edge.label}\b", text)) == 1


def test_only_ports_put_tees_on_the_drawing():
    # a tee inside an edge would mean two edges merging into one
    _, _, grid = _draw(120, 5)
    tees = set("├┤┴")
    assert not tees & set(grid.chars.ravel().tolist())
    ports = sum(len(v) for v in grid.ports_out.values())
    assert int((grid.chars == "┬").sum()) == ports


def test_ascii_is_the_same_drawing_in_other_glyphs():
    boxes, edges = random_dag(40, 6, labels=True)
    layout = layout_graph(boxes, edges)
    fancy = rasterise(layout, boxes, edges).chars
    plain = rasterise(layout, boxes, edges, ascii=True).chars
    table = dict(zip(UNICODE.by_arms + tuple(UNICODE.box) + UNICODE.arrows + (UNICODE.port,),
                     ASCII.by_arms + tuple(ASCII.box) + ASCII.arrows + (ASCII.port,)))
    expected = np.vectorize(lambda c: table.get(c, c))(fancy)
    assert (expected == plain).all()
    assert all(ord(c) < 128 for c in "".join(plain.ravel().tolist()))


def test_borderless_dots_still_connect_every_edge():
    boxes, edges = random_dag(50, 7)
    dots = [BoxSpec(b.key, ("●",), border=False) for b in boxes]
    grid = rasterise(layout_graph(dots, edges), dots, edges)
    assert traced_edges(grid) == Counter((e.src, e.dst) for e in edges)
    assert int((grid.chars == "●").sum()) == len(dots)


def test_paint_restyles_one_box_and_owner_at_finds_it():
    boxes = [BoxSpec("a", ("a",)), BoxSpec("b", ("b", "1.0"))]
    edges = [EdgeSpec("a", "b")]
    grid = rasterise(layout_graph(boxes, edges), boxes, edges)
    before = grid.styles.copy()
    rect = grid.layout.boxes["b"]
    grid.paint_box("b", ("b", "2.0"), style="op.current")
    changed = np.argwhere(grid.styles != before)
    assert changed.size and all(rect.y <= y < rect.bottom and rect.x <= x < rect.right for y, x in changed)
    assert "2.0" in grid.text() and "1.0" not in grid.text()
    assert grid.owner_at(rect.x + 1, rect.y + 1) == ("box", "b")
    x, y = grid.layout.paths[0][0]
    assert grid.owner_at(x, y + 1) == ("edge", 0)
    assert grid.owner_at(-1, 0) is None


def test_long_text_is_cropped_with_an_ellipsis():
    boxes = [BoxSpec("a", ("short",))]
    grid = rasterise(layout_graph(boxes, []), boxes, [])
    grid.paint_box("a", ("much too long for it",))
    assert "much…" in grid.text()


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 45), seed=st.integers(0, 10_000), clusters=st.booleans(), labels=st.booleans(),
       borders=st.booleans())
def test_any_small_dag_draws_cleanly(n, seed, clusters, labels, borders):
    boxes, edges = random_dag(n, seed, clusters=clusters, labels=labels)
    if not borders:
        boxes = [BoxSpec(b.key, ("●",), cluster=b.cluster, border=False) for b in boxes]
        edges = [EdgeSpec(e.src, e.dst) for e in edges]
    grid = rasterise(layout_graph(boxes, edges), boxes, edges)
    assert traced_edges(grid) == Counter((e.src, e.dst) for e in edges)
    boxes_disjoint(grid)
