"""The route stage: from dot's ranks and centres (a Ranked) to cells (a Layout): box
rectangles and orthogonal edge paths.

Ranks become horizontal bands as tall as their tallest box, and between two bands lies a
channel. An edge leaves its source through its own port on the bottom border, runs down
to a track (a row of the channel), across, and down into its own port on the target's top
border; an edge spanning several ranks crosses each band in a free column where dot left
room for it. Each channel is routed by channel.py, so no two edges share a cell except
where one crosses the other at a right angle, and no edge ever turns on another edge.
Ranks left to right (`Sized.across`) are routed the same way with every box turned, and
the layout turned back: ports on right and left borders, channels as columns.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from typing import Mapping

from gradviz.draw.channel import Hop, fit_ports, route_channel
from gradviz.draw.handoff import Layout, Point, Ranked, Rect


@dataclass(slots=True)
class _Item:
    """Something that takes room in a rank: a box, an edge label, or an edge passing through."""

    kind: str  # 'box' | 'label' | 'pass'
    ident: object
    w: int
    h: int
    center: float
    cluster: tuple[str, ...]
    rank: int
    left: int = 0


def _cluster_path(cluster: str | None) -> tuple[str, ...]:
    if not cluster:
        return ()
    parts = cluster.split(".")
    return tuple(".".join(parts[: i + 1]) for i in range(len(parts)))


def _common(a: tuple[str, ...], b: tuple[str, ...]) -> tuple[str, ...]:
    n = 0
    while n < min(len(a), len(b)) and a[n] == b[n]:
        n += 1
    return a[:n]


def _gap(left: _Item, right: _Item) -> int:
    """Blank columns between neighbours: one, plus two for each cluster frame between them."""
    shared = len(_common(left.cluster, right.cluster))
    frames = len(left.cluster) - shared + len(right.cluster) - shared
    return 1 + 2 * frames


def _spread(items: list[_Item]) -> None:
    """Place a rank's items at dot's centres, pushed right just enough to keep their gaps."""
    items.sort(key=lambda item: item.center)
    previous: _Item | None = None
    for item in items:
        item.left = round(item.center - item.w / 2)
        if previous is not None:
            item.left = max(item.left, previous.left + previous.w + _gap(previous, item))
        previous = item


def _column(item: _Item) -> int:
    """The column an edge uses through a label (its first column) or a bare passage."""
    return item.left


def _assign_ports(hops: list[Hop], rects: Mapping[str, Rect], borders: Mapping[str, bool]) -> None:
    """Give every hop its top and bottom column: out-ports first, then in-ports facing them."""
    outs: dict[str, list[Hop]] = defaultdict(list)
    ins: dict[str, list[Hop]] = defaultdict(list)
    for hop in hops:
        if hop.top.kind == "box":
            outs[hop.top.ident].append(hop)
        else:
            hop.a = _column(hop.top)
        if hop.bottom.kind == "box":
            ins[hop.bottom.ident].append(hop)
        else:
            hop.b = _column(hop.bottom)

    def interior(key: str, count: int) -> tuple[int, int]:
        rect = rects[key]
        inset = 1 if borders[key] else 0
        lo, hi = rect.x + inset, rect.right - 1 - inset
        # keep ports off a border's corners where there is room: "╰─┬─╯", not "╰┬──╯".
        if borders[key] and hi - lo - 2 >= 2 * (count - 1):
            lo, hi = lo + 1, hi - 1
        return lo, hi

    def toward(item: _Item) -> float:
        if item.kind == "box":
            rect = rects[item.ident]
            return rect.x + (rect.w - 1) / 2
        return _column(item)

    for key, group in outs.items():
        group.sort(key=lambda hop: (toward(hop.bottom), hop.edge))
        lo, hi = interior(key, len(group))
        for hop, col in zip(group, fit_ports([round(toward(h.bottom)) for h in group], lo, hi)):
            hop.a = col
    for key, group in ins.items():
        group.sort(key=lambda hop: (hop.a, hop.edge))
        lo, hi = interior(key, len(group))
        for hop, col in zip(group, fit_ports([h.a for h in group], lo, hi)):
            hop.b = col


def _frame_rows(clusters: Mapping[str, tuple[int, int]], n_ranks: int) -> tuple[list[list[str]], list[list[str]]]:
    """Per rank, the clusters whose frame opens above it and closes below it, outer first."""
    opening: list[list[str]] = [[] for _ in range(n_ranks)]
    closing: list[list[str]] = [[] for _ in range(n_ranks)]
    for path, (first, last) in clusters.items():
        opening[first].append(path)
        closing[last].append(path)
    return opening, closing


def _depth_rows(paths: list[str]) -> dict[str, int]:
    """Row offsets for frames that share a channel: one row per nesting depth, outer first."""
    depths = sorted({path.count(".") for path in paths})
    return {path: depths.index(path.count(".")) for path in paths}


def place(ranked: Ranked, tight: bool = False) -> Layout:
    """Turn dot's ranks and centres into cells: spread the ranks, assign ports, route channels.
    `tight`: a channel without frames is just its tracks (no blank row above and below them)."""
    layout = _place_down(ranked, tight)
    return _turned(layout) if ranked.sized.across else layout


def _turned(layout: Layout) -> Layout:
    """A layout made with ranks as rows, turned so that its ranks are columns (x and y
    swapped: a port on a bottom border goes to the right border, a top one to the left)."""
    def turn(rect: Rect) -> Rect:
        return Rect(rect.y, rect.x, rect.h, rect.w)

    return Layout(layout.height, layout.width, {key: turn(rect) for key, rect in layout.boxes.items()},
                  tuple(tuple((y, x) for x, y in path) for path in layout.paths),
                  {j: turn(rect) for j, rect in layout.labels.items()},
                  {path: turn(rect) for path, rect in layout.clusters.items()}, across=True)


def _place_down(ranked: Ranked, tight: bool) -> Layout:
    """`place` with ranks as rows (boxes turned first when the picture goes across)."""
    boxes, edges = ranked.sized.boxes, ranked.sized.edges
    sizes, label_sizes = ranked.sized.sizes, ranked.sized.label_sizes
    if ranked.sized.across:
        sizes = tuple((h, w) for w, h in sizes)
    n_ranks = 1 + max(
        [*ranked.ranks.values(), *(st.rank for chain in ranked.stations for st in chain)],
        default=0,
    )
    rank_items: list[list[_Item]] = [[] for _ in range(n_ranks)]
    by_key: dict[str, _Item] = {}
    for box, (w, h) in zip(boxes, sizes):
        item = _Item("box", box.key, w, h, ranked.centers[box.key], _cluster_path(box.cluster), ranked.ranks[box.key])
        by_key[box.key] = item
        rank_items[item.rank].append(item)
    chains: list[list[_Item]] = []
    for j, edge in enumerate(edges):
        src, dst = by_key[edge.src], by_key[edge.dst]
        if dst.rank <= src.rank:
            raise ValueError(f"edge {edge.src} -> {edge.dst} does not point down the ranks")
        shared = _common(src.cluster, dst.cluster)
        chain = [src]
        for i, st in enumerate(ranked.stations[j]):
            if st.label:
                w, h = label_sizes[j]
                item = _Item("label", j, w, h, st.cross, shared, st.rank)
            else:
                item = _Item("pass", (j, i), 1, 0, st.cross, shared, st.rank)
            rank_items[st.rank].append(item)
            chain.append(item)
        chain.append(dst)
        chains.append(chain)
    for items in rank_items:
        _spread(items)
    everything = [item for items in rank_items for item in items]
    shift = min((item.left - 2 * len(item.cluster) for item in everything), default=0)
    for item in everything:
        item.left -= shift

    borders = {box.key: box.border for box in boxes}
    flat = {key: Rect(item.left, 0, item.w, item.h) for key, item in by_key.items()}
    hops = [
        Hop(j, top.rank, top, bottom)
        for j, chain in enumerate(chains)
        for top, bottom in zip(chain, chain[1:])
    ]
    _assign_ports(hops, flat, borders)
    by_channel: list[list[Hop]] = [[] for _ in range(n_ranks)]
    for hop in hops:
        by_channel[hop.channel].append(hop)
    tracks = [route_channel(group) for group in by_channel]

    # clusters: the ranks they span, and their frames' rows in the channels around them.
    spans: dict[str, tuple[int, int]] = {}
    for item in everything:
        for path in item.cluster:
            first, last = spans.get(path, (item.rank, item.rank))
            spans[path] = (min(first, item.rank), max(last, item.rank))
    opening, closing = _frame_rows(spans, n_ranks)
    frame_top: dict[str, int] = {}
    frame_bottom: dict[str, int] = {}
    band_top: list[int] = []
    track_top: list[int] = []
    y = 0
    if opening[0]:
        rows = _depth_rows(opening[0])
        frame_top.update(rows)
        y = max(rows.values()) + 2
    for k in range(n_ranks):
        band_top.append(y)
        y += max([item.h for item in rank_items[k]] + [1])
        closes = _depth_rows(closing[k])
        opens = _depth_rows(opening[k + 1]) if k + 1 < n_ranks else {}
        n_close = len(set(closes.values()))
        n_open = len(set(opens.values()))
        for path, row in closes.items():
            # inner frames close first: the deepest takes the first row.
            frame_bottom[path] = y + 1 + (n_close - 1 - row)
        if k + 1 == n_ranks:
            y += n_close + 1 if n_close else 0
            break
        if tight and not n_close and not n_open:  # the tracks touch the ports and arrows
            track_top.append(y)
            y += max(tracks[k], 1)
            continue
        track_top.append(y + 1 + n_close)
        for path, row in opens.items():
            frame_top[path] = y + 1 + n_close + tracks[k] + row
        inner = n_close + tracks[k] + n_open
        y += inner + 2 if inner else 1
    height = y

    rects = {key: Rect(item.left, band_top[item.rank], item.w, item.h) for key, item in by_key.items()}
    labels = {
        item.ident: Rect(item.left + 2, band_top[item.rank], item.w - 2, item.h)
        for item in everything
        if item.kind == "label"
    }
    hops_of: dict[int, list[Hop]] = defaultdict(list)
    for hop in hops:
        hops_of[hop.edge].append(hop)
    paths = tuple(
        _edge_path(hops_of[j], rects[edge.src], rects[edge.dst], track_top)
        for j, edge in enumerate(edges)
    )
    clusters = _cluster_rects(everything, spans, frame_top, frame_bottom)
    width = max(
        [r.right for r in rects.values()]
        + [r.right for r in labels.values()]
        + [r.right for r in clusters.values()]
        + [x + 1 for path in paths for x, _ in path]
        + [1]
    )
    return Layout(width, height, rects, paths, labels, clusters)


def _edge_path(
    hops: list[Hop], src: Rect, dst: Rect, track_top: list[int]
) -> tuple[Point, ...]:
    """The corners of one edge's path, from its source port to its target port."""
    start = (hops[0].a, src.bottom - 1)
    points: list[Point] = [start]
    for hop in hops:
        if hop.a == hop.b:
            continue
        row = track_top[hop.channel] + hop.track
        if hop.dogleg is None:
            points += [(hop.a, row), (hop.b, row)]
        else:
            row2 = track_top[hop.channel] + hop.track2
            points += [(hop.a, row), (hop.dogleg, row), (hop.dogleg, row2), (hop.b, row2)]
    points.append((hops[-1].b, dst.y))
    return _simplify(points)


