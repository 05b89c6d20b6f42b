"""A ResNet-18-shaped CNN: four stages of two residual blocks, BatchNorm, pooling.

Random weights and random images made in code (nothing is downloaded): it is here to
show and measure gradviz on a real-size vision graph, best at `--level aten`
(`gradviz trace samples/resnet18_shaped.py --level aten --graph`). Written out rather
than taken from torchvision (not a dependency). GRADVIZ_RESNET="width,size" makes a
smaller one (default 64 channels in the first stage, 64×64 images).
"""

import os

import torch
import torch.nn.functional as F
from torch import nn

WIDTH, SIZE = (int(v) for v in os.environ.get("GRADVIZ_RESNET", "64,64").split(","))
CLASSES = 10
TRAINING = {"lr": 0.01, "epochs": 1, "batch_size": 2, "optimizer": "sgd"}


class BasicBlock(nn.Module):
    """conv-bn-relu-conv-bn plus the input (through a 1×1 conv where the shape changes)."""

    def __init__(self, channels_in: int, channels: int, stride: int):
        super().__init__()
        self.conv1 = nn.Conv2d(channels_in, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.down = None
        if stride != 1 or channels_in != channels:
            self.down = nn.Sequential(nn.Conv2d(channels_in, channels, 1, stride, bias=False),
                                      nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + (x if self.down is None else self.down(x)))


class ResNet18(nn.Module):
    """Stem, four stages (2 blocks each, channels ×1 ×2 ×4 ×8), global pooling, classifier."""

    def __init__(self):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(3, WIDTH, 7, 2, 3, bias=False), nn.BatchNorm2d(WIDTH), nn.ReLU(),
                                  nn.MaxPool2d(3, 2, 1))
        stages, channels = [], WIDTH
        for i, mult in enumerate((1, 2, 4, 8)):
            out = WIDTH * mult
            stride = 1 if i == 0 else 2
            stages.append(nn.Sequential(BasicBlock(channels, out, stride), BasicBlock(out, out, 1)))
            channels = out
        self.stages = nn.Sequential(*stages)
        self.fc = nn.Linear(channels, CLASSES)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stages(self.stem(x))
        return self.fc(torch.flatten(F.adaptive_avg_pool2d(x, 1), 1))


def build_model() -> nn.Module:
    """ResNet-18's shape with random weights."""
    torch.manual_seed(0)
    return ResNet18()


def loss(output: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Cross-entropy over the classes."""
    return F.cross_entropy(output, target)


def accuracy(output: torch.Tensor, target: torch.Tensor) -> float:
    """Fraction of images classified right."""
    return (output.argmax(dim=1) == target).float().mean().item()


def make_data(seed: int, n: int = 8) -> tuple[torch.Tensor, torch.Tensor]:
    """Random 3×SIZE×SIZE images and labels."""
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, SIZE, SIZE, generator=gen), torch.randint(0, CLASSES, (n,), generator=gen)
