"""The Trace: a graph plus everything the passes computed on it. Plain, frozen data."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from gradviz.core.graph import Graph
from gradviz.core.masks import DiscardedRegion, discarded_nonfinite, masked_by_design
from gradviz.core.stats import facts_of

Edge = tuple[int, int]  # (child node id, input position in the child)


@dataclass(frozen=True)
class Trace:
    """Values, tangents (per input), adjoints and edge contributions (per output).

    - `values[i]`: node i's value.
    - `tangents[x][i]`: v'_i = ∂v_i/∂x along the all-ones direction of input x.
    - `adjoints[f][i]`: v̄_i = ∂f/∂v_i (seed: ones of f's shape); None for constants.
    - `contributions[f][(j, p)]`: the edge term v̄_j·∂v_j/∂v_i, where i is input p of j,
      already reduced to v_i's shape; the terms into i sum to v̄_i.
    - `partials[(j, p)]`: the local ∂v_j/∂v_i as numbers where that is a scalar or an
      elementwise (diagonal) Jacobian; absent otherwise.
    - `aux[i]`: extra per-node data a source captured (a dropout mask, for instance).
    - `info`: what the source says about the whole trace (for a model: its spec, level,
      batch, mode and notes); empty for expressions.

    An adjoint is None where nothing is differentiated: constants, and for models the
    tensors that do not require grad (integer inputs, targets, masks).

    values and adjoints are read by index or iteration: expressions give tuples, models
    give sequences that turn each captured tensor into a numpy array when first read.
    """

    graph: Graph
    values: Sequence[np.ndarray]
    tangents: Mapping[str, Sequence[np.ndarray | None]] = field(default_factory=dict)
    adjoints: Mapping[str, Sequence[np.ndarray | None]] = field(default_factory=dict)
    contributions: Mapping[str, Mapping[Edge, np.ndarray]] = field(default_factory=dict)
    partials: Mapping[Edge, np.ndarray] = field(default_factory=dict)
    aux: Mapping[int, Mapping[str, object]] = field(default_factory=dict)
    info: Mapping[str, object] = field(default_factory=dict)

    @property
    def input_labels(self) -> tuple[str, ...]:
        """Labels of the differentiable leaves (inputs and parameters)."""
        return tuple(self.graph.nodes[i].label for i in self.graph.input_ids)

    @property
    def output_names(self) -> tuple[str, ...]:
        """Output names in order."""
        return tuple(self.graph.outputs)

    def gradient(self, output: str, input_label: str) -> np.ndarray | None:
        """∂output/∂input from the reverse pass of `output`."""
        node = self.graph.find(input_label)
        adjoints = self.adjoints.get(output)
        return None if node is None or adjoints is None else adjoints[node.id]

    def edge_terms(self, output: str, node_id: int) -> list[tuple[Edge, np.ndarray | None]]:
        """The terms v̄_j·∂v_j/∂v_i into node i, one per outgoing edge, in child order.

        A term is None when the edge does not lead to `output` (it contributes zero).
        """
        contributions = self.contributions.get(output, {})
        terms = []
        for child in self.graph.users(node_id):
            for position, source in enumerate(self.graph.nodes[child].inputs):
                if source == node_id:
                    terms.append(((child, position), contributions.get((child, position))))
        return terms

    def pass_counts(self) -> dict[str, int]:
        """Passes each mode needs for the full gradient or Jacobian.

        Forward mode needs one per scalar element of what is differentiated (inputs and
        parameters; not a loss's target, which is data), reverse mode one per scalar
        output element: the lecture's reason deep learning uses reverse mode.
        """
        targets = self.graph.target_ids  # data: nobody differentiates with respect to a target
        ins = sum(int(self.values[i].size) for i in self.graph.input_ids if i not in targets)
        outs = sum(int(self.values[i].size) for i in self.graph.outputs.values())
        return {"forward_mode": ins, "reverse_mode": outs}

    def discarded_regions(self) -> list[DiscardedRegion]:
        """NaN/Inf that a later op throws away before any output (log(0) cast and dropped by where)."""
        cached = self.__dict__.get("_discarded")
        if cached is not None:
            return cached
        regions: list[DiscardedRegion] = []
        if not getattr(self.values, "summaries_only", False):  # a summaries-only trace keeps no positions
            facts = facts_of(self)
            finite = facts.finite
            intended = masked_by_design(self.graph, self.values, facts)
            bad = {n.id for n in self.graph.nodes if n.id not in intended and not finite(self.values[n.id])}
            regions = discarded_nonfinite(self.graph, self.values, bad)
        object.__setattr__(self, "_discarded", regions)
        return regions

    def discarded_nonfinite(self) -> set[int]:
        """Ids of the nodes whose NaN/Inf never reaches an output (see discarded_regions)."""
        return {i for region in self.discarded_regions() for i in region.nodes}

    def first_nonfinite(self) -> tuple[str, int] | None:
        """('value', id) or ('adjoint', id) of the first node that went NaN/Inf, or None.

        Values are searched in forward order, adjoints in reverse order (the order in
        which each pass computes them). -inf that a mask put there on purpose and a
        softmax made finite again is not counted (core.masks).
        """
        cached = self.__dict__.get("_first_nonfinite", ())
        if cached != ():
            return cached  # views, findings and the exit code all ask: the arrays never change
        finite = facts_of(self).finite
        found: tuple[str, int] | None = None
        intended: set[int] | None = None
        for node in self.graph.nodes:
            if not finite(self.values[node.id]):
                if intended is None:
                    intended = masked_by_design(self.graph, self.values, facts_of(self)) | self.discarded_nonfinite()
                if node.id not in intended:
                    found = ("value", node.id)
                    break
        else:
            for adjoints in self.adjoints.values():
                for node in reversed(self.graph.nodes):
                    a = adjoints[node.id]
                    if a is not None and not finite(a):
                        found = ("adjoint", node.id)
                        break
                if found is not None:
                    break
        object.__setattr__(self, "_first_nonfinite", found)
        return found
