"""Each STEP_STATS entry declares its phase (before or after the optimizer step) and how it is
measured; the statistics lifecycle runs each phase from those declarations, for the trainer and
`watch` alike, and the monitor's --no-tui columns are read from the same list."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest

from gradviz import step_stats
from gradviz.step_stats import AFTER_STEP, BEFORE_STEP, STEP_STATS, Stat, stats_measured

torch = pytest.importorskip("torch")

from gradviz.train.dropout_probe import MaskLog  # noqa: E402
from gradviz.train.stats import StatsCollector, group_parameters, unpack  # noqa: E402

# ‖Δθ‖ per layer: the one entry a metric about the update needs.
UPDATE_NORM = Stat("update_norm", per_layer=True, when=AFTER_STEP, about="‖Δθ‖ per layer",
                   measure=lambda m: m.layer_norms(m.update()))


def test_every_statistic_declares_its_phase_and_its_measure():
    assert all(stat.when in (BEFORE_STEP, AFTER_STEP) and callable(stat.measure) for stat in STEP_STATS)
    assert stats_measured(BEFORE_STEP) + stats_measured(AFTER_STEP) == tuple(
        s for s in STEP_STATS if s.when == BEFORE_STEP) + tuple(s for s in STEP_STATS if s.when == AFTER_STEP)
    with pytest.raises(ValueError):
        stats_measured("during")


def _model_after_backward():
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(2, 3), torch.nn.Tanh(), torch.nn.Linear(3, 1))
    loss = model(torch.randn(5, 2)).square().mean()
    loss.backward()
    return model, loss.detach()


def test_an_after_step_entry_measures_the_update_the_step_made(monkeypatch):
    monkeypatch.setattr(step_stats, "STEP_STATS", STEP_STATS + (UPDATE_NORM,))
    model, loss = _model_after_backward()
    before = [p.detach().clone() for p in model.parameters()]
    groups = group_parameters(model)
    collector = StatsCollector(groups, [], MaskLog(), torch.device("cpu"))
    collector.begin(loss, torch.tensor(0.0), with_masks=False)
    torch.optim.Adam(model.parameters(), lr=0.1).step()
    collector.after_step()
    vector, layout = collector.finish()
    out = unpack(vector.tolist(), layout, groups.names)
    params = list(model.parameters())
    for layer, name in enumerate(groups.names):  # layers '0' and '2': weight and bias each
        change = torch.cat([(params[k] - before[k]).reshape(-1) for k in (2 * layer, 2 * layer + 1)])
        assert out["update_norm"][name] == pytest.approx(change.norm().item(), rel=1e-5)
        assert out["update_norm"][name] > 1e-3
    # the before-step statistics still see θ before the update
    assert out["param_norm"]["0"] == pytest.approx(torch.cat([b.reshape(-1) for b in before[:2]]).norm().item(),
                                                   rel=1e-5)


def test_an_entry_without_the_step_measures_no_update(monkeypatch):
    # capture(): the stop-on-NaN path, where no optimizer step follows, so Δθ is 0
    monkeypatch.setattr(step_stats, "STEP_STATS", STEP_STATS + (UPDATE_NORM,))
    model, loss = _model_after_backward()
    groups = group_parameters(model)
    vector, layout = StatsCollector(groups, [], MaskLog(), torch.device("cpu")).capture(
        loss, torch.tensor(0.0), with_masks=False)
    assert unpack(vector.tolist(), layout, groups.names)["update_norm"] == {"0": 0.0, "2": 0.0}


def test_the_update_is_not_there_before_the_step():
    early = Stat("early", per_layer=True, measure=lambda m: m.layer_norms(m.update()))  # BEFORE_STEP
    model, loss = _model_after_backward()
    from gradviz.train.stats import StepMeasures

    collector = StatsCollector(group_parameters(model), [], MaskLog(), torch.device("cpu"))
    with pytest.raises(RuntimeError, match="after the optimizer step"):
        early.measure(StepMeasures(collector, loss, torch.tensor(0.0)))


def test_the_trainer_logs_an_after_step_entry_from_its_declaration_alone(tmp_path, monkeypatch):
    # SGD's first step moves θ by −lr·∇θ (its momentum buffer starts as the gradient), so
    # ‖Δθ‖ per layer is lr times the gradient norm the same record logs.
    from gradviz.rundir.jsonl import read_jsonl
    from gradviz.rundir.paths import RunPaths
    from gradviz.train.config import TrainConfig
    from gradviz.train.worker import DistInfo, run_training
    from train_support import sample

    monkeypatch.setattr(step_stats, "STEP_STATS", STEP_STATS + (UPDATE_NORM,))
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    run_training(TrainConfig(spec=sample("two_layer_mlp"), run_dir=str(run_dir), device="cpu", max_steps=1,
                             log_every=1, lr=0.5, optimizer="sgd", val_fraction=0.0), RunPaths(run_dir), DistInfo())
    record = next(r for r in read_jsonl(RunPaths(run_dir).metrics) if r.get("step") == 1)
    assert set(record["update_norm"]) == set(record["grad_norm"])
    for layer, grad in record["grad_norm"].items():
        assert grad > 0
        assert record["update_norm"][layer] == pytest.approx(0.5 * grad, rel=1e-5)


def test_watch_logs_an_after_step_entry_from_its_declaration_alone(tmp_path, monkeypatch):
    import gradviz
    from gradviz.rundir.jsonl import read_jsonl
    from gradviz.rundir.paths import RunPaths

    monkeypatch.setattr(step_stats, "STEP_STATS", STEP_STATS + (UPDATE_NORM,))
    torch.manual_seed(0)
    model = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.5)
    with gradviz.watch(model, optimizer, run_dir=tmp_path / "r", log_every=1, log_seconds=0) as run:
        loss = model(torch.randn(4, 2)).square().mean()
        loss.backward()
        grads = {name: p.grad.norm().item() for name, p in model.named_parameters()}  # each its own layer
        optimizer.step()
        run.log(loss=loss)
    record = read_jsonl(RunPaths(tmp_path / "r").metrics)[-1]
    assert record["update_norm"] == pytest.approx({name: 0.5 * g for name, g in grads.items()}, rel=1e-5)


def test_the_no_tui_columns_are_the_declared_scalar_statistics():
    from rich.console import Console

    from gradviz.monitor.plain import record_cells, row_table

    console = Console(width=120, record=True, color_system=None)
    console.print(row_table(None))
    header = console.export_text().split()
    assert header == ["epoch", "step", "loss", "penalty", "|∇θ|", "val", "loss", "val", "acc", "samples/s"]
    cells = record_cells({"epoch": 2, "step": 40, "loss": 0.25, "penalty": 0.0, "grad_norm_total": 1.5,
                          "val_loss": 0.5, "val_acc": 0.75, "samples_per_s": 1234.0})
    assert cells == ["2", "40", "0.25", "—", "1.5", "0.5", "75.0%", "1,234"]


def test_a_new_scalar_statistic_with_a_column_reaches_the_no_tui_table():
    # In a fresh interpreter: the table's columns are read from STEP_STATS when plain is imported.
    code = textwrap.dedent("""
        from gradviz import step_stats
        step_stats.STEP_STATS = step_stats.STEP_STATS + (step_stats.Stat("update_total", column="|Δθ|"),)
        from gradviz.monitor.plain import COLUMNS, record_cells
        print(COLUMNS)
        print(record_cells({"epoch": 1, "step": 2, "loss": 0.5, "update_total": 0.125}))
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    columns, cells = done.stdout.splitlines()
    assert columns == "('epoch', 'step', 'loss', 'penalty', '|∇θ|', '|Δθ|', 'val loss', 'val acc', 'samples/s')"
    assert cells == "['1', '2', '0.5', '—', '—', '0.125', '—', '—', '0']"


