"""The measure and rank stages: boxes and edges sized in character cells, ranked by `dot`.

`measure` gives every box and edge label its size (a Sized), `rank` hands them to `dot`
and keeps what routing needs (a Ranked).

`dot` sees every box as a fixed-size node (one column = 0.1 inch, one row = 0.2 inch,
so it keeps a terminal's aspect ratio) and returns, with `-Tplain`, each node's rank and
horizontal position and each edge's path. gradviz keeps only the horizontal positions and
the ranks; route.py then spaces the ranks itself so that edges get exactly as many
horizontal tracks as they need.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Callable, Mapping, Sequence

from gradviz.draw.cells import text_cells, text_width  # noqa: F401  (also imported from here)
from gradviz.draw.clusters import shared_cluster
from gradviz.draw.dot import DEFAULT_TIMEOUT_S, run_dot
from gradviz.draw.handoff import BoxSpec, EdgeSpec, Ranked, Sized, Station

COLUMN_IN = 0.1  # inches per character column in the DOT we hand to `dot`
ROW_IN = 0.2  # inches per character row
NODESEP_IN = 0.2  # two columns between neighbours (route.py keeps at least one)
CLUSTER_MARGIN_PT = 2 * COLUMN_IN * 72  # a frame and a blank column, as route.py draws them
RANKSEP_IN = 0.3


def port_counts(boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec]) -> dict[str, int]:
    """Per box, the larger of its in- and out-degree: every edge gets its own port column."""
    outs: dict[str, int] = defaultdict(int)
    ins: dict[str, int] = defaultdict(int)
    for edge in edges:
        outs[edge.src] += 1
        ins[edge.dst] += 1
    return {box.key: max(outs[box.key], ins[box.key]) for box in boxes}


def box_size(box: BoxSpec, ports: int = 1, across: bool = False) -> tuple[int, int]:
    """Width and height in cells: the text with a border and padding, wide enough (tall
    enough, `across`) for its ports."""
    text = max((text_width(line) for line in box.lines), default=0)
    # ports sit on every other column (row) so that two edges never touch.
    port_span = 2 * max(ports, 1) - 1
    if across:
        if not box.border:
            raise ValueError(f"box {box.key} has no border: ranks left to right need one to put ports on")
        return max(text + 4, 3), max(len(box.lines) + 2, port_span + 2)
    if box.border:
        return max(text + 4, port_span + 2, 3), len(box.lines) + 2
    return max(text, port_span, 1), 1  # a borderless box is one row: see raster.Grid._bar


def label_size(label: str) -> tuple[int, int]:
    """Width and height of an edge label: the edge runs down its first column, text from the third."""
    lines = label.split("\n")
    return 2 + max(text_width(line) for line in lines), len(lines)


def _cluster_tree(boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec],
                  label_sizes: Mapping[int, tuple[int, int]]) -> dict[str, list[str]]:
    """Map each cluster path ('' for the root) to its children: sub-clusters, boxes, labels."""
    children: dict[str, list[str]] = defaultdict(list)
    seen: set[str] = set()

    def enter(cluster: str | None) -> str:
        parent = ""
        if cluster:
            parts = cluster.split(".")
            for depth in range(1, len(parts) + 1):
                path = ".".join(parts[:depth])
                if path not in seen:
                    seen.add(path)
                    children[parent].append("cluster:" + path)
                parent = path
        return parent

    for index, box in enumerate(boxes):
        children[enter(box.cluster)].append(f"n{index}")
    clusters = {box.key: box.cluster for box in boxes}
    # a label stays inside the clusters its edge stays inside, as dot's own labels do
    for j in label_sizes:
        children[enter(shared_cluster(clusters[edges[j].src], clusters[edges[j].dst]))].append(f"l{j}")
    return children


def dot_source(
    boxes: Sequence[BoxSpec],
    edges: Sequence[EdgeSpec],
    sizes: Sequence[tuple[int, int]],
    label_sizes: Mapping[int, tuple[int, int]],
) -> str:
    """DOT text with one fixed-size node per box and per edge label, clusters as subgraphs."""
    index = {box.key: i for i, box in enumerate(boxes)}
    out = [
        "digraph G {",
        f" graph [rankdir=TB nodesep={NODESEP_IN} ranksep={RANKSEP_IN} splines=polyline newrank=true];",
        ' node [shape=box fixedsize=true label=""];',
    ]
    children = _cluster_tree(boxes, edges, label_sizes)
    cluster_ids: dict[str, int] = {}

    def emit(parent: str, indent: str) -> None:
        for child in children.get(parent, ()):
            if child.startswith("cluster:"):
                path = child[len("cluster:"):]
                cluster_ids[path] = len(cluster_ids)
                out.append(f'{indent}subgraph cluster_{cluster_ids[path]} {{ label=""; margin={CLUSTER_MARGIN_PT:.1f};')
                emit(path, indent + " ")
                out.append(indent + "}")
            else:
                w, h = sizes[int(child[1:])] if child[0] == "n" else label_sizes[int(child[1:])]
                out.append(f"{indent}{child} [width={w * COLUMN_IN:.2f} height={h * ROW_IN:.2f}];")

    emit("", " ")
    for j, edge in enumerate(edges):
        src, dst = index[edge.src], index[edge.dst]
        weight = f" [weight={edge.weight}]" if edge.weight != 1 else ""
        if j in label_sizes:
            out.append(f" n{src} -> l{j}{weight};")
            out.append(f" l{j} -> n{dst}{weight};")
        else:
            out.append(f" n{src} -> n{dst}{weight};")
    out.append("}")
    return "\n".join(out) + "\n"


def _cross_at(points: Sequence[tuple[float, float]], y: float) -> float:
    """The x where the polyline through `points` (y falling) crosses height y."""
    for (x0, y0), (x1, y1) in zip(points, points[1:]):
        lo, hi = min(y0, y1), max(y0, y1)
        if lo <= y <= hi:
            if hi == lo:
                return (x0 + x1) / 2
            return x0 + (x1 - x0) * (y - y0) / (y1 - y0)
    # the path starts and ends at box borders, so a rank between them is always crossed;
    # fall back to the nearest end in case dot bends around it.
    return min(points, key=lambda p: abs(p[1] - y))[0]


def parse_plain(text: str) -> tuple[dict[str, tuple[float, float]], list[tuple[str, str, list[tuple[float, float]]]]]:
    """Node centres and edge paths (inches, y up) from `dot -Tplain` output."""
    nodes: dict[str, tuple[float, float]] = {}
    paths: list[tuple[str, str, list[tuple[float, float]]]] = []
    for line in text.splitlines():
        parts = line.split()
        if not parts:
            continue
        if parts[0] == "node":
            nodes[parts[1]] = (float(parts[2]), float(parts[3]))
        elif parts[0] == "edge":
            count = int(parts[3])
            coords = [float(v) for v in parts[4 : 4 + 2 * count]]
            paths.append((parts[1], parts[2], list(zip(coords[0::2], coords[1::2]))))
    return nodes, paths


def measure(boxes: Sequence[BoxSpec], edges: Sequence[EdgeSpec], across: bool = False) -> Sized:
    """The measure stage: each box's size in cells (wide enough for its ports) and each
    edge label's. `across`: ranks left to right, bordered boxes and no edge labels only."""
    ports = port_counts(boxes, edges)
    if across and any(edge.label for edge in edges):
        raise ValueError("edge labels are drawn top to bottom only: draw them beside the current edges")
    return Sized(tuple(boxes), tuple(edges), tuple(box_size(box, ports[box.key], across) for box in boxes),
                 {j: label_size(edge.label) for j, edge in enumerate(edges) if edge.label}, ports, across)


