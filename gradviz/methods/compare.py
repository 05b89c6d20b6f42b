"""All three methods on one function at one point: what `gradviz methods` shows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gradviz.core.trace import Trace
from gradviz.errors import GradvizError
from gradviz.methods.numeric import Sweep, sweep


@dataclass(frozen=True)
class Comparison:
    """Numerical, symbolic and automatic differentiation of `output` at `point`."""

    source: str
    output: str  # as a person reads it: c₃ where the name c was assigned again (Graph.shown_output)
    point: dict[str, float]
    wrt: str  # the input whose sweep is drawn and whose chain shows the swell
    ad: dict[str, float]  # reverse mode's gradient, one pass
    ad_nodes: int
    sweeps: dict[str, tuple[Sweep, Sweep]]  # input → (forward, central)
    symbolic: object | None  # symbolic.Symbolic, or None when it stopped
    stop: str | None  # why symbolic differentiation stopped
    swell: tuple = ()  # symbolic.SwellRow per depth
    depth: int = 0  # the deepest chain asked for (swell may stop earlier)


class NonFinitePoint(GradvizError):
    """f or AD's gradient is NaN/Inf at the point: a real finding (exit 1), like `trace` reports."""

    exit_code = 1

    def __init__(self, trace: Trace):
        super().__init__("f or its gradient is not finite at this point")
        self.trace = trace


def scalar_point(trace: Trace) -> dict[str, float]:
    """The inputs as floats; GradvizError unless f is a scalar function of scalar inputs."""
    graph = trace.graph
    point = {}
    for i in graph.input_ids:
        value = np.asarray(trace.values[i])
        if value.size != 1:
            raise GradvizError(f"methods compares derivatives of a function of scalar inputs; "
                               f"{graph.nodes[i].label} has shape {'×'.join(map(str, value.shape))}")
        point[graph.nodes[i].label] = float(value)
    if len(graph.outputs) != 1:
        raise GradvizError(f"methods needs one output; this expression has {len(graph.outputs)}: "
                           f"{', '.join(graph.outputs)}")
    output = next(iter(graph.outputs))
    if np.asarray(trace.values[graph.outputs[output]]).size != 1:
        raise GradvizError(f"methods needs a scalar output; {output} is not a scalar")
    if not point:
        raise GradvizError("methods needs at least one input to differentiate by")
    return point


def compare(trace: Trace, source: str, wrt: str | None = None, depth: int = 6, budget: float = 3.0) -> Comparison:
    """Run the finite-difference sweeps, SymPy, and read AD's gradient from the trace."""
    point = scalar_point(trace)
    output = next(iter(trace.graph.outputs))
    wrt = wrt or next(iter(point))
    if wrt not in point:
        raise GradvizError(f"--wrt {wrt}: no such input (inputs: {', '.join(point)})")
    # Every method compares against f and AD's gradient: when they are NaN/Inf there is
    # nothing to compare with, and the first node that went non-finite is the finding.
    if trace.first_nonfinite() is not None:
        raise NonFinitePoint(trace)
    ad = {name: float(trace.gradient(output, name)) for name in point}
    leaves: Mapping[str, np.ndarray] = {name: np.asarray(value) for name, value in point.items()}
    sweeps = {name: sweep(trace.graph, leaves, output, name, ad[name]) for name in point}
    symbolic, stop, rows = _symbolic(trace, output, point, wrt, depth, budget)
    return Comparison(source, trace.graph.shown_output(output), point, wrt, ad, len(trace.graph), sweeps, symbolic, stop, tuple(rows), depth)


def _symbolic(trace: Trace, output: str, point: dict[str, float], wrt: str, depth: int, budget: float):
    from gradviz.budgets import time_bound
    from gradviz.methods.symbolic import SymbolicStop, differentiate, swell

    def out_of_time() -> SymbolicStop:
        return SymbolicStop(f"symbolic differentiation stopped after {budget:g} s: the closed form of "
                            f"∂{trace.graph.shown_output(output)} grows too fast to write out (expression swell)")

    try:
        with time_bound(budget, out_of_time):  # SymPy's cost shows only while it works
            symbolic = differentiate(trace.graph, output, point)
    except SymbolicStop as exc:
        return None, str(exc), []
    rows = swell(trace.graph, output, wrt, depth, budget) if depth > 0 else []
    return symbolic, None, rows
