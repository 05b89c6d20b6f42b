"""The lecture's two-layer network σ(σ(x·W1 + b1)·W2 + b2) with binary cross-entropy.

Input d = 2, hidden H = 8, one sigmoid output: the probability that a point of a
synthetic two-moons set (512 points, made in code) belongs to the upper moon. Small
enough to step through node by node, and it trains to >95% validation accuracy in a
few seconds on a CPU.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

TRAINING = {"lr": 0.1, "epochs": 40, "batch_size": 32, "optimizer": "adam"}


class TwoLayerMLP(nn.Module):
    """σ(σ(x·W1 + b1)·W2 + b2): nn.Linear holds W1, b1 (2→8) and W2, b2 (8→1)."""

    def __init__(self, d: int = 2, hidden: int = 8):
        super().__init__()
        self.fc1 = nn.Linear(d, hidden)
        self.fc2 = nn.Linear(hidden, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(torch.sigmoid(self.fc1(x))))


def build_model() -> nn.Module:
    """The lecture's network with d = 2 inputs and H = 8 hidden units."""
    return TwoLayerMLP()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Binary cross-entropy on probabilities, mean over the batch."""
    return F.binary_cross_entropy(output, target)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of points whose probability falls on the right side of 0.5."""
    return ((output > 0.5) == (target > 0.5)).float().mean().item()


def make_data(seed: int, n: int = 512, noise: float = 0.1) -> tuple[torch.Tensor, torch.Tensor]:
    """Two interleaving half circles with Gaussian noise: X (n, 2) float, y (n, 1) in {0, 1}."""
    gen = torch.Generator().manual_seed(seed)
    half = n // 2
    angle = torch.rand(n, generator=gen) * math.pi
    upper = torch.stack([torch.cos(angle[:half]), torch.sin(angle[:half])], dim=1)
    lower = torch.stack([1 - torch.cos(angle[half:]), 0.5 - torch.sin(angle[half:])], dim=1)
    x = torch.cat([upper, lower]) + noise * torch.randn(n, 2, generator=gen)
    x = (x - torch.tensor([0.5, 0.25])) / torch.tensor([0.87, 0.5])  # roughly centred, unit scale
    y = torch.cat([torch.ones(half, 1), torch.zeros(n - half, 1)])
    return x, y
