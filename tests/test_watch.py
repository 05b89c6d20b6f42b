"""gradviz.watch in a plain loop: the run directory `gradviz monitor` reads, with exact numbers."""

from __future__ import annotations

import math
import subprocess
import time
import sys
import textwrap
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from torch import nn

import gradviz
from gradviz.monitor.state import RunView
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from gradviz.rundir.paths import RunPaths
from gradviz.train.histograms import bin_edges

ROOT = Path(__file__).resolve().parent.parent


def make_model() -> nn.Module:
    torch.manual_seed(0)
    return nn.Sequential(nn.Linear(4, 16), nn.ReLU(), nn.Dropout(0.5), nn.Linear(16, 1))


def batches(n: int = 7) -> list[tuple[torch.Tensor, torch.Tensor]]:
    gen = torch.Generator().manual_seed(1)
    return [(torch.randn(8, 4, generator=gen), torch.randn(8, 1, generator=gen)) for _ in range(n)]


def train(model: nn.Module, run: gradviz.Run | None, observe=None, optimizer=None) -> list[float]:
    """The same plain loop with or without watching; observe(step, model, loss) sees the applied gradient."""
    optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=0.1)
    torch.manual_seed(2)  # dropout draws
    losses = []
    for step, (x, y) in enumerate(batches(), start=1):
        loss = F.mse_loss(model(x), y)
        loss.backward()
        if observe is not None:
            observe(step, model, loss)
        optimizer.step()
        optimizer.zero_grad()
        if run is not None:
            run.log(loss=loss, acc=-loss.detach(), lr=0.1)
        losses.append(loss.item())
    return losses


def test_watch_records_what_an_independent_computation_gives(tmp_path):
    expected: dict[int, dict] = {}
    masks: dict[int, tuple[torch.Tensor, torch.Tensor]] = {}
    plain = make_model()
    drop = plain[2]
    drop.register_forward_hook(lambda m, inputs, out: masks.__setitem__("last", (inputs[0].detach(), out.detach())))

    def observe(step, model, loss):
        layers = {"0": [model[0].weight, model[0].bias], "3": [model[3].weight, model[3].bias]}
        expected[step] = {
            "loss": loss.item(),
            "grad": {k: torch.sqrt(sum(p.grad.pow(2).sum() for p in ps)).item() for k, ps in layers.items()},
            "param": {k: torch.sqrt(sum(p.detach().pow(2).sum() for p in ps)).item() for k, ps in layers.items()},
            "mask": masks["last"],
        }

    plain_losses = train(plain, None, observe)
    optimizer_run = tmp_path / "mine"
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with gradviz.watch(model, optimizer, run_dir=optimizer_run, log_every=3, log_seconds=0) as run:
        torch.manual_seed(2)
        losses = []
        for x, y in batches():
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            run.log(loss=loss, acc=-loss.detach(), lr=0.1)
            losses.append(loss.item())
    assert type(model[2]) is nn.Dropout  # the recording layer is swapped back on close
    assert losses == plain_losses  # watching changes nothing about training (same dropout draws)
    records = read_jsonl(RunPaths(optimizer_run).metrics)
    assert [r["step"] for r in records] == [1, 3, 6]
    # A record averages the losses logged since the previous one, as `gradviz train` does.
    spans = {1: [1], 3: [2, 3], 6: [4, 5, 6]}
    for record in records:
        step = record["step"]
        mean = sum(expected[s]["loss"] for s in spans[step]) / len(spans[step])
        assert record["loss"] == pytest.approx(mean, rel=1e-6)
        assert record["extra"]["acc"] == pytest.approx(-mean, rel=1e-6) and record["extra"]["lr"] == pytest.approx(0.1)
        for layer in ("0", "3"):
            assert record["grad_norm"][layer] == pytest.approx(expected[step]["grad"][layer], rel=1e-5)
            assert record["param_norm"][layer] == pytest.approx(expected[step]["param"][layer], rel=1e-5)
    # The mask sample is the first example's mask of the step's forward: wherever the
    # dropout input was non-zero, kept ⇔ the output is non-zero.
    samples = {m["step"]: m["layers"]["2"] for m in read_jsonl(RunPaths(optimizer_run).masks)}
    assert 1 in samples
    inputs, outputs = expected[1]["mask"]
    kept = [c == "1" for c in samples[1]["kept"]]
    first_in, first_out = inputs[0].reshape(-1), outputs[0].reshape(-1)
    informative = first_in != 0
    assert informative.sum() > 4
    assert [k for k, i in zip(kept, informative) if i] == [bool(o != 0) for o, i in zip(first_out, informative) if i]
    status = read_json(RunPaths(optimizer_run).status)
    assert status["state"] == "finished" and status["step"] == 7
    view = RunView(optimizer_run)
    view.poll()
    assert view.layers == ["0", "3"] and view.series.extra["acc"][-1] == pytest.approx(records[-1]["extra"]["acc"])


