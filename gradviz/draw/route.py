"""From dot's ranks and centres to character cells: box rectangles and orthogonal edge paths.

Ranks become horizontal bands as tall as their tallest box, and between two bands lies a
channel. An edge leaves its source through its own port on the bottom border, runs down
to a track (a row of the channel), across, and down into its own port on the target's top
border; an edge spanning several ranks crosses each band in a free column where dot left
room for it. Each channel is routed like a VLSI channel (left-edge algorithm with
vertical constraints, doglegs for constraint cycles), so no two edges share a cell except
where one crosses the other at a right angle, and no edge ever turns on another edge.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from typing import Mapping, Sequence

from gradviz.draw.layout import (
    BoxSpec,
    EdgeSpec,
    Ranked,
    box_size,
    label_size,
    port_counts,
    rank_boxes,
)
from gradviz.draw.dot import DEFAULT_TIMEOUT_S

Point = tuple[int, int]


@dataclass(frozen=True)
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

    Each path starts on its source's port (the bottom border, or the cell under a
    borderless box) and ends on its target's port (the top border, or the cell above).
    """

    width: int
    height: int
    boxes: Mapping[str, Rect]
    paths: tuple[tuple[Point, ...], ...]
    labels: Mapping[int, Rect]
    clusters: Mapping[str, Rect]


@dataclass
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


@dataclass(eq=False)
class _Hop:
    """One edge's passage through one channel, from column a (top) to column b (bottom)."""

    edge: int
    channel: int
    top: _Item
    bottom: _Item
    a: int = 0
    b: int = 0
    track: int = -1
    dogleg: int | None = None  # a free column where the hop changes track
    track2: int = -1


@dataclass(eq=False)
class _Segment:
    """A horizontal run waiting for a track; it must lie below every segment in `above`."""

    hop: _Hop
    second: bool
    left: int
    right: int
    above: list["_Segment"] = field(default_factory=list)


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


