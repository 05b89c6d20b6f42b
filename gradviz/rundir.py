"""The run directory: its layout, the append-only JSONL logs and their readers.

This module is the whole contract between the trainer and the monitor, so it imports
neither torch nor textual. Layout of ``runs/<name>/``::

    config.json     the resolved TrainConfig
    meta.json       what the trainer found: layers, dropout layers, sizes, device, world
    status.json     state (starting, running, paused, finished, stopped, failed), message
    metrics.jsonl   one JSON object per logged step, appended and flushed line by line
                    (its statistics named by STEP_STATS below)
    masks.jsonl     dropout-mask samples, one JSON object per logged step
    histograms.jsonl  per-layer gradient-value histograms (fixed log-spaced bins) at logged steps
    nan_step.pt, nan_trace.json  the first non-finite step's batch and parameters, and its traced origin
    last_finite.pt  the parameters before that step (final.pt of a run that went on holds NaN ones)
    control.json    commands from the monitor (pause, resume, stop), polled by the trainer
    heartbeat       the step and epoch the trainer has reached, rewritten in place every step
    error.txt       the traceback when the run failed
    worker.log      the worker's stdout and stderr
    final.pt        the last checkpoint; best.pt the one with the lowest validation loss
"""

from __future__ import annotations

import errno
import json
import mmap
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from gradviz.files.read import FileLoadError, check_regular, read_json_object

ACTIVE_STATES = ("starting", "running", "paused")
DONE_STATES = ("finished", "stopped", "failed")
COMMANDS = ("pause", "resume", "stop")
PID_FIELDS = ("pid", "launcher_pid")  # status.json: the trainer's process and the launcher's
MAX_LINE_BYTES = 4 * 2**20  # a metrics or mask record is a few kB; longer lines are garbage
MAX_NAMED = 10  # skipped lines named by number in the note


@dataclass(frozen=True)
class RunPaths:
    """Where each file of a run directory lives."""

    root: Path

    @property
    def config(self) -> Path:
        return self.root / "config.json"

    @property
    def meta(self) -> Path:
        return self.root / "meta.json"

    @property
    def status(self) -> Path:
        return self.root / "status.json"

    @property
    def metrics(self) -> Path:
        return self.root / "metrics.jsonl"

    @property
    def masks(self) -> Path:
        return self.root / "masks.jsonl"

    @property
    def histograms(self) -> Path:
        return self.root / "histograms.jsonl"

    @property
    def control(self) -> Path:
        return self.root / "control.json"

    @property
    def heartbeat(self) -> Path:
        return self.root / "heartbeat"

    @property
    def error(self) -> Path:
        return self.root / "error.txt"

    @property
    def worker_log(self) -> Path:
        return self.root / "worker.log"

    @property
    def final_checkpoint(self) -> Path:
        return self.root / "final.pt"

    @property
    def best_checkpoint(self) -> Path:
        return self.root / "best.pt"


@dataclass(frozen=True)
class Stat:
    """One statistic of a logged step: its key in a metrics record, one value or one per layer."""

    name: str
    per_layer: bool = False
    about: str = ""


# The fixed part of a logged step's statistics, in the order the device packs them. The
# trainer computes each by name (train/stats.py); the records and the monitor read them by
# name: a new per-layer metric is one entry here and its computation there.
STEP_STATS = (
    Stat("loss", about="the data loss of the step (mean over its micro-batches)"),
    Stat("penalty", about="the L2 penalty (λ·Σ‖θ‖² or λ·Σ‖θ‖₂, as --l2-form says), logged on its own (0 without --l2)"),
    Stat("grad_norm", per_layer=True, about="‖∇θ‖ per layer, after the all-reduce"),
    Stat("param_norm", per_layer=True, about="‖θ‖ per layer"),
    Stat("grad_norm_total", about="‖∇θ‖ over every trainable parameter"),
)


@dataclass(frozen=True)
class StatsLayout:
    """Names, sizes and offsets of the statistics in a step's flat vector, for `layers` layers."""

    layers: int
    stats: tuple[Stat, ...] = STEP_STATS

    def size(self, name: str) -> int:
        """How many numbers the statistic `name` takes: 1, or one per layer."""
        return self.layers if self._stat(name).per_layer else 1

    def offset(self, name: str) -> int:
        """Where the statistic `name` starts in the vector."""
        at = 0
        for stat in self.stats:
            if stat.name == name:
                return at
            at += self.size(stat.name)
        raise KeyError(name)

    @property
    def width(self) -> int:
        """Numbers in the fixed part (anything after it is the trainer's own)."""
        return sum(self.size(stat.name) for stat in self.stats)

    def unpack(self, values: list[float], layer_names: list[str]) -> dict[str, Any]:
        """The named values of a vector's host copy: a number, or {layer: number} per layer."""
        out: dict[str, Any] = {}
        for stat in self.stats:
            at = self.offset(stat.name)
            if stat.per_layer:
                out[stat.name] = dict(zip(layer_names, values[at:at + self.layers]))
            else:
                out[stat.name] = values[at]
        return out

    def _stat(self, name: str) -> Stat:
        for stat in self.stats:
            if stat.name == name:
                return stat
        raise KeyError(name)


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


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Every complete record of a JSONL file; a torn last line is skipped."""
    tailer = JsonlTailer(path, max_bytes=None)
    return tailer.read_new()


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


def _overwrite_in_place(path: Path, text: str) -> None:
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
        _overwrite_in_place(paths.status, json.dumps(status, allow_nan=True))


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


def named_process_alive(status: Mapping[str, Any]) -> bool | None:
    """Whether a process that status.json names still runs; None when it names none."""
    pids = [status.get(key) for key in PID_FIELDS]
    if not any(pids):
        return None
    return any(process_alive(status.get(key)) and status.get(key + "_start") in (None, process_start(status.get(key)))
               for key in PID_FIELDS)


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


def is_run_dir(path: Path) -> bool:
    """Whether a folder looks like a run directory (it has a config or a metrics log)."""
    paths = RunPaths(Path(path))
    return paths.config.exists() or paths.metrics.exists()
