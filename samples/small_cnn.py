"""A small CNN telling horizontal from vertical bars in noisy 1×12×12 images.

Conv2d → ReLU → MaxPool → Conv2d → ReLU → AvgPool → Dropout → Linear: the layers of a
vision model in miniature. The 768 images are drawn in code (a bar of random position and
length, plus Gaussian noise); nothing is downloaded.
"""

import torch
import torch.nn.functional as F
from torch import nn

TRAINING = {"lr": 0.01, "epochs": 10, "batch_size": 32, "optimizer": "adam"}

SIZE = 12


class SmallCNN(nn.Module):
    """Two convolutions (8 and 16 channels), two poolings, dropout and a linear classifier."""

    def __init__(self, p: float = 0.25):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 8, kernel_size=3, padding=1)
        self.pool1 = nn.MaxPool2d(2)
        self.conv2 = nn.Conv2d(8, 16, kernel_size=3, padding=1)
        self.pool2 = nn.AvgPool2d(2)
        self.drop = nn.Dropout(p)
        self.fc = nn.Linear(16 * 3 * 3, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(torch.relu(self.conv1(x)))
        x = self.pool2(torch.relu(self.conv2(x)))
        return self.fc(self.drop(torch.flatten(x, 1)))


def build_model() -> nn.Module:
    """The CNN for 1×12×12 images and two classes."""
    return SmallCNN()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy on logits, mean over the batch."""
    return F.cross_entropy(output, target)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of images whose larger logit is the right class."""
    return (output.argmax(dim=1) == target).float().mean().item()


def make_data(seed: int, n: int = 768, noise: float = 0.3) -> tuple[torch.Tensor, torch.Tensor]:
    """X (n, 1, 12, 12) images with one bar each, y (n,): 0 horizontal, 1 vertical."""
    gen = torch.Generator().manual_seed(seed)
    y = torch.randint(0, 2, (n,), generator=gen)
    row = torch.randint(1, SIZE - 1, (n,), generator=gen)
    start = torch.randint(0, SIZE // 2, (n,), generator=gen)
    length = torch.randint(SIZE // 3, SIZE // 2 + 1, (n,), generator=gen)
    index = torch.arange(SIZE)
    # A horizontal bar: cells on `row` whose column lies in [start, start + length).
    along = (index[None, :] >= start[:, None]) & (index[None, :] < (start + length)[:, None])
    across = index[None, :] == row[:, None]
    bar = (across[:, :, None] & along[:, None, :]).float()  # (n, row, column)
    bar = torch.where(y[:, None, None] == 1, bar.transpose(1, 2), bar)
    x = bar + noise * torch.randn(n, SIZE, SIZE, generator=gen)
    return x.unsqueeze(1), y
