"""`gradviz export RUN_DIR… -o curves.svg` (charts) and `--tensorboard DIR` (read back with
TensorBoard's own event reader)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.rundir import read_jsonl
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
    assert len(root.findall(f"{SVG}polyline")) == 2  # one loss curve per run
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
