"""GPU-only checks: training on CUDA, and no host synchronisation inside a training step."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradviz.train.config import TrainConfig
from gradviz.train.data import epoch_batches
from gradviz.rundir.paths import RunPaths
from gradviz.train.worker import DistInfo, build_trainer
from train_support import records, sample, train_here

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine)")


@needs_cuda
def test_training_on_cuda_logs_norms_and_masks(tmp_path: Path) -> None:
    result = train_here(tmp_path, sample("deep_mlp"), device="cuda", epochs=2, log_every=3)
    assert result.state == "finished"
    rows = records(tmp_path)
    assert rows[-1]["val_acc"] > 0.5 and all(v > 0 for v in rows[-1]["grad_norm"].values())
    assert abs(rows[-1]["keep_rate"]["drop1"] - 0.9) < 0.05


@needs_cuda
def test_a_training_step_makes_no_host_sync(tmp_path: Path) -> None:
    """Logged and unlogged steps, with accumulation and L2, under set_sync_debug_mode('error')."""
    config = TrainConfig(spec=sample("deep_mlp"), run_dir=str(tmp_path), device="cuda", accum=2, l2=1e-4)
    trainer = build_trainer(config, RunPaths(tmp_path), DistInfo())
    batches = epoch_batches(len(trainer.data.x_train), 64, 1, 0, 0, 1, 2, trainer.device)
    trainer.start = trainer.cpu_start = 0.0
    trainer._update(batches[0], logged=True, write=True)  # warm-up: allocator, pinned pool, index cache
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        for k, micro in enumerate(batches[1:9]):
            trainer._update(micro, logged=k % 2 == 0, write=True)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    trainer._write_ready(wait=True)
    trainer.recorder.close()
    assert len(records(tmp_path)) == 5  # the warm-up step and four logged steps