def test_monitor_no_tui_reads_a_watched_run(tmp_path):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "r", log_every=2, log_seconds=0)
    train(model, run, optimizer=optimizer)
    run.close()
    result = subprocess.run([sys.executable, "-m", "gradviz", "monitor", str(tmp_path / "r"), "--no-tui"],
                            capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert result.returncode == 0, result.stderr
    last = read_jsonl(RunPaths(tmp_path / "r").metrics)[-1]
    assert "run finished at step 7 (last logged step 6)" in result.stdout
    assert f"{last['loss']:.4g}" in result.stdout and "metrics at the last logged step: acc" in result.stdout


def test_a_crash_or_ctrl_c_in_the_loop_leaves_a_readable_run(tmp_path):
    for error, state in ((RuntimeError("boom"), "failed"), (KeyboardInterrupt(), "stopped")):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        folder = tmp_path / state
        with pytest.raises(type(error)):
            with gradviz.watch(model, optimizer, run_dir=folder, log_every=1, log_seconds=0) as run:
                for step, (x, y) in enumerate(batches(3)):
                    F.mse_loss(model(x), y).backward()
                    optimizer.step()
                    optimizer.zero_grad()
                    run.log(loss=torch.tensor(float(step)))
                    if step == 1:
                        raise error
        status = read_json(RunPaths(folder).status)
        assert status["state"] == state and status["step"] == 2
        assert [r["loss"] for r in read_jsonl(RunPaths(folder).metrics)] == [0.0, 1.0]
    assert "RuntimeError: boom" in (tmp_path / "failed" / "error.txt").read_text()


def test_an_uncaught_exception_in_a_plain_script_marks_the_run_failed(tmp_path):
    script = tmp_path / "crash.py"
    script.write_text(textwrap.dedent(f"""
        import torch, gradviz
        model = torch.nn.Linear(2, 1)
        opt = torch.optim.SGD(model.parameters(), lr=0.1)
        run = gradviz.watch(model, opt, run_dir={str(tmp_path / "run")!r}, log_every=1, log_seconds=0)
        for step in range(3):
            model(torch.ones(4, 2)).sum().backward(); opt.step(); opt.zero_grad()
            run.log(loss=torch.tensor(1.0))
            if step == 1:
                raise ValueError("the data ran out")
    """))
    result = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=120,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT)})
    assert result.returncode == 1 and "ValueError: the data ran out" in result.stderr
    status = read_json(RunPaths(tmp_path / "run").status)
    assert status["state"] == "failed" and "ValueError: the data ran out" in status["message"]


def test_only_rank_0_writes_and_bad_arguments_are_clear(tmp_path, monkeypatch):
    monkeypatch.setenv("RANK", "1")
    model = nn.Linear(2, 1)
    run = gradviz.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path / "r1")
    run.log(loss=torch.tensor(1.0))
    run.close()
    assert not (tmp_path / "r1").exists()
    monkeypatch.delenv("RANK")
    with pytest.raises(TypeError, match="must be a torch.nn.Module"):
        gradviz.watch("model", None)
    with pytest.raises(ValueError, match="log_every"):
        gradviz.watch(model, None, run_dir=tmp_path / "r2", log_every=0)


