"""The Trace's arrays for a model: numpy views of captured tensors, made when first read.

Converting every value and adjoint up front cost a small model as much as its forward
pass; a view usually reads a handful. CPU tensors share memory with their arrays.
"""

from __future__ import annotations

from typing import Any, Iterator, Mapping, Sequence

import numpy as np
import torch

from gradviz.core.graph import Graph, canonical_op
from gradviz.core.trace import Edge


def numpy_of(tensor: torch.Tensor) -> np.ndarray:
    """A numpy view of a CPU tensor (a copy from other devices; bfloat16 widened to float32)."""
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.float()
    return tensor.numpy(force=True)


_PENDING = object()


class TensorArrays(Sequence):
    """A sequence of numpy arrays backed by captured tensors, each converted when first read."""

    __slots__ = ("_items", "_arrays")

    def __init__(self, items: list[Any]):
        self._items = items  # tensors, numpy arrays or None
        self._arrays: list[Any] = [_PENDING] * len(items)

    def __len__(self) -> int:
        return len(self._items)

    def __getitem__(self, index):
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        array = self._arrays[index]
        if array is _PENDING:
            item = self._items[index]
            array = item if item is None or isinstance(item, np.ndarray) else numpy_of(item)
            self._arrays[index] = array
        return array

    def __iter__(self) -> Iterator[Any]:
        return (self[i] for i in range(len(self)))

    def __repr__(self) -> str:
        return f"TensorArrays({len(self)} arrays)"

    def tensors(self) -> Iterator[tuple[int, torch.Tensor]]:
        """(index, tensor) of every item still backed by a tensor."""
        return ((i, t) for i, t in enumerate(self._items) if isinstance(t, torch.Tensor))

    def freeze(self, index: int) -> None:
        """Keep item `index` as it is now: a copy, since the tensor behind it is about to change."""
        item = self._items[index]
        if isinstance(item, torch.Tensor):
            self._items[index] = item.detach().clone()
        if self._arrays[index] is not _PENDING and self._arrays[index] is not None:
            self._arrays[index] = np.array(self._arrays[index], copy=True)  # a view already handed out


class EdgeTerms(Mapping):
    """Edge → contribution, converted when first read; a source's only edge reads its adjoint."""

    def __init__(self, terms: dict[Edge, Any], adjoints: TensorArrays):
        self._terms = terms  # a tensor, a numpy array, or the node id whose adjoint it is
        self._adjoints = adjoints
        self._arrays: dict[Edge, np.ndarray] = {}

    def __getitem__(self, edge: Edge) -> np.ndarray:
        array = self._arrays.get(edge)
        if array is None:
            term = self._terms[edge]
            if isinstance(term, int):
                array = self._adjoints[term]
            elif isinstance(term, np.ndarray):
                array = term
            elif hasattr(term, "materialize"):  # made when read (capture.EmbeddedShare)
                array = numpy_of(term.materialize())
            else:
                array = numpy_of(term)
            self._arrays[edge] = array
        return array

    def __contains__(self, edge: object) -> bool:
        return edge in self._terms

    def __iter__(self) -> Iterator[Edge]:
        return iter(self._terms)

    def __len__(self) -> int:
        return len(self._terms)


class LazyPartials(Mapping):
    """∂v_j/∂v_i as numbers for elementwise activations and dropout, computed when first read."""

    def __init__(self, graph: Graph, values: tuple[np.ndarray, ...], aux: Mapping[int, Mapping[str, Any]],
                 edges: list[Edge]):
        self._graph = graph
        self._values = values
        self._aux = aux
        self._edges = edges
        self._cache: dict[Edge, np.ndarray] = {}

    def __getitem__(self, edge: Edge) -> np.ndarray:
        if edge not in self._cache:
            if edge not in self._edges:
                raise KeyError(edge)
            self._cache[edge] = self._compute(*edge)
        return self._cache[edge]

    def _compute(self, child: int, position: int) -> np.ndarray:
        node = self._graph.nodes[child]
        out = self._values[child]
        x = self._values[node.inputs[position]]
        op = canonical_op(node.op)
        data = self._aux.get(child, {})
        if "training" in data:  # dropout: kept units are scaled by 1/(1 − p), dropped ones are 0
            if data.get("mask") is None or not data["training"]:
                return np.ones_like(out)
            return data["mask"].astype(out.dtype) / np.asarray(1 - float(data["p"]), dtype=out.dtype)
        if op == "sigmoid":
            return out * (1 - out)
        if op == "tanh":
            return 1 - out * out
        return (x > 0).astype(out.dtype)  # relu

    def __iter__(self) -> Iterator[Edge]:
        return iter(self._edges)

    def __len__(self) -> int:
        return len(self._edges)
