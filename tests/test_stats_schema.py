"""The per-step statistics have one declared layout (step_stats.STEP_STATS): the trainer packs
them by name, the host unpacks them by name, the monitor's series keeps them by name."""

from __future__ import annotations

import math

import pytest

from gradviz.monitor.state import RunView
from gradviz.step_stats import STEP_STATS, Stat, StatsLayout


def test_offsets_follow_the_declared_order_and_sizes():
    layout = StatsLayout(layers=3)
    at = 0
    for stat in STEP_STATS:
        assert layout.offset(stat.name) == at
        assert layout.size(stat.name) == (3 if stat.per_layer else 1)
        at += layout.size(stat.name)
    assert layout.width == at
    with pytest.raises(KeyError):
        layout.offset("nope")


def test_unpack_reads_each_statistic_at_its_offset():
    stats = (Stat("a"), Stat("b", per_layer=True), Stat("c"))
    layout = StatsLayout(layers=2, stats=stats)
    values = [10.0, 20.0, 21.0, 30.0, 99.0]  # 99: past the fixed part, the trainer's own
    assert layout.unpack(values, ["fc1", "fc2"]) == {"a": 10.0, "b": {"fc1": 20.0, "fc2": 21.0}, "c": 30.0}


def test_the_device_packs_what_the_host_reads_by_name():
    torch = pytest.importorskip("torch")
    from gradviz.train.dropout_probe import MaskLog
    from gradviz.train.stats import StatsCollector, group_parameters, unpack

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    loss = model(torch.randn(5, 2)).square().mean()
    loss.backward()
    groups = group_parameters(model)
    collector = StatsCollector(groups, [], MaskLog(), torch.device("cpu"))
    vector, layout = collector.capture(loss.detach(), torch.tensor(0.25), with_masks=False)
    assert vector.numel() == layout.stats.width
    out = unpack(vector.tolist(), layout, groups.names)
    assert set(out) == {s.name for s in STEP_STATS} | {"keep_rate", "mask_samples"}
    assert out["loss"] == pytest.approx(loss.item()) and out["penalty"] == 0.25
    for layer, name in enumerate(groups.names):
        module = model[int(name)]
        grads = torch.cat([p.grad.reshape(-1) for p in module.parameters()])
        params = torch.cat([p.detach().reshape(-1) for p in module.parameters()])
        assert out["grad_norm"][name] == pytest.approx(grads.norm().item(), rel=1e-5)
        assert out["param_norm"][name] == pytest.approx(params.norm().item(), rel=1e-5)
    every = torch.cat([p.grad.reshape(-1) for p in model.parameters()])
    assert out["grad_norm_total"] == pytest.approx(every.norm().item(), rel=1e-5)


def test_the_monitor_series_keeps_every_statistic_by_name(tmp_path):
    view = RunView(tmp_path)
    record = {"step": 1, "total": 1.5}
    for n, stat in enumerate(STEP_STATS):
        record[stat.name] = {"fc1": float(n), "fc2": float(n) + 0.5} if stat.per_layer else float(n)
    view._add(record)
    view._add({**record, "step": 2, "grad_norm": {"fc1": 7.0}})  # fc2 missing: a gap
    s = view.series
    for n, stat in enumerate(STEP_STATS):
        if stat.per_layer:
            assert s.layer_stat[stat.name]["fc1"][0] == n
        else:
            assert s.stat[stat.name] == [n, n]
    assert s.grad["fc1"] == [2.0, 7.0] and s.grad["fc2"][0] == 2.5 and math.isnan(s.grad["fc2"][1])
    assert s.loss is s.stat["loss"] and s.grad_total is s.stat["grad_norm_total"]