def _simplify(points: list[Point]) -> tuple[Point, ...]:
    """Drop repeated points and points in the middle of a straight run."""
    kept: list[Point] = []
    for point in points:
        if kept and kept[-1] == point:
            continue
        if len(kept) >= 2:
            (x0, y0), (x1, y1) = kept[-2], kept[-1]
            if (x0 == x1 == point[0]) or (y0 == y1 == point[1]):
                kept[-1] = point
                continue
        kept.append(point)
    return tuple(kept)


def _cluster_rects(
    items: list[_Item],
    spans: Mapping[str, tuple[int, int]],
    frame_top: Mapping[str, int],
    frame_bottom: Mapping[str, int],
) -> dict[str, Rect]:
    """Each cluster's frame: two columns outside its members and its inner frames."""
    lefts: dict[str, int] = {}
    rights: dict[str, int] = {}
    for item in items:
        for depth, path in enumerate(item.cluster):
            pad = 2 * (len(item.cluster) - depth)
            lefts[path] = min(lefts.get(path, item.left - pad), item.left - pad)
            rights[path] = max(rights.get(path, item.left + item.w + pad), item.left + item.w + pad)
    return {
        path: Rect(lefts[path], frame_top[path], rights[path] - lefts[path], frame_bottom[path] - frame_top[path] + 1)
        for path in spans
    }
