"""The trainer as a separate process: kill -9, Ctrl-C, pause/resume, torchrun with gloo."""

from __future__ import annotations

import json

import pytest
import os
import subprocess
import sys
import time
from pathlib import Path


from gradviz.train.config import TrainConfig
from gradviz.train.launch import start_training
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from gradviz.rundir.paths import RunPaths
from train_support import sample

ROOT = Path(__file__).resolve().parent.parent


def wait_for(predicate, timeout: float = 60.0, what: str = "condition") -> None:
    """Poll until predicate() is true, failing after timeout seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def logged_steps(paths: RunPaths) -> int:
    return len(read_jsonl(paths.metrics)) if paths.metrics.exists() else 0


def gradviz(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run `gradviz COMMAND ...` in a subprocess, as a user would."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gradviz", *args], capture_output=True,
                          text=True, timeout=timeout, env=env, cwd=ROOT)


def long_run(run_dir: Path, **settings) -> TrainConfig:
    return TrainConfig(spec=sample("deep_mlp"), run_dir=str(run_dir), device="cpu", epochs=10_000, log_every=1,
                       **settings)


def test_sigkill_leaves_a_log_that_monitor_opens(tmp_path: Path) -> None:
    handle = start_training(long_run(tmp_path / "run"))
    wait_for(lambda: logged_steps(handle.paths) >= 20, what="20 logged steps")
    handle.kill()
    with open(handle.paths.metrics, "a") as log:
        log.write('{"step": 999999, "epo')  # as if killed mid-line
    rows = read_jsonl(handle.paths.metrics)
    assert len(rows) >= 20 and rows[-1]["step"] != 999999
    result = gradviz("monitor", str(tmp_path / "run"), "--no-tui")
    assert result.returncode == 0, result.stderr
    assert "run lost" in result.stdout and "the trainer process is gone" in result.stdout
    assert "fc1" in result.stdout  # the layer table of the last complete record


def test_ctrl_c_stops_cleanly_and_saves_a_checkpoint(tmp_path: Path) -> None:
    handle = start_training(long_run(tmp_path / "run"))
    wait_for(lambda: logged_steps(handle.paths) >= 5, what="5 logged steps")
    handle.interrupt()
    assert handle.wait(timeout=60) == 0
    status = read_json(handle.paths.status)
    assert status["state"] == "stopped"
    assert handle.paths.final_checkpoint.exists()
    assert status["step"] == read_jsonl(handle.paths.metrics)[-1]["step"]


def test_pause_resume_and_stop_through_the_control_file(tmp_path: Path) -> None:
    handle = start_training(long_run(tmp_path / "run"))
    wait_for(lambda: logged_steps(handle.paths) >= 3, what="3 logged steps")
    handle.pause()
    wait_for(lambda: (read_json(handle.paths.status) or {}).get("state") == "paused", what="paused")
    paused_at = logged_steps(handle.paths)
    time.sleep(0.6)
    assert logged_steps(handle.paths) == paused_at
    handle.resume()
    wait_for(lambda: logged_steps(handle.paths) > paused_at + 3, what="training to go on")
    handle.stop()
    assert handle.wait(timeout=60) == 0
    assert read_json(handle.paths.status)["state"] == "stopped"


def test_cli_reports_a_spec_error_in_one_line(tmp_path: Path) -> None:
    spec = tmp_path / "broken.py"
    spec.write_text("import torch\ndef build_model():\n    return 3\ndef loss(o, t): pass\ndef make_data(s): pass\n")
    result = gradviz("train", str(spec), "--no-tui", "--run-dir", str(tmp_path / "run"))
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        f"gradviz: error: {spec.resolve()}: build_model() must return a torch.nn.Module, got int"]
    assert "Traceback" in (tmp_path / "run" / "error.txt").read_text()


def test_cli_trains_and_prints_a_table(tmp_path: Path) -> None:
    result = gradviz("train", sample("two_layer_mlp"), "--no-tui", "--epochs", "3", "--run-dir", str(tmp_path / "r"))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert any(line.split()[:2] == ["epoch", "step"] for line in lines)
    rows = [line.split() for line in lines if line.split()[:1] in (["1"], ["2"], ["3"])]
    assert rows and rows[-1][:2] == ["3", "39"]  # rows are at least a second apart; the last one always shows
    config = json.loads((tmp_path / "r" / "config.json").read_text())
    assert config["epochs"] == 3 and config["lr"] == 0.1  # flag, then the spec's TRAINING


@pytest.fixture(scope="module")
def gloo_run(tmp_path_factory) -> tuple[Path, int, dict]:
    """One torchrun job of two gloo processes, read by the tests below: its folder, exit code and
    settings. Batch 33 splits 17/16 between the ranks: the mean must weight each rank by its share."""
    settings = dict(device="cpu", epochs=2, batch_size=33, log_every=3, seed=5)
    folder = tmp_path_factory.mktemp("gloo")
    config = TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(folder / "run"), nproc_per_node=2, **settings)
    handle = start_training(config)
    return folder, handle.wait(timeout=120), settings


def test_two_gloo_processes_agree_and_write_one_run_dir(gloo_run) -> None:
    folder, code, _ = gloo_run
    paths = RunPaths(folder / "run")
    log = paths.worker_log.read_text()
    assert code == 0, log
    status = read_json(paths.status)
    assert status["state"] == "finished" and status["ranks_agree"] is True, status
    meta = read_json(paths.meta)
    assert meta["world_size"] == 2 and meta["backend"] == "gloo"
    steps = [r["step"] for r in read_jsonl(paths.metrics)]
    assert steps == sorted(set(steps)), "one writer: no step logged twice"
    assert steps[-1] == 2 * meta["steps_per_epoch"]
    assert sorted(p.name for p in folder.iterdir()) == ["run"]
    assert not list((folder / "run").glob("error*"))


def test_two_gloo_ranks_log_the_loss_of_one_process_on_the_same_global_batch(gloo_run, tmp_path: Path) -> None:
    from train_support import train_here

    folder, code, settings = gloo_run
    assert code == 0, (folder / "run" / "worker.log").read_text()
    train_here(tmp_path / "one", sample("two_layer_mlp"), **settings)
    ddp = {r["step"]: r for r in read_jsonl(folder / "run" / "metrics.jsonl")}
    one = {r["step"]: r for r in read_jsonl(tmp_path / "one" / "metrics.jsonl")}
    assert sorted(ddp) == sorted(one) and len(one) > 5
    for step in one:
        assert ddp[step]["loss"] == pytest.approx(one[step]["loss"], rel=1e-5), step
        assert ddp[step]["grad_norm_total"] == pytest.approx(one[step]["grad_norm_total"], rel=1e-4), step


def test_two_nodes_on_localhost_both_commands_end_with_the_job(tmp_path: Path) -> None:
    import socket

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [[sys.executable, "-m", "gradviz", "train", sample("two_layer_mlp"), "--device", "cpu", "--epochs", "2",
                 "--no-tui", "--nnodes", "2", "--node-rank", str(node), "--master-addr", "127.0.0.1",
                 "--master-port", port, "--run-dir", str(tmp_path / f"node{node}")] for node in (0, 1)]
    nodes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for c in commands]
    try:
        outs = [node.communicate(timeout=150) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    assert [node.returncode for node in nodes] == [0, 0], outs
    lead = read_json(tmp_path / "node0" / "status.json")
    other = read_json(tmp_path / "node1" / "status.json")
    assert lead["state"] == other["state"] == "finished" and lead["ranks_agree"] is True
    assert other["step"] == lead["step"] and other["rank"] == 1
    assert "run directory is rank 0's on 127.0.0.1" in other["message"]
    assert "run finished at step" in outs[1][0]


def test_a_nan_under_two_gloo_ranks_is_traced_and_reported_once(tmp_path: Path) -> None:
    from test_train_nan import LOG_SPEC
    from train_support import write_spec

    spec = write_spec(tmp_path, LOG_SPEC)
    config = TrainConfig(spec=spec, run_dir=str(tmp_path / "run"), device="cpu", nproc_per_node=2, stop_on_nan=True,
                         seed=0)
    handle = start_training(config)
    handle.wait(timeout=120)
    status = read_json(handle.paths.status)
    # Both ranks stop at the same step; rank 0's traced origin is what the run directory says.
    assert status["state"] == "failed" and status["kind"] == "NonFiniteError", status
    assert "born at fc2 → log (forward)" in status["message"] and status["failed_at_step"] == status["nan"]["step"]
    # Every rank's share goes negative together: the lowest such rank, 0, traces it and is named.
    assert status["nan"]["message"].startswith(f"NaN at step {status['nan']['step']} on rank 0, born at fc2 → log")
    assert (tmp_path / "run" / "error-rank1.txt").exists()


# Counts its own updates: the loss appends a byte to a file at every call (no validation).
COUNTING_SPEC = """
import os
import torch
from torch import nn

