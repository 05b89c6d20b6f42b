"""Whole JSON files of a run directory: atomic writes, their temporaries, write errors, reads."""

from __future__ import annotations

import errno
import json
import os
from pathlib import Path
from typing import Any

from gradviz.files.read import FileLoadError, read_json_object


DISK_FULL = (errno.ENOSPC, errno.EDQUOT)


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON to a temporary file and rename it over path (readers never see half).

    On a write error the temporary file is removed and the OSError names `path`."""
    path = Path(path)
    tmp = temporary_name(path)
    try:
        tmp.write_text(json.dumps(data, indent=2, allow_nan=True))
        os.replace(tmp, path)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise OSError(exc.errno, exc.strerror, str(path)) from None


def temporary_name(path: Path) -> Path:
    """Where a file is written before it is renamed over `path` (this process's own name)."""
    return Path(path).with_name(f".{Path(path).name}.{os.getpid()}.tmp")


def remove_temporaries(root: Path) -> None:
    """Remove this process's temporary files left in a run directory (and snapshots/) by a failed write."""
    for folder in (Path(root), Path(root) / "snapshots"):
        for tmp in folder.glob(f".*.{os.getpid()}.tmp"):
            tmp.unlink(missing_ok=True)


def describe_write_error(exc: OSError) -> str:
    """'the disk is full: cannot write metrics.jsonl (No space left on device)', or the error named."""
    name = Path(exc.filename).name if exc.filename else "the run directory"
    reason = exc.strerror or str(exc)
    if exc.errno in DISK_FULL:
        return f"the disk is full: cannot write {name} ({reason})"
    return f"cannot write {name}: {reason}"


def overwrite_in_place(path: Path, text: str) -> None:
    """Rewrite a small file over its own blocks (no new file): what still works on a full disk."""
    data = text.encode()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        view = memoryview(data)
        at = 0
        while at < len(data):
            at += os.pwrite(fd, view[at:], at)
        os.ftruncate(fd, len(data))
    finally:
        os.close(fd)


def read_json(path: Path) -> dict[str, Any] | None:
    """A JSON object from a file, or None when it is missing or unreadable."""
    try:
        return read_json_object(path, "run file")
    except FileLoadError:  # missing, not a regular file, larger than any run file, not an object
        return None
