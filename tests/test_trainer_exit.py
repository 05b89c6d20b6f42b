"""A trainer that dies is reaped and reported; monitor never waits on nothing; Ctrl-C as said."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.commands.train import exit_code
from gradviz.errors import TrainingError
from gradviz.monitor.app import MonitorApp
from gradviz.monitor.dialog import LeaveDialog
from gradviz.monitor.plain import follow
from gradviz.monitor.state import RunView, clean_record
from gradviz.processes import process_alive
from gradviz.rundir.files import read_json, write_json_atomic
from gradviz.rundir.jsonl import JsonlTailer
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import describe_exit, record_exit, write_status
from gradviz.train.launch import TrainingHandle
from monitor_support import make_run
from rich.console import Console

ROOT = Path(__file__).resolve().parent.parent


def test_exit_descriptions():
    assert describe_exit(-9) == "the trainer was killed by signal 9 (SIGKILL) — out of memory?"
    assert describe_exit(-15) == "the trainer was killed by signal 15 (SIGTERM)"
    assert describe_exit(3) == "the trainer exited with status 3 before the run ended; see worker.log"
    assert describe_exit(0) == "the trainer exited (status 0) without saying how the run ended"


def test_a_zombie_is_not_alive_and_garbage_pids_are_not_processes():
    child = subprocess.Popen(["sleep", "30"])
    try:
        assert process_alive(child.pid)
        child.kill()
        deadline = time.monotonic() + 5
        while process_alive(child.pid) and time.monotonic() < deadline:
            time.sleep(0.02)
        assert not process_alive(child.pid)  # killed, not yet reaped: a zombie
        assert child.poll() == -9
    finally:
        child.kill()
        child.wait()
    for pid in ("abc", True, -1, 2**80, None, 1.5):
        assert not process_alive(pid)


def test_record_exit_marks_only_a_run_that_claims_to_run(tmp_path):
    paths = make_run(tmp_path / "done", steps=3)
    assert not record_exit(paths, -9)
    assert read_json(paths.status)["state"] == "finished"
    write_status(paths, "running", pid=123)
    assert record_exit(paths, -9)
    status = read_json(paths.status)
    assert status["state"] == "failed" and status["exit_status"] == -9 and status["pid"] == 123
    assert status["message"] == describe_exit(-9)


def start_fake_trainer(root: Path, state: str = "starting") -> TrainingHandle:
    """A process standing in for the trainer, with the status `gradviz train` writes."""
    paths = RunPaths(root)
    root.mkdir(parents=True)
    write_json_atomic(paths.config, {"spec": "demo.py"})
    process = subprocess.Popen(["sleep", "60"])
    write_status(paths, state, launcher_pid=process.pid)
    return TrainingHandle(process, paths)


@pytest.mark.parametrize("state", ["starting", "running"])
def test_no_tui_reports_a_sigkilled_trainer_within_two_seconds(tmp_path, state):
    handle = start_fake_trainer(tmp_path / "run", state)
    killed_at = []

    def kill() -> None:
        killed_at.append(time.monotonic())
        os.kill(handle.process.pid, signal.SIGKILL)

    timer = threading.Timer(0.3, kill)
    timer.start()
    try:
        with open(os.devnull, "w") as sink:
            final = follow(RunView(handle.run_dir, handle), console=Console(file=sink), interval=0.05)
        took = time.monotonic() - killed_at[0]
    finally:
        timer.cancel()
        handle.kill()
    assert final == "failed" and took < 2
    with pytest.raises(TrainingError, match=r"killed by signal 9 \(SIGKILL\) — out of memory\?"):
        exit_code(final, handle.run_dir)


def test_the_dashboard_shows_the_signal(tmp_path):
    handle = start_fake_trainer(tmp_path / "run", "running")

    async def drive() -> None:
        app = MonitorApp(handle.run_dir, handle, poll_seconds=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            os.kill(handle.process.pid, signal.SIGKILL)
            deadline = time.monotonic() + 3
            while app.screen.view.state != "failed" and time.monotonic() < deadline:
                await pilot.pause(0.05)
            assert app.screen.view.state == "failed"
            assert "out of memory?" in app.screen.view.status["message"]
            await pilot.press("q")  # a dead run: no question asked
        assert app.return_value == "left"

    try:
        asyncio.run(drive())
    finally:
        handle.kill()


def test_train_reports_a_spec_that_exits_on_import(tmp_path):
    spec = tmp_path / "quits.py"
    spec.write_text("import sys\nsys.exit(0)\n")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "gradviz", "train", str(spec), "--no-tui", "--run-dir",
                             str(tmp_path / "run")], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 2
    assert result.stderr.strip() == f"gradviz: error: {spec}: import called sys.exit(0); a spec must not exit the process"
    assert read_json(RunPaths(tmp_path / "run").status)["state"] == "failed"


# -- monitor on things that are not (live) runs ---------------------------------------------
@pytest.mark.parametrize("status, said", [
    (None, "not a run directory (no status.json)"),
    ("garbage{", "not a run status (not a JSON object)"),
    ("[1, 2]", "not a run status (not a JSON object)"),
    ('{"state": "dancing"}', "not a run status (state 'dancing')"),
])
def test_monitor_on_a_folder_that_is_not_a_run_is_one_line(tmp_path, capsys, status, said):
    (tmp_path / "config.json").write_text("{}")
    if status is not None:
        (tmp_path / "status.json").write_text(status)
    assert main(["monitor", str(tmp_path), "--no-tui"]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_monitor_on_a_run_nobody_trains_prints_it_and_exits(tmp_path, capsys):
    paths = make_run(tmp_path / "run", steps=12, state="starting")
    write_json_atomic(paths.status, {"state": "running"})  # no pid: no trainer was ever started
    started = time.monotonic()
    assert main(["monitor", str(paths.root), "--no-tui"]) == 0
    assert time.monotonic() - started < 5
    assert "run lost at step 12" in capsys.readouterr().out


def test_a_huge_single_line_log_is_skipped_quickly(tmp_path, capsys):
    paths = make_run(tmp_path / "run", steps=5)
    records = paths.metrics.read_bytes()
    with open(paths.metrics, "wb") as log:
        log.seek(100 * 2**20)  # a 100 MB line of NUL bytes (sparse: cheap to write)
        log.write(b"]\n" + records)
    started = time.monotonic()
    assert main(["monitor", str(paths.root), "--no-tui"]) == 0
    assert time.monotonic() - started < 10
    out = capsys.readouterr().out
    assert "run finished at step 5" in out
    tailer = JsonlTailer(paths.metrics)
    while not tailer.at_end():
        tailer.read_new()
    assert tailer.skipped == 1 and len(tailer._partial) == 0


def test_records_of_the_wrong_types_are_cleaned_or_skipped(tmp_path, capsys):
    paths = make_run(tmp_path / "run", steps=2)
    with open(paths.metrics, "a") as log:
        for record in ({"step": "x", "grad_norm": {}}, {"step": 3, "grad_norm": 5}, [1, 2], "text",
                       {"step": 4, "grad_norm": {"fc1": "big", "fc2": None}, "epoch": [1], "time": "now",
                        "loss": {"a": 1}, "samples_per_s": "fast", "keep_rate": 3, "param_norm": {"fc1": "x"},
                        "nonfinite": 7, "epoch_end": True}):
            log.write(json.dumps(record) + "\n")
    with open(paths.masks, "a") as log:
        log.write('{"step": "x"}\n')
    write_json_atomic(paths.meta, {"layers": "fc1", "dropout": [1], "total_steps": "many"})
    write_json_atomic(paths.status, {"state": "finished", "nan": 5})
    assert main(["monitor", str(paths.root), "--no-tui"]) == 0
    out = capsys.readouterr().out
    assert "run finished at step 4" in out
    cleaned = clean_record({"step": 4, "grad_norm": {"a": "b"}, "loss": "x", "time": None})
    assert cleaned["grad_norm"]["a"] != cleaned["grad_norm"]["a"]  # NaN
    assert "loss" not in cleaned and cleaned["time"] == 0.0 and cleaned["epoch"] is None


# -- Ctrl-C in the dashboard ------------------------------------------------------------------
class FakeHandle:
    """A live trainer as far as the dashboard can tell."""

    def check_exit(self) -> None:
        return None


def live_run(root: Path) -> RunPaths:
    paths = make_run(root, steps=10, state="running")
    status = read_json(paths.status)
    status["pid"] = os.getpid()  # alive for as long as the test runs
    write_json_atomic(paths.status, status)
    return paths


@pytest.mark.parametrize("handle, keys, choice, stop_sent", [
    (FakeHandle(), ["ctrl+c"], "stopped", True),
    (FakeHandle(), ["q", "ctrl+c"], "stopped", True),
    (None, ["ctrl+c"], "detached", False),
    (None, ["q", "ctrl+c"], "detached", False),
])
def test_ctrl_c_stops_the_trainer_it_started_and_leaves_a_watched_one(tmp_path, handle, keys, choice, stop_sent):
    paths = live_run(tmp_path / "run")

    async def drive() -> None:
        app = MonitorApp(paths.root, handle, poll_seconds=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
            for key in keys:
                if key == "ctrl+c" and keys[0] == "q":
                    assert isinstance(app.screen, LeaveDialog)
                await pilot.press(key)
                await pilot.pause(0.1)
        assert app.return_value == choice

    asyncio.run(drive())
    control = read_json(paths.control)
    assert (control is not None and control["command"] == "stop") == stop_sent


def test_ctrl_c_quits_the_stepper_like_q():
    from gradviz.tui.app import StepperApp
    from tui_support import lecture_trace

    async def drive() -> bool:
        app = StepperApp(lecture_trace())
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
            await pilot.press("ctrl+c")
            await pilot.pause(0.1)
            return app.is_running

    assert asyncio.run(drive()) is False


def test_monitor_without_a_terminal_prints_the_table_and_says_why(tmp_path):
    paths = make_run(tmp_path / "run", steps=4)
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "gradviz", "monitor", str(paths.root)], capture_output=True,
                            text=True, timeout=60, env=env, stdin=subprocess.DEVNULL)
    assert result.returncode == 0
    assert result.stderr == "gradviz: standard output is not a terminal: printing the run as --no-tui does\n"
    assert "run finished at step 4" in result.stdout


def test_record_exit_writes_its_failure_through_write_failure(tmp_path, monkeypatch):
    # One place spells a failure's fields: record_exit adds only its exit status to them.
    import gradviz.rundir.status as rundir

    calls = []
    real = rundir.write_failure
    monkeypatch.setattr(rundir, "write_failure", lambda *a, **k: (calls.append((a[1:], k)), real(*a, **k)))
    paths = make_run(tmp_path / "run", steps=3)
    write_status(paths, "running", pid=123)
    assert record_exit(paths, 3)
    assert calls == [((describe_exit(3), "TrainerDied"), {"exit_status": 3})]
    assert rundir.read_failure(paths) == ("TrainerDied", describe_exit(3))


def test_keep_training_on_a_paused_run_resumes_it(tmp_path):
    paths = live_run(tmp_path / "run")
    write_status(paths, "paused", pid=os.getpid())

    async def drive() -> None:
        app = MonitorApp(paths.root, FakeHandle(), poll_seconds=0.05)
        async with app.run_test(size=(100, 30)) as pilot:
            await pilot.pause(0.1)
            await pilot.press("q")
            await pilot.pause(0.1)
            assert isinstance(app.screen, LeaveDialog)
            await pilot.press("k")
            await pilot.pause(0.1)
        assert app.return_value == "detached" and not app.interrupted

    asyncio.run(drive())
    assert read_json(paths.control)["command"] == "resume"  # the trainer's pause ends


@pytest.mark.skipif(not __import__("shutil").which("tmux"), reason="tmux is not installed: the real-terminal test needs it")
def test_ctrl_c_in_the_train_dashboard_exits_130_as_with_no_tui(tmp_path):
    import shlex

    from test_tui_tmux import Tmux
    from train_support import LINEAR_SPEC, write_spec

    spec = write_spec(tmp_path, LINEAR_SPEC.replace('"epochs": 2', '"epochs": 100000'))
    run_dir = tmp_path / "run"
    command = (f"cd {shlex.quote(str(ROOT))} && PYTHONPATH={shlex.quote(str(ROOT))} TERM=xterm-256color "
               f"{shlex.quote(sys.executable)} -m gradviz train {shlex.quote(spec)} --device cpu "
               f"--run-dir {shlex.quote(str(run_dir))}; echo EXIT=$?; sleep 60")
    term = Tmux(tmp_path / "tmux.sock", command, 120, 40)
    try:
        deadline = time.monotonic() + 60
        while (read_json(RunPaths(run_dir).status) or {}).get("state") != "running":
            assert time.monotonic() < deadline, term.screen()
            time.sleep(0.2)
        term.wait_for("step", timeout=30)
        term.keys("C-c")
        screen = term.wait_for("EXIT=", timeout=90)
        assert "EXIT=130" in screen, screen
        assert read_json(RunPaths(run_dir).status)["state"] == "stopped"
    finally:
        term.close()


def test_a_lost_run_names_the_step_its_heartbeat_reached_and_an_empty_log(tmp_path):
    from gradviz.rundir.heartbeat import Heartbeat

    paths = make_run(tmp_path / "run", steps=3, state="running")
    beat = Heartbeat(paths.heartbeat)
    beat.beat(17, 2)
    beat.close()
    paths.worker_log.write_text("")
    with pytest.raises(TrainingError) as error:
        exit_code("lost", paths.root)
    assert error.value.message == f"the trainer process ended without a word at step 17; {paths.worker_log} is empty"
