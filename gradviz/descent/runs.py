"""What `gradviz descent` was asked for, checked: starts, rates, optimizers, window; and its paths."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradviz.budgets import Factor, check_work
from gradviz.descent.objective import DescentError, Objective
from gradviz.optimizers import find_optimizer, optimizer_names, unknown_optimizer_message
from gradviz.descent.paths import Path, run_path
from gradviz.descent.surface import Window, fit_window

MAX_PATHS = 12
MAX_STEPS = 100_000
# One step of one path evaluates f and its gradient: about 30 µs per node on the 2-core test
# machine under load (a 240-node f, 200 steps: 1.5 s), so 2e6 node-steps is about a minute.
MAX_NODE_STEPS = 2_000_000


def parse_rates(text: str) -> tuple[float, ...]:
    """'0.01,0.1,1.1' → (0.01, 0.1, 1.1); each a positive finite number."""
    rates = []
    for part in text.split(","):
        try:
            lr = float(part)
        except ValueError:
            raise DescentError(f"--lr {text}: {part.strip()!r} is not a number") from None
        if not (math.isfinite(lr) and lr > 0):
            raise DescentError(f"--lr {text}: a learning rate must be a positive number, got {part.strip()}")
        rates.append(lr)
    return tuple(rates)


def parse_optimizers(text: str) -> tuple[str, ...]:
    """'gd,adam' → ('gd', 'adam'), each a name of the optimizer registry."""
    names = tuple(part.strip() for part in text.split(",") if part.strip())
    for name in names:
        if find_optimizer(name) is None:
            raise DescentError(f"--optimizer {text}: {unknown_optimizer_message(name)}")
    if not names:
        raise DescentError("--optimizer needs at least one of " + ", ".join(optimizer_names()))
    return names


def parse_start(text: str, names: tuple[str, str]) -> np.ndarray:
    """'x=1,y=-2' → array([1, -2]) in the objective's input order; both names required."""
    values: dict[str, float] = {}
    for part in text.split(","):
        name, sep, value = part.partition("=")
        name = name.strip()
        if not sep or name not in names:
            raise DescentError(f"--from {text}: give both inputs as {names[0]}=…,{names[1]}=…")
        try:
            values[name] = float(value)
        except ValueError:
            raise DescentError(f"--from {text}: {value.strip()!r} is not a number") from None
        if not math.isfinite(values[name]):
            raise DescentError(f"--from {text}: {name} must be finite")
    if set(values) != set(names):
        raise DescentError(f"--from {text}: give both inputs as {names[0]}=…,{names[1]}=…")
    return np.array([values[names[0]], values[names[1]]])


def parse_window(text: str, names: tuple[str, str]) -> Window:
    """'x=-2:2,y=-1:3' → Window(-2, 2, -1, 3)."""
    spans: dict[str, tuple[float, float]] = {}
    for part in text.split(","):
        name, sep, span = part.partition("=")
        lo, colon, hi = span.partition(":")
        try:
            a, b = float(lo), float(hi)
        except ValueError:
            a = b = float("nan")
        if not sep or not colon or name.strip() not in names or not (math.isfinite(a) and math.isfinite(b) and a < b):
            raise DescentError(f"--window {text}: expected {names[0]}=LO:HI,{names[1]}=LO:HI with LO < HI")
        width = b - a
        if not math.isfinite(width) or width < 1e-12 * max(abs(a), abs(b)) or width < 1e-150:
            # a width that overflows, or one too narrow for float64 to place a point in, maps to NaN/Inf
            raise DescentError(f"--window {text}: {name.strip()}={lo}:{hi} is too {'wide' if width > 1 else 'narrow'} "
                               "to draw (its width must be finite, above 1e-150 and above 1e-12 of its ends)")
        spans[name.strip()] = (a, b)
    if set(spans) != set(names):
        raise DescentError(f"--window {text}: give both {names[0]} and {names[1]}")
    (x0, x1), (y0, y1) = spans[names[0]], spans[names[1]]
    return Window(x0, x1, y0, y1)


@dataclass(frozen=True)
class DescentRun:
    """The objective, every path asked for (start × optimizer × rate) and the window to show."""

    objective: Objective
    paths: tuple[Path, ...]
    window: Window


def run_descent(objective: Objective, starts: list[np.ndarray], optimizers: tuple[str, ...],
                rates: tuple[float, ...], steps: int, momentum: float = 0.9, window: Window | None = None) -> DescentRun:
    """Run every path; the window fits the paths that did not diverge (and every start)."""
    if not 1 <= steps <= MAX_STEPS:
        raise DescentError(f"--steps must lie in 1..{MAX_STEPS}, got {steps}")
    count = len(starts) * len(optimizers) * len(rates)
    if count > MAX_PATHS:
        raise DescentError(f"{count} paths asked for (starts × optimizers × rates); at most {MAX_PATHS} fit on one map")
    check_work("descent", [Factor("steps", steps, "--steps"),
                           Factor("paths", count, "the number of --from, --lr and --optimizer values"),
                           Factor("nodes of f", len(objective.graph.nodes), "the size of EXPR (a smaller f)")],
               MAX_NODE_STEPS, "node evaluations")
    paths = tuple(run_path(objective.value_and_grad, start, opt, lr, steps, momentum)
                  for start in starts for opt in optimizers for lr in rates)
    if window is None:
        # A diverged path would stretch the window until nothing else shows: keep its first steps.
        shown = [p.thetas if p.status != "diverged" else p.thetas[:3] for p in paths]
        window = fit_window(shown + [s for s in starts])
    return DescentRun(objective, paths, window)


def path_label(path: Path, several_starts: bool) -> str:
    """'gd η=0.1' or, with several starts, 'gd η=0.1 from (1, 2)'."""
    if several_starts:
        return f"{path.label} from ({path.start[0]:g}, {path.start[1]:g})"
    return path.label
