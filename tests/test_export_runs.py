"""`gradviz export RUN_DIR… -o curves.svg` (charts) and `--tensorboard DIR` (read back with
TensorBoard's own event reader)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.rundir.jsonl import read_jsonl
from train_support import LINEAR_SPEC, records, train_here, write_spec

SVG = "{http://www.w3.org/2000/svg}"


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> list[Path]:
    root = tmp_path_factory.mktemp("runs")
    spec = write_spec(root, LINEAR_SPEC)
    train_here(root / "fast", spec, lr=0.1, log_every=2, epochs=3, hist_every=4)
    train_here(root / "slow", spec, lr=0.01, log_every=2, epochs=3)
    return [root / "fast", root / "slow"]


def test_charts_overlay_the_runs_with_the_differing_settings_in_the_legend(two_runs, tmp_path: Path, capsys) -> None:
    out = tmp_path / "curves.svg"
    assert main(["export", *map(str, two_runs), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    assert len([p for p in root.findall(f"{SVG}polyline") if p.get("class") == "train"]) == 2  # one loss curve per run
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "fast (lr=0.1)" in texts and "slow (lr=0.01)" in texts
    assert any("mean over a 2-step logging window" in t for t in texts)
    assert any(t.startswith("gradient values at step") for t in texts)
    n_records = len(records(two_runs[0]))
    heat = [r for r in root.iter(f"{SVG}rect") if r.get("height") == "14"]
    assert len(heat) == 2 * 2 * n_records  # two runs × two layers × logged steps


def test_charts_refuse_other_formats_in_one_line(two_runs, tmp_path: Path, capsys) -> None:
    assert main(["export", str(two_runs[0]), "-o", str(tmp_path / "c.pdf")]) == 2
    assert "written as .svg" in capsys.readouterr().err


def test_tensorboard_export_reads_back_with_tensorboards_event_reader(two_runs, tmp_path: Path) -> None:
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the optional tensorboard extra is not installed (scripts/setup.sh installs it)")
    assert main(["export", str(two_runs[0]), "--tensorboard", str(tmp_path / "tb")]) == 0
    events = accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0, "histograms": 0})
    events.Reload()
    logged = records(two_runs[0])
    scalars = events.Scalars("train/loss")
    assert [s.step for s in scalars] == [r["step"] for r in logged]
    assert [s.value for s in scalars] == pytest.approx([r["loss"] for r in logged], rel=1e-6)
    assert [s.value for s in events.Scalars("grad_norm/0")] == pytest.approx([r["grad_norm"]["0"] for r in logged], rel=1e-6)
    hist = read_jsonl(two_runs[0] / "histograms.jsonl")
    written = events.Histograms("grad_values/2")
    assert [h.step for h in written] == [h["step"] for h in hist]
    assert list(written[-1].histogram_value.bucket) == hist[-1]["layers"]["2"]
    assert list(written[-1].histogram_value.bucket_limit) == pytest.approx(hist[-1]["edges"][1:])
    [text] = events.Tensors("gradviz/config/text_summary")
    assert json.loads(text.tensor_proto.string_val[0].decode().strip("`\n"))["lr"] == 0.1


DROPOUT_SPEC = LINEAR_SPEC.replace("nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))",
                                   "nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Dropout(0.2), nn.Linear(4, 1))")
assert DROPOUT_SPEC != LINEAR_SPEC


def _points(polyline) -> list[tuple[float, float]]:
    return [tuple(map(float, p.split(","))) for p in polyline.get("points").split()]


def test_charts_draw_validation_curves_and_the_learning_rate_inside_the_axes(two_runs, tmp_path: Path) -> None:
    out = tmp_path / "curves.svg"
    assert main(["export", *map(str, two_runs), "-o", str(out)]) == 0
    root = ET.parse(out).getroot()
    lines = root.findall(f"{SVG}polyline")
    val = [p for p in lines if p.get("class") == "val"]
    for run, line in zip(two_runs, val):
        ends = [r for r in records(run) if "val_loss" in r]
        assert len(ends) == 3 and len(_points(line)) == 3  # an epoch-end point each
    assert len(val) == 2
    frame = next(r for r in root.iter(f"{SVG}rect") if r.get("height") == "260")
    top, bottom = float(frame.get("y")), float(frame.get("y")) + 260
    assert all(top - 0.1 <= y <= bottom + 0.1 for line in val for _, y in _points(line))  # inside the axes
    lr = [p for p in lines if p.get("data-name") == "learning rate"]
    assert len(lr) == 2 and all(len(_points(p)) == len(records(run)) for p, run in zip(lr, two_runs))
    texts = [t.text or "" for t in root.iter(f"{SVG}text")]
    assert "learning rate" in texts and any("validation loss" in t for t in texts)


def test_the_spec_dropout_p_is_shown_when_no_flag_set_it(tmp_path: Path, capsys) -> None:
    spec = write_spec(tmp_path, DROPOUT_SPEC)
    train_here(tmp_path / "spec_p", spec, epochs=1)
    train_here(tmp_path / "flag_p", spec, epochs=1, dropout=0.5)
    out = tmp_path / "curves.svg"
    assert main(["export", str(tmp_path / "spec_p"), str(tmp_path / "flag_p"), "-o", str(out)]) == 0
    texts = [t.text or "" for t in ET.parse(out).getroot().iter(f"{SVG}text")]
    assert "spec_p (dropout=0.2)" in texts and "flag_p (dropout=0.5)" in texts
    assert main(["monitor", str(tmp_path / "spec_p"), str(tmp_path / "flag_p"), "--no-tui"]) == 0
    row = next(line for line in capsys.readouterr().out.splitlines() if line.lstrip("│ ").startswith("dropout"))
    assert "0.2" in row and "0.5" in row and "None" not in row and "—" not in row


def test_tensorboard_export_keeps_dropout_keep_rates_and_watchs_own_metrics(tmp_path: Path) -> None:
    accumulator = pytest.importorskip(
        "tensorboard.backend.event_processing.event_accumulator",
        reason="the optional tensorboard extra is not installed (scripts/setup.sh installs it)")
    import torch
    import torch.nn.functional as F
    from torch import nn

    import gradviz

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 8), nn.ReLU(), nn.Dropout(0.3), nn.Linear(8, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    run = gradviz.watch(model, optimizer, run_dir=tmp_path / "run", log_every=1, log_seconds=0)
    for step in range(4):
        x = torch.randn(16, 3)
        loss = F.mse_loss(model(x), x.sum(1, keepdim=True))
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()
        run.log(loss=loss, acc=0.5 + step / 10)
    run.close()
    assert main(["export", str(tmp_path / "run"), "--tensorboard", str(tmp_path / "tb")]) == 0
    events = accumulator.EventAccumulator(str(tmp_path / "tb"), size_guidance={"scalars": 0})
    events.Reload()
    logged = records(tmp_path / "run")
    assert [s.value for s in events.Scalars("extra/acc")] == pytest.approx([r["extra"]["acc"] for r in logged])
    assert [s.value for s in events.Scalars("keep_rate/2")] == pytest.approx([r["keep_rate"]["2"] for r in logged])
    assert [s.value for s in events.Scalars("train/lr")] == pytest.approx([0.1] * len(logged))
