"""FSDP2 (``gradviz train --fsdp``): shard a spec's model with ``fully_shard`` and save it sharded.

Every module that owns parameters becomes its own FSDP unit (its parameters all-gathered
just before it runs and freed after), then the root. Parameters become DTensors sharded
over the ranks: the norms come from each rank's local shard (``train.stats``), and the
checkpoint is written by every rank, each its own shards, with
``torch.distributed.checkpoint`` (nothing is gathered in full on one rank).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

FINAL_SHARDED = "final"  # the run directory's sharded checkpoint folders (torch.distributed.checkpoint)
BEST_SHARDED = "best"


def shard_model(model: nn.Module, device: torch.device) -> nn.Module:
    """Apply fully_shard to every module that owns parameters, innermost first, then to the root."""
    import torch.distributed as dist
    from torch.distributed.device_mesh import init_device_mesh
    from torch.distributed.fsdp import fully_shard

    # The mesh on the run's device: fully_shard's default picks CUDA whenever there is one, even for --device cpu.
    mesh = init_device_mesh(device.type, (dist.get_world_size(),))
    owners = [m for m in model.modules() if m is not model and any(True for _ in m.parameters(recurse=False))]
    for module in reversed(owners):  # children before parents: each unit holds only its own parameters
        fully_shard(module, mesh=mesh)
    fully_shard(model, mesh=mesh)
    return model


def save_sharded(folder: Path, model: nn.Module, optimizer: Any, **info: Any) -> None:
    """Every rank writes its shards of the model and optimizer state into folder (a collective)."""
    import torch.distributed.checkpoint as dcp
    from torch.distributed.checkpoint.state_dict import get_state_dict

    model_state, optimizer_state = get_state_dict(model, optimizer)
    dcp.save({"model": model_state, "optimizer": optimizer_state, **info}, checkpoint_id=str(folder))


def full_cpu_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """The whole model state on the CPU of every rank (a collective per tensor): only for tracing
    the one step that went non-finite, never while training."""
    state = {}
    for name, value in model.state_dict().items():
        full = value.full_tensor() if hasattr(value, "full_tensor") else value
        state[name] = full.detach().to("cpu", copy=True)
    return state


class ShardedBest:
    """best/ of a sharded run: every rank keeps its own shards of the best model in memory (each rank
    validates on the whole held-out set, so all agree which epoch is best) and writes them at the end."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.best_loss = float("inf")
        self._state: dict[str, Any] | None = None

    def offer(self, model: nn.Module, loss: float, step: int, epoch: int) -> bool:
        """Keep this rank's shards if the loss is the lowest yet; returns whether it was."""
        if not loss < self.best_loss:  # also false for NaN
            return False
        self.best_loss = loss
        from gradviz.train.checkpoint import copied_state

        self._state = {"model": copied_state(model), "step": step, "epoch": epoch, "val_loss": loss}
        return True

    def flush(self) -> None:
        """Every rank writes its shards of the kept model (a collective; call on all ranks together)."""
        import torch.distributed.checkpoint as dcp

        if self._state is not None:
            dcp.save(self._state, checkpoint_id=str(self.folder))
