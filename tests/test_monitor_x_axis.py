"""The run's curves over steps, epochs, samples seen or wall-clock: `x` in the monitor, `--x` on export."""

from __future__ import annotations

import asyncio
import io
import json
import sys
from pathlib import Path
from xml.etree import ElementTree as ET

import pytest
from rich.console import Console

sys.path.insert(0, str(Path(__file__).parent))
from monitor_support import make_run  # noqa: E402

from gradviz.cli import main  # noqa: E402
from gradviz.monitor.state import RunView  # noqa: E402
from gradviz.monitor.x_axis import X_AXES, at_steps, next_axis, x_values  # noqa: E402

SVG = "{http://www.w3.org/2000/svg}"


def _view(path: Path) -> RunView:
    view = RunView(path)
    while view.poll():
        pass
    return view


def test_x_values_on_every_axis(tmp_path: Path) -> None:
    make_run(tmp_path / "run", steps=30, per_epoch=10)  # batches of 32 from 320 examples, 0.2 s a step
    view = _view(tmp_path / "run")
    assert len(x_values(view, "step")) == len(view.series.steps) == 30
    assert x_values(view, "step")[:3] == [1.0, 2.0, 3.0]
    assert x_values(view, "samples")[-1] == 32 * 30
    assert x_values(view, "epoch")[9] == pytest.approx(1.0) and x_values(view, "epoch")[-1] == pytest.approx(3.0)
    assert x_values(view, "time")[-1] == pytest.approx(30 * 0.2)
    assert at_steps(view, "epoch", [10, 20]) == pytest.approx([1.0, 2.0])  # validation points, at each epoch's end
    assert [next_axis(a) for a in X_AXES] == ["epoch", "samples", "time", "step"]


def _polyline_ends(svg: str) -> list[float]:
    root = ET.fromstring(svg)
    return [float(line.get("points").split()[-1].split(",")[0]) for line in root.iter(f"{SVG}polyline")
            if line.get("class") == "train"]  # the loss curves, not the learning-rate or validation lines


def test_export_x_samples_lines_runs_of_different_batch_sizes_up(tmp_path: Path, capsys) -> None:
    """B = 32 for 30 steps and B = 320 for 3 steps both see 960 samples: by samples their curves end
    at the same x; by steps the big batch's sits squashed at the left."""
    from gradviz.rundir.files import write_json_atomic
    from gradviz.rundir.paths import RunPaths

    make_run(tmp_path / "small", steps=30, per_epoch=10)
    big = make_run(tmp_path / "big", steps=3, per_epoch=1)
    records = [json.loads(line) for line in (tmp_path / "big" / "metrics.jsonl").read_text().splitlines()]
    (tmp_path / "big" / "metrics.jsonl").write_text(
        "".join(json.dumps({**r, "samples": 320 * r["step"]}) + "\n" for r in records))
    write_json_atomic(RunPaths(big.root).meta, {**json.loads(big.meta.read_text()), "batch_size": 320})
    by_steps, by_samples = tmp_path / "steps.svg", tmp_path / "samples.svg"
    assert main(["export", str(tmp_path / "small"), str(tmp_path / "big"), "-o", str(by_steps)]) == 0
    assert main(["export", str(tmp_path / "small"), str(tmp_path / "big"), "-o", str(by_samples), "--x", "samples"]) == 0
    steps_ends, samples_ends = _polyline_ends(by_steps.read_text()), _polyline_ends(by_samples.read_text())
    assert steps_ends[1] < steps_ends[0] - 500  # 3 steps of 30: at the far left
    assert samples_ends[0] == pytest.approx(samples_ends[1])  # 960 samples each: the same right edge
    text = by_samples.read_text()
    assert ">samples seen</text>" in text and ">960</text>" in text


def test_monitor_x_cycles_the_loss_axis(tmp_path: Path) -> None:
    from gradviz.monitor.app import MonitorApp
    from gradviz.monitor.widgets import LossPanel

    make_run(tmp_path / "run", steps=30, per_epoch=10)

    def shown(widget) -> str:
        out = io.StringIO()
        Console(file=out, width=widget.size.width, color_system=None).print(widget.render())
        return out.getvalue()

    async def drive() -> None:
        app = MonitorApp(tmp_path / "run", poll_seconds=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.2)
            panel = app.screen.query_one(LossPanel)
            last_row = lambda: shown(panel).rstrip().splitlines()[-1].split()  # noqa: E731
            assert last_row()[-1] == "30"  # steps 1 … 30
            await pilot.press("x")
            assert panel.x_axis == "epoch" and panel.border_title == "loss over epochs (x)"
            assert last_row()[-1] == "3"  # 960 samples / 320 examples
            await pilot.press("x")
            assert panel.border_title == "loss over samples seen (x)" and last_row()[-1] == "960"
            await pilot.press("x")
            assert panel.border_title == "loss over wall-clock seconds (x)" and last_row()[-1] == "6"
            await pilot.press("x")
            assert panel.x_axis == "step" and panel.border_title == "loss over steps (x)"
            await pilot.press("q")

    asyncio.run(drive())
