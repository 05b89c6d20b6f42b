"""The append-only JSONL logs (metrics, masks, histograms): the writer and the tailing reader."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from gradviz.files.read import FileLoadError, check_regular


MAX_LINE_BYTES = 4 * 2**20  # a metrics or mask record is a few kB; longer lines are garbage
MAX_NAMED = 10  # skipped lines named by number in the note


class JsonlWriter:
    """Appends one JSON object per line; each line reaches the OS in one write() call.

    Writing through os.write on an O_APPEND descriptor leaves no buffer in this process:
    a crash, Ctrl-C or kill -9 loses at most a line being written, never an earlier one.
    No fsync: surviving a power cut is not worth a disk flush per step.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def write(self, record: dict[str, Any]) -> None:
        """Append one record as a line of compact JSON (an OSError names the file)."""
        data = (json.dumps(record, separators=(",", ":"), allow_nan=True) + "\n").encode()
        view = memoryview(data)
        try:
            while view:  # os.write may write less than asked for on some file systems
                view = view[os.write(self._fd, view):]
        except OSError as exc:
            raise OSError(exc.errno, exc.strerror, str(self.path)) from None

    def close(self) -> None:
        """Close the file; later writes fail."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1


class JsonlTailer:
    """Reads the complete new lines of a growing JSONL file, a bounded amount per call.

    A line without its newline yet (the writer is mid-write, or was killed there) is held
    back until it completes; a line that is not valid JSON is skipped and counted.
    """

    def __init__(self, path: Path, max_bytes: int | None = 512 * 1024):
        self.path = Path(path)
        self.max_bytes = max_bytes
        self.offset = 0
        self.skipped = 0
        self.skipped_lines: list[int] = []  # the first MAX_NAMED skipped lines, 1-based
        self.lines = 0  # complete lines read so far
        self.record_lines: list[int] = []  # the line of each record the last read_new returned
        self._partial = b""
        self._discarding = False  # inside a line longer than MAX_LINE_BYTES, skipping to its end

    def read_new(self) -> list[dict[str, Any]]:
        """The records completed since the last call (at most about max_bytes of them)."""
        try:
            check_regular(self.path, "run log")  # a FIFO here would block the reader forever
            with open(self.path, "rb") as handle:
                handle.seek(self.offset)
                chunk = handle.read(-1 if self.max_bytes is None else self.max_bytes)
        except FileNotFoundError:
            return []
        except FileLoadError:
            if not self.path.exists():
                return []
            raise
        self.offset += len(chunk)
        self.record_lines = []
        if self._discarding:
            end = chunk.find(b"\n")
            if end < 0:
                return []
            chunk, self._discarding = chunk[end + 1:], False
            self.lines += 1
        data = self._partial + chunk
        lines = data.split(b"\n")
        self._partial = lines.pop()  # empty when data ended with a newline
        if len(self._partial) > MAX_LINE_BYTES:
            # No record is this long: skip the rest of the line instead of holding (and
            # re-copying) megabytes of it, so a garbage log cannot stall a reader.
            self._partial, self._discarding = b"", True
            records = self._parse(lines)
            self.skip(self.lines + 1)
            return records
        return self._parse(lines)

    def skip(self, line: int) -> None:
        """Count line (1-based) as skipped: torn, not JSON, not an object, too long, or (said
        by the reader) of the wrong types."""
        self.skipped += 1
        if len(self.skipped_lines) < MAX_NAMED:
            self.skipped_lines.append(line)

    def skipped_note(self) -> str | None:
        """'metrics.jsonl: skipped 2 lines (9, 12) …', or None when every line was read."""
        if not self.skipped:
            return None
        named = ", ".join(map(str, sorted(self.skipped_lines))) + (", …" if self.skipped > len(self.skipped_lines) else "")
        return (f"{self.path.name}: skipped {self.skipped} line{'s' * (self.skipped != 1)} ({'line' if self.skipped == 1 else 'lines'} "
                f"{named}) that {'is' if self.skipped == 1 else 'are'} not a record gradviz can read (not a JSON object, "
                f"over {MAX_LINE_BYTES // 2**20} MB, or fields of the wrong types)")

    def at_end(self) -> bool:
        """Whether everything in the file so far has been read."""
        try:
            return self.offset >= self.path.stat().st_size
        except FileNotFoundError:
            return True

    def _parse(self, lines: list[bytes]) -> list[dict[str, Any]]:
        records = []
        for line in lines:
            self.lines += 1
            if not line.strip():
                continue
            if len(line) > MAX_LINE_BYTES:
                self.skip(self.lines)
                continue
            try:
                record = json.loads(line)
            except ValueError:
                self.skip(self.lines)
                continue
            if isinstance(record, dict):
                records.append(record)
                self.record_lines.append(self.lines)
            else:  # valid JSON but not a record: counted like a torn line, never dropped silently
                self.skip(self.lines)
        return records


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a JSONL file; a torn last line is skipped."""
    tailer = JsonlTailer(path, max_bytes=None)
    return tailer.read_new()
