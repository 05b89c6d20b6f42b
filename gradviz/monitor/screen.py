"""MonitorScreen: the training dashboard, pushable onto any Textual app (the stepper's too)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen

from gradviz.monitor.dialog import LeaveDialog
from gradviz.monitor.state import RunView
from gradviz.monitor.widgets import HeatPanel, LayerPanel, LossPanel, MaskPanel, ProgressPanel, RunPanel, ScrubBar
from gradviz.rundir.control import write_control
from gradviz.rundir.status import ACTIVE_STATES
from gradviz.tui.widgets.footer import WholeKeysFooter

POLL_SECONDS = 0.5  # a full redraw costs ~30 ms of CPU; training shares the machine


class MonitorScreen(Screen[str]):
    """Live loss curves, per-layer gradient norms, dropout masks and progress of a run.

    Keys: space pause/resume · s stop · l log scale · [ ] (or ↑ ↓) choose layer ·
    ← → scrub one logged step (shift: a tenth of the run) · home/end first/live · q leave ·
    ctrl+c stop a trainer this process started and leave (a run only watched goes on).
    Dismissed with "stopped", "detached" or "left".
    """

    CSS_PATH = "monitor.tcss"
    # In the footer's order, which is its order of importance: at 80 columns the keys at its
    # end are left out whole, and `?` lists every key. A tooltip is a key's help text.
    BINDINGS = [
        Binding("space", "pause", "pause/resume", tooltip="pause / resume the training"),
        Binding("s", "stop", "stop", tooltip="stop the training (it saves a checkpoint)"),
        Binding("q", "leave", "quit", tooltip="leave (while training runs: stop it, or keep it training)"),
        Binding("question_mark", "help", "keys", key_display="?", tooltip="this list of keys"),
        Binding("l", "toggle_log", "log scale", tooltip="log scale on the plots"),
        Binding("x", "x_axis", "x axis", show=False,  # the loss panel's title names the axis and the key
                tooltip="the loss panel's x-axis: steps, epochs, samples seen, wall-clock seconds"),
        Binding("left_square_bracket,up", "layer(-1)", "layer", key_display="[ ↑", tooltip="choose the layer"),
        Binding("right_square_bracket,down", "layer(1)", "layer", show=False, key_display="] ↓",
                tooltip="choose the layer"),
        Binding("left", "scrub(-1)", "scrub", tooltip="scrub one logged step back / on"),
        Binding("right", "scrub(1)", "scrub", show=False, tooltip="scrub one logged step back / on"),
        Binding("shift+left", "scrub(-0.1)", show=False, key_display="shift+←", tooltip="scrub a tenth of the run back / on"),
        Binding("shift+right", "scrub(0.1)", show=False, key_display="shift+→", tooltip="scrub a tenth of the run back / on"),
        Binding("home", "scrub_to_start", show=False, tooltip="first logged step / latest (live)"),
        Binding("end", "follow", "latest", tooltip="first logged step / latest (live)"),
        Binding("d", "distribution", "distribution",
                tooltip="the chosen layer's gradient distribution over time, or its norm"),
        Binding("ctrl+c", "interrupt", "stop", show=False,
                tooltip="stop a trainer this command started, and leave (a run only watched goes on)"),
    ]

    cursor: reactive[int] = reactive(-1)
    following: reactive[bool] = reactive(True)
    selected: reactive[int] = reactive(0)
    log_scale: reactive[bool] = reactive(False)

    def __init__(self, run_dir: Path | str, handle: Any = None, poll_seconds: float = POLL_SECONDS):
        super().__init__()
        self.view = RunView(run_dir, handle)
        self.handle = handle  # a TrainingHandle when this process started the trainer
        self.poll_seconds = poll_seconds
        self._note_state: str | None = None  # the state when the progress note was set
        self._shown_state: str | None = None
        self.interrupted = False  # left with Ctrl-C

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        """A finished run shows no pause, stop or live hints (they would do nothing)."""
        if action in ("pause", "stop") and self.view.state not in ACTIVE_STATES:
            return False
        return True

    def action_help(self) -> None:
        """Every key of the dashboard (the footer shows only some at 80 columns)."""
        from gradviz.tui.keys import key_rows
        from gradviz.tui.screens.help import HelpScreen

        self.app.push_screen(HelpScreen(key_rows(self.BINDINGS), "gradviz monitor", notes=()))

    def compose(self) -> ComposeResult:
        yield ProgressPanel(self.view, id="progress")
        with Horizontal(id="top"):
            yield LossPanel(self.view, id="loss")
            yield HeatPanel(self.view, id="heat")
        with Horizontal(id="bottom"):
            yield LayerPanel(self.view, id="layer")
            yield MaskPanel(self.view, id="masks")
        yield ScrubBar(self.view, id="scrub")
        yield WholeKeysFooter()

    def on_mount(self) -> None:
        self.query_one("#loss").border_title = "loss over steps (x)"
        self.query_one("#heat").border_title = "gradient norm per layer"
        self.query_one("#layer").border_title = "chosen layer ([ ])"
        self.query_one("#masks").border_title = "dropout masks"
        self.poll()
        self.set_interval(self.poll_seconds, self.poll)

    def poll(self) -> None:
        """Read what the trainer wrote since the last tick and redraw if anything changed."""
        if not self.view.poll() and not self.view.done:
            return
        if self.following or self.cursor < 0:
            self.cursor = len(self.view.records) - 1
        self._sync_panels()
        for panel in self.query(RunPanel):
            panel.version += 1
        progress = self.query_one(ProgressPanel)
        # A note ("resume sent…") lasts until the state changes, and never outlives the run.
        if progress.note and (self.view.state != self._note_state or self.view.state not in ACTIVE_STATES):
            progress.note = ""
        if self.view.state != self._shown_state:  # the footer's pause/stop/live hints follow the state
            self._shown_state = self.view.state
            self.refresh_bindings()

    def watch_cursor(self) -> None:
        self._sync_panels()

    def watch_selected(self) -> None:
        self._sync_panels()

    def watch_log_scale(self) -> None:
        self._sync_panels()

    def watch_following(self) -> None:
        self._sync_panels()

    def _sync_panels(self) -> None:
        """Attributes down: hand the cursor and display settings to every panel."""
        for panel in self.query(RunPanel):
            panel.index = self.cursor
            panel.selected = self.selected
            panel.log_scale = self.log_scale
            panel.following = self.following

    def action_pause(self) -> None:
        """Pause a running trainer, or resume a paused one."""
        state = self.view.state
        if state not in ACTIVE_STATES:
            self.notify(f"the run is {state}: nothing to pause", severity="warning")
            return
        command = "resume" if state == "paused" else "pause"
        write_control(self.view.paths, command)
        self._note_state = state
        self.query_one(ProgressPanel).note = f"{command} sent…"

    def action_stop(self) -> None:
        """Ask the trainer to stop cleanly (it saves a checkpoint)."""
        if self.view.state not in ACTIVE_STATES:
            self.notify(f"the run is {self.view.state} already", severity="warning")
            return
        write_control(self.view.paths, "stop")
        self._note_state = self.view.state
        self.query_one(ProgressPanel).note = "stop sent: saving a checkpoint…"

    def action_distribution(self) -> None:
        """Switch the chosen-layer panel between its norm curve and its gradient histograms."""
        panel = self.query_one(LayerPanel)
        panel.distribution = not panel.distribution
        self.query_one("#layer").border_title = "chosen layer: ∇ distribution ([ ] d)" if panel.distribution \
            else "chosen layer ([ ])"

    def action_toggle_log(self) -> None:
        self.log_scale = not self.log_scale

    def action_x_axis(self) -> None:
        """The loss over steps → epochs → samples seen → wall-clock seconds → steps."""
        from gradviz.monitor.x_axis import X_LABELS, next_axis

        panel = self.query_one(LossPanel)
        panel.x_axis = next_axis(panel.x_axis)
        self.query_one("#loss").border_title = f"loss over {X_LABELS[panel.x_axis]} (x)"

    def action_layer(self, delta: int) -> None:
        layers = self.view.layers
        if layers:
            self.selected = (self.selected + delta) % len(layers)

    def action_scrub(self, delta: float) -> None:
        """Move the cursor by logged steps (an int) or by a fraction of the run (a float)."""
        n = len(self.view.records)
        if n == 0:
            return
        step = int(delta) if isinstance(delta, int) else int(round(delta * n)) or (1 if delta > 0 else -1)
        target = min(n - 1, max(0, self.cursor + step))
        self.following = target == n - 1 and self.view.state in ACTIVE_STATES
        self.cursor = target

    def action_scrub_to_start(self) -> None:
        if self.view.records:
            self.following = False
            self.cursor = 0

    def action_follow(self) -> None:
        self.following = self.view.state in ACTIVE_STATES  # a finished run is never "live"
        self.cursor = len(self.view.records) - 1

    def action_leave(self) -> None:
        """Leave; while training runs, ask whether it should stop or go on."""
        if self.view.state not in ACTIVE_STATES:
            self.dismiss("left")
            return

        def chosen(choice: str | None) -> None:
            if choice == "interrupt":
                self.action_interrupt()
            elif choice == "stop":
                write_control(self.view.paths, "stop")
                self.dismiss("stopped")
            elif choice == "detach":
                if self.view.state == "paused":  # "keep training" means training, not staying paused
                    write_control(self.view.paths, "resume")
                self.dismiss("detached")

        self.app.push_screen(LeaveDialog(), chosen)

    def action_interrupt(self) -> None:
        """Ctrl-C: as in a terminal, it ends what this command started. A trainer this process
        started stops cleanly (saving a checkpoint) and the dashboard closes; a run only
        watched (`gradviz monitor`) goes on training, and the dashboard closes."""
        self.interrupted = True  # the command exits 130, as after Ctrl-C with --no-tui
        if self.view.state not in ACTIVE_STATES:
            self.dismiss("left")
        elif self.handle is None:
            self.dismiss("detached")
        else:
            write_control(self.view.paths, "stop")
            self.dismiss("stopped")
