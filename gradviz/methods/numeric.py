"""Numerical differentiation: forward and central differences over h = 10⁻¹ … 10⁻¹⁵.

The error against AD falls with h while truncation dominates (∝ h forward, ∝ h²
central) and rises again once rounding does (∝ ε/h): the best h sits near √ε ≈ 1e-8
(forward) and ∛ε ≈ 6e-6 (central), where floating-point theory puts it. numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping

import numpy as np

from gradviz.core.graph import Graph
from gradviz.core.passes import forward_values

STEPS = tuple(10.0 ** -k for k in range(1, 16))
EPS = float(np.finfo(np.float64).eps)
# Where theory puts the best step (scale factors of order 1 left out).
THEORY = {"forward": EPS ** 0.5, "central": EPS ** (1 / 3)}
FORMULAS = {"forward": "(f(x + h) − f(x)) / h", "central": "(f(x + h) − f(x − h)) / 2h"}
SLOPES = {"forward": "h", "central": "h²"}


@dataclass(frozen=True)
class Sweep:
    """One difference formula over every step size: estimates and their errors against AD."""

    method: str  # 'forward' or 'central'
    wrt: str
    steps: tuple[float, ...]
    estimates: tuple[float, ...]
    errors: tuple[float, ...]  # |estimate − AD| / |AD| (absolute where AD is 0)
    exact: float  # the AD value they are compared with

    @property
    def best(self) -> int:
        """Index of the step with the smallest error (NaN errors never win)."""
        errors = np.nan_to_num(np.asarray(self.errors), nan=np.inf)
        return int(np.argmin(errors))

    @property
    def best_step(self) -> float:
        """The h with the smallest error."""
        return self.steps[self.best]

    @property
    def best_error(self) -> float:
        """The smallest error over the sweep."""
        return self.errors[self.best]

    def region(self, index: int) -> str:
        """'truncation' for steps above the best one, 'rounding' below it, 'best' at it."""
        if index == self.best:
            return "best"
        return "truncation" if index < self.best else "rounding"


def evaluate(graph: Graph, leaves: Mapping[str, np.ndarray], output: str) -> float:
    """f at the given leaves, as a Python float."""
    values = forward_values(graph, leaves, "float64")
    return float(values[graph.outputs[output]])


def sweep(graph: Graph, leaves: Mapping[str, np.ndarray], output: str, wrt: str, exact: float,
          steps: tuple[float, ...] = STEPS) -> tuple[Sweep, Sweep]:
    """Forward and central differences of output with respect to the scalar input wrt."""
    x = float(leaves[wrt])

    def f_at(value: float) -> float:
        return evaluate(graph, {**leaves, wrt: np.asarray(value)}, output)

    f0 = f_at(x)
    forward, central = [], []
    for h in steps:
        forward.append((f_at(x + h) - f0) / h)
        central.append((f_at(x + h) - f_at(x - h)) / (2 * h))
    scale = abs(exact) if exact != 0 else 1.0
    sweeps = []
    for method, estimates in (("forward", forward), ("central", central)):
        errors = tuple(abs(e - exact) / scale for e in estimates)
        sweeps.append(Sweep(method, wrt, tuple(steps), tuple(estimates), errors, exact))
    return sweeps[0], sweeps[1]
