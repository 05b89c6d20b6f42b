"""The inspector: the selected (or current) node explained at this step."""

from __future__ import annotations

from rich.console import RenderableType
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from gradviz.tui.inspector_text import inspector_report
from gradviz.tui.scene import Scene

INTRO = """Step 0: only the inputs are known.

Keys
  → or n    next step
  ← or p    previous step (exact: step k always looks the same)
  space     play / pause
  m         next mode: values → tangents → adjoints
  w / o     another input's tangents / output's adjoints
  /         jump to a node by name
  ?         every key, and how to read the panes

The steps follow the lecture: first every value (forward), then one tangent pass per \
input (forward mode), then one adjoint pass per output (reverse mode)."""


class Inspector(VerticalScroll, can_focus=True):
    """Definition, inputs, partials, tangent and adjoint of one node, term by term."""

    DEFAULT_CSS = """
    Inspector > Static { width: 100%; }
    """

    report: RenderableType = ""

    def compose(self):
        yield Static(id="inspector-body")

    def show(self, scene: Scene, node: int | None, pinned: bool) -> None:
        """Explain `node` at the scene's step (the intro when there is none)."""
        self.report = Text(INTRO) if node is None else inspector_report(scene, node, pinned)
        self.query_one("#inspector-body", Static).update(self.report)
