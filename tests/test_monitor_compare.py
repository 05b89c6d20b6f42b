"""Runs side by side: overlaid curves with a legend, the settings that differ, smoothing,
a wall-clock axis; snapshots at 80×24 and 140×45."""

from __future__ import annotations

import io
import json
import math
from pathlib import Path

import pytest
from rich.console import Console

from gradviz.errors import TrainingError
from gradviz.monitor.compare import differing_settings, find_runs, loss_lines, smooth
from gradviz.monitor.compare_app import CompareApp, OverlayPanel, SettingsPanel
from gradviz.monitor.state import RunView
from gradviz.rundir.jsonl import read_jsonl
from monitor_support import make_run


def make_pair(root: Path) -> list[Path]:
    """Two finished runs that differ in lr and seed, with different loss curves."""
    paths = []
    for name, lr, scale in (("run-a", 0.1, 1.0), ("run-b", 0.03, 1.6)):
        p = make_run(root / name, steps=60)
        config = json.loads(p.config.read_text())
        config.update(lr=lr, batch_size=32, seed=0 if lr == 0.1 else 1, log_every=1)
        p.config.write_text(json.dumps(config))
        records = read_jsonl(p.metrics)
        for r in records:
            r["loss"] *= scale
        p.metrics.write_text("".join(json.dumps(r) + "\n" for r in records))
        paths.append(p.root)
    return paths


def polled(path: Path) -> RunView:
    view = RunView(path)
    while view.poll():
        pass
    return view


def test_a_folder_of_runs_is_expanded_and_a_non_run_is_refused(tmp_path: Path) -> None:
    a, b = make_pair(tmp_path / "runs")
    (tmp_path / "runs" / "notes").mkdir()
    assert find_runs([tmp_path / "runs"]) == [a, b]
    assert find_runs([b, a]) == [b, a]
    with pytest.raises(TrainingError, match="holds none"):
        find_runs([tmp_path / "runs" / "notes"])


def test_only_the_settings_that_differ_are_listed(tmp_path: Path) -> None:
    views = [polled(p) for p in make_pair(tmp_path)]
    assert differing_settings(views) == [("lr", [0.1, 0.03]), ("seed", [0, 1])]


def test_smoothing_is_a_bias_corrected_moving_average() -> None:
    assert smooth([1.0, 2.0, 3.0], 0.0) == [1.0, 2.0, 3.0]
    out = smooth([2.0, 4.0], 0.5)
    assert out[0] == 2.0  # bias correction: the first point is itself
    assert out[1] == pytest.approx((0.5 * 0.5 * 2 + 0.5 * 4) / (1 - 0.25))
    assert math.isnan(smooth([1.0, math.nan, 3.0], 0.9)[1])


def test_wall_clock_axis_uses_the_records_time(tmp_path: Path) -> None:
    views = [polled(p) for p in make_pair(tmp_path)]
    [line_a, _] = loss_lines(views, ["a", "b"], 0.0, "time")
    assert line_a.xs[:3] == [0.2, 0.4, 0.6000000000000001] or line_a.xs[:3] == pytest.approx([0.2, 0.4, 0.6])
    assert loss_lines(views, ["a", "b"], 0.0, "step")[0].xs[:2] == [1.0, 2.0]


def panel_text(panel) -> str:
    out = io.StringIO()
    Console(file=out, width=panel.size.width, color_system=None).print(panel.render())
    return out.getvalue()


def test_compare_app_shows_both_runs_the_settings_and_switches_axes(tmp_path: Path) -> None:
    import asyncio

    runs = make_pair(tmp_path)

    async def drive() -> None:
        app = CompareApp(runs, poll_seconds=0.1)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.3)
            overlay = panel_text(app.query_one(OverlayPanel))
            assert "run-a" in overlay and "run-b" in overlay and "x: steps" in overlay
            settings = panel_text(app.query_one(SettingsPanel))
            assert "lr" in settings and "0.03" in settings and "seed" in settings
            assert "finished at step 60" in settings
            await pilot.press("x", "m")
            await pilot.pause(0.2)
            overlay = panel_text(app.query_one(OverlayPanel))
            assert "x: epochs" in overlay and "smoothing 0.6 (m)" in overlay
            assert overlay.rstrip().splitlines()[-1].split()[-1] == "6"  # 60 steps of 10 per epoch
            await pilot.press("x", "x")
            await pilot.pause(0.2)
            overlay = panel_text(app.query_one(OverlayPanel))
            assert "x: wall-clock seconds" in overlay

    asyncio.run(drive())


@pytest.mark.parametrize("size", [(80, 24), (140, 45)])
def test_compare_snapshot(snap_compare, tmp_path: Path, size: tuple[int, int]) -> None:
    runs = make_pair(tmp_path / "runs")
    assert snap_compare(CompareApp(runs, poll_seconds=0.1), terminal_size=size)


def test_cli_monitor_on_a_folder_prints_the_differing_settings(tmp_path: Path, capsys) -> None:
    from gradviz.cli import main

    make_pair(tmp_path / "runs")
    assert main(["monitor", str(tmp_path / "runs"), "--no-tui"]) == 0
    out = capsys.readouterr().out
    assert "settings that differ" in out and "run-a" in out and "run-b" in out
    assert any(line.split("│")[1:2] == [" lr               "] or " lr " in line and "0.03" in line
               for line in out.splitlines())
    assert out.count("run finished at step 60") == 2