def test_without_an_optimizer_each_log_reads_the_gradients(tmp_path):
    model = nn.Linear(3, 1)
    run = gradviz.watch(model, run_dir=tmp_path / "r", log_every=1, log_seconds=0)
    loss = model(torch.ones(2, 3)).sum()
    loss.backward()
    run.log(loss=loss)
    run.close()
    record = read_jsonl(RunPaths(tmp_path / "r").metrics)[0]
    expected = math.sqrt(model.weight.grad.pow(2).sum().item() + model.bias.grad.pow(2).sum().item())
    assert record["grad_norm_total"] == pytest.approx(expected, rel=1e-6)


DDP_SCRIPT = """
import sys, torch, torch.distributed as dist
from torch import nn
import gradviz
dist.init_process_group("gloo")
rank = dist.get_rank()
torch.manual_seed(0)
model = nn.Linear(3, 1)
ddp = nn.parallel.DistributedDataParallel(model)
optimizer = torch.optim.SGD(ddp.parameters(), lr=0.1)
run = gradviz.watch(ddp, optimizer, run_dir=sys.argv[1], log_every=1, log_seconds=0)
x = torch.randn(4, 3, generator=torch.Generator().manual_seed(10 + rank))
loss = ddp(x).pow(2).mean()
loss.backward()
optimizer.step()
optimizer.zero_grad()
run.log(loss=loss)
run.close()
dist.barrier()  # no rank tears gloo down while another still talks to it (it aborted 1 run in ~20)
dist.destroy_process_group()
"""


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.slow
def test_under_torchrun_rank_0_writes_the_all_reduced_norms_and_the_global_mean_loss(tmp_path):
    script = tmp_path / "ddp.py"
    script.write_text(DDP_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(free_port()), str(script), str(tmp_path / "run")],
                            capture_output=True, text=True, timeout=180,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-2000:]
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    assert len(records) == 1  # one writer
    torch.manual_seed(0)
    model = nn.Linear(3, 1)
    grads, losses = [], []
    for rank in (0, 1):
        model.zero_grad()
        x = torch.randn(4, 3, generator=torch.Generator().manual_seed(10 + rank))
        loss = model(x).pow(2).mean()
        loss.backward()
        grads.append([p.grad.clone() for p in model.parameters()])
        losses.append(loss.item())
    mean = [(a + b) / 2 for a, b in zip(*grads)]  # what DDP's all-reduce applies
    assert records[0]["grad_norm_total"] == pytest.approx(math.sqrt(sum(g.pow(2).sum().item() for g in mean)), rel=1e-5)
    # The logged loss is the global batch's mean (equal shares: the mean of the ranks'), not rank 0's.
    assert abs(losses[0] - losses[1]) > 0.01
    assert records[0]["loss"] == pytest.approx((losses[0] + losses[1]) / 2, rel=1e-6)
    assert records[0]["samples"] == 8  # 4 examples on each of 2 ranks
    meta = read_json(RunPaths(tmp_path / "run").meta)
    assert meta["world_size"] == 2 and "mean over 2 ranks" in meta["loss_over"]


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: checks that watching never syncs the host")
def test_watch_never_synchronises_the_host_on_cuda(tmp_path):
    model = make_model().cuda()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "gpu", log_every=2, log_seconds=0)
    data = [(x.cuda(), y.cuda()) for x, y in batches()]
    torch.cuda.set_sync_debug_mode("error")  # any host synchronisation raises
    try:
        for x, y in data:
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            run.log(loss=loss, acc=-loss.detach())
    finally:
        torch.cuda.set_sync_debug_mode(0)
    run.close()
    assert [r["step"] for r in read_jsonl(RunPaths(tmp_path / "gpu").metrics)] == [1, 2, 4, 6]


def test_records_come_at_most_every_log_seconds(tmp_path):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with gradviz.watch(model, optimizer, run_dir=tmp_path / "r", log_every=1, log_seconds=3600) as run:
        train(model, run, optimizer=optimizer)
    assert [r["step"] for r in read_jsonl(RunPaths(tmp_path / "r").metrics)] == [1]  # the first step, then none
    assert read_json(RunPaths(tmp_path / "r").status)["step"] == 7


