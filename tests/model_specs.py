"""Small spec files for the model-tracing tests, written into a temporary directory."""

from __future__ import annotations

import textwrap
from pathlib import Path

HEADER = """
import torch
import torch.nn.functional as F
from torch import nn

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(32, 4, generator=g)
    return x, (x[:, :1] > 0).float()

def loss(output, target):
    return F.binary_cross_entropy(output, target)
"""

SPECS = {
    # fx refuses the `if`: the run is recorded instead.
    "branchy": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 6)
        self.fc2 = nn.Linear(6, 1)
        self.drop = nn.Dropout(0.25)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        if h.sum() > -1000:
            h = h * 2
        return torch.sigmoid(self.fc2(self.drop(h) + h))

def build_model():
    return Net()
""",
    # fx refuses the `if`, and the recorder refuses the in-place update of a tensor that needs a gradient.
    "untraceable": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        h = self.fc(x)
        if h.mean() > -1000:
            h.mul_(2)
        return torch.sigmoid(h)

def build_model():
    return Net()
""",
    # A tuple-valued call (chunk) whose two pieces both reach the loss, and a shared weight.
    "pieces": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(4, 8)
        self.mix = nn.Linear(4, 4)
        self.out = nn.Linear(4, 1)

    def forward(self, x):
        a, b = self.fc(x).chunk(2, dim=1)
        h = torch.tanh(a) * torch.sigmoid(b)
        h = self.mix(h) + self.mix(torch.relu(h))
        return torch.sigmoid(self.out(h + a))

def build_model():
    return Net()
""",
    # Weights scaled up until the hidden sigmoid saturates.
    "saturated": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 16)
        self.fc2 = nn.Linear(16, 1)
        with torch.no_grad():
            self.fc1.weight.mul_(200)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.sigmoid(self.fc1(x))))

def build_model():
    return Net()
""",
    # log of a layer's output that is negative for some units: NaN at the log node.
    "nan_log": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        h = torch.log(self.fc1(x))
        return torch.sigmoid(self.fc2(h))

def build_model():
    return Net()

def loss(output, target):  # binary_cross_entropy refuses NaN; a squared error lets it through
    return ((output - target) ** 2).mean()
""",
    # A bias so negative that every ReLU unit outputs 0.
    "dead_relu": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 1)
        with torch.no_grad():
            self.fc1.bias.fill_(-100.0)

    def forward(self, x):
        return torch.sigmoid(self.fc2(torch.relu(self.fc1(x))))

def build_model():
    return Net()
""",
    # Dropout that ignores the model's mode: always off, and always on.
    "dropout_modes": """
class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 8)
        self.fc2 = nn.Linear(8, 1)

    def forward(self, x):
        h = F.dropout(torch.relu(self.fc1(x)), 0.5, training=False)
        h = F.dropout(h, 0.5)
        return torch.sigmoid(self.fc2(h))

def build_model():
    return Net()
""",
    # Twelve sigmoid layers with small weights: the gradient vanishes on its way back.
    "vanishing": """
def build_model():
    layers = []
    for _ in range(12):
        layer = nn.Linear(4, 4)
        with torch.no_grad():
            layer.weight.mul_(0.05)
        layers += [layer, nn.Sigmoid()]
    return nn.Sequential(*layers, nn.Linear(4, 1), nn.Sigmoid())
""",
}


def write_spec(directory: Path, name: str) -> Path:
    """The spec `name` as a file in `directory`."""
    path = directory / f"{name}.py"
    path.write_text(textwrap.dedent(HEADER) + textwrap.dedent(SPECS[name]))
    return path
