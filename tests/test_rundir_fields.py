"""The run directory's status and control fields: read in gradviz.rundir, where they are written."""

from __future__ import annotations

import json
import os

from gradviz.rundir.control import read_control, write_control
from gradviz.rundir.paths import RunPaths
from gradviz.rundir.status import named_process_alive, read_failure, write_failure, write_status


def test_status_and_control_fields_are_read_where_they_are_written(tmp_path):
    paths = RunPaths(tmp_path)
    assert read_control(paths) == (0, None) and read_failure(paths) == (None, None)
    write_control(paths, "pause")
    write_control(paths, "stop")
    assert read_control(paths) == (2, "stop")
    write_status(paths, "running", pid=os.getpid())
    write_failure(paths, "the spec has no model()", "SpecError")
    assert read_failure(paths) == ("SpecError", "the spec has no model()")
    status = json.loads(paths.status.read_text())
    assert status["state"] == "failed" and status["pid"] == os.getpid()
    assert named_process_alive(status) is True and named_process_alive({}) is None
    assert named_process_alive({"pid": 2 ** 22 + 12345}) is False  # above the kernel's pid range


def test_the_penalty_is_described_for_both_l2_forms():
    from gradviz.step_stats import STEP_STATS
    from gradviz.train.config import L2_FORMS

    about = next(s.about for s in STEP_STATS if s.name == "penalty")
    assert set(L2_FORMS) == {"squared", "norm"}
    assert "λ·Σ‖θ‖²" in about and "λ·Σ‖θ‖₂" in about and "--l2-form" in about


def test_a_reused_pid_is_not_taken_for_the_trainer(tmp_path):
    # a stale status naming a pid that now belongs to another process is not alive
    import os

    from gradviz.processes import process_start
    from gradviz.rundir.files import read_json
    from gradviz.rundir.paths import RunPaths
    from gradviz.rundir.status import named_process_alive, write_status

    paths = RunPaths(tmp_path / "run")
    paths.root.mkdir()
    write_status(paths, "running", pid=os.getpid())
    status = read_json(paths.status)
    assert status["pid_start"] == process_start(os.getpid()) is not None
    assert named_process_alive(status) is True
    stale = {**status, "pid_start": status["pid_start"] - 1}  # the same pid, started at another time
    assert named_process_alive(stale) is False
    assert named_process_alive({"pid": os.getpid()}) is True  # a status from before start times were kept