def _fit(desired: Sequence[int], lo: int, hi: int) -> list[int]:
    """Ports in order, as near their desired columns as fits in [lo, hi], two columns apart."""
    n = len(desired)
    if n == 0:
        return []
    step = 2 if n == 1 or 2 * (n - 1) <= hi - lo else max(1, (hi - lo) // (n - 1))
    placed: list[int] = []
    for want in desired:
        floor = placed[-1] + step if placed else lo
        placed.append(max(want, floor, lo))
    ceiling = hi
    for i in range(n - 1, -1, -1):
        placed[i] = min(placed[i], ceiling)
        ceiling = placed[i] - step
    return placed


def _column(item: _Item) -> int:
    """The column an edge uses through a label (its first column) or a bare passage."""
    return item.left


def _assign_ports(hops: list[_Hop], rects: Mapping[str, Rect], borders: Mapping[str, bool]) -> None:
    """Give every hop its top and bottom column: out-ports first, then in-ports facing them."""
    outs: dict[str, list[_Hop]] = defaultdict(list)
    ins: dict[str, list[_Hop]] = defaultdict(list)
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
        for hop, col in zip(group, _fit([round(toward(h.bottom)) for h in group], lo, hi)):
            hop.a = col
    for key, group in ins.items():
        group.sort(key=lambda hop: (hop.a, hop.edge))
        lo, hi = interior(key, len(group))
        for hop, col in zip(group, _fit([h.a for h in group], lo, hi)):
            hop.b = col


def _break_cycles(hops: list[_Hop], used: set[int]) -> None:
    """Give one hop of every vertical-constraint cycle a dogleg through a column not in `used`."""
    top_at = {hop.a: hop for hop in hops}
    state: dict[_Hop, int] = {}
    for start in hops:
        walk: list[_Hop] = []
        hop: _Hop | None = start
        while hop is not None and hop not in state:
            state[hop] = 1
            walk.append(hop)
            above = top_at.get(hop.b)
            hop = above if above is not hop else None
        if hop is not None and state.get(hop) == 1:
            victim = hop
            middle = (victim.a + victim.b) // 2
            offset = 0
            while True:
                for col in (middle + offset, middle - offset):
                    if col >= 0 and col not in used:
                        victim.dogleg = col
                        break
                if victim.dogleg is not None:
                    break
                offset += 1
            used.add(victim.dogleg)
        for seen in walk:
            state[seen] = 2


def _route_channel(hops: list[_Hop]) -> int:
    """Assign tracks to the channel's bending hops; return how many tracks it needs."""
    bending = [hop for hop in hops if hop.a != hop.b]
    _break_cycles(bending, {hop.a for hop in hops} | {hop.b for hop in hops})
    segments: list[_Segment] = []
    first_of: dict[_Hop, _Segment] = {}
    last_of: dict[_Hop, _Segment] = {}
    for hop in bending:
        if hop.dogleg is None:
            seg = _Segment(hop, False, min(hop.a, hop.b), max(hop.a, hop.b))
            first_of[hop] = last_of[hop] = seg
            segments.append(seg)
        else:
            one = _Segment(hop, False, min(hop.a, hop.dogleg), max(hop.a, hop.dogleg))
            two = _Segment(hop, True, min(hop.dogleg, hop.b), max(hop.dogleg, hop.b), [one])
            first_of[hop], last_of[hop] = one, two
            segments += [one, two]
    # a hop entering at column c must turn above the hop leaving at column c.
    entering = {hop.a: first_of[hop] for hop in bending}
    for hop in bending:
        above = entering.get(hop.b)
        if above is not None and above.hop is not hop:
            last_of[hop].above.append(above)
    placed: dict[_Segment, int] = {}
    pending = sorted(segments, key=lambda seg: (seg.left, seg.right))
    track = 0
    while pending:
        reach = -1
        rest: list[_Segment] = []
        progress = False
        for seg in pending:
            ready = all(placed.get(up, track) < track for up in seg.above)
            if ready and seg.left > reach:
                placed[seg] = track
                reach = seg.right
                progress = True
            else:
                rest.append(seg)
        if not progress:
            raise RuntimeError("channel routing found a constraint cycle it could not break")
        pending = rest
        track += 1
    for seg, t in placed.items():
        if seg.second:
            seg.hop.track2 = t
        else:
            seg.hop.track = t
    return track


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


def place(
    boxes: Sequence[BoxSpec],
    edges: Sequence[EdgeSpec],
    ranked: Ranked,
    sizes: Sequence[tuple[int, int]],
    label_sizes: Mapping[int, tuple[int, int]],
) -> Layout:
    """Turn dot's ranks and centres into cells: spread the ranks, assign ports, route channels."""
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
        _Hop(j, top.rank, top, bottom)
        for j, chain in enumerate(chains)
        for top, bottom in zip(chain, chain[1:])
    ]
    _assign_ports(hops, flat, borders)
    by_channel: list[list[_Hop]] = [[] for _ in range(n_ranks)]
    for hop in hops:
        by_channel[hop.channel].append(hop)
    tracks = [_route_channel(group) for group in by_channel]

    # clusters: the ranks they span, and their frames' rows in the channels around them.
    spans: dict[str, tuple[int, int]] = {}
    for item in everything:
        for path in item.cluster:
            first, last = spans.get(path, (item.rank, item.rank))
            spans[path] = (min(first, item.rank), max(last, item.rank))
    opening, closing = _frame_rows(spans, n_ranks)
    min_channel = 1 if all(borders.values()) else 2
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
        track_top.append(y + 1 + n_close)
        for path, row in opens.items():
            frame_top[path] = y + 1 + n_close + tracks[k] + row
        inner = n_close + tracks[k] + n_open
        y += inner + 2 if inner else min_channel
    height = y

    rects = {key: Rect(item.left, band_top[item.rank], item.w, item.h) for key, item in by_key.items()}
    labels = {
        item.ident: Rect(item.left + 2, band_top[item.rank], item.w - 2, item.h)
        for item in everything
        if item.kind == "label"
    }
    hops_of: dict[int, list[_Hop]] = defaultdict(list)
    for hop in hops:
        hops_of[hop.edge].append(hop)
    paths = tuple(
        _edge_path(hops_of[j], rects[edge.src], rects[edge.dst], borders[edge.src], borders[edge.dst], track_top)
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
    hops: list[_Hop], src: Rect, dst: Rect, src_border: bool, dst_border: bool, track_top: list[int]
) -> tuple[Point, ...]:
    """The corners of one edge's path, from its source port to its target port."""
    start = (hops[0].a, src.bottom - 1 if src_border else src.bottom)
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
    points.append((hops[-1].b, dst.y if dst_border else dst.y - 1))
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


def layout_graph(
    boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec], timeout_s: float = DEFAULT_TIMEOUT_S
) -> Layout:
    """Size the boxes, rank them with dot, and place everything in cells."""
    ports = port_counts(boxes, edges)
    sizes = [box_size(box, ports[box.key]) for box in boxes]
    label_sizes = {j: label_size(edge.label) for j, edge in enumerate(edges) if edge.label}
    if not boxes:
        return Layout(0, 0, {}, (), {}, {})
    ranked = rank_boxes(boxes, edges, sizes, label_sizes, timeout_s)
    return place(boxes, edges, ranked, sizes, label_sizes)
