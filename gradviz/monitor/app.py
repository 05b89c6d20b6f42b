"""MonitorApp: a thin app around MonitorScreen, and run_dashboard for the commands."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import App

from gradviz.monitor.screen import MonitorScreen

STOP_WAIT_SECONDS = 60.0


class MonitorApp(App[str]):
    """Shows one run's dashboard; exits with how the user left it."""

    TITLE = "gradviz monitor"

    def __init__(self, run_dir: Path | str, handle: Any = None, poll_seconds: float | None = None):
        super().__init__()
        self.run_dir = Path(run_dir)
        self.handle = handle
        self.poll_seconds = poll_seconds

    def on_mount(self) -> None:
        extra = {} if self.poll_seconds is None else {"poll_seconds": self.poll_seconds}
        self.monitor = MonitorScreen(self.run_dir, self.handle, **extra)
        self.push_screen(self.monitor, self.exit)

    @property
    def interrupted(self) -> bool:
        """Whether the user left with Ctrl-C (the command then exits 130)."""
        return bool(getattr(getattr(self, "monitor", None), "interrupted", False))


def run_dashboard(run_dir: Path | str, handle: Any = None) -> tuple[str, bool]:
    """Run the dashboard until the user leaves; returns the run's state afterwards and
    whether the user left with Ctrl-C.

    When the user chose to stop a trainer this process started, waits for it to save its
    checkpoint and exit; when they chose to keep it training, says how to come back.
    """
    from rich.console import Console

    from gradviz.monitor.plain import summary_line
    from gradviz.monitor.state import RunView

    app = MonitorApp(run_dir, handle)
    choice = app.run() or "left"
    console = Console()
    if choice == "stopped" and handle is not None:
        console.print("stopping the trainer (saving a checkpoint)…")
        handle.wait(timeout=STOP_WAIT_SECONDS)
    view = RunView(run_dir, handle)
    while view.poll():  # read to the end: the summary names the last step
        pass
    if choice == "detached":
        console.print(f"training goes on in the background; watch it with: gradviz monitor {view.paths.root}")
        return "detached", app.interrupted
    if view.state != "failed":  # a failure's message is printed by the command, once
        console.print(summary_line(view))
    return view.state, app.interrupted


def open_training(app: App, spec_path: str, on_leave: Any = None, **settings: Any) -> Any:
    """Start training a spec and push its dashboard onto a running app (the stepper's `t`).

    Leaving the dashboard pops it and returns to the app underneath; the user's choice
    ("stopped", "detached" or "left") goes to on_leave. Returns the TrainingHandle.
    """
    from gradviz.train.config import TrainConfig
    from gradviz.train.launch import default_run_dir, start_training

    run_dir = settings.pop("run_dir", None) or default_run_dir(spec_path)
    config = TrainConfig(spec=str(Path(spec_path).resolve()), run_dir=str(Path(run_dir).resolve()), **settings)
    handle = start_training(config)
    app.push_screen(MonitorScreen(handle.run_dir, handle), on_leave)
    return handle
