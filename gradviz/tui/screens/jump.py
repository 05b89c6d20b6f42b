"""The `/` prompt: type a node's name, enter jumps there (with completion from the labels)."""

from __future__ import annotations

from textual.app import ComposeResult
from textual.binding import Binding
from textual.screen import ModalScreen
from textual.suggester import SuggestFromList
from textual.widgets import Input


def find_node(graph, query: str) -> int | None:
    """A node by exact label, else by case-insensitive prefix, else by substring of label or definition."""
    query = query.strip()
    if not query:
        return None
    node = graph.find(query)
    if node is not None:
        return node.id
    lowered = query.lower()
    for test in (lambda n: n.label.lower().startswith(lowered),
                 lambda n: lowered in n.label.lower(),
                 lambda n: lowered in n.definition.lower()):
        for n in graph.nodes:
            if test(n):
                return n.id
    return None


class JumpScreen(ModalScreen[str | None]):
    """A one-line prompt at the bottom; returns the text typed, or None on esc."""

    BINDINGS = [Binding("escape", "cancel", "Cancel")]
    DEFAULT_CSS = """
    JumpScreen { align: left bottom; background: transparent; }
    JumpScreen > Input { width: 60; margin: 0 0 2 0; border: round $accent; }
    """

    def __init__(self, labels: list[str]) -> None:
        super().__init__()
        self.labels = labels

    def compose(self) -> ComposeResult:
        field = Input(placeholder="jump to node (e.g. v4) and press enter",
                      suggester=SuggestFromList(self.labels, case_sensitive=False), id="jump-input")
        field.border_title = "/ jump"
        yield field

    def on_input_submitted(self, event: Input.Submitted) -> None:
        self.dismiss(event.value)

    def action_cancel(self) -> None:
        self.dismiss(None)