def test_a_rerun_into_the_same_run_dir_starts_afresh(tmp_path):
    for losses in ([5.0, 6.0], [1.0]):
        model = nn.Linear(2, 1)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with gradviz.watch(model, optimizer, run_dir=tmp_path / "same", log_every=1, log_seconds=0) as run:
            for value in losses:
                model(torch.ones(3, 2)).sum().backward()
                optimizer.step()
                optimizer.zero_grad()
                run.log(loss=value)
    assert [r["loss"] for r in read_jsonl(RunPaths(tmp_path / "same").metrics)] == [1.0]
    RunPaths(tmp_path / "same").status.write_text('{"state": "running", "pid": 1}')  # a live writer (init)
    with pytest.raises(ValueError, match="still going"):
        gradviz.watch(nn.Linear(2, 1), run_dir=tmp_path / "same")


def test_the_monitors_pause_and_stop_keys_reach_the_loop(tmp_path):
    import threading

    from gradviz.rundir.control import write_control

    model = nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    paths = RunPaths(tmp_path / "r")
    states = []
    with gradviz.watch(model, optimizer, run_dir=paths.root, log_every=1, log_seconds=0) as run:
        write_control(paths, "pause")
        resume = threading.Timer(0.6, lambda: (states.append(read_json(paths.status)["state"]),
                                               write_control(paths, "resume")))
        resume.start()
        steps = 0
        while not run.stop_requested and steps < 1000:
            model(torch.ones(3, 2)).sum().backward()
            optimizer.step()
            optimizer.zero_grad()
            time.sleep(0.01)
            run.log(loss=1.0)
            steps += 1
            if steps == 30:
                write_control(paths, "stop")
        resume.join()
    assert states == ["paused"]  # log() blocked while paused
    assert 30 <= steps < 100  # the loop saw stop_requested soon after the key


def test_watch_writes_gradient_histograms_as_train_does(tmp_path):
    """Step 1's histograms.jsonl line equals torch.histogram of the gradients that step applied."""
    seen = {}

    def observe(step, model, loss):
        if step == 1:
            seen.update({name: p.grad.detach().clone() for name, p in model.named_parameters()})

    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    with gradviz.watch(model, optimizer, run_dir=tmp_path / "r", log_every=2, log_seconds=0) as run:
        train(model, run, observe=observe, optimizer=optimizer)
    [line] = read_jsonl(RunPaths(tmp_path / "r").histograms)  # 7 steps: only step 1 is due (then 100, 200…)
    assert line["step"] == 1 and line["kind"] == "grad"
    edges = torch.tensor(line["edges"], dtype=torch.float64)
    for layer in ("0", "3"):
        flat = torch.cat([g.reshape(-1) for name, g in seen.items() if name.startswith(layer + ".")]).double()
        expected = torch.histogram(flat.clamp(edges[0].item(), edges[-1].item()), bins=edges)[0]
        assert line["layers"][layer] == expected.long().tolist()
    view = RunView(tmp_path / "r")
    while view.poll():
        pass
    assert view.hist_steps == [1] and sorted(view.hists) == ["0", "3"]


def test_a_layer_unfrozen_later_is_monitored_from_then_on(tmp_path):
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 1))
    for p in model[0].parameters():
        p.requires_grad_(False)  # frozen when watch() is called
    optimizer = torch.optim.SGD(model.parameters(), lr=0.05)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "run", log_every=1, log_seconds=0)
    expected = {}
    for step, (x, y) in enumerate(batches(6), start=1):
        if step == 4:
            for p in model[0].parameters():
                p.requires_grad_(True)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        expected[step] = {name: math.sqrt(sum(p.grad.pow(2).sum().item() for p in layer.parameters()))
                          for name, layer in (("0", model[0]), ("2", model[2])) if layer.weight.grad is not None}
        optimizer.step()
        optimizer.zero_grad()
        run.log(loss=loss)
    run.close()
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    assert [r["step"] for r in records] == list(range(1, 7))
    for r in records:
        want = expected[r["step"]]
        assert set(r["grad_norm"]) == set(want)  # "0" from step 4 on
        for name, norm in want.items():
            assert r["grad_norm"][name] == pytest.approx(norm, rel=1e-5)
        assert r["grad_norm_total"] == pytest.approx(math.sqrt(sum(v * v for v in want.values())), rel=1e-5)
    assert "0" in records[3]["grad_norm"] and "0" not in records[2]["grad_norm"]
    assert [layer["name"] for layer in read_json(RunPaths(tmp_path / "run").meta)["layers"]] == ["2", "0"]


