"""The logged loss under DDP: the mean over every rank's share of each global batch.

Each rank keeps, per step, its loss weighted by its share of the global batch
(n_rank / N, a device op); at a logged step the window's mean of those shares is
summed over ranks by one asynchronous all-reduce of a scalar, issued next to the norms'
capture: no host synchronisation (NCCL orders it on the stream; gloo's wait is the
same barrier the gradient all-reduce already imposes). One process logs the same number
for the same global batches.
"""

from __future__ import annotations

import torch


class RankLossShare:
    """Per-step loss shares of this rank, reduced over ranks once per logged step."""

    def __init__(self) -> None:
        self.shares: list[torch.Tensor] = []

    def add(self, weighted: torch.Tensor, world: int) -> None:
        """This step's loss as the trainer weights it for DDP (its share n_rank/N, times world)."""
        self.shares.append(weighted / world)

    def reduce(self) -> torch.Tensor:
        """The window's mean loss over the global batches (every rank gets it)."""
        import torch.distributed as dist

        window = torch.stack(self.shares).mean()
        self.shares = []
        dist.all_reduce(window, op=dist.ReduceOp.SUM, async_op=True).wait()
        return window


def global_batch_size(n_train: int, batch_size: int, index: int) -> int:
    """Examples in the index-th global batch of an epoch (the last one may be short)."""
    return min(batch_size, n_train - index * batch_size)
