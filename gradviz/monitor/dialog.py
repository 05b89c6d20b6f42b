"""The question asked when leaving the monitor while training still runs."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Label


class LeaveDialog(ModalScreen[str]):
    """Stop the training, keep it running in the background, or stay.

    Keys: s stop · k keep training · escape stay · ctrl+c as on the dashboard. Dismissed with
    "stop", "detach", "interrupt" or None.
    """

    BINDINGS = [
        Binding("s", "choose('stop')", "stop training"),
        Binding("k,d", "choose('detach')", "keep training"),
        Binding("escape", "choose('')", "stay"),
        Binding("ctrl+c", "choose('interrupt')", show=False),  # the screen's Ctrl-C, not "stay"
    ]

    def compose(self) -> ComposeResult:
        with Vertical(id="leave-dialog"):
            yield Label("Training is still running. Stop it as you leave the monitor?")
            yield Label("(stopping saves a checkpoint; watch it later with gradviz monitor)")
            with Horizontal(id="leave-buttons"):
                yield Button("s: stop it", id="stop", variant="error")
                yield Button("k: keep training", id="detach", variant="primary")
                yield Button("esc: stay", id="stay")

    def on_button_pressed(self, event: Button.Pressed) -> None:
        self.dismiss({"stop": "stop", "detach": "detach"}.get(event.button.id or ""))

    def action_choose(self, choice: str) -> None:
        self.dismiss(choice or None)
