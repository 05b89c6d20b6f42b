"""gradviz train --fsdp: two gloo ranks with the model sharded by fully_shard train what one process trains."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from gradviz.rundir import read_json, read_jsonl
from gradviz.train.config import TrainConfig
from gradviz.train.launch import start_training
from train_support import sample, train_here

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed")

# Batch 33 splits 17/16 between the ranks; validation each epoch runs on both (its all-gathers need them).
SETTINGS = dict(device="cpu", epochs=2, batch_size=33, log_every=2, seed=3, max_steps=8)


def load_sharded(folder: Path, tmp_path: Path) -> dict:
    """The sharded checkpoint as one torch.save file, the way the README says to load it."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    whole = tmp_path / "final_whole.pt"
    dcp_to_torch_save(folder, whole)
    return torch.load(whole, weights_only=False)


def test_fsdp_on_two_ranks_matches_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    config = TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(tmp_path / "fsdp"), nproc_per_node=2, fsdp=True,
                         **SETTINGS)
    handle = start_training(config)
    assert handle.wait(timeout=300) == 0, handle.paths.worker_log.read_text()
    train_here(tmp_path / "one", sample("two_layer_mlp"), **SETTINGS)

    status, meta = read_json(handle.paths.status), read_json(handle.paths.meta)
    assert status["state"] == "finished" and status["checkpoint_step"] == 8, status
    assert meta["world_size"] == 2 and meta["sharded"] is True and meta["backend"] == "gloo"
    assert not handle.paths.final_checkpoint.exists(), "a sharded run writes final/, never a whole final.pt"

    sharded = load_sharded(handle.paths.root / "final", tmp_path)
    whole = torch.load(tmp_path / "one" / "final.pt", weights_only=False)
    assert sharded["step"] == whole["step"] == 8
    assert sorted(sharded["model"]) == sorted(whole["model"])
    for name, value in whole["model"].items():
        torch.testing.assert_close(sharded["model"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    assert sharded["model"]["fc1.weight"].shape == whole["model"]["fc1.weight"].shape  # whole again, not a shard

    fsdp = {r["step"]: r for r in read_jsonl(handle.paths.metrics)}
    one = {r["step"]: r for r in read_jsonl(tmp_path / "one" / "metrics.jsonl")}
    assert sorted(fsdp) == sorted(one) and len(one) >= 5
    for step, record in one.items():
        assert fsdp[step]["loss"] == pytest.approx(record["loss"], rel=1e-5), step
        for key in ("grad_norm", "param_norm"):
            assert fsdp[step][key].keys() == record[key].keys()
            for layer, norm in record[key].items():
                assert fsdp[step][key][layer] == pytest.approx(norm, rel=1e-5), (step, key, layer)
        if "val_loss" in record:
            assert fsdp[step]["val_loss"] == pytest.approx(record["val_loss"], rel=1e-5), step
    assert any("val_loss" in r for r in one.values())
