"""SGD, mini-batch and full-batch GD on least squares y ≈ w·x + b, points made in code.

The model has two parameters, so the full-data loss is a map and each batch size's path
is drawn on it: B=1 is noisy with many updates per epoch, B=N is the smooth full-batch
path with one. The loss and its gradient are the closed forms of the mean squared error
(a test holds them to torch autograd).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from gradviz.descent.objective import DescentError

TRUE_W, TRUE_B, NOISE = 2.0, -1.0, 0.5


@dataclass(frozen=True)
class Points:
    """The data set: x and y, n of each."""

    x: np.ndarray
    y: np.ndarray


def make_points(n: int = 64, seed: int = 0) -> Points:
    """n points with y = 2x − 1 + noise (σ = 0.5), x uniform in [−2, 2]; seeded."""
    rng = np.random.default_rng(seed)
    x = rng.uniform(-2.0, 2.0, n)
    return Points(x, TRUE_W * x + TRUE_B + NOISE * rng.standard_normal(n))


LOSS_CHUNK_FLOATS = 4_000_000  # 32 MB of residuals at a time for a grid of losses


def loss(points: Points, w: np.ndarray | float, b: np.ndarray | float) -> np.ndarray:
    """L(w, b) = mean((w·x + b − y)²) over all points; w and b may be grids of the same shape."""
    w, b = np.broadcast_arrays(np.asarray(w, dtype=float), np.asarray(b, dtype=float))
    if w.ndim == 0:
        r = w * points.x + b - points.y
        return np.mean(r * r)
    # Grid points in chunks: all at once held grid × points floats (90×90 × 50,000 points: 3.2 GB each).
    flat_w, flat_b = w.reshape(-1), b.reshape(-1)
    out = np.empty(flat_w.shape)
    chunk = max(1, LOSS_CHUNK_FLOATS // max(1, len(points.x)))
    for start in range(0, len(flat_w), chunk):
        r = flat_w[start:start + chunk, None] * points.x + flat_b[start:start + chunk, None] - points.y
        out[start:start + chunk] = np.mean(r * r, axis=-1)
    return out.reshape(w.shape)


def gradient(x: np.ndarray, y: np.ndarray, theta: np.ndarray) -> np.ndarray:
    """∇ of mean((w·x + b − y)²) over this batch: (2·mean(r·x), 2·mean(r))."""
    r = theta[0] * x + theta[1] - y
    return np.array([2 * np.mean(r * x), 2 * np.mean(r)])


@dataclass(frozen=True)
class BatchPath:
    """θ after every update for one batch size; which update ended each epoch."""

    batch_size: int
    updates_per_epoch: int
    thetas: np.ndarray  # (updates + 1, 2), the start first
    epoch_ends: tuple[int, ...]  # indices into thetas

    @property
    def label(self) -> str:
        """'B=8 (SGD)' style name."""
        return f"B={self.batch_size}"


def batch_path(points: Points, batch_size: int, epochs: int, lr: float, start: np.ndarray, seed: int = 0,
               grad=None) -> BatchPath:
    """Mini-batch SGD: shuffle each epoch (seeded), one update per batch of batch_size (the last may be
    short); `grad(x, y, θ)` is the batch's gradient (default: this module's least squares)."""
    grad = grad or gradient
    n = len(points.x)
    if not 1 <= batch_size <= n:
        raise DescentError(f"batch size {batch_size} must lie in 1..{n} (the number of points)")
    rng = np.random.default_rng(seed + 1)
    theta = np.asarray(start, dtype=float).copy()
    thetas, ends = [theta.copy()], []
    for _ in range(epochs):
        order = rng.permutation(n)
        for begin in range(0, n, batch_size):
            idx = order[begin:begin + batch_size]
            theta = theta - lr * grad(points.x[idx], points.y[idx], theta)
            thetas.append(theta.copy())
        ends.append(len(thetas) - 1)
    return BatchPath(batch_size, math.ceil(n / batch_size), np.array(thetas), tuple(ends))


def least_squares_solution(points: Points) -> np.ndarray:
    """The minimiser (w*, b*) of the full-data loss."""
    design = np.stack([points.x, np.ones_like(points.x)], axis=1)
    return np.linalg.lstsq(design, points.y, rcond=None)[0]
