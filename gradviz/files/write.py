"""One way to write a file: whole or not at all, where the user meant it.

The bytes go to a temporary file beside the target, are flushed to disk and then renamed
over it with ``os.replace``: a write that fails part-way (disk full, a file-size limit, a
path that is a directory) leaves any existing file as it was, and no reader ever sees half
a file. A relative path is resolved against the directory gradviz started in, which
``remember_start_dir`` fixes before any user code runs: a script or spec that calls
``os.chdir`` cannot move where the output lands.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import signal
import tempfile
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from gradviz.errors import ExportError, GradvizError

_start = {"dir": None}  # the directory gradviz started in, once remembered


def remember_start_dir() -> None:
    """Fix the directory relative output paths are resolved against (the CLI calls it first)."""
    try:
        _start["dir"] = os.getcwd()
    except OSError:  # the working directory was removed under us: paths stay as given
        _start["dir"] = None


def output_path(path: str | Path, option: str = "-o") -> Path:
    """Where a path given on the command line (or to the API) is written: absolute, as the
    person meant it when gradviz started. An empty path is an error, not 'nothing written'."""
    if str(path).strip() == "":
        raise GradvizError(f"{option} '': give a file name to write")
    path = Path(path).expanduser()
    if path.is_absolute() or _start["dir"] is None:
        return path
    return Path(_start["dir"]) / path


@contextmanager
def _file_size_errors() -> Iterator[None]:
    """A write past RLIMIT_FSIZE raises EFBIG instead of killing the process with SIGXFSZ,
    so the temporary file is removed and the person is told (main thread only: signals)."""
    if not hasattr(signal, "SIGXFSZ") or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGXFSZ, previous)


def write_atomic(path: str | Path, data: bytes | str, shown: str | Path | None = None) -> Path:
    """Write data (str as UTF-8) to path, whole or not at all; the path written.

    `shown` is the name the error line uses (the one the person typed); ExportError when
    the file cannot be written, the existing file untouched."""
    target = output_path(path)
    shown = target if shown is None else shown
    payload = data.encode("utf-8") if isinstance(data, str) else data
    if target.is_symlink():  # write what the link points to; never replace the link itself
        target = Path(os.path.realpath(target))
    if target.is_dir():
        raise ExportError(f"cannot write {shown}: it is a directory")
    if target.exists() and not stat.S_ISREG(target.stat().st_mode):
        _write_stream(target, payload, shown)  # -o /dev/stdout, a FIFO: nothing to replace
        return target
    folder = target.parent
    tmp = None
    try:
        with _file_size_errors():
            fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=folder)
            with os.fdopen(fd, "wb") as handle:
                handle.write(payload)
                handle.flush()
                os.fsync(handle.fileno())
            if target.exists():  # keep the mode of the file being replaced
                os.chmod(tmp, target.stat().st_mode & 0o7777)
            else:
                os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, target)
            tmp = None
    except OSError as exc:
        raise ExportError(f"cannot write {shown}: {exc.strerror or exc}") from None
    finally:
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
    return target


def _write_stream(target: Path, payload: bytes, shown: str | Path) -> None:
    """Write into a device or FIFO as it is (a FIFO without a reader is an error, not a hang)."""
    try:
        fd = os.open(target, os.O_WRONLY | os.O_NONBLOCK)
    except OSError as exc:
        reason = "nothing reads from it" if exc.errno == errno.ENXIO else exc.strerror or str(exc)
        raise ExportError(f"cannot write {shown}: {reason}") from None
    try:
        os.set_blocking(fd, True)
        with _file_size_errors(), os.fdopen(fd, "wb") as handle:
            handle.write(payload)
    except OSError as exc:
        raise ExportError(f"cannot write {shown}: {exc.strerror or exc}") from None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# Geometry attributes of an SVG: a NaN or an infinity in one is a broken picture, not a drawing.
_SVG_GEOMETRY = re.compile(r'\s(x|y|x1|x2|y1|y2|cx|cy|r|rx|ry|width|height|d|points|transform|viewBox)="([^"]*)"')
_NOT_FINITE = re.compile(r"(?i)\bnan\b|\binf(inity)?\b")


def check_svg_finite(svg: str, shown: str | Path) -> None:
    """Refuse an SVG whose coordinates are not all finite (an extreme window or span makes
    NaN/Inf positions): one line naming the first, and nothing written."""
    for match in _SVG_GEOMETRY.finditer(svg):
        if _NOT_FINITE.search(match.group(2)):
            raise GradvizError(f"cannot draw {shown}: a coordinate is not finite ({match.group(1)}=\"{match.group(2)[:40]}\"); "
                               "the window or span is too extreme to draw; nothing was written")


# Options whose value is a path gradviz writes: '' there is a mistake, never 'write nothing'.
PATH_OPTIONS = {"output": "-o", "file": "-o", "svg": "--svg", "gif": "--gif", "frames": "--frames",
                "tensorboard": "--tensorboard"}


def refuse_empty_paths(args: object) -> None:
    """An output option given as '' is an error before any work (`-o ''` wrote nothing, exit 0)."""
    for dest, option in PATH_OPTIONS.items():
        value = getattr(args, dest, None)
        if isinstance(value, str) and value.strip() == "":
            raise GradvizError(f"{option} '': give a file name to write")
