"""The Textual dashboard driven by Pilot: live values, replay, keys, the leave dialog."""

from __future__ import annotations

import asyncio
import io
from pathlib import Path

from rich.console import Console

from gradviz.monitor.app import MonitorApp
from gradviz.monitor.dialog import LeaveDialog
from gradviz.monitor.screen import MonitorScreen
from gradviz.monitor.widgets import HeatPanel, LossPanel, MaskPanel, ProgressPanel, RunPanel, ScrubBar
from gradviz.train.config import TrainConfig
from gradviz.train.launch import start_training
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import read_jsonl
from monitor_support import make_run
from train_support import sample
from tui_support import wait_until


def shown(panel: RunPanel) -> str:
    """What a panel draws, as plain text."""
    out = io.StringIO()
    Console(file=out, width=max(20, panel.size.width), color_system=None).print(panel.render())
    return out.getvalue()


def test_monitor_shows_live_values_from_a_short_run(tmp_path: Path) -> None:
    config = TrainConfig(spec=sample("deep_mlp"), run_dir=str(tmp_path / "run"), device="cpu", epochs=10_000,
                         log_every=5)
    handle = start_training(config)

    async def drive() -> None:
        app = MonitorApp(handle.run_dir, handle, poll_seconds=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            assert isinstance(screen, MonitorScreen)
            await wait_until(pilot, lambda: len(screen.view.records) >= 5)
            await pilot.pause(0.3)
            progress = shown(screen.query_one(ProgressPanel))
            assert "RUNNING" in progress and "deep_mlp" in progress and "world 1" in progress
            record = screen.view.records[screen.cursor]
            # Live, the step shown is the trainer's heartbeat: at least the record's, at most the beat read after.
            import re

            from gradviz.rundir.heartbeat import read_heartbeat
            shown_step = int(re.search(r"step (\d+)/", progress).group(1))
            assert record["step"] <= shown_step <= read_heartbeat(handle.paths)["step"]
            loss = shown(screen.query_one(LossPanel))
            assert "train" in loss and f"{record['loss']:.4g}" in loss
            assert "fc1" in shown(screen.query_one(HeatPanel))
            assert "drop1 p=0.10" in shown(screen.query_one(MaskPanel))

            await pilot.press("space")
            await wait_until(pilot, lambda: screen.view.state == "paused")
            await pilot.pause(0.3)
            assert "PAUSED" in shown(screen.query_one(ProgressPanel))
            await pilot.press("space")
            await wait_until(pilot, lambda: screen.view.state == "running")

            await pilot.press("q")
            await pilot.pause(0.2)
            assert isinstance(app.screen, LeaveDialog)
            await pilot.press("s")
        assert app.return_value == "stopped"

    try:
        asyncio.run(drive())
        assert handle.wait(timeout=60) == 0
        assert read_json(handle.paths.status)["state"] == "stopped"
    finally:
        handle.kill()


def test_replay_scrubs_through_a_finished_run(tmp_path: Path) -> None:
    make_run(tmp_path / "demo-run", steps=60)

    async def drive() -> None:
        app = MonitorApp(tmp_path / "demo-run", poll_seconds=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await pilot.pause(0.2)
            assert screen.cursor == 59 and "FINISHED" in shown(screen.query_one(ProgressPanel))
            await pilot.press("left", "left")
            assert screen.cursor == 57 and not screen.following
            assert "step 58 replay" in shown(screen.query_one(ScrubBar))
            await pilot.press("shift+left")
            assert screen.cursor == 51
            await pilot.press("home")
            assert screen.cursor == 0 and "step 1/60" in shown(screen.query_one(ProgressPanel))
            await pilot.press("end")
            assert screen.cursor == 59
            await pilot.press("down", "down")
            assert screen.selected == 2
            assert "‖∇‖ out" in shown(screen.query_one("#layer"))
            await pilot.press("l")
            assert screen.query_one(LossPanel).log_scale is True
            await pilot.press("q")  # a finished run: no question asked
        assert app.return_value == "left"

    asyncio.run(drive())


def test_killed_and_nan_runs_are_flagged(tmp_path: Path) -> None:
    paths = make_run(tmp_path / "run", steps=30, state="running", nonfinite_at=17)
    status = read_json(paths.status)
    status["pid"] = 2**22 + 12345  # no such process: the trainer was killed
    paths.status.write_text(__import__("json").dumps(status))

    async def drive() -> None:
        app = MonitorApp(paths.root, poll_seconds=0.1)
        async with app.run_test(size=(80, 24)) as pilot:
            await pilot.pause(0.3)
            text = shown(app.screen.query_one(ProgressPanel))
            assert "LOST" in text and "the trainer process is gone" in text
            assert "×" in shown(app.screen.query_one(HeatPanel))

    asyncio.run(drive())
    assert len(read_jsonl(paths.metrics)) == 30


def test_dashboard_snapshot(snap_compare, tmp_path: Path) -> None:
    make_run(tmp_path / "demo-run", steps=60)
    assert snap_compare(MonitorApp(tmp_path / "demo-run", poll_seconds=0.1), terminal_size=(120, 40),
                        press=["left", "left", "left"])


def test_another_app_can_push_the_dashboard_and_get_back(tmp_path: Path) -> None:
    """What the stepper's `t` does: train the same spec, watch it, return to the stepper."""
    from textual.app import App
    from textual.widgets import Label

    from gradviz.monitor.app import open_training

    class Stepper(App):
        def compose(self):
            yield Label("stepper")

    choices: list[str] = []

    async def drive() -> None:
        app = Stepper()
        async with app.run_test(size=(100, 30)) as pilot:
            handle = open_training(app, sample("two_layer_mlp"), on_leave=choices.append,
                                   run_dir=tmp_path / "run", device="cpu", epochs=10_000)
            try:
                await pilot.pause(0.2)
                assert isinstance(app.screen, MonitorScreen)
                await wait_until(pilot, lambda: app.screen.view.state == "running")
                await pilot.press("q", "k")  # leave, keep training
                await pilot.pause(0.2)
                assert not isinstance(app.screen, MonitorScreen)
                assert choices == ["detached"] and handle.alive()
            finally:
                handle.stop()
                handle.wait(timeout=60)

    asyncio.run(drive())


def test_dashboard_snapshot_at_80x24(snap_compare, tmp_path: Path) -> None:
    """The smallest supported terminal: every panel readable, titles shortened rather than cut."""
    make_run(tmp_path / "demo-run", steps=60)
    assert snap_compare(MonitorApp(tmp_path / "demo-run", poll_seconds=0.1), terminal_size=(80, 24),
                        press=["left"])


def test_d_shows_the_chosen_layers_gradient_distribution(tmp_path: Path) -> None:
    from gradviz.monitor.widgets import LayerPanel
    from train_support import LINEAR_SPEC, train_here, write_spec

    spec = write_spec(tmp_path, LINEAR_SPEC)
    train_here(tmp_path / "run", spec, log_every=2, hist_every=4, epochs=3)

    async def drive() -> None:
        app = MonitorApp(tmp_path / "run", poll_seconds=0.1)
        async with app.run_test(size=(120, 40)) as pilot:
            screen = app.screen
            await wait_until(pilot, lambda: screen.view.done and bool(screen.view.hists))
            await pilot.press("d")
            await pilot.pause(0.2)
            text = shown(screen.query_one(LayerPanel))
            steps = screen.view.hist_steps
            assert f"∇ values of 0, step {steps[0]}→{steps[-1]}" in text and "█" in text
            await pilot.press("down", "d")
            await pilot.pause(0.2)
            assert "‖∇‖ 2" in shown(screen.query_one(LayerPanel))  # back to the norms, of the next layer

    asyncio.run(drive())


def test_a_live_dashboard_shows_the_heartbeats_step_not_the_last_logged_one(tmp_path: Path) -> None:
    import os

    from gradviz.rundir.heartbeat import Heartbeat
    from gradviz.rundir.status import write_status
    from tui_support import screen_text

    paths = make_run(tmp_path / "run", steps=25, state="running")
    write_status(paths, "running", pid=os.getpid(), step=None)
    beat = Heartbeat(paths.heartbeat)
    beat.beat(50, 5)  # the trainer is 25 steps past its last record
    beat.close()
    from gradviz.rundir.files import write_json_atomic

    meta = {**read_json(paths.meta), "total_steps": 100}
    write_json_atomic(paths.meta, meta)

    async def drive() -> str:
        app = MonitorApp(paths.root, None, poll_seconds=0.05)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            return screen_text(app)

    text = asyncio.run(drive())
    assert "step 50/100" in text and "step 25/100" not in text, text


def test_a_scheduled_learning_rate_and_short_windows_are_drawn_apart(tmp_path: Path) -> None:
    import json

    from gradviz.rundir.files import write_json_atomic

    paths = make_run(tmp_path / "run", steps=30)
    rows = read_jsonl(paths.metrics)
    for r in rows:  # a step schedule; every 10th record closes a short window (an epoch end)
        r["lr"] = 0.1 if r["step"] <= 15 else 0.01
        r["window_steps"] = 2 if r["step"] % 10 == 0 else 5
    paths.metrics.write_text("".join(json.dumps(r) + "\n" for r in rows))
    write_json_atomic(paths.config, {**read_json(paths.config), "log_every": 5})

    async def drive() -> str:
        app = MonitorApp(paths.root, None, poll_seconds=0.05)
        async with app.run_test(size=(120, 40)) as pilot:
            await pilot.pause(0.3)
            return shown(app.screen.query_one(LossPanel))

    text = asyncio.run(drive())
    assert "short window" in text and "mean of each 5-step window" in text
    assert "lr 0.01" in text  # its own small plot, with the value at the cursor (the last record)