@pytest.mark.parametrize("kinds", [("noise", "half"), ("bool",)], ids=["cpu-noise", "cuda-bool"])
@pytest.mark.parametrize("with_masks", [False, True])
def test_keep_rates_and_mask_samples_are_the_masks_the_layers_drew(with_masks, kinds):
    """Each layer's keep rate is its mask's non-zeros over its size, exactly, and its sample is one
    example's units (at most MASK_SAMPLE of them): for CPU's scaled noise (float32 and bfloat16, as
    under autocast), CUDA's boolean masks, and a layer that did not run (NaN)."""
    from types import SimpleNamespace

    from gradviz.train.stats import MASK_SAMPLE

    model, loss = _model_after_backward()
    groups = group_parameters(model)
    gen = torch.Generator().manual_seed(3)
    masks = {
        "noise": (torch.rand(8, 5, 70, generator=gen) < 0.7).float() / 0.7,  # 350 units an example: cut at 256
        "half": ((torch.rand(4, 3000, generator=gen) < 0.4).float() / 0.4).bfloat16(),
        "bool": torch.rand(6, 12, generator=gen) < 0.9,
    }
    masks = {name: masks[name] for name in kinds}
    log = MaskLog(on=True, masks=dict(masks))
    probed = [SimpleNamespace(name=name) for name in (*masks, "idle")]
    collector = StatsCollector(groups, probed, log, torch.device("cpu"))
    vector, layout = collector.capture(loss, torch.tensor(0.0), with_masks)
    out = unpack(vector.tolist(), layout, groups.names)
    for name, mask in masks.items():
        assert out["keep_rate"][name] == int(torch.count_nonzero(mask)) / mask.numel()
        if with_masks:
            units = mask[0].reshape(-1)[:MASK_SAMPLE]
            assert out["mask_samples"][name] == {"shape": list(mask.shape[1:]),
                                                 "kept": "".join("1" if u else "0" for u in units.tolist())}
    assert out["mask_samples"] == ({} if not with_masks else out["mask_samples"])
    if with_masks and "noise" in masks:
        assert len(out["mask_samples"]["noise"]["kept"]) == MASK_SAMPLE
    assert out["keep_rate"]["idle"] != out["keep_rate"]["idle"]  # NaN: the layer did not run
    assert out["loss"] == pytest.approx(loss.item())


def test_a_statistic_of_any_shape_is_packed_by_its_values(monkeypatch):
    """A per-layer entry whose measure returns a column (n×1) or a scalar one as a 1-element vector
    still lands in its place in the vector, value for value."""
    column = Stat("grad_column", per_layer=True, measure=lambda m: m.norms().grad.reshape(-1, 1))
    single = Stat("loss_again", measure=lambda m: m.loss.reshape(1, 1))
    monkeypatch.setattr(step_stats, "STEP_STATS", STEP_STATS + (column, single))
    model, loss = _model_after_backward()
    groups = group_parameters(model)
    vector, layout = StatsCollector(groups, [], MaskLog(), torch.device("cpu")).capture(
        loss, torch.tensor(0.0), with_masks=False)
    out = unpack(vector.tolist(), layout, groups.names)
    assert out["grad_column"] == out["grad_norm"] and out["loss_again"] == out["loss"] == pytest.approx(loss.item())
