"""Checkpoints: final.pt when the run ends or stops, best.pt at the lowest validation loss."""

from __future__ import annotations

import errno
import os
import shutil
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from gradviz.rundir.files import temporary_name
from gradviz.train.config import TrainConfig

LAST_FINITE = "last_finite.pt"  # the parameters before the first non-finite step
BEST_FLUSH_SECONDS = 30.0  # how often an improved best model is written while training


def save_checkpoint(path: Path, model: nn.Module, optimizer: Any, config: TrainConfig, **info: Any) -> None:
    """Write model and optimizer state atomically (a temporary file renamed over path)."""
    state = {
        "model": model.state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "config": asdict(config),
        **info,
    }
    _atomic_save(state, Path(path))


def save_weights(path: Path, weights: dict[str, torch.Tensor], config: TrainConfig, **info: Any) -> None:
    """Write a model state (no optimizer) atomically: last_finite.pt, the parameters before a bad step."""
    _atomic_save({"model": weights, "config": asdict(config), **info}, Path(path))


def copied_state(model: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of the model's state as it is now (on its device; each rank's own shards under FSDP)."""
    with torch.no_grad():
        return {k: v.detach().clone() for k, v in model.state_dict().items()}


class BestKeeper:
    """Keeps the best model in memory and writes it now and then, not on every epoch.

    Writing a checkpoint each epoch costs milliseconds, a large share of an epoch of a
    small model; a copy on the device is a few kernels.
    """

    def __init__(self, path: Path, config: TrainConfig):
        self.path = Path(path)
        self.config = config
        self.best_loss = float("inf")
        self._state: dict[str, Any] | None = None
        self._dirty = False
        self._last_write = time.monotonic()

    def offer(self, model: nn.Module, loss: float, step: int, epoch: int) -> bool:
        """Keep this model if its loss is the lowest yet; returns whether it was."""
        if not loss < self.best_loss:  # also false for NaN
            return False
        self.best_loss = loss
        self._state = {"model": copied_state(model), "config": asdict(self.config), "step": step, "epoch": epoch, "val_loss": loss}
        self._dirty = True
        if time.monotonic() - self._last_write > BEST_FLUSH_SECONDS:
            self.flush()
        return True

    def flush(self) -> None:
        """Write the kept best model if it changed since the last write."""
        if self._dirty and self._state is not None:
            _atomic_save(self._state, self.path)
            self._dirty = False
            self._last_write = time.monotonic()


def save_snapshot(run_dir: Path, model: nn.Module, step: int) -> Path:
    """Write the parameters at `step` to run_dir/snapshots/step_NNNNNNN.pt (CPU tensors)."""
    folder = Path(run_dir) / "snapshots"
    folder.mkdir(exist_ok=True)
    params = {name: p.detach().to("cpu", copy=True) for name, p in model.named_parameters()}
    path = folder / f"step_{step:07d}.pt"
    _atomic_save({"step": step, "params": params}, path)
    return path


def _atomic_save(state: dict[str, Any], path: Path) -> None:
    """torch.save to a temporary file renamed over path; a failed write removes it and raises
    an OSError naming path (torch reports a full disk as a RuntimeError)."""
    tmp = temporary_name(path)
    try:
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError):
            raise OSError(exc.errno, exc.strerror, str(path)) from None
        if "write" not in str(exc):
            raise
        full = shutil.disk_usage(path.parent).free < 2**20
        code = errno.ENOSPC if full else errno.EIO
        raise OSError(code, os.strerror(code), str(path)) from None
