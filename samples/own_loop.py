"""A plain PyTorch training loop (no spec format), watched by gradviz in three lines.

    python samples/own_loop.py                 # trains, writing runs/own_loop/
    gradviz monitor runs/own_loop              # live while it trains, a replay afterwards
"""
import math
import sys

import torch
import torch.nn.functional as F
from torch import nn

import gradviz                                                                    # 1

torch.manual_seed(0)
n = 1024  # two interleaved spirals, made here: nothing is downloaded
t = torch.rand(n) * 3 * math.pi
label = torch.randint(0, 2, (n,))
radius = t / (3 * math.pi)
angle = t + math.pi * label
x = torch.stack([radius * torch.cos(angle), radius * torch.sin(angle)], dim=1) + 0.02 * torch.randn(n, 2)
data = torch.utils.data.TensorDataset(x, label)
loader = torch.utils.data.DataLoader(data, batch_size=64, shuffle=True)

model = nn.Sequential(nn.Linear(2, 64), nn.ReLU(), nn.Dropout(0.1),
                      nn.Linear(64, 64), nn.ReLU(), nn.Linear(64, 2))
optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 30

with gradviz.watch(model, optimizer, run_dir="runs/own_loop") as run:             # 2
    for epoch in range(epochs):
        for xb, yb in loader:
            output = model(xb)
            loss = F.cross_entropy(output, yb)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            acc = (output.argmax(1) == yb).float().mean()
            run.log(loss=loss, epoch=epoch + 1, acc=acc)                          # 3
        print(f"epoch {epoch + 1}: loss {loss.item():.4f}")
