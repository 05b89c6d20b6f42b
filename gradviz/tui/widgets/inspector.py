"""The inspector: the selected (or current) node explained at this step."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from gradviz.tui.inspector_text import INTRO, inspector_report
from gradviz.tui.scene import Scene


class Inspector(VerticalScroll, can_focus=True):
    """Definition, inputs, partials, tangent and adjoint of one node, term by term."""

    DEFAULT_CSS = """
    Inspector > Static { width: 100%; }
    """

    report: RenderableType = ""

    def __init__(self, *, keys: str = "", id: str | None = None) -> None:
        super().__init__(id=id)
        self.intro = INTRO.format(keys=keys)  # keys: the footer's keys explained, from the screen
    def compose(self):
        yield Static(id="inspector-body")

    def show(self, scene: Scene, node: int | None, pinned: bool) -> None:
        """Explain `node` at the scene's step (the intro when there is none)."""
        self.report = Text(self.intro) if node is None else inspector_report(scene, node, pinned)
        self.query_one("#inspector-body", Static).update(self.report)
