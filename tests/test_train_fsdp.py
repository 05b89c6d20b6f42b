"""gradviz train --fsdp: two gloo ranks with the model sharded by fully_shard train what one process trains."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch

from gradviz.monitor.state import RunView
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from gradviz.train.config import TrainConfig
from gradviz.train.launch import start_training
from train_support import sample, train_here

pytestmark = pytest.mark.skipif(not torch.distributed.is_available(), reason="torch built without torch.distributed")

# Batch 33 splits 17/16 between the ranks, each share in two micro-batches; the slide's L2 (a sum of
# whole norms) over sharded parameters; plain SGD, so a wrong gradient scale shows in the parameters;
# validation each epoch runs on both ranks (its all-gathers need them).
SETTINGS = dict(device="cpu", epochs=2, batch_size=33, accum=2, l2=1e-2, l2_form="norm", optimizer="sgd",
                log_every=3, seed=3)


def load_sharded(folder: Path, tmp_path: Path) -> dict:
    """The sharded checkpoint as one torch.save file, the way the README says to load it."""
    from torch.distributed.checkpoint.format_utils import dcp_to_torch_save

    whole = tmp_path / f"{folder.name}_whole.pt"
    dcp_to_torch_save(folder, whole)
    return torch.load(whole, weights_only=False)


def fsdp_beside_one_process(tmp_path: Path, settings: dict) -> Any:
    """two_layer_mlp trained with --fsdp on 2 gloo ranks into tmp_path/fsdp (its handle, finished) and in
    one process into tmp_path/one, with the same settings."""
    config = TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(tmp_path / "fsdp"), nproc_per_node=2, fsdp=True,
                         **settings)
    handle = start_training(config)
    try:
        assert handle.wait(timeout=300) == 0, handle.paths.worker_log.read_text()[-3000:]
    finally:
        handle.kill()  # a hung collective must not outlive the test
    train_here(tmp_path / "one", sample("two_layer_mlp"), **settings)
    return handle


def test_fsdp_on_two_ranks_matches_one_process_on_the_same_global_batch(tmp_path: Path) -> None:
    handle = fsdp_beside_one_process(tmp_path, SETTINGS)

    status, meta = read_json(handle.paths.status), read_json(handle.paths.meta)
    steps = 2 * meta["steps_per_epoch"]
    assert status["state"] == "finished" and status["checkpoint_step"] == steps, status
    assert meta["world_size"] == 2 and meta["sharded"] is True and meta["backend"] == "gloo"
    assert not handle.paths.final_checkpoint.exists(), "a sharded run writes final/, never a whole final.pt"
    view = RunView(handle.paths.root)
    view.poll()
    assert view.ending() == f"finished at step {steps}; checkpoint final/ (sharded) at step {steps}"
    assert view.accumulation().startswith("B = 33 over 2 processes (FSDP), K = 2,"), view.accumulation()

    sharded = load_sharded(handle.paths.root / "final", tmp_path)
    whole = torch.load(tmp_path / "one" / "final.pt", weights_only=False)
    assert sharded["step"] == whole["step"] == steps
    assert sorted(sharded["model"]) == sorted(whole["model"])
    for name, value in whole["model"].items():
        torch.testing.assert_close(sharded["model"][name], value, rtol=1e-5, atol=1e-7, msg=name)
    assert sharded["model"]["fc1.weight"].shape == whole["model"]["fc1.weight"].shape  # whole again, not a shard

    sharded_best = load_sharded(handle.paths.root / "best", tmp_path)
    best = torch.load(tmp_path / "one" / "best.pt", weights_only=False)
    assert (sharded_best["step"], sharded_best["epoch"]) == (best["step"], best["epoch"])
    assert sharded_best["val_loss"] == pytest.approx(best["val_loss"], rel=1e-5)
    for name, value in best["model"].items():
        torch.testing.assert_close(sharded_best["model"][name], value, rtol=1e-5, atol=1e-7, msg=name)

    fsdp = {r["step"]: r for r in read_jsonl(handle.paths.metrics)}
    one = {r["step"]: r for r in read_jsonl(tmp_path / "one" / "metrics.jsonl")}
    assert sorted(fsdp) == sorted(one) and len(one) >= 5
    for step, record in one.items():
        assert fsdp[step]["loss"] == pytest.approx(record["loss"], rel=1e-5), step
        assert fsdp[step]["penalty"] == pytest.approx(record["penalty"], rel=1e-5) and record["penalty"] > 0, step
        for key in ("grad_norm", "param_norm"):
            assert fsdp[step][key].keys() == record[key].keys()
            for layer, norm in record[key].items():
                assert fsdp[step][key][layer] == pytest.approx(norm, rel=1e-5), (step, key, layer)
        if "val_loss" in record:
            assert fsdp[step]["val_loss"] == pytest.approx(record["val_loss"], rel=1e-5), step
    assert sum("val_loss" in r for r in one.values()) == 2


def test_a_data_nan_in_rank_1s_share_under_fsdp_is_traced_by_rank_1_at_its_true_step(tmp_path: Path) -> None:
    from gradviz.train.sharding import FINAL_SHARDED
    from train_support import LINEAR_SPEC, write_spec

    # The examples of rank 1's half of step 3, drawn independently of the trainer (the order every
    # rank draws: the split, then seed·100003 + epoch; global batches of 16 cut in two halves).
    seed, n, batch = 1, 64, 16
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    epoch_order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + 1))
    bad = int(order[epoch_order[2 * batch + batch // 2:3 * batch]][3])
    spec = write_spec(tmp_path, LINEAR_SPEC.replace("    return x, x.sum(dim=1, keepdim=True)",
                                                    f"    y = x.sum(dim=1, keepdim=True)\n    x[{bad}, 0] = float('nan')\n"
                                                    "    return x, y"))
    config = TrainConfig(spec=spec, run_dir=str(tmp_path / "run"), device="cpu", nproc_per_node=2, fsdp=True,
                         seed=seed, batch_size=batch, epochs=1, max_steps=5, log_every=5, val_fraction=0.0)
    handle = start_training(config)
    try:
        assert handle.wait(timeout=300) == 0, handle.paths.worker_log.read_text()[-3000:]
    finally:
        handle.kill()
    trace = read_json(handle.paths.root / "nan_trace.json")
    assert (trace["step"], trace["rank"], trace["bad_examples"]) == (3, 1, [bad])
    assert trace["message"].startswith("NaN at step 3 on rank 1, born at ")
    status = read_json(handle.paths.status)
    assert status["nan"]["step"] == 3 and status["nan"]["rank"] == 1, status
    saved = torch.load(handle.paths.root / "nan_step.pt", weights_only=False)
    assert torch.isnan(saved["x"]).any()  # rank 1's own share of the step
    assert all(type(v) is torch.Tensor for v in saved["model"].values())  # gathered whole, not DTensor shards
    assert (handle.paths.root / FINAL_SHARDED / ".metadata").exists()


@pytest.mark.parametrize("nproc", [1, 2])
def test_stop_on_nan_under_fsdp_stops_every_rank_at_the_traced_step(tmp_path: Path, nproc: int) -> None:
    from test_train_nan import LOG_SPEC
    from train_support import write_spec

    # Every rank's share goes negative under log together; only the gradient check reads shards, and
    # a rank whose loss was already bad skips it: that check must issue no collective. One process
    # sharded over itself still holds DTensors: the traced step needs them whole too.
    config = TrainConfig(spec=write_spec(tmp_path, LOG_SPEC), run_dir=str(tmp_path / "run"), device="cpu",
                         nproc_per_node=nproc, fsdp=True, stop_on_nan=True, seed=0)
    handle = start_training(config)
    try:
        assert handle.wait(timeout=300) == 1, handle.paths.worker_log.read_text()[-3000:]
    finally:
        handle.kill()
    status = read_json(handle.paths.status)
    assert status["state"] == "failed" and status["kind"] == "NonFiniteError", status
    step = status["nan"]["step"]
    assert status["failed_at_step"] == status["checkpoint_step"] == step
    where = " on rank 0" if nproc > 1 else ""
    assert status["nan"]["message"].startswith(f"NaN at step {step}{where}, born at fc2 → log (forward)")
    last = torch.load(handle.paths.root / "last_finite.pt", weights_only=False)
    assert last["step"] == step - 1 and all(type(v) is torch.Tensor and v.isfinite().all()
                                            for v in last["model"].values())


def test_fsdp_with_snapshots_is_one_line_and_exit_2_before_anything_starts(tmp_path: Path, capsys) -> None:
    from gradviz.cli import main

    code = main(["train", sample("two_layer_mlp"), "--fsdp", "--snapshots", "5", "--no-tui",
                 "--run-dir", str(tmp_path / "run")])
    err = capsys.readouterr().err
    assert code == 2 and err == "gradviz: error: --snapshots keeps whole parameters on one rank; it cannot be used with --fsdp\n"
    assert not (tmp_path / "run").exists()


def test_fsdp_alone_is_launched_under_torchrun_even_for_one_process() -> None:
    from gradviz.train.launch import worker_command

    command = worker_command(TrainConfig(spec="s.py", run_dir="r", fsdp=True), Path("r/config.json"))
    assert command[1:3] == ["-m", "torch.distributed.run"] and "--nproc-per-node" in command
    assert command[command.index("--nproc-per-node") + 1] == "1"


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA (no GPU on this machine): NCCL's FSDP path")
def test_fsdp_on_cuda_with_nccl_matches_one_process(tmp_path: Path) -> None:
    nproc = min(2, torch.cuda.device_count())
    settings = dict(device="cuda", epochs=1, batch_size=32, log_every=2, seed=3, optimizer="sgd")
    config = TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(tmp_path / "fsdp"), nproc_per_node=nproc,
                         fsdp=True, **settings)
    handle = start_training(config)
    try:
        assert handle.wait(timeout=300) == 0, handle.paths.worker_log.read_text()[-3000:]
    finally:
        handle.kill()
    assert read_json(handle.paths.meta)["backend"] == "nccl"
    train_here(tmp_path / "one", sample("two_layer_mlp"), **settings)
    sharded = load_sharded(handle.paths.root / "final", tmp_path)
    whole = torch.load(tmp_path / "one" / "final.pt", weights_only=False, map_location="cpu")
    for name, value in whole["model"].items():
        torch.testing.assert_close(sharded["model"][name].cpu(), value, rtol=1e-4, atol=1e-6, msg=name)
    fsdp = {r["step"]: r for r in read_jsonl(handle.paths.metrics)}
    for record in read_jsonl(tmp_path / "one" / "metrics.jsonl"):
        assert fsdp[record["step"]]["grad_norm_total"] == pytest.approx(record["grad_norm_total"], rel=1e-4)
