"""status.json: the run's state and its fields (pids, failure, first non-finite step), and how a trainer ended."""

from __future__ import annotations

import json
import signal
import time
from typing import Any, Mapping

from gradviz.processes import process_alive, process_start
from gradviz.rundir.files import DISK_FULL, overwrite_in_place, read_json, write_json_atomic
from gradviz.rundir.heartbeat import read_heartbeat
from gradviz.rundir.paths import RunPaths


ACTIVE_STATES = ("starting", "running", "paused")
DONE_STATES = ("finished", "stopped", "failed")
PID_FIELDS = ("pid", "launcher_pid")  # status.json: the trainer's process and the launcher's


def write_status(paths: RunPaths, state: str, **fields: Any) -> None:
    """Replace status.json with a new state, keeping fields not given (pid, device...)."""
    status = read_json(paths.status) or {}
    status.update(fields)
    for key in PID_FIELDS:  # a pid with its start time: a reused pid is not mistaken for the trainer
        if key in fields:
            status[key + "_start"] = process_start(fields[key])
    status["state"] = state
    status["updated"] = time.time()
    try:
        write_json_atomic(paths.status, status)
    except OSError as exc:
        if exc.errno not in DISK_FULL:
            raise
        # A full disk has no room for a new file; status.json's own blocks can still be rewritten.
        overwrite_in_place(paths.status, json.dumps(status, allow_nan=True))


def write_failure(paths: RunPaths, message: str, kind: str, **fields: Any) -> None:
    """Mark the run failed with the one-line message the CLI prints, the error's kind, and any further fields."""
    write_status(paths, "failed", message=message, kind=kind, **fields)


def read_failure(paths: RunPaths) -> tuple[str | None, str | None]:
    """(kind, message) of a failed run, as write_failure left them (None where missing)."""
    status = read_json(paths.status) or {}
    return status.get("kind"), status.get("message")


def read_nan(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """status.json's `nan` entry (step, layer, message: where the first non-finite value began),
    when it is well formed; the trainer's recorder and NaN tracer write it with write_status."""
    nan = status.get("nan")
    return nan if isinstance(nan, dict) and nan else None


def read_val_nonfinite(status: Mapping[str, Any]) -> dict[str, Any] | None:
    """status.json's `val_nonfinite` entry (epoch, step, message: the first epoch whose
    validation loss was NaN or Inf), when it is well formed."""
    entry = status.get("val_nonfinite")
    return entry if isinstance(entry, dict) and isinstance(entry.get("message"), str) else None


def read_rank_check(status: Mapping[str, Any]) -> str | None:
    """What the end-of-run check across ranks found, when it failed (None when it passed or was
    not made): DDP's replicas ended different (`ranks_agree`), or FSDP2's shards do not hold every
    parameter exactly once or the ranks ended at different steps (`shards_cover`)."""
    if status.get("ranks_agree") is False:
        return "the ranks ended with different parameters (DDP's replicas diverged)"
    if status.get("shards_cover") is False:
        return "the ranks' shards do not hold every parameter exactly once, or the ranks ended at different steps"
    return None


def named_process_alive(status: Mapping[str, Any]) -> bool | None:
    """Whether a process that status.json names still runs; None when it names none."""
    pids = [status.get(key) for key in PID_FIELDS]
    if not any(pids):
        return None
    return any(process_alive(status.get(key)) and status.get(key + "_start") in (None, process_start(status.get(key)))
               for key in PID_FIELDS)


def describe_exit(returncode: int) -> str:
    """How a trainer process ended, for a person: 'killed by signal 9 (SIGKILL) — out of memory?'."""
    if returncode < 0:
        number = -returncode
        try:
            name = f" ({signal.Signals(number).name})"
        except ValueError:
            name = ""
        hint = " — out of memory?" if number == signal.SIGKILL else ""
        return f"the trainer was killed by signal {number}{name}{hint}"
    if returncode == 0:
        return "the trainer exited (status 0) without saying how the run ended"
    return f"the trainer exited with status {returncode} before the run ended; see worker.log"


def record_exit(paths: RunPaths, returncode: int) -> bool:
    """Mark a run whose trainer exited while its status still says it runs as failed,
    with how it ended; True when status.json was changed."""
    status = read_json(paths.status) or {}
    if status.get("state", "starting") not in ACTIVE_STATES:
        return False
    beat = read_heartbeat(paths)  # the true step: records are only every --log-every steps
    reached = {"step": beat["step"], "failed_at_step": beat["step"]} if beat and beat["step"] else {}
    write_failure(paths, describe_exit(returncode), "TrainerDied", exit_status=returncode, **reached)
    return True
