"""The two directions of the slice: filter-normalised random (Li et al. 2018) or trajectory PCA."""

from __future__ import annotations

import torch

Params = dict[str, torch.Tensor]


def filter_normalised(centre: Params, generator: torch.Generator) -> Params:
    """A Gaussian direction with each filter (row of a weight) scaled to that filter's norm in θ*.

    As in Li et al.'s reference code with its default 'biasbn' option, one-dimensional
    parameters (biases, norm scales) get a zero direction: their scale is not filter-wise.
    """
    direction = {}
    for name, p in centre.items():
        d = torch.randn(p.shape, generator=generator, dtype=p.dtype).to(p.device)
        if p.dim() <= 1:
            direction[name] = torch.zeros_like(p)
            continue
        rows_d = d.reshape(p.shape[0], -1)
        rows_p = p.reshape(p.shape[0], -1)
        scale = rows_p.norm(dim=1, keepdim=True) / (rows_d.norm(dim=1, keepdim=True) + 1e-10)
        direction[name] = (rows_d * scale).reshape(p.shape)
    return direction


def flatten(params: Params, names: list[str]) -> torch.Tensor:
    """All tensors as one vector, in `names` order."""
    return torch.cat([params[n].reshape(-1) for n in names])


def unflatten(vector: torch.Tensor, like: Params, names: list[str]) -> Params:
    """The inverse of flatten."""
    out, at = {}, 0
    for n in names:
        size = like[n].numel()
        out[n] = vector[at:at + size].reshape(like[n].shape)
        at += size
    return out


def pca_directions(centre: Params, trajectory: list[Params]) -> tuple[Params, Params, tuple[float, float]]:
    """The first two principal components of [θ_i − θ*] (centred, as sklearn's PCA in Li et al.)
    and the share of variance each explains."""
    names = list(centre)
    c = flatten(centre, names).double()
    m = torch.stack([flatten(t, names).double() - c for t in trajectory])
    m = m - m.mean(dim=0, keepdim=True)
    _, s, vh = torch.linalg.svd(m, full_matrices=False)
    var = s * s
    share = (var / var.sum()).tolist() if float(var.sum()) > 0 else [0.0, 0.0]
    dtype = next(iter(centre.values())).dtype
    d1 = unflatten(vh[0].to(dtype), centre, names)
    d2 = unflatten(vh[1].to(dtype), centre, names)
    return d1, d2, (float(share[0]), float(share[1]) if len(share) > 1 else 0.0)


def project(points: list[Params], centre: Params, d1: Params, d2: Params) -> torch.Tensor:
    """Coordinates (α, β) of each θ_i − θ* on span(d1, d2), by least squares (as Li et al.)."""
    names = list(centre)
    c = flatten(centre, names).double()
    basis = torch.stack([flatten(d1, names).double(), flatten(d2, names).double()], dim=1)
    diffs = torch.stack([flatten(p, names).double() - c for p in points], dim=1)
    return torch.linalg.lstsq(basis, diffs).solution.T  # (n, 2)
