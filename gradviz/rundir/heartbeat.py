"""The heartbeat file: the step and epoch a trainer has reached, rewritten in place every step."""

from __future__ import annotations

import mmap
import os
from pathlib import Path
from typing import Any

from gradviz.rundir.paths import RunPaths


HEARTBEAT_BYTES = 32  # "<step> <epoch>\n", space-padded to a fixed width


class Heartbeat:
    """The step a trainer has reached, in a small memory-mapped file: a store per step, no system call.

    Logged records come every --log-every steps; this says how far the trainer really got,
    so a kill -9, a dead node or a full disk is reported at its true step. The page lives
    in the OS's page cache: what the last beat wrote survives the process being killed.
    """

    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, HEARTBEAT_BYTES)
            self._map: mmap.mmap | None = mmap.mmap(fd, HEARTBEAT_BYTES)
        finally:
            os.close(fd)
        self.beat(0, 0)

    def beat(self, step: int, epoch: Any = 0) -> None:
        """Say that `step` updates are done (epoch as the loop counts them)."""
        if self._map is not None:
            line = f"{step} {epoch if isinstance(epoch, int) else 0}".encode()[:HEARTBEAT_BYTES - 1]
            self._map[:HEARTBEAT_BYTES] = line.ljust(HEARTBEAT_BYTES - 1) + b"\n"

    def close(self) -> None:
        """Unmap the file (its last beat stays)."""
        if self._map is not None:
            self._map.close()
            self._map = None


def read_heartbeat(paths: RunPaths) -> dict[str, int] | None:
    """{'step', 'epoch'} of the trainer's last beat, or None without a (readable) heartbeat."""
    for _ in range(3):  # a read racing a beat can see half of each: read again
        try:
            with open(paths.heartbeat, "rb") as handle:
                fields = handle.read(HEARTBEAT_BYTES).split()
        except OSError:
            return None
        if len(fields) == 2 and all(f.isdigit() for f in fields):
            return {"step": int(fields[0]), "epoch": int(fields[1])}
    return None
