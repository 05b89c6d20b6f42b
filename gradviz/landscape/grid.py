"""The loss over a grid of (α, β): θ* + α·d1 + β·d2, in vmapped chunks or one point at a time."""

from __future__ import annotations

import numpy as np
import torch
from torch.func import functional_call

from gradviz.landscape.directions import Params
from gradviz.landscape.load import Subject


def bytes_per_point(subject: Subject) -> int:
    """Memory one grid point takes in a batch: its parameters plus every module's output on the data."""
    sizes: list[int] = []

    def hook(_module, _inputs, output):
        if isinstance(output, torch.Tensor):
            sizes.append(output.numel() * output.element_size())

    handles = [m.register_forward_hook(hook) for m in subject.model.modules()]
    try:
        with torch.no_grad():
            subject.loss(subject.model(subject.x), subject.y)
    finally:
        for h in handles:
            h.remove()
    params = sum(p.numel() * p.element_size() for p in subject.centre.values())
    return 3 * params + 2 * sum(sizes)  # 2×: intermediate results inside each module (matmul, then bias)


def chunk_size(subject: Subject, budget_bytes: int) -> int:
    """How many grid points one vmapped call may take within the memory budget."""
    return max(1, budget_bytes // max(1, bytes_per_point(subject)))


def batched_grid(subject: Subject, d1: Params, d2: Params, alphas: np.ndarray, betas: np.ndarray,
                 budget_bytes: int = 256 << 20) -> np.ndarray:
    """loss(θ* + α·d1 + β·d2) for every (β row, α column), vmapped over chunks of grid points."""
    model, centre = subject.model, subject.centre
    buffers = dict(model.named_buffers())
    dtype = next(iter(centre.values())).dtype
    device = subject.x.device

    def point_loss(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        params = {n: centre[n] + a * d1[n] + b * d2[n] for n in centre}
        return subject.loss(functional_call(model, {**params, **buffers}, (subject.x,)), subject.y)

    batched = torch.vmap(point_loss)
    aa, bb = np.meshgrid(alphas, betas)
    a_all = torch.as_tensor(aa.reshape(-1), dtype=dtype, device=device)
    b_all = torch.as_tensor(bb.reshape(-1), dtype=dtype, device=device)
    chunk = chunk_size(subject, budget_bytes)
    out = []
    with torch.no_grad():
        for start in range(0, len(a_all), chunk):
            out.append(batched(a_all[start:start + chunk], b_all[start:start + chunk]))
    return torch.cat(out).double().cpu().numpy().reshape(aa.shape)


def pointwise_grid(subject: Subject, d1: Params, d2: Params, alphas: np.ndarray, betas: np.ndarray,
                   data_batch: int | None = None) -> np.ndarray:
    """The reference way: set the model's weights for each grid point, run it, read the loss.

    data_batch: run the data in batches of this size and average the batch losses weighted
    by their sizes, as Li et al.'s code loops over a data loader (None: all data at once).
    """
    model, centre = subject.model, subject.centre
    params = dict(model.named_parameters())
    out = np.empty((len(betas), len(alphas)))
    try:
        with torch.no_grad():
            for r, b in enumerate(betas):
                for c, a in enumerate(alphas):
                    for n, p in params.items():
                        p.copy_(centre[n] + float(a) * d1[n] + float(b) * d2[n])
                    out[r, c] = _data_loss(subject, data_batch)
    finally:
        with torch.no_grad():
            for n, p in params.items():
                p.copy_(centre[n])
    return out


def _data_loss(subject: Subject, data_batch: int | None) -> float:
    n = len(subject.x)
    if data_batch is None or data_batch >= n:
        return float(subject.loss(subject.model(subject.x), subject.y))
    total = 0.0
    for start in range(0, n, data_batch):
        x, y = subject.x[start:start + data_batch], subject.y[start:start + data_batch]
        total += float(subject.loss(subject.model(x), y)) * len(x)
    return total / n


def centre_loss(subject: Subject) -> float:
    """The model's loss at θ* on the landscape's data (no grid)."""
    with torch.no_grad():
        return float(subject.loss(subject.model(subject.x), subject.y))
