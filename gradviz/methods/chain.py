"""f composed with itself through one input: the graph AD builds for an unrolled loop. numpy only."""

from __future__ import annotations

from gradviz.core.graph import Graph, Node


def chain_graph(graph: Graph, output: str, wrt: str, depth: int) -> Graph:
    """The graph of f(f(…f(wrt, …)…), …) with `depth` copies of f's operations.

    Leaves are shared by every copy; in copy k the input `wrt` is copy k−1's output. So
    the graph grows by f's operation count per level: linearly, where the closed form's
    tree grows with every use of `wrt` multiplied.
    """
    source = graph.find(wrt)
    if source is None or not source.is_leaf:
        raise ValueError(f"{wrt!r} is not an input of the graph")
    leaves = [n for n in graph.nodes if n.is_leaf]
    nodes: list[Node] = [Node(i, n.op, (), n.label, n.attrs, n.meta) for i, n in enumerate(leaves)]
    leaf_id = {n.id: i for i, n in enumerate(leaves)}
    ops = [n for n in graph.nodes if not n.is_leaf]
    previous = leaf_id[source.id]
    for level in range(1, depth + 1):
        new_id = dict(leaf_id)
        new_id[source.id] = previous
        for node in ops:
            new_id[node.id] = len(nodes)
            nodes.append(Node(len(nodes), node.op, tuple(new_id[i] for i in node.inputs), f"{node.label}_{level}",
                              node.attrs, node.meta))
        previous = new_id[graph.outputs[output]]
    chained = Graph(tuple(nodes), {output: previous})
    chained.validate()
    return chained
