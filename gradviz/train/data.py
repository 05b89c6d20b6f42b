"""Devices, the train/validation split and the batches of each epoch."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from gradviz.errors import TrainingError


@dataclass(frozen=True)
class DataSplit:
    """Training and validation tensors, already on the training device."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_val: torch.Tensor
    y_val: torch.Tensor
    train_index: torch.Tensor | None = None  # dataset index of each training example (CPU)


def pick_device(name: str, local_rank: int = 0) -> torch.device:
    """'auto' is CUDA when present, else CPU; 'cuda' without a GPU is a TrainingError."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise TrainingError(f"--device {name}: no CUDA GPU is available here; use --device cpu or auto")
    device = torch.device(name)
    index = device.index if device.index is not None else local_rank  # one GPU per process under torchrun
    if index >= torch.cuda.device_count():
        raise TrainingError(f"--device {name}: only {torch.cuda.device_count()} CUDA device(s) here")
    torch.cuda.set_device(index)
    return torch.device("cuda", index)


def split_data(x: torch.Tensor, y: torch.Tensor, val_fraction: float, seed: int, device: torch.device) -> DataSplit:
    """Shuffle once with the seed, hold out val_fraction for validation, move to device."""
    n = x.shape[0]
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    n_val = int(round(n * val_fraction))
    if val_fraction > 0 and n_val == 0:
        n_val = 1
    if n - n_val < 1:
        raise TrainingError(f"--val-fraction {val_fraction} leaves no training examples out of {n}")
    val, train = order[:n_val], order[n_val:]
    return DataSplit(x[train].to(device), y[train].to(device), x[val].to(device), y[val].to(device), train)


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy a CPU tensor to the device without making the host wait (pinned, non-blocking)."""
    if device.type != "cuda":
        return tensor
    return tensor.pin_memory().to(device, non_blocking=True)


def check_batch_size(batch_size: int, n_train: int, world: int, accum: int, val_fraction: float) -> None:
    """TrainingError when a batch cannot be filled from the training set."""
    if batch_size > n_train:
        held = f" after holding out {val_fraction:.0%} for validation" if val_fraction else ""
        raise TrainingError(
            f"--batch-size {batch_size} is larger than the training set ({n_train} examples{held}); "
            f"use --batch-size {n_train} for full-batch gradient descent"
        )
    if batch_size < world * accum:
        raise TrainingError(
            f"--batch-size {batch_size} cannot be split over {world} process(es) x {accum} micro-batch(es)"
        )


def steps_per_epoch(n_train: int, batch_size: int, world: int, accum: int) -> int:
    """Updates per epoch: every batch, less a last one too small to share out."""
    full, rest = divmod(n_train, batch_size)
    return full + (1 if rest >= world * accum else 0)


def epoch_batches(n_train: int, batch_size: int, epoch: int, seed: int, rank: int, world: int,
                  accum: int, device: torch.device) -> list[list[torch.Tensor]]:
    """This rank's micro-batches (index tensors on device) for every update of an epoch.

    Every rank draws the same permutation (same seed and epoch), cuts it into global
    batches of batch_size, and takes its own share of each: the update averages over
    batch_size examples whatever the number of processes.
    """
    generator = torch.Generator().manual_seed(seed * 100_003 + epoch)
    order = to_device(torch.randperm(n_train, generator=generator), device)
    updates = []
    for batch in order.split(batch_size)[: steps_per_epoch(n_train, batch_size, world, accum)]:
        share = batch.tensor_split(world)[rank] if world > 1 else batch
        updates.append(list(share.tensor_split(min(accum, share.numel()))) if accum > 1 else [share])
    return updates
