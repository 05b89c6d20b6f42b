"""A full disk (or any write error) during training is named, status.json ends consistent,
and no temporary files are left behind."""

from __future__ import annotations

import errno
import os
import subprocess
from pathlib import Path

import pytest

from gradviz.commands.train import exit_code
from gradviz.errors import TrainingError
from gradviz.rundir.files import read_json
from gradviz.rundir.jsonl import JsonlWriter
from train_support import LINEAR_SPEC, run_worker, write_spec

LONG_SPEC = LINEAR_SPEC.replace('"epochs": 2', '"epochs": 100000')


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.rglob("*.tmp"))


def assert_named_and_consistent(run_dir: Path, file_name: str) -> None:
    status = read_json(run_dir / "status.json")
    assert status["state"] == "failed" and status["kind"] == "WriteError", status
    assert status["message"] == f"the disk is full: cannot write {file_name} (No space left on device)"
    assert leftovers(run_dir) == []
    with pytest.raises(TrainingError, match="the disk is full: cannot write"):
        exit_code("failed", run_dir)


@pytest.fixture
def small_disk(tmp_path):
    """A 400 KiB tmpfs mounted at tmp_path/disk (needs root; skipped where mounting is refused)."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=400k", "tmpfs", str(disk)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip("mounting a small tmpfs needs root: the real full-disk test cannot run here")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], capture_output=True)


def test_a_disk_that_fills_during_training_is_named(tmp_path, small_disk, capsys):
    spec = write_spec(tmp_path, LONG_SPEC)
    run_dir = small_disk / "run"
    code = run_worker(run_dir, spec, log_every=1, hist_every=0)
    assert code == 2
    status = read_json(run_dir / "status.json")
    assert status["message"].startswith("the disk is full: cannot write ")
    assert_named_and_consistent(run_dir, status["message"].split("cannot write ")[1].split(" (")[0])
    assert "the disk is full" in capsys.readouterr().err


def test_a_write_error_with_no_room_for_new_files_still_ends_the_status(tmp_path, monkeypatch):
    """Where mounting is refused: the metrics log fails at its 6th record, and no new file fits."""
    spec = write_spec(tmp_path, LONG_SPEC)
    run_dir = tmp_path / "run"
    written = {"n": 0}
    real_write = JsonlWriter.write

    def write(self, record):
        if self.path.name == "metrics.jsonl":
            written["n"] += 1
            if written["n"] > 5:
                monkeypatch.setattr(Path, "write_text", no_room)  # from now on, like a full disk
                raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
        real_write(self, record)

    def no_room(self, *args, **kwargs):
        with open(self, "w") as handle:  # the file is created, then the data does not fit
            handle.write("{")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(JsonlWriter, "write", write)
    assert run_worker(run_dir, spec, log_every=1, hist_every=0) == 2
    assert_named_and_consistent(run_dir, "metrics.jsonl")
    assert not (run_dir / "error.txt").exists()  # no half-written traceback either
    assert read_json(run_dir / "status.json")["failed_at_step"] == 6