def test_samples_per_second_come_from_the_batches_watch_sees(tmp_path):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "run", log_every=2, log_seconds=0)
    train(model, run, optimizer=optimizer, observe=lambda *_: time.sleep(0.01))  # steps of ≥10 ms
    run.close()
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    assert [r["step"] for r in records] == [1, 2, 4, 6]
    assert [r["samples"] for r in records] == [8 * r["step"] for r in records]  # 8 examples a batch
    for before, after in zip(records, records[1:]):
        # the throughput between two records: their samples over their time (rounded to 0.1 ms)
        rate = (after["samples"] - before["samples"]) / (after["time"] - before["time"])
        assert after["samples_per_s"] > 0 and after["samples_per_s"] == pytest.approx(rate, rel=0.05)


def test_a_watched_run_that_logged_no_loss_says_so_at_close(tmp_path, capsys):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "run")  # the two documented lines…
    for x, y in batches(3):
        F.mse_loss(model(x), y).backward()
        optimizer.step()
        optimizer.zero_grad()
    run.close()  # …and no run.log()
    status = read_json(RunPaths(tmp_path / "run").status)
    assert status["state"] == "finished" and "no loss was logged (3 optimizer steps)" in status["warning"]
    assert "no loss was logged" in capsys.readouterr().err
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    assert [r["step"] for r in records] == [1]  # the recorded step's norms are written all the same


def test_steps_that_restart_each_epoch_are_numbered_on_in_order(tmp_path, capsys):
    model = make_model()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "run", log_every=1, log_seconds=0)
    for epoch in range(2):
        for batch_idx, (x, y) in enumerate(batches(3)):
            loss = F.mse_loss(model(x), y)
            loss.backward()
            optimizer.step()
            optimizer.zero_grad()
            run.log(loss=loss, step=batch_idx, epoch=epoch)
    run.close()
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    steps = [r["step"] for r in records]
    assert len(steps) == 6 and steps[:3] == [0, 1, 2] and steps == sorted(set(steps))
    assert "steps must grow" in read_json(RunPaths(tmp_path / "run").status)["note"]
    assert "steps must grow" in capsys.readouterr().err
    view = RunView(tmp_path / "run")
    view.poll()
    assert view.series.steps == steps


FSDP_SCRIPT = """
import json, sys, torch, torch.distributed as dist
import torch.nn.functional as F
from torch import nn
from torch.distributed.fsdp import fully_shard
import gradviz
from gradviz.train.histograms import bin_edges

dist.init_process_group("gloo")
rank = dist.get_rank()


def sharded_model():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(5, 12), nn.Tanh(), nn.Linear(12, 7), nn.Tanh(), nn.Linear(7, 1))
    for layer in model:
        if isinstance(layer, nn.Linear):
            fully_shard(layer)
    return fully_shard(model)


def loop(watched, expected=None):
    model = sharded_model()
    for p in model[0].parameters():
        p.requires_grad_(False)  # frozen when watch() is called, unfrozen at step 4 (a record: 1, 4, …)
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    run = gradviz.watch(model, optimizer, run_dir=sys.argv[1], log_every=2, hist_every=2) if watched else None
    edges = bin_edges()
    for step in range(1, 8):
        if step == 4:
            for p in model[0].parameters():
                p.requires_grad_(True)
        gen = torch.Generator().manual_seed(100 * step + rank)
        x, y = torch.randn(6, 5, generator=gen), torch.randn(6, 1, generator=gen)
        loss = F.mse_loss(model(x), y)
        loss.backward()
        if expected is not None:  # independently, on every rank: the full gradients' norms and histograms per layer
            layers = [(name, layer) for name, layer in model.named_children()
                      if isinstance(layer, nn.Linear) and layer.weight.grad is not None]
            grads = {n: [p.grad.full_tensor() for p in m.parameters()] for n, m in layers}
            expected[step] = {
                "grad": {n: torch.stack([g.norm() for g in gs]).norm().item() for n, gs in grads.items()},
                "param": {n: torch.stack([p.full_tensor().norm() for p in m.parameters()]).norm().item()
                          for n, m in layers},
                "hist": {n: torch.histogram(torch.cat([g.reshape(-1) for g in gs]).double().clamp(
                    edges[0].item(), edges[-1].item()), bins=edges)[0].long().tolist() for n, gs in grads.items()}}
        optimizer.step()
        optimizer.zero_grad()
        if run is not None:
            run.log(loss=loss)
    if run is not None:
        run.close()
    return [p.full_tensor() for p in model.parameters()]


expected = {}
watched = loop(True, expected)
plain = loop(False)
if rank == 0:
    json.dump({"expected": expected, "identical": all(torch.equal(a, b) for a, b in zip(watched, plain))},
              open(sys.argv[2], "w"))
dist.barrier()
dist.destroy_process_group()
"""


