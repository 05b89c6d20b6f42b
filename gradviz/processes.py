"""Process liveness on this machine: whether a pid still runs, and when it started.

A pid with its start time names one process; a later process given the same pid does not
share it. Linux /proc where it exists; elsewhere only the signal-0 probe.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any


def process_alive(pid: int | None) -> bool:
    """Whether a process with this id exists on this machine (signal 0 probes it)."""
    if not pid or not isinstance(pid, int) or isinstance(pid, bool) or pid < 0:
        return False
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, OverflowError):
        return False
    except PermissionError:
        return True
    return not _zombie(pid)


def process_start(pid: Any) -> int | None:
    """When a process started (clock ticks since boot, Linux /proc; None elsewhere or if gone):
    with its pid, an identity that a later process given the same pid does not share."""
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        return int(fields[19])  # field 22 of stat; the split starts at field 3
    except (OSError, IndexError, ValueError):
        return None


def _zombie(pid: int) -> bool:
    """Whether a process has exited but not been reaped (Linux /proc; elsewhere False).

    A killed trainer stays a zombie until its parent waits for it; kill(pid, 0) still
    succeeds on one, so without this a monitor would wait on a dead run forever."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rpartition(")")[2].split()[:1] == ["Z"]
