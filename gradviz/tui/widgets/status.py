"""The status bar: phase, pass, step, node, and the passes each mode needs."""

from __future__ import annotations

from textual.widgets import Static

from gradviz.tui.scene import Scene
from gradviz.tui.status_line import status_text


class StatusBar(Static):
    """Shows `status_text` for the current scene."""

    DEFAULT_CSS = """
    StatusBar { height: 2; background: $panel; }
    """

    def show(self, scene: Scene, playing: bool, speed: float, compact: bool = False) -> None:
        """Redraw for a new step or play state (its height is fixed: no relayout)."""
        self.update(status_text(scene, playing, speed, compact), layout=False)
