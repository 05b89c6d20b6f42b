"""A logged step's statistics have one lifecycle, driven by train/stats.StatsCollector for the
trainer and `watch` alike: begin() before the optimizer step, after_step() once it has run,
finish() for the vector to copy. What begin() measures is the step's state before the update,
whatever the step then does; what after_step() measures sees the updated parameters."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")

from gradviz.train.dropout_probe import MaskLog  # noqa: E402
from gradviz.train.stats import StatsCollector, group_parameters, unpack  # noqa: E402


def _model_after_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    loss = model(torch.randn(5, 2)).square().mean()
    loss.backward()
    return model, loss.detach()


def _layer_norms(model, attribute):
    return {str(i): torch.cat([getattr(p, attribute).reshape(-1) for p in model[i].parameters()]).norm().item()
            for i in (0, 2)}


def test_statistics_begun_before_the_step_keep_the_state_before_it():
    model, loss = _model_after_backward()
    before = _layer_norms(model, "data")
    grads = _layer_norms(model, "grad")
    groups = group_parameters(model)
    collector = StatsCollector(groups, [], MaskLog(), torch.device("cpu"))
    collector.begin(loss, torch.tensor(0.0), with_masks=False)
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    after = _layer_norms(model, "data")
    assert all(abs(after[k] - before[k]) > 1e-3 for k in before)  # the step moved every layer
    collector.after_step()
    vector, layout = collector.finish()
    out = unpack(vector.tolist(), layout, groups.names)
    assert out["param_norm"] == pytest.approx(before, rel=1e-5)
    assert out["grad_norm"] == pytest.approx(grads, rel=1e-5)
    assert out["loss"] == pytest.approx(loss.item())


def test_a_statistic_measured_after_the_step_sees_the_updated_parameters():
    class AfterStep(StatsCollector):  # param_norm moved to the after-step phase
        def after_step_stats(self):
            n = len(self.groups.names)
            return {**super().after_step_stats(), "param_norm": self.norms().split([n, n, 1])[1]}

    model, loss = _model_after_backward()
    groups = group_parameters(model)
    collector = AfterStep(groups, [], MaskLog(), torch.device("cpu"))
    collector.begin(loss, torch.tensor(0.0), with_masks=False)
    torch.optim.SGD(model.parameters(), lr=0.5).step()
    collector.after_step()
    vector, layout = collector.finish()
    out = unpack(vector.tolist(), layout, groups.names)
    assert out["param_norm"] == pytest.approx(_layer_norms(model, "data"), rel=1e-5)


def test_the_lifecycle_runs_in_order():
    model, loss = _model_after_backward()
    collector = StatsCollector(group_parameters(model), [], MaskLog(), torch.device("cpu"))
    with pytest.raises(RuntimeError):
        collector.finish()
    collector.begin(loss, torch.tensor(0.0), with_masks=False)
    collector.after_step()
    collector.finish()
    with pytest.raises(RuntimeError):  # finished: a new step begins again
        collector.after_step()


def test_the_monitor_cleans_every_declared_statistic_by_its_shape():
    # A new per-layer statistic declared in STEP_STATS alone is read by the monitor as a table
    # (bad cells None) and a new scalar one as a number (a non-number dropped). Run in a fresh
    # interpreter: the monitor derives its field lists when it is imported.
    import subprocess
    import sys
    import textwrap

    code = textwrap.dedent("""
        import json
        from gradviz import step_stats
        step_stats.STEP_STATS = step_stats.STEP_STATS + (step_stats.Stat("update_ratio", per_layer=True),
                                                         step_stats.Stat("update_total"))
        from gradviz.monitor.state import clean_record
        record = {"step": 3, "grad_norm": {"fc1": 1.0}, "update_ratio": {"fc1": 0.01, "fc2": "x"},
                  "update_total": "not a number"}
        print(json.dumps(clean_record(record)))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    import json

    clean = json.loads(done.stdout)
    assert clean["update_ratio"] == {"fc1": 0.01, "fc2": None}
    assert "update_total" not in clean


def test_watch_measures_after_step_statistics_once_the_optimizer_step_has_run(tmp_path, monkeypatch):
    import gradviz
    from gradviz.rundir.jsonl import read_jsonl
    from gradviz.rundir.paths import RunPaths

    def after(self):  # param_norm moved to the after-step phase, for every collector made here
        n = len(self.groups.names)
        return {"param_norm": self.norms().split([n, n, 1])[1]}

    monkeypatch.setattr(StatsCollector, "after_step_stats", after)
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    before = {name: p.detach().norm().item() for name, p in model.named_parameters()}
    with gradviz.watch(model, optimizer, run_dir=tmp_path / "r", log_every=1, log_seconds=0) as run:
        loss = model(torch.randn(4, 2)).square().mean()
        loss.backward()
        optimizer.step()
        run.log(loss=loss)
    after_norms = {name: p.detach().norm().item() for name, p in model.named_parameters()}  # each its own layer
    assert all(abs(after_norms[name] - before[name]) > 1e-3 for name in before)  # the step moved them
    record = read_jsonl(RunPaths(tmp_path / "r").metrics)[-1]
    assert record["param_norm"] == pytest.approx(after_norms, rel=1e-5)


def test_the_trainer_measures_after_step_statistics_once_the_optimizer_step_has_run(tmp_path, monkeypatch):
    from gradviz.rundir.jsonl import read_jsonl
    from gradviz.rundir.paths import RunPaths
    from gradviz.train.config import TrainConfig
    from gradviz.train.worker import DistInfo, run_training
    from train_support import sample

    collectors = []

    def after(self):  # param_norm moved to the after-step phase
        collectors.append(self)
        n = len(self.groups.names)
        return {"param_norm": self.norms().split([n, n, 1])[1]}

    monkeypatch.setattr(StatsCollector, "after_step_stats", after)
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_training(TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(run_dir), device="cpu", max_steps=1,
                             log_every=1, lr=0.5), RunPaths(run_dir), DistInfo())
    record = next(r for r in read_jsonl(RunPaths(run_dir).metrics) if r.get("step") == 1)
    groups = collectors[0].groups  # the trainer's own parameters, as the one step left them
    now = {name: torch.cat([p.detach().reshape(-1) for p, of in zip(groups.params, groups.layer_of) if of == k]).norm()
           .item() for k, name in enumerate(groups.names)}
    assert record["param_norm"] == pytest.approx(now, rel=1e-5)
    assert record["grad_norm_total"] > 0  # the step moved the parameters the record was measured before
