"""The logged loss under DDP: the mean over every rank's share of each global batch.

Each rank keeps, per step, its loss as the trainer weighed it (world·n_rank/N; no device
op per step: the division by world comes once a window); at a logged step the window's
mean of those shares is summed over ranks by one all-reduce of a scalar, issued next to
the norms' capture: no host synchronisation on CUDA (NCCL orders it on the stream; the
value is copied to the host with the norms); on gloo it is one more small collective per
logged step. One process logs the same number for the same global batches.
"""

from __future__ import annotations

import torch


class RankLossShare:
    """Per-step loss shares of this rank, reduced over ranks once per logged step."""

    def __init__(self) -> None:
        self.shares: list[torch.Tensor] = []
        self.samples: list[int] = []
        self.world = 1

    def add(self, weighted: torch.Tensor, world: int, samples: int = 1) -> None:
        """This step's loss as the trainer weights it for DDP (its share n_rank/N, times world),
        and the step's global batch size N (the window weighs its steps by it)."""
        self.shares.append(weighted)  # divided by world once, in reduce (one operation per window, not per step)
        self.samples.append(samples)
        self.world = world

    def reduce(self) -> torch.Tensor:
        """The window's mean loss over its examples (every rank gets it)."""
        import torch.distributed as dist

        total = sum(self.samples) * self.world
        window = torch.stack([share * (n / total) for share, n in zip(self.shares, self.samples)]).sum()
        self.shares, self.samples = [], []
        # Issued like DDP's own all-reduce: NCCL queues it on the stream (the host goes on);
        # gloo completes it in step with the gradient all-reduce the ranks just did.
        dist.all_reduce(window, op=dist.ReduceOp.SUM)
        return window


def global_batch_size(n_train: int, batch_size: int, index: int) -> int:
    """Examples in the index-th global batch of an epoch (the last one may be short)."""
    return min(batch_size, n_train - index * batch_size)
