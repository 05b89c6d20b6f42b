"""One way to read a file: stat first, regular files only, at most a stated size.

A FIFO, a device or a directory is refused before it is opened (reading one can block
forever or never end); a file past its bound is refused before it is read whole. Tensor
files are read with ``torch.load(weights_only=True)`` and nothing else: a file that needs
more (a pickle naming Python functions or classes) is refused, because loading it would
run code from the file.
"""

from __future__ import annotations

import io
import json
import os
import re
import stat
from pathlib import Path
from typing import Any

from gradviz.errors import GradvizError

KB, MB, GB = 1024, 1024**2, 1024**3
MAX_JSON_BYTES = 16 * MB  # a run's config.json, status.json: a few kB in practice
MAX_TENSOR_BYTES = 4 * GB  # a checkpoint or nan_step.pt: a model's parameters and a batch


class FileLoadError(GradvizError):
    """A file cannot be read: missing, not a regular file, too large, or not what it should hold."""


def _kind(mode: int) -> str:
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def size_text(n: float) -> str:
    """A byte count as people read it: 512 B, 3.1 MB, 4.0 GB (powers of 1024)."""
    if n >= 10 * MB:
        return f"{n / GB:.1f} GB" if n >= GB else f"{n / MB:.1f} MB"
    return f"{n / KB:.0f} kB" if n >= KB else f"{int(n)} B"


def check_regular(path: Path | str, what: str, max_bytes: int | None = None) -> os.stat_result:
    """The file's stat, once it is known to be a regular file within max_bytes; else one line."""
    path = Path(path)
    try:
        info = path.stat()
    except OSError as exc:
        raise FileLoadError(f"cannot read {what} {path}: {exc.strerror}") from None
    if not stat.S_ISREG(info.st_mode):
        raise FileLoadError(f"cannot read {what} {path}: it is {_kind(info.st_mode)}; give a regular file")
    if max_bytes is not None and info.st_size > max_bytes:
        raise FileLoadError(f"{what} {path} is larger than {size_text(max_bytes)} ({size_text(info.st_size)}); "
                            f"is it really a {what}?")
    return info


def read_bytes(path: Path | str, what: str, max_bytes: int) -> bytes:
    """A regular file's bytes, at most max_bytes (checked before and while reading)."""
    path = Path(path)
    check_regular(path, what, max_bytes)
    try:
        # O_NONBLOCK: should the file have been swapped for a FIFO since stat, open returns at once
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
        with os.fdopen(fd, "rb") as handle:
            if not stat.S_ISREG(os.fstat(handle.fileno()).st_mode):
                raise FileLoadError(f"cannot read {what} {path}: it stopped being a regular file")
            data = handle.read(max_bytes + 1)
    except OSError as exc:
        raise FileLoadError(f"cannot read {what} {path}: {exc.strerror}") from None
    if len(data) > max_bytes:
        raise FileLoadError(f"{what} {path} grew past the {size_text(max_bytes)} gradviz reads")
    return data


def read_text(path: Path | str, what: str, max_bytes: int) -> str:
    """A regular file's UTF-8 text, at most max_bytes."""
    data = read_bytes(path, what, max_bytes)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise FileLoadError(f"{what} {path} is not UTF-8 text (byte 0x{data[exc.start]:02x} "
                            f"at offset {exc.start})") from None


def read_json_object(path: Path | str, what: str, max_bytes: int = MAX_JSON_BYTES) -> dict[str, Any]:
    """A JSON object from a regular file of at most max_bytes."""
    text = read_text(path, what, max_bytes)
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise FileLoadError(f"{what} {path} is not valid JSON ({exc})") from None
    if not isinstance(data, dict):
        raise FileLoadError(f"{what} {path} holds a JSON {type(data).__name__}, not an object")
    return data


_GLOBAL = re.compile(r"GLOBAL ([\w.]+)")


def load_tensors(path: Path | str, what: str, max_bytes: int = MAX_TENSOR_BYTES) -> Any:
    """What a torch.save file holds, loaded with weights_only=True: tensors, numbers, strings,
    lists, tuples and dicts. A file that names any other Python object is refused with the
    name it asked for: gradviz never runs code from a file it loads."""
    import pickle
    import warnings

    import torch

    data = read_bytes(path, what, max_bytes)
    try:
        with warnings.catch_warnings():  # torch warns about foreign pickle protocols before refusing them
            warnings.simplefilter("ignore")
            return torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        named = _GLOBAL.search(str(exc))
        if named:
            raise FileLoadError(f"{what} {path} asks to load the Python object {named.group(1)}; gradviz "
                                "loads only tensors and plain data, never code from a file, and refuses it") from None
        raise FileLoadError(f"{what} {path} is not a file torch.save wrote (or it is torn)") from None
    except Exception as exc:  # torch raises RuntimeError, EOFError, ValueError… for torn or foreign files
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise FileLoadError(f"{what} {path} cannot be loaded: {first[:200]}") from None
