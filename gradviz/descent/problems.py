"""The two-parameter problems `gradviz batches` fits, and where each path ends up.

`line` is the convex least-squares fit y ≈ w·x + b (descent.batches). `sine` is the
non-convex y ≈ sin(w·x + b), data made with w = 3, b = 0.5: its full-data loss has a
poor local minimum near w = 0 (a flat fit, L ≈ 0.53) besides the good one (L ≈ 0.01),
so from the start (0.5, 0) full-batch GD settles in the poor one while B = 1's noise
carries it out (with the default seed): the slide's "mini-batch noise helps escape poor
local minima". Each path's end is classed by polishing it with full-batch GD until it
stops and comparing that minimum's loss with the global one's (found from a grid).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gradviz.descent import batches as line
from gradviz.descent.batches import Points

SINE_W, SINE_B, SINE_NOISE = 3.0, 0.5, 0.1
Gradient = Callable[[np.ndarray, np.ndarray, np.ndarray], np.ndarray]


def make_sine_points(n: int = 64, seed: int = 0) -> Points:
    """n points with y = sin(3x + 0.5) + noise (σ = 0.1), x uniform in [−2, 2]; seeded."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    return Points(x, np.sin(SINE_W * x + SINE_B) + SINE_NOISE * rng.standard_normal(n))


def sine_loss(points: Points, w: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """L(w, b) = mean((sin(w·x + b) − y)²) over all points; w and b may be grids."""
    w, b = np.asarray(w, dtype=float), np.asarray(b, dtype=float)
    r = np.sin(w[..., None] * points.x + b[..., None]) - points.y
    return np.mean(r * r, axis=-1)


def sine_gradient(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """∇ of mean((sin(w·x + b) − y)²) over this batch: 2·mean(r·cos(u)·(x, 1)), u = w·x + b."""
    u = theta[0] * x + theta[1]
    r, c = np.sin(u) - y, np.cos(u)
    return np.array([2 * np.mean(r * c * x), 2 * np.mean(r * c)])


@dataclass(frozen=True)
class Problem:
    """A two-parameter fit: its data, loss, gradient, where its minima are looked for, defaults."""

    name: str
    formula: str  # 'y≈w·x+b'
    make_points: Callable[[int, int], Points]
    loss: Callable[[Points, np.ndarray | float, np.ndarray | float], np.ndarray]
    gradient: Gradient
    search: tuple[float, float, float, float]  # w0, w1, b0, b1: where the global minimum is looked for
    start: str
    lr: float
    epochs: int
    convex: bool


PROBLEMS = {
    "line": Problem("line", "y≈w·x+b", line.make_points, line.loss, line.gradient, (-10, 10, -10, 10),
                    "w=-2,b=2.5", 0.05, 3, True),
    "sine": Problem("sine", "y≈sin(w·x+b)", make_sine_points, sine_loss, sine_gradient,
                    (-6, 6, -np.pi, np.pi), "w=0.5,b=0", 0.2, 5, False),
}


def polish(problem: Problem, points: Points, theta: np.ndarray, lr: float = 0.05, steps: int = 20000) -> np.ndarray:
    """Full-batch GD from theta until the gradient vanishes: the bottom of theta's basin."""
    theta = np.asarray(theta, dtype=float).copy()
    for _ in range(steps):
        step = problem.gradient(points.x, points.y, theta)
        if not np.all(np.isfinite(step)):
            break
        theta = theta - lr * step
        if np.linalg.norm(step) < 1e-9:
            break
    return theta


def global_minimum(problem: Problem, points: Points, cells: int = 241) -> np.ndarray:
    """The full-data loss's lowest point: the best cell of a grid over the search box, polished."""
    w0, w1, b0, b1 = problem.search
    w, b = np.meshgrid(np.linspace(w0, w1, cells), np.linspace(b0, b1, cells))
    values = problem.loss(points, w, b)
    i = np.unravel_index(np.argmin(values), values.shape)
    return polish(problem, points, np.array([w[i], b[i]]))


def verdict(problem: Problem, points: Points, end: np.ndarray, best: np.ndarray) -> str:
    """Where a path ended: in the global minimum's basin, or in a poorer local minimum."""
    end = np.asarray(end, dtype=float)
    if not np.all(np.isfinite(end)):
        return "diverged"
    bottom = polish(problem, points, end)
    low, here = float(problem.loss(points, *best)), float(problem.loss(points, *bottom))
    if here <= low + 1e-6 * max(1.0, abs(low)):
        return f"in the global minimum's basin (its bottom: L = {low:.3g} at w={bottom[0]:.3g}, b={bottom[1]:.3g})"
    return (f"in a poor local minimum's basin (its bottom: L = {here:.3g} at w={bottom[0]:.3g}, b={bottom[1]:.3g}; "
            f"the global L = {low:.3g})")
