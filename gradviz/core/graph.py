"""The graph IR: nodes in topological order, built once, never mutated."""

from __future__ import annotations

from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any, Mapping

LEAF_OPS = {"input": "input", "param": "parameter", "const": "constant"}
# Losses whose second argument is the target: data, never differentiated with respect to.
LOSS_OPS = frozenset({"bce", "mse", "mse_loss", "l1_loss", "cross_entropy", "nll_loss", "binary_cross_entropy",
                      "binary_cross_entropy_with_logits", "huber_loss", "smooth_l1_loss"})


def canonical_op(op: str) -> str:
    """The op's one name, whatever level it was traced at: the module Sigmoid, the in-place
    sigmoid_ and the function sigmoid are all 'sigmoid' (the rules table's name)."""
    return op.lower().rstrip("_")


def frozen_mapping(items: Mapping[str, Any] | None = None) -> Mapping[str, Any]:
    """A read-only view of a copy of `items`, so a built graph cannot be changed."""
    return MappingProxyType(dict(items or {}))


@dataclass(frozen=True)
class Node:
    """One value of the computation: a leaf (input, parameter, constant) or an op.

    `meta` carries what views show: 'definition' (`v3 = v2 + v1`), 'partials' (one
    formula per input, `e^{v1}`), 'shape', and for models 'module' (dotted path).
    """

    id: int
    op: str
    inputs: tuple[int, ...]
    label: str
    attrs: Mapping[str, Any] = field(default_factory=frozen_mapping)
    meta: Mapping[str, Any] = field(default_factory=frozen_mapping)

    @property
    def kind(self) -> str:
        """'input', 'parameter', 'constant' or 'op'."""
        return LEAF_OPS.get(self.op, "op")

    @property
    def is_leaf(self) -> bool:
        """True for inputs, parameters and constants."""
        return self.op in LEAF_OPS

    @property
    def definition(self) -> str:
        """The node's definition as text, e.g. `v2 = exp(v1)`; a leaf's is its label."""
        return self.meta.get("definition", self.label)


@dataclass(frozen=True)
class Graph:
    """Nodes in topological order (node.id == position) and named outputs."""

    nodes: tuple[Node, ...]
    outputs: Mapping[str, int]

    def __post_init__(self) -> None:
        object.__setattr__(self, "outputs", frozen_mapping(self.outputs))
        users: list[list[int]] = [[] for _ in self.nodes]
        for node in self.nodes:
            for i in node.inputs:
                # nodes come in order, so a repeated use is the last one listed (a hub's
                # thousands of users made `not in` quadratic)
                if 0 <= i < len(users) and (not users[i] or users[i][-1] != node.id):
                    users[i].append(node.id)
        object.__setattr__(self, "_users", tuple(tuple(u) for u in users))
        object.__setattr__(self, "_by_label", {n.label: n.id for n in reversed(self.nodes)})
        constant: set[int] = set()
        for node in self.nodes:
            if node.op == "const" or (not node.is_leaf and all(i in constant for i in node.inputs)):
                constant.add(node.id)
        object.__setattr__(self, "_constants", frozenset(constant))

    def __len__(self) -> int:
        return len(self.nodes)

    def users(self, node_id: int) -> tuple[int, ...]:
        """Ids of the nodes that take `node_id` as an input (its children), in order."""
        return self._users[node_id]  # type: ignore[attr-defined]

    def find(self, label: str) -> Node | None:
        """The first node with this label (`x1`, `v4`, `f`, `fc1`), or None."""
        node_id = self._by_label.get(label)  # type: ignore[attr-defined]
        return None if node_id is None else self.nodes[node_id]

    @property
    def input_ids(self) -> tuple[int, ...]:
        """Ids of the differentiable leaves (inputs and parameters), in order."""
        return tuple(n.id for n in self.nodes if n.kind in ("input", "parameter"))

    @property
    def target_ids(self) -> frozenset[int]:
        """Inputs used only as a loss's target (its second argument): data, like the batch's
        labels y, so no pass is run with respect to them and no adjoint is shown."""
        cached = self.__dict__.get("_targets")
        if cached is None:
            cached = frozenset(
                n.id for n in self.nodes
                if n.kind == "input" and self.users(n.id) and all(
                    self.nodes[u].op in LOSS_OPS and len(self.nodes[u].inputs) >= 2
                    and self.nodes[u].inputs[1] == n.id and self.nodes[u].inputs[0] != n.id
                    for u in self.users(n.id)))
            object.__setattr__(self, "_targets", cached)
        return cached

    @property
    def constant_ids(self) -> frozenset[int]:
        """Constants and the ops computed from constants alone (`1 + 1`): not differentiated."""
        return self._constants  # type: ignore[attr-defined]

    def output_label(self, node_id: int) -> str | None:
        """The output name of `node_id`, if it is an output."""
        for name, oid in self.outputs.items():
            if oid == node_id:
                return name
        return None

    def shown_output(self, name: str) -> str:
        """How a person reads output `name`: its node's label where the name was assigned
        again (c₃, the value output c means), else the name itself. Keys stay the names."""
        node_id = self.outputs.get(name)
        if node_id is None:
            return name
        node = self.nodes[node_id]
        return node.label if node.meta.get("rebinds") == name else name

    def ancestors(self, node_id: int) -> set[int]:
        """Every node `node_id` depends on, itself included."""
        seen = {node_id}
        stack = [node_id]
        while stack:
            for i in self.nodes[stack.pop()].inputs:
                if i not in seen:
                    seen.add(i)
                    stack.append(i)
        return seen

    def validate(self) -> None:
        """Raise ValueError unless ids are positions, inputs come earlier and outputs exist."""
        for position, node in enumerate(self.nodes):
            if node.id != position:
                raise ValueError(f"node {node.label!r} has id {node.id} at position {position}")
            if node.is_leaf and node.inputs:
                raise ValueError(f"leaf {node.label!r} has inputs")
            for i in node.inputs:
                if not 0 <= i < position:
                    raise ValueError(f"node {node.label!r} uses {i}, which does not come before it")
        for name, oid in self.outputs.items():
            if not 0 <= oid < len(self.nodes):
                raise ValueError(f"output {name!r} points at missing node {oid}")

    def to_networkx(self):  # -> networkx.DiGraph; imported lazily, the core must start fast
        """A networkx DiGraph view: node ids with a `node` attribute, edges with `position`."""
        import networkx as nx

        g = nx.MultiDiGraph()
        for node in self.nodes:
            g.add_node(node.id, node=node, label=node.label)
        for node in self.nodes:
            for position, i in enumerate(node.inputs):
                g.add_edge(i, node.id, position=position)
        return g