def rank(sized: Sized, timeout_s: float = DEFAULT_TIMEOUT_S,
         plain: Callable[[str, float], str] | None = None) -> Ranked:
    """The rank stage: `dot` lays the sized boxes out and gradviz keeps ranks, centres (in
    columns) and edge stations. `plain(source, timeout_s)`, when given, answers for `dot`
    (compound.py's memory of earlier answers)."""
    # across, dot ranks downwards all the same: it gets each box turned (height as width)
    sizes = tuple((h, w) for w, h in sized.sizes) if sized.across else sized.sizes
    source = dot_source(sized.boxes, sized.edges, sizes, sized.label_sizes)
    text = plain(source, timeout_s) if plain is not None else run_dot(source, "plain", timeout_s).decode("utf-8")
    return read_ranks(text, sized)


def rank_boxes(
    boxes: Sequence[BoxSpec],
    edges: Sequence[EdgeSpec],
    sizes: Sequence[tuple[int, int]],
    label_sizes: Mapping[int, tuple[int, int]],
    timeout_s: float = DEFAULT_TIMEOUT_S,
) -> Ranked:
    """`rank` of boxes whose sizes are given."""
    return rank(Sized(tuple(boxes), tuple(edges), tuple(sizes), label_sizes, port_counts(boxes, edges)), timeout_s)


def read_ranks(plain: str, sized: Sized) -> Ranked:
    """Ranks, centres and edge stations from the `dot -Tplain` output of `dot_source`."""
    boxes, edges, label_sizes = sized.boxes, sized.edges, sized.label_sizes
    nodes, paths = parse_plain(plain)
    # nodes of one rank share their centre's y; round away dot's float noise.
    levels = sorted({round(y, 2) for _, y in nodes.values()}, reverse=True)
    rank_of_y = {y: r for r, y in enumerate(levels)}
    rank = {name: rank_of_y[round(y, 2)] for name, (_, y) in nodes.items()}
    by_pair: dict[tuple[str, str], list[list[tuple[float, float]]]] = defaultdict(list)
    for tail, head, points in paths:
        by_pair[(tail, head)].append(points)
    taken: dict[tuple[str, str], int] = defaultdict(int)

    def crossings(tail: str, head: str) -> list[Station]:
        # parallel edges come back in input order; which one is which does not matter.
        pair = (tail, head)
        points = by_pair[pair][taken[pair]]
        taken[pair] += 1
        return [
            Station(r, _cross_at(points, levels[r]) / COLUMN_IN)
            for r in range(rank[tail] + 1, rank[head])
        ]

    index = {box.key: i for i, box in enumerate(boxes)}
    stations: list[tuple[Station, ...]] = []
    label_centers: dict[int, float] = {}
    for j, edge in enumerate(edges):
        src, dst = f"n{index[edge.src]}", f"n{index[edge.dst]}"
        if j in label_sizes:
            name = f"l{j}"
            label_centers[j] = nodes[name][0] / COLUMN_IN
            own = Station(rank[name], label_centers[j], label=True)
            stations.append((*crossings(src, name), own, *crossings(name, dst)))
        else:
            stations.append(tuple(crossings(src, dst)))
    return Ranked(
        sized=sized,
        ranks={box.key: rank[f"n{i}"] for i, box in enumerate(boxes)},
        centers={box.key: nodes[f"n{i}"][0] / COLUMN_IN for i, box in enumerate(boxes)},
        stations=tuple(stations),
        label_centers=label_centers,
    )
