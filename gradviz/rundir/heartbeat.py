"""The heartbeat file: the step and epoch a trainer has reached, stored in place every step."""

from __future__ import annotations

import mmap
import os
import struct
from pathlib import Path

from gradviz.rundir.paths import RunPaths


HEARTBEAT_BYTES = 16  # two little-endian int64: the step reached, then its epoch
_LAYOUT = struct.Struct("<qq")


class Heartbeat:
    """The step a trainer has reached, in a small memory-mapped file: one store per step, no system call.

    Logged records come every --log-every steps; this says how far the trainer really got,
    so a kill -9, a dead node or a full disk is reported at its true step. The page lives
    in the OS's page cache: what the last beat wrote survives the process being killed.

    `slots` is the file as two int64 (step, epoch): a loop stores `slots[0] = step` itself.
    Each store is one aligned 8-byte write, with no formatting: between the model's kernels,
    with the caches cold, formatting a line cost more than 1% of a small model's step.
    """

    def __init__(self, path: Path):
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
        try:
            os.ftruncate(fd, HEARTBEAT_BYTES)
            self._map: mmap.mmap | None = mmap.mmap(fd, HEARTBEAT_BYTES)
        finally:
            os.close(fd)
        self.slots: memoryview | list[int] = memoryview(self._map).cast("q")
        self.beat(0, 0)

    def beat(self, step: int, epoch: int = 0) -> None:
        """Say that `step` updates are done (in `epoch`, as the loop counts them)."""
        self.slots[1] = epoch
        self.slots[0] = step

    def close(self) -> None:
        """Unmap the file (its last beat stays)."""
        if self._map is not None:
            self.slots.release()
            self.slots = [0, 0]  # a late beat stores nowhere
            self._map.close()
            self._map = None


def read_heartbeat(paths: RunPaths) -> dict[str, int] | None:
    """{'step', 'epoch'} of the trainer's last beat, or None without a (readable) heartbeat."""
    last = None
    for _ in range(3):  # a read racing an epoch's first beat can pair the new epoch with the old step
        try:
            with open(paths.heartbeat, "rb") as handle:
                data = handle.read(HEARTBEAT_BYTES + 1)
        except OSError:
            return None
        if len(data) != HEARTBEAT_BYTES:
            return None
        if data == last:
            break
        last = data
    step, epoch = _LAYOUT.unpack(last)
    if step < 0 or epoch < 0:
        return None
    return {"step": step, "epoch": epoch}
