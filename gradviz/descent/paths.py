"""Descent paths: every step's θ, f(θ), ∇f(θ) and update, and how the run ended."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np

from gradviz.optimizers import make_update

# A path "diverged" once θ is this many times farther from the start than the start's own
# scale (or not finite): on a quadratic with η > 2/λ_max that happens in a few steps.
DIVERGE_FACTOR = 100.0
# Converged: ‖∇f‖ below GRAD_TOL and the step below STEP_TOL, each relative to the start's
# gradient and position (so rescaling f or θ does not change the verdict).
GRAD_TOL = 1e-5
STEP_TOL = 1e-6
OSCILLATION_SHARE = 0.6  # a coordinate whose update changes sign at more than this share of steps oscillates


@dataclass(frozen=True)
class PathStep:
    """θ_k, f(θ_k), ∇f(θ_k) and the update θ_{k+1} − θ_k the optimizer made from it."""

    k: int
    theta: np.ndarray
    value: float
    grad: np.ndarray
    update: np.ndarray  # for GD this is −η∇f; zeros at the last step of a path


@dataclass(frozen=True)
class Path:
    """One optimizer at one learning rate, from one start."""

    optimizer: str
    lr: float
    start: np.ndarray
    steps: tuple[PathStep, ...]
    status: str  # 'converged', 'diverged' or 'still moving'
    end_step: int  # the step where it converged or diverged (the last step otherwise)

    @property
    def label(self) -> str:
        """'gd η=0.1' style name."""
        return f"{self.optimizer} η={self.lr:g}"

    @property
    def oscillating(self) -> bool:
        """Whether some coordinate's update flips sign at most steps: η too big for that direction."""
        updates = np.array([s.update for s in self.steps[:-1]])
        if len(updates) < 2:
            return False
        products = updates[1:] * updates[:-1]
        flips = (products < 0).sum(axis=0)
        moves = (products != 0).sum(axis=0)
        return bool(np.any((moves >= 1) & (flips > OSCILLATION_SHARE * moves)))

    @property
    def verdict(self) -> str:
        """'converged at step 41', 'diverged at step 7 (oscillating)', 'still moving after 100 steps'."""
        text = f"still moving after {self.end_step} steps" if self.status == "still moving" \
            else f"{self.status} at step {self.end_step}"
        return text + (" (oscillating)" if self.oscillating else "")

    @property
    def thetas(self) -> np.ndarray:
        """All θ_k as a (steps, 2) array."""
        return np.array([s.theta for s in self.steps])


GradFn = Callable[[np.ndarray], tuple[float, np.ndarray]]


def run_path(value_and_grad: GradFn, start: np.ndarray, optimizer: str, lr: float, steps: int,
             momentum: float = 0.9) -> Path:
    """Run `steps` updates of `optimizer` from `start`, stopping early on convergence or divergence."""
    opt = make_update(optimizer, lr, momentum)
    start = np.asarray(start, dtype=float)
    scale = max(1.0, float(np.linalg.norm(start)))
    theta = start.copy()
    grad_tol = step_tol = 0.0
    records: list[PathStep] = []
    status, end = "still moving", steps
    with np.errstate(all="ignore"):
        for k in range(steps + 1):
            value, grad = value_and_grad(theta)
            finite = np.isfinite(value) and np.all(np.isfinite(grad)) and np.all(np.isfinite(theta))
            far = np.linalg.norm(theta - start) > DIVERGE_FACTOR * scale
            if not finite or far:
                records.append(PathStep(k, theta, value, grad, np.zeros(2)))
                status, end = "diverged", k
                break
            if k == 0:
                grad_tol = GRAD_TOL * max(1.0, float(np.linalg.norm(grad)))
                step_tol = STEP_TOL * scale
            if k == steps:
                records.append(PathStep(k, theta, value, grad, np.zeros(2)))
                break
            new = opt.step(theta, grad)
            records.append(PathStep(k, theta, value, grad, new - theta))
            if np.linalg.norm(grad) < grad_tol and np.linalg.norm(new - theta) < step_tol:
                value, grad = value_and_grad(new)
                records.append(PathStep(k + 1, new, value, grad, np.zeros(2)))
                status, end = "converged", k + 1
                break
            theta = new
    return Path(optimizer, lr, start, tuple(records), status, end)
