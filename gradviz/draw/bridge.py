"""The look of a folded model with its open modules as containers: the look stage's last step.

A folded model is drawn as nested scopes (compound.py lays them out one by one). Here
every open module (a cluster) becomes one hollow box of its own, a *container*, and an
edge that crosses a container's frame is cut there: outside, it reaches the container's
border; inside, it starts at an entry port named after its source (`◂ln1`) or ends at an
exit port (`▾add_5`), so every drawn edge is attached at both ends within one scope.
"""

from __future__ import annotations

from typing import Sequence

from gradviz.draw.clusters import chain, parent, shared_cluster
from gradviz.draw.fold import MODULE, merged_style
from gradviz.draw.handoff import BoxSpec, EdgeSpec
from gradviz.draw.look import GraphLook

CONTAINER = "c/"  # box keys of open modules laid out on their own: 'c/blocks.3'
PORT_IN = "p<"  # entry ports: 'p<blocks.3|n12' (n12 enters blocks.3 here)
PORT_OUT = "p>"  # exit ports: 'p>blocks.3|n40' (n40 leaves blocks.3 here)


def is_port(key: str) -> bool:
    """True for an entry or exit port's box key."""
    return key.startswith((PORT_IN, PORT_OUT))


def port_source(key: str) -> str:
    """The box key of the box a port stands for ('p<blocks.3|n12' -> 'n12')."""
    return key.split("|", 1)[1]


def port_name(look: GraphLook, key: str, labels: Sequence[str]) -> str:
    """What a port of box `key` says: a folded module's path, else its node's label."""
    if key.startswith(MODULE):
        return key[len(MODULE):]
    node = look.node_of(key)
    assert node is not None, f"box {key} stands for no node"
    return labels[node]


def bridge(look: GraphLook, labels: Sequence[str]) -> GraphLook:
    """The look with every cluster as a container box and edges cut at containers' frames.

    `labels`: the graph's node labels, by node id (what ports say). An edge stands for the
    graph edges of every look edge it carries (`edges_drawn_by`), and takes their strongest
    style; `stands_for` maps each port to the box it stands for.
    """
    scope_of = {box.key: box.cluster or "" for box in look.boxes}
    scopes = sorted({path for cluster in scope_of.values() for path in [*chain("", cluster)]})
    boxes = list(look.boxes)
    for path in scopes:
        boxes.append(BoxSpec(CONTAINER + path, (path.rsplit(".", 1)[-1],), "cluster", parent(path) or None,
                             hollow=True))
    style_of = {box.key: box.style for box in look.boxes}
    targets = dict(look.targets)
    stands_for: dict[str, str] = {}
    pairs: dict[tuple[str, str], list[int]] = {}  # drawn edge -> the look edges it carries
    order: list[tuple[str, str]] = []

    def rep(key: str, scope: str) -> str:
        """What stands for box `key` among the members of `scope` (it or its container)."""
        own = scope_of[key]
        return key if own == scope else CONTAINER + chain(scope, own)[0]

    def port(prefix: str, scope: str, src: str) -> str:
        key = f"{prefix}{scope}|{src}"
        if key not in scope_of:
            scope_of[key] = scope
            mark = "◂" if prefix == PORT_IN else "▾"
            boxes.append(BoxSpec(key, (f"{mark}{port_name(look, src, labels)}",), style_of[src], scope or None,
                                 border=False))
            stands_for[key] = src
            node = look.node_of(src)
            if node is not None:
                targets[key] = node
        return key

    def add(src: str, dst: str, j: int) -> None:
        pair = (src, dst)
        if pair not in pairs:
            pairs[pair] = []
            order.append(pair)
        pairs[pair].append(j)

    for j, edge in enumerate(look.edges):
        outer = shared_cluster(scope_of[edge.src] or None, scope_of[edge.dst] or None)
        add(rep(edge.src, outer), rep(edge.dst, outer), j)
        for scope in chain(outer, scope_of[edge.src]):
            add(rep(edge.src, scope), port(PORT_OUT, scope, edge.src), j)
        for scope in chain(outer, scope_of[edge.dst]):
            add(port(PORT_IN, scope, edge.src), rep(edge.dst, scope), j)
    edges, edge_ids, merged = [], [], {}
    for pair in order:
        carried = pairs[pair]
        first = look.edges[carried[0]]
        if len(carried) == 1 and pair == (first.src, first.dst):
            edges.append(first)
            edge_ids.append(look.edge_ids[carried[0]])
            if look.edge_ids[carried[0]] is None:
                merged[len(edges) - 1] = look.edges_drawn_by(carried[0])
            continue
        style = merged_style(look.edges[j].style for j in carried)
        weight = max(look.edges[j].weight for j in carried)
        merged[len(edges)] = tuple(ids for j in carried for ids in look.edges_drawn_by(j))
        edges.append(EdgeSpec(pair[0], pair[1], None, style, weight))
        edge_ids.append(None)
    return GraphLook(tuple(boxes), tuple(edges), tuple(edge_ids), targets, merged, stands_for)