TRAINING = {"lr": 0.01, "epochs": 100000, "batch_size": 8, "optimizer": "sgd", "val_fraction": 0.0}
COUNTER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "calls")

def build_model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))

def loss(output, target):
    with open(COUNTER, "ab") as handle:
        handle.write(b".")
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(64, 3, generator=g)
    return x, x.sum(dim=1, keepdim=True)
"""


def test_after_kill_9_the_summary_names_the_true_step_not_the_last_logged_one(tmp_path: Path) -> None:
    from gradviz.monitor.state import RunView
    from train_support import write_spec

    spec = write_spec(tmp_path, COUNTING_SPEC)
    counter = tmp_path / "calls"
    handle = start_training(TrainConfig(spec=spec, run_dir=str(tmp_path / "run"), device="cpu", log_every=1000))
    # The spec's loss runs once in its check forward before training: count from the first record.
    wait_for(lambda: logged_steps(handle.paths) >= 1, what="the first record")
    wait_for(lambda: counter.stat().st_size >= 40, what="40 updates")
    handle.kill()
    handle.check_exit()
    calls = counter.stat().st_size
    view = RunView(tmp_path / "run")
    view.poll()
    assert [r["step"] for r in view.records] == [1]  # logged: step 1 only
    reached = view.status["failed_at_step"]
    # Killed between two losses or after one: the updates done are the calls less the check's one, or one fewer.
    assert calls - 2 <= reached <= calls - 1 and reached >= 38
    assert view.ending().startswith(f"failed at step {reached} (last logged step 1)")
    result = gradviz("monitor", str(tmp_path / "run"), "--no-tui")
    assert f"failed at step {reached}" in result.stdout, result.stdout


def test_a_data_nan_in_rank_1s_share_is_traced_by_rank_1_at_its_true_step(tmp_path: Path) -> None:
    import torch

    from gradviz.commands.train import exit_code
    from gradviz.errors import NonFiniteError
    from train_support import LINEAR_SPEC, write_spec

    # Independently of the trainer: the examples of each rank's share of each step (the order
    # every rank draws: seed·100003 + epoch; global batches of 16 cut in two halves).
    seed, n, batch = 1, 64, 16
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed))  # the split (no validation)
    epoch_order = torch.randperm(n, generator=torch.Generator().manual_seed(seed * 100_003 + 1))
    step3_rank1 = order[epoch_order[2 * batch + batch // 2:3 * batch]]  # step 3, rank 1's half
    bad = int(step3_rank1[3])
    spec = write_spec(tmp_path, LINEAR_SPEC.replace("    return x, x.sum(dim=1, keepdim=True)",
                                                    f"    y = x.sum(dim=1, keepdim=True)\n    x[{bad}, 0] = float('nan')\n"
                                                    "    return x, y"))
    config = TrainConfig(spec=spec, run_dir=str(tmp_path / "run"), device="cpu", nproc_per_node=2, seed=seed,
                         batch_size=batch, epochs=3, val_fraction=0.0)
    handle = start_training(config)
    assert handle.wait(timeout=240) == 0, (tmp_path / "run" / "worker.log").read_text()[-3000:]
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    assert (trace["step"], trace["rank"], trace["bad_examples"]) == (3, 1, [bad])
    assert trace["message"].startswith("NaN at step 3 on rank 1, born at ")
    assert trace["message"].endswith(f"non-finite data in dataset example {bad}")
    status = read_json(handle.paths.status)
    assert status["state"] == "finished" and status["nan"]["step"] == 3 and status["nan"]["rank"] == 1
    assert status["ranks_agree"] is True  # the replicas went NaN together: they agree (NaN equals NaN here)
    saved = torch.load(tmp_path / "run" / "nan_step.pt", weights_only=False)
    assert torch.isnan(saved["x"]).any()  # rank 1's own share of the step, not rank 0's
    with pytest.raises(NonFiniteError, match="NaN at step 3 on rank 1"):
        exit_code("finished", tmp_path / "run")


def test_a_dead_peer_on_another_node_is_one_line_naming_its_node_and_rank(tmp_path: Path) -> None:
    import signal
    import socket

    from gradviz.rundir.heartbeat import read_heartbeat

    with socket.socket() as probe:  # a free port for the rendezvous
        probe.bind(("127.0.0.1", 0))
        port = str(probe.getsockname()[1])
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    commands = [[sys.executable, "-m", "gradviz", "train", sample("two_layer_mlp"), "--device", "cpu",
                 "--epochs", "100000", "--no-tui", "--nnodes", "2", "--node-rank", str(node), "--master-addr",
                 "127.0.0.1", "--master-port", port, "--run-dir", str(tmp_path / f"node{node}")] for node in (0, 1)]
    nodes = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=ROOT)
             for c in commands]
    try:
        node1 = RunPaths(tmp_path / "node1")
        wait_for(lambda: (read_heartbeat(node1) or {}).get("step", 0) >= 30, timeout=150, what="30 steps on node 1")
        os.kill(read_json(node1.status)["pid"], signal.SIGKILL)  # node 1's worker, not its front end
        outs = [node.communicate(timeout=150) for node in nodes]
    finally:
        for node in nodes:
            node.kill()
    lead_err = outs[0][1]
    assert nodes[0].returncode != 0
    assert "rank 1 on node 1 (" in lead_err and "stopped answering" in lead_err, lead_err[-2000:]
    assert "Connection reset" not in lead_err and "Traceback" not in lead_err, lead_err[-2000:]
    lead = read_json(tmp_path / "node0" / "status.json")
    assert lead["state"] == "failed" and lead["kind"] == "PeerLost" and "rank 1 on node 1" in lead["message"]
    other = read_json(tmp_path / "node1" / "status.json")  # node 1 says how far its rank got, not "before its first step"
    assert other["state"] == "failed" and other["failed_at_step"] >= 30
