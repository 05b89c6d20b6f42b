"""The update rules of plain GD, momentum and Adam, written as torch.optim writes them.

Each optimizer is a small object with `step(θ, g) -> θ'`, state kept inside, so a path is
a loop anyone can read. The formulas follow torch.optim.SGD (momentum, no dampening, no
Nesterov) and torch.optim.Adam (bias-corrected, eps added to √v̂), and a test holds them
to torch on the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

OPTIMIZERS = ("gd", "momentum", "adam")


@dataclass
class GD:
    """θ ← θ − η∇f(θ)."""

    lr: float
    name: str = "gd"

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        return theta - self.lr * grad


@dataclass
class Momentum:
    """torch.optim.SGD(momentum=μ): b ← μb + g (b = g at the first step); θ ← θ − ηb."""

    lr: float
    momentum: float = 0.9
    name: str = "momentum"
    buffer: np.ndarray | None = field(default=None, repr=False)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        self.buffer = grad.copy() if self.buffer is None else self.momentum * self.buffer + grad
        return theta - self.lr * self.buffer


@dataclass
class Adam:
    """torch.optim.Adam: m, v running moments; θ ← θ − η·m̂/(√v̂ + ε)."""

    lr: float
    beta1: float = 0.9
    beta2: float = 0.999
    eps: float = 1e-8
    name: str = "adam"
    t: int = 0
    m: np.ndarray | None = field(default=None, repr=False)
    v: np.ndarray | None = field(default=None, repr=False)

    def step(self, theta: np.ndarray, grad: np.ndarray) -> np.ndarray:
        """One update."""
        if self.m is None:
            self.m, self.v = np.zeros_like(grad), np.zeros_like(grad)
        self.t += 1
        self.m = self.beta1 * self.m + (1 - self.beta1) * grad
        self.v = self.beta2 * self.v + (1 - self.beta2) * grad * grad
        # torch's order of operations: step size η/(1−β1^t), denominator √v/√(1−β2^t) + ε.
        bias1 = 1 - self.beta1 ** self.t
        bias2 = 1 - self.beta2 ** self.t
        denom = np.sqrt(self.v) / np.sqrt(bias2) + self.eps
        return theta - (self.lr / bias1) * self.m / denom


def make_optimizer(name: str, lr: float, momentum: float = 0.9) -> GD | Momentum | Adam:
    """A fresh optimizer by name: gd, momentum or adam."""
    if name == "gd":
        return GD(lr)
    if name == "momentum":
        return Momentum(lr, momentum)
    if name == "adam":
        return Adam(lr)
    raise ValueError(f"unknown optimizer {name!r}")
