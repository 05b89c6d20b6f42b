"""control.json: the monitor's commands (pause, resume, stop), polled by the trainer."""

from __future__ import annotations

import time

from gradviz.rundir.files import read_json, write_json_atomic
from gradviz.rundir.paths import RunPaths


COMMANDS = ("pause", "resume", "stop")


def write_control(paths: RunPaths, command: str) -> None:
    """Ask the trainer to pause, resume or stop; it polls this file."""
    if command not in COMMANDS:
        raise ValueError(f"unknown control command {command!r}")
    write_json_atomic(paths.control, {"command": command, "seq": read_control(paths)[0] + 1, "time": time.time()})


def read_control(paths: RunPaths) -> tuple[int, str | None]:
    """The latest command's sequence number and the command (0, None when there is none)."""
    control = read_json(paths.control) or {}
    try:
        seq = int(control.get("seq", 0))
    except (TypeError, ValueError):
        seq = 0
    command = control.get("command")
    return seq, command if isinstance(command, str) else None
