"""Sizing boxes in cells, the DOT handed to dot, ranks back from it, and channel routing."""

from __future__ import annotations

import pytest

from drawcheck import random_dag
from gradviz.draw import channel
from gradviz.draw.layout import (
    BoxSpec,
    EdgeSpec,
    box_size,
    dot_source,
    label_size,
    parse_plain,
    port_counts,
    rank_boxes,
    text_cells,
    text_width,
)
from gradviz.errors import ExportError


def test_combining_marks_share_a_cell():
    assert text_cells("v̄1 = 3") == ["v̄", "1", " ", "=", " ", "3"]
    assert text_width("v̄1") == 2


def test_box_size_fits_text_border_padding_and_ports():
    box = BoxSpec("a", ("v3 = v2 + v1", "2.1487"))
    assert box_size(box) == (12 + 4, 2 + 2)
    # seven edges leave it: every other column of the interior is a port
    assert box_size(BoxSpec("b", ("x",)), ports=7) == (15, 3)
    assert box_size(BoxSpec("c", ("●",), border=False), ports=2) == (3, 1)
    assert label_size("0.8244") == (8, 1)


def test_dot_source_fixes_node_sizes_and_nests_clusters():
    boxes = [BoxSpec("a", ("aa",), cluster="m.sub"), BoxSpec("b", ("b",), cluster="m"), BoxSpec("c", ("c",))]
    edges = [EdgeSpec("a", "b"), EdgeSpec("b", "c", "lbl")]
    sizes = [box_size(b) for b in boxes]
    text = dot_source(boxes, edges, sizes, {1: label_size("lbl")})
    assert "fixedsize=true" in text and "n0 [width=0.60 height=0.60]" in text
    assert text.index("subgraph cluster_0") < text.index("subgraph cluster_1") < text.index("n0 [")
    assert "n1 -> l1;" in text and "l1 -> n2;" in text


def test_parse_plain_reads_nodes_and_edge_points():
    nodes, paths = parse_plain("graph 1 2 3\nnode n0 1.5 2.5 1 0.6 \"\" solid box black lightgrey\n"
                               "edge n0 n1 4 1 2 1 1.5 1 1 1 0.5 solid black\nstop\n")
    assert nodes == {"n0": (1.5, 2.5)}
    assert paths == [("n0", "n1", [(1.0, 2.0), (1.0, 1.5), (1.0, 1.0), (1.0, 0.5)])]


@pytest.mark.parametrize("clusters", [False, True])
def test_ranks_follow_edges_and_long_edges_get_a_station_per_rank(clusters):
    boxes, edges = random_dag(60, seed=3, clusters=clusters)
    ports = port_counts(boxes, edges)
    ranked = rank_boxes(boxes, edges, [box_size(b, ports[b.key]) for b in boxes], {})
    for edge, stations in zip(edges, ranked.stations):
        top, bottom = ranked.ranks[edge.src], ranked.ranks[edge.dst]
        assert bottom > top
        assert [s.rank for s in stations] == list(range(top + 1, bottom))


def test_missing_dot_says_how_to_install(monkeypatch):
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.raises(ExportError, match="apt-get install graphviz"):
        rank_boxes([BoxSpec("a", ("a",))], [], [(5, 3)], {})


def test_fit_keeps_order_gaps_and_bounds():
    assert channel.fit_ports([5, 5, 5], 0, 10) == [5, 7, 9]
    assert channel.fit_ports([9, 9, 9], 0, 10) == [6, 8, 10]
    assert channel.fit_ports([0, 100], 3, 8) == [3, 8]


def _hop(a: int, b: int) -> channel.Hop:
    return channel.Hop(0, 0, None, None, a, b)


def test_channel_swaps_get_a_dogleg_and_never_share_a_column_run():
    # A enters at 5 and leaves at 10, B the other way round: each must turn above the
    # other, so one of them changes track through a free column.
    a, b = _hop(5, 10), _hop(10, 5)
    tracks = channel.route_channel([a, b])
    doglegged = [h for h in (a, b) if h.dogleg is not None]
    assert len(doglegged) == 1 and doglegged[0].dogleg not in (5, 10)
    assert tracks == 3


def test_channel_orders_tracks_by_vertical_constraints():
    # B leaves at column 4, where A enters: A must turn on a track above B's.
    a, b = _hop(4, 8), _hop(1, 4)
    channel.route_channel([a, b])
    assert a.track < b.track
    straight = _hop(6, 6)
    assert channel.route_channel([straight]) == 0
