"""A function of two inputs, parsed once; values and gradients from gradviz's own passes."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from gradviz.core.graph import Graph
from gradviz.core.passes import forward_values, reverse_pass
from gradviz.core.trace import Trace
from gradviz.errors import GradvizError


GRID_BYTES = 64 * 2**20  # the vectorised map pass holds at most this much at once
GRID_NODE_POINTS = 4_000_000  # a map of f one grid point at a time: ~5 µs per node-point, ~20 s


class DescentError(GradvizError):
    """A descent or landscape request that cannot work: wrong inputs, bad rates, bad windows."""


@dataclass(frozen=True)
class Objective:
    """f(x, y) as a gradviz graph: the two inputs in order and the one output."""

    text: str
    graph: Graph
    names: tuple[str, str]
    output: int

    def value(self, theta: np.ndarray) -> float:
        """f(θ) by the forward pass."""
        values = forward_values(self.graph, self._leaves(theta))
        return float(values[self.output])

    def value_and_grad(self, theta: np.ndarray) -> tuple[float, np.ndarray]:
        """f(θ) and ∇f(θ): the forward pass, then the reverse pass seeded at the output."""
        values = forward_values(self.graph, self._leaves(theta))
        adjoints, _ = reverse_pass(self.graph, values, self.output)
        ids = [self.graph.find(name).id for name in self.names]
        grad = np.array([float(adjoints[i]) for i in ids])
        return float(values[self.output]), grad

    def trace_at(self, theta: np.ndarray) -> Trace:
        """The full trace (values, tangents, adjoints) at θ, for the stepper."""
        from gradviz.core.passes import run_passes

        return run_passes(self.graph, self._leaves(theta))

    def grid(self, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        """f over the grid ys × xs (rows are y): one vectorised forward pass when f is
        elementwise, else one pass per point."""
        from gradviz.budgets import Factor, check_work

        gx, gy = np.meshgrid(xs, ys)
        # The pass keeps every node's value over the rows it is given: rows in chunks keep
        # that within GRID_BYTES however big f is (a 30,000-node f over 90×90 was 3.75 GB).
        per_row = max(1, len(self.graph.nodes) * gx.shape[1] * 8)
        rows = max(1, GRID_BYTES // per_row)
        try:
            parts = []
            for top in range(0, gx.shape[0], rows):
                values = forward_values(self.graph, {self.names[0]: gx[top:top + rows], self.names[1]: gy[top:top + rows]})
                part = np.asarray(values[self.output], dtype=float)
                if part.shape != gx[top:top + rows].shape:
                    raise GradvizError("not elementwise")
                parts.append(part)
            return np.concatenate(parts, axis=0)
        except GradvizError:
            pass
        # A reduction (sum, mean, norm) mixes grid points: evaluate them one by one.
        check_work("the map of f", [Factor("grid points", gx.size, "the map's size (a smaller terminal or window)"),
                                    Factor("nodes of f", len(self.graph.nodes), "the size of EXPR")],
                   GRID_NODE_POINTS, "node evaluations, one grid point at a time")
        return np.array([[self.value(np.array([x, y])) for x in xs] for y in ys])

    def _leaves(self, theta: np.ndarray) -> dict[str, np.ndarray]:
        return {self.names[0]: np.asarray(theta[0], dtype=float), self.names[1]: np.asarray(theta[1], dtype=float)}


def parse_objective(text: str) -> Objective:
    """Parse EXPR; it must have exactly two scalar inputs and one output."""
    from gradviz.sources.expr import parse_expression

    graph = parse_expression(text)
    names = tuple(graph.nodes[i].label for i in graph.input_ids)
    if len(names) != 2:
        listed = ", ".join(names) or "none"
        raise DescentError(f"descent needs a function of exactly two inputs; this one has {len(names)} ({listed})")
    if len(graph.outputs) != 1:
        raise DescentError(f"descent needs one output; this expression has {len(graph.outputs)} "
                           f"({', '.join(graph.outputs)})")
    objective = Objective(text, graph, (names[0], names[1]), next(iter(graph.outputs.values())))
    probe = forward_values(graph, objective._leaves(np.zeros(2)))[objective.output]
    if np.asarray(probe).size != 1:
        raise DescentError(f"descent needs a scalar output; f has shape {np.asarray(probe).shape}")
    return objective
