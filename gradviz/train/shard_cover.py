"""Which rank counts which values of a sharded tensor, and the end-of-run check that the shards
cover every parameter exactly once.

Under FSDP2 a parameter and its gradient are DTensors. Along a mesh dimension where the placement
is Shard, the ranks hold different pieces; where it is Replicate, every rank of that dimension
holds the same piece. A sum over ranks of something counted per value (histogram counts, element
counts) counts every value once when each rank counts its local piece only where its coordinate
along every non-sharded mesh dimension is 0. A plain tensor is the same on every rank: rank 0
counts it. A Partial placement (a sum not yet reduced) is reduced first (a collective on that
mesh dimension, whose ranks all hold the same placements), then counted as replicated.
"""

from __future__ import annotations

from typing import Any

import torch


def _is_dtensor(tensor: Any) -> bool:
    from torch.distributed.tensor import DTensor

    return isinstance(tensor, DTensor)


def counted_part(tensor: Any) -> torch.Tensor | None:
    """The values of `tensor` this rank counts in a sum over ranks: its local shard, or None where
    another rank holds and counts the same values (a replica, or a plain tensor off rank 0)."""
    import torch.distributed as dist

    if not _is_dtensor(tensor):
        return tensor if dist.get_rank() == 0 else None
    if any(placement.is_partial() for placement in tensor.placements):
        from torch.distributed.tensor import Replicate

        tensor = tensor.redistribute(tensor.device_mesh,
                                     [Replicate() if p.is_partial() else p for p in tensor.placements])
    mesh = tensor.device_mesh
    for dim, placement in enumerate(tensor.placements):
        if not placement.is_shard() and mesh.get_local_rank(dim) != 0:
            return None
    return tensor.to_local()


def shards_cover(params: list[Any], step: int, device: torch.device) -> bool:
    """Whether every rank ended at the same step and the ranks' local shards together hold each
    parameter's elements exactly once (element counts only: one all_gather of a few integers per
    rank; nothing is gathered in full). Every rank must call it."""
    import torch.distributed as dist

    counts = []
    with torch.no_grad():
        for param in params:
            part = counted_part(param)
            counts.append(0 if part is None else part.numel())
    mine = torch.tensor([step, *counts], dtype=torch.int64, device=device)
    everyone = [torch.empty_like(mine) for _ in range(dist.get_world_size())]
    dist.all_gather(everyone, mine)
    table = torch.stack(everyone).cpu()
    same_step = bool((table[:, 0] == step).all())
    whole = torch.tensor([p.numel() for p in params], dtype=torch.int64)  # a DTensor's numel is the whole one
    return same_step and torch.equal(table[:, 1:].sum(dim=0), whole)
