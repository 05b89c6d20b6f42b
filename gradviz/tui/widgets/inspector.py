"""The inspector: the selected (or current) node explained at this step."""

from __future__ import annotations

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from gradviz.tui.inspector_text import INTRO, inspector_report
from gradviz.tui.scene import Scene


def intro(keys: list[tuple[str, str]]) -> Group:
    """The intro with its keys as a table: a description wrapped on a narrow pane keeps its
    indent under the descriptions (as plain text it ran back to the pane's left edge)."""
    head, tail = INTRO.split("{keys}")
    table = Table(show_header=False, box=None, pad_edge=False, padding=(0, 2, 0, 0))
    table.add_column(no_wrap=True)
    table.add_column()
    for key, what in keys:
        table.add_row("  " + key, what)
    return Group(Text(head.rstrip("\n")), table, Text("\n" + tail.lstrip("\n")))


class Inspector(VerticalScroll, can_focus=True):
    """Definition, inputs, partials, tangent and adjoint of one node, term by term."""

    DEFAULT_CSS = """
    Inspector > Static { width: 100%; }
    """

    report: RenderableType = ""

    def __init__(self, *, keys: list[tuple[str, str]] = (), id: str | None = None) -> None:
        super().__init__(id=id)
        self.intro = intro(keys)  # keys: the footer's keys explained, from the screen
    def compose(self):
        yield Static(id="inspector-body")

    def show(self, scene: Scene, node: int | None, pinned: bool) -> None:
        """Explain `node` at the scene's step (the intro when there is none)."""
        self.report = self.intro if node is None else inspector_report(scene, node, pinned)
        self.query_one("#inspector-body", Static).update(self.report)
