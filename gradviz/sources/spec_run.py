"""Running a spec's code: bounded in time, and never exiting the process.

An import, ``build_model()``, ``make_data()`` or check forward that runs past the timeout
is stopped by SIGALRM (in the main thread) with a SpecError naming the phase;
``sys.exit``/``exit()``/``os._exit`` inside one is a SpecError naming the file. The spec
runs in this process, not a child: the model, its tensors and torch (1-2 s to import)
are needed here afterwards, so a child would double the cost of every trace.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator

from gradviz.errors import SpecError

DEFAULT_TIMEOUT = 60.0  # seconds a spec's import, build_model or make_data may take
HARD_EXIT_GRACE = 5.0  # after the timeout, how long C code that ignores the alarm is given
_limits = {"seconds": DEFAULT_TIMEOUT, "hard": False}
_user_code = {"ran": False}  # whether a spec's or script's own code has run in this process


def mark_user_code() -> None:
    """Note that user code (a spec, a script) runs in this process: it may leave threads behind."""
    _user_code["ran"] = True


def user_code_ran() -> bool:
    """True once a spec's or script's code has run here (the CLI then ends the process itself)."""
    return _user_code["ran"]


class _SpecTimeout(BaseException):
    """Raised by the alarm inside spec code; a BaseException so `except Exception` in the spec cannot swallow it."""


class _SpecFork(BaseException):
    """What os.fork raises while spec code runs (two processes would both print the trace)."""


class _SpecExit(BaseException):
    """What os._exit raises while spec code runs."""

    def __init__(self, code: Any):
        super().__init__(code)
        self.code = code


def set_spec_timeout(seconds: float | None, hard: bool = False) -> None:
    """Bound each phase of running spec code (None or 0: no bound). `hard` (the command
    line) also ends the process with exit 2 when C code ignores the alarm for HARD_EXIT_GRACE."""
    _limits["seconds"] = seconds if seconds and seconds > 0 else None
    _limits["hard"] = hard


@contextmanager
def running_spec(path: Path, phase: str) -> Iterator[None]:
    """Run spec code: sys.exit/os._exit become a SpecError naming the file, and a phase that
    runs past the timeout is stopped with one (in the main thread, by SIGALRM)."""
    mark_user_code()
    seconds = _limits["seconds"]
    timed = (seconds is not None and hasattr(signal, "setitimer")
             and threading.current_thread() is threading.main_thread())
    real_exit = os._exit

    def refuse_exit(code: Any = 0) -> None:
        raise _SpecExit(code)

    def refuse_fork() -> int:
        raise _SpecFork()

    live = {"on": False}  # the alarm raises only while spec code may be running

    def alarm(signum: int, frame: Any) -> None:
        # Outside the guarded body (setting up, converting an error, cleaning up) a late
        # alarm must not escape as a bare _SpecTimeout: there it does nothing.
        if live["on"]:
            raise _SpecTimeout()

    previous_handler = signal.signal(signal.SIGALRM, alarm) if timed else None
    previous_timer = None
    done = threading.Event()
    if timed and _limits["hard"]:
        message = _timeout_message(path, phase, seconds)
        threading.Thread(target=_hard_stop, args=(done, seconds + HARD_EXIT_GRACE, message, real_exit),
                         daemon=True).start()
    real_forks = {name: getattr(os, name) for name in ("fork", "forkpty") if hasattr(os, name)}
    streams = _Streams()
    os._exit = refuse_exit
    for name in real_forks:
        setattr(os, name, refuse_fork)
    try:
        try:
            live["on"] = True
            if timed:  # armed inside the try, so an alarm at once still becomes a SpecError below
                previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
            yield
        finally:
            live["on"] = False  # first: from here on the alarm is harmless
            if timed:
                signal.setitimer(signal.ITIMER_REAL, 0)
    except SystemExit as exc:
        raise SpecError(f"{path}: {phase} called sys.exit({exc.code!r}); {_kind(phase)} must not exit the process") from None
    except _SpecExit as exc:
        raise SpecError(f"{path}: {phase} called os._exit({exc.code!r}); {_kind(phase)} must not exit the process") from None
    except _SpecTimeout:
        raise SpecError(_timeout_message(path, phase, seconds)) from None
    except _SpecFork:
        raise SpecError(f"{path}: {phase} called os.fork(); gradviz runs this code in its own process "
                        "and cannot follow a fork") from None
    finally:
        done.set()
        os._exit = real_exit
        for name, fork in real_forks.items():
            setattr(os, name, fork)
        streams.restore()
        if timed:
            signal.signal(signal.SIGALRM, previous_handler)
            if previous_timer and previous_timer[0] > 0:
                signal.setitimer(signal.ITIMER_REAL, *previous_timer)


def _kind(phase: str) -> str:
    return "a script" if phase == "the script" else "a spec"


class _Streams:
    """sys.stdin/stdout/stderr and the working directory as they were before user code ran,
    put back after it: a script that closes sys.stdout or changes directory must not break
    what gradviz prints or reads next."""

    def __init__(self) -> None:
        self.saved = {name: getattr(sys, name) for name in ("stdin", "stdout", "stderr")}
        try:
            self.cwd: str | None = os.getcwd()
        except OSError:
            self.cwd = None

    def restore(self) -> None:
        for name, stream in self.saved.items():
            if stream is not None and getattr(stream, "closed", False):
                stream = _reopen(stream, name)
            setattr(sys, name, stream)
        if self.cwd is not None:
            try:
                os.chdir(self.cwd)
            except OSError:
                pass


def _reopen(stream: Any, name: str) -> Any:
    """A closed standard stream, opened again on its descriptor (still open: Python's
    standard streams do not close their descriptor)."""
    fd = {"stdin": 0, "stdout": 1, "stderr": 2}[name]
    try:
        return open(fd, "r" if name == "stdin" else "w", encoding=getattr(stream, "encoding", None) or "utf-8",
                    errors=getattr(stream, "errors", None) or "strict", closefd=False,
                    buffering=1 if name != "stdin" else -1)
    except (OSError, ValueError):
        return open(os.devnull, "r" if name == "stdin" else "w")


def _timeout_message(path: Path, phase: str, seconds: float) -> str:
    return f"{path}: {phase} ran longer than {seconds:g} s and was stopped (--spec-timeout SECONDS to allow more)"


def _hard_stop(done: threading.Event, after: float, message: str, exit_now: Callable[[int], None]) -> None:
    """The last resort when C code never returns to let the alarm act: one line, exit 2."""
    if not done.wait(after):
        try:
            sys.stderr.write(f"gradviz: error: {message}\n")
            sys.stderr.flush()
        finally:
            exit_now(2)
