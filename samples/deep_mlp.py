"""A deeper MLP (2→64→64→64→2) with ReLU and dropout, classifying two interleaved spirals.

Shows what the two-layer network does not: many layers whose gradient norms can be
compared, ReLU units, and dropout layers whose masks the monitor draws. Cross-entropy on
two logits; the spirals (1024 points) are made in code.
"""

import math

import torch
import torch.nn.functional as F
from torch import nn

TRAINING = {"lr": 0.01, "epochs": 60, "batch_size": 64, "optimizer": "adam"}


class DeepMLP(nn.Module):
    """Three hidden layers of 64 ReLU units, each followed by dropout."""

    def __init__(self, hidden: int = 64, p: float = 0.1):
        super().__init__()
        self.fc1 = nn.Linear(2, hidden)
        self.drop1 = nn.Dropout(p)
        self.fc2 = nn.Linear(hidden, hidden)
        self.drop2 = nn.Dropout(p)
        self.fc3 = nn.Linear(hidden, hidden)
        self.drop3 = nn.Dropout(p)
        self.out = nn.Linear(hidden, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.drop1(torch.relu(self.fc1(x)))
        x = self.drop2(torch.relu(self.fc2(x)))
        x = self.drop3(torch.relu(self.fc3(x)))
        return self.out(x)


def build_model() -> nn.Module:
    """The 2→64→64→64→2 network with dropout p = 0.1."""
    return DeepMLP()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits, mean over the batch."""
    return F.cross_entropy(output, target)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of points whose larger logit is the right class."""
    return (output.argmax(dim=1) == target).float().mean().item()


def make_data(seed: int, n: int = 1024, noise: float = 0.05) -> tuple[torch.Tensor, torch.Tensor]:
    """Two spirals of 1.5 turns: X (n, 2) float, y (n,) class indices 0 and 1."""
    gen = torch.Generator().manual_seed(seed)
    half = n // 2
    t = torch.sqrt(torch.rand(half, generator=gen)) * 3 * math.pi  # denser near the centre
    arm = torch.stack([t * torch.cos(t), t * torch.sin(t)], dim=1) / (3 * math.pi)
    x = torch.cat([arm, -arm]) + noise * torch.randn(2 * half, 2, generator=gen)
    y = torch.cat([torch.zeros(half, dtype=torch.long), torch.ones(half, dtype=torch.long)])
    return x, y
