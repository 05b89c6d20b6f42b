"""`gradviz step` in a real terminal: tmux runs it, sends keys, and we read the screen back."""

from __future__ import annotations

import shlex
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from tui_support import AT, LECTURE

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None,
                                reason="tmux is not installed: the real-terminal test needs it")
REPO = Path(__file__).resolve().parent.parent


class Tmux:
    """One private tmux server (its socket in a test's tmp_path) running one command."""

    def __init__(self, socket: Path, command: str, width: int, height: int):
        self.socket = str(socket)
        self.tmux("new-session", "-d", "-s", "step", "-x", str(width), "-y", str(height), command)

    def tmux(self, *args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["tmux", "-S", self.socket, *args], capture_output=True, text=True, timeout=20)

    def screen(self) -> str:
        return self.tmux("capture-pane", "-p", "-t", "step").stdout

    def keys(self, *keys: str) -> None:
        for key in keys:
            self.tmux("send-keys", "-t", "step", key)
            time.sleep(0.05)

    def wait_for(self, text: str, timeout: float = 20.0) -> str:
        deadline = time.monotonic() + timeout
        screen = ""
        while time.monotonic() < deadline:
            screen = self.screen()
            if text in screen:
                return screen
            time.sleep(0.1)
        raise AssertionError(f"{text!r} did not appear; the screen was:\n{screen}")

    def running(self) -> bool:
        return self.tmux("has-session", "-t", "step").returncode == 0

    def close(self) -> None:
        self.tmux("kill-server")


def step_command(*args: str) -> str:
    argv = [sys.executable, "-m", "gradviz", "step", *args]
    return f"cd {shlex.quote(str(REPO))} && PYTHONPATH={shlex.quote(str(REPO))} TERM=xterm-256color " + \
        " ".join(shlex.quote(a) for a in argv)


@pytest.mark.parametrize("width, height", [(120, 40), (80, 24)])
def test_step_in_a_real_terminal(tmp_path, width, height):
    term = Tmux(tmp_path / "tmux.sock", step_command(LECTURE, "--at", AT), width, height)
    try:
        first = term.wait_for("START")
        assert "step 0/30" in first
        # the graph has been laid out, in a form that fits whole with values (tmux may keep 80×24)
        screen = term.wait_for("(+/- detail, f fit)")
        assert any(f"nodes · {form} " in screen for form in ("full", "compact", "line+", "line")), screen
        assert "0.5000" in screen and "1.0000" in screen  # x1 and x2 with their values
        term.keys("n", "n", "n")
        screen = term.wait_for("step 3/30")
        assert "node v3" in screen and "2.1487" in screen
        term.keys("/", "v", "4", "Enter")
        screen = term.wait_for("step 4/30")
        assert "node v4" in screen
        term.keys("m", "n", "n", "n")
        screen = term.wait_for("step 10/30")
        assert "FORWARD MODE" in screen and "pass 1 of 2" in screen
        term.keys("Left")
        term.wait_for("step 9/30")
        term.keys("q")
        deadline = time.monotonic() + 10
        while term.running() and time.monotonic() < deadline:
            time.sleep(0.1)
        assert not term.running(), "q did not quit"
    finally:
        term.close()


def test_a_bad_expression_fails_with_one_line_in_a_real_terminal(tmp_path):
    term = Tmux(tmp_path / "tmux.sock", step_command("exp(x1", "--at", "x1=1") + "; echo EXIT=$?; sleep 5", 100, 10)
    try:
        screen = term.wait_for("EXIT=")
        assert "EXIT=2" in screen and "gradviz: error:" in screen and "Traceback" not in screen
    finally:
        term.close()