def test_under_fsdp2_watch_reads_sharded_norms_and_histograms_on_every_rank_and_changes_nothing(tmp_path):
    script = tmp_path / "fsdp.py"
    script.write_text(FSDP_SCRIPT)
    result = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", "2",
                             "--master-port", str(free_port()), str(script), str(tmp_path / "run"),
                             str(tmp_path / "expected.json")],
                            capture_output=True, text=True, timeout=300,
                            env={**__import__("os").environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr[-3000:]
    import json

    found = json.loads((tmp_path / "expected.json").read_text())
    assert found["identical"], "watching changed the trained parameters"
    records = read_jsonl(RunPaths(tmp_path / "run").metrics)
    # log_seconds (0.5) is turned into a step count the ranks agree on: step 1, then even steps.
    steps = [r["step"] for r in records]
    assert steps[:2] == [1, 4] and all(s % 2 == 0 for s in steps[1:]) and steps == sorted(steps)
    assert "0" not in records[0]["grad_norm"] and "0" in records[1]["grad_norm"]  # unfrozen at step 4
    for r in records:
        want, params = found["expected"][str(r["step"])]["grad"], found["expected"][str(r["step"])]["param"]
        assert set(r["grad_norm"]) == set(want) == set(r["param_norm"])
        for name, norm in want.items():
            assert r["grad_norm"][name] == pytest.approx(norm, rel=1e-5), (r["step"], name)
            assert r["param_norm"][name] == pytest.approx(params[name], rel=1e-5), (r["step"], name)
        assert r["grad_norm_total"] == pytest.approx(math.sqrt(sum(v * v for v in want.values())), rel=1e-5)
    # Histograms (hist_every=2: at every record, all at step 1 or even) counted from each rank's
    # shards equal torch.histogram of the whole gradients, before and after the layer was unfrozen.
    histograms = read_jsonl(RunPaths(tmp_path / "run").histograms)
    assert [h["step"] for h in histograms] == steps
    for h in histograms:
        assert h["edges"] == bin_edges().tolist()
        assert h["layers"] == found["expected"][str(h["step"])]["hist"], h["step"]
    meta = read_json(RunPaths(tmp_path / "run").meta)
    assert meta["sharded"] is True and meta["world_size"] == 2
    assert read_json(RunPaths(tmp_path / "run").status)["state"] == "finished"


def test_hist_every_sets_the_recorded_steps_that_take_histograms_and_0_takes_none(tmp_path):
    for every, want in ((3, [1, 3, 6]), (0, [])):
        model = make_model()
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
        with gradviz.watch(model, optimizer, run_dir=tmp_path / str(every), log_every=1, log_seconds=0,
                           hist_every=every) as run:
            train(model, run, optimizer=optimizer)
        assert [h["step"] for h in read_jsonl(RunPaths(tmp_path / str(every)).histograms)] == want
    with pytest.raises(ValueError, match="hist_every"):
        gradviz.watch(make_model(), None, run_dir=tmp_path / "bad", hist_every=-1)
