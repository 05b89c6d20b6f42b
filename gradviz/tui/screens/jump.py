"""The `/` prompt: type part of a node's name, definition or module path; every match is
listed in graph order; enter jumps to the only match, or moves into the list to choose one."""

from __future__ import annotations

from rich.markup import escape
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, OptionList
from textual.widgets.option_list import Option

LISTED = 200  # matches listed at most (the list says how many more)


def find_nodes(graph, query: str) -> list[int]:
    """Every node matching `query`, in graph order: an exact label alone; else each node
    whose label, module path or definition holds every space-separated word of the query
    (case-insensitive): `blocks.3.attn` → each node inside that module, `attn soft` → its softmax."""
    query = query.strip()
    if not query:
        return []
    node = graph.find(query)
    if node is not None:
        return [node.id]
    words = query.lower().split()

    def haystack(n) -> str:
        return " ".join((n.label, n.meta.get("module") or "", n.definition)).lower()

    return [n.id for n in graph.nodes if all(word in haystack(n) for word in words)]


def find_node(graph, query: str) -> int | None:
    """The first node `find_nodes` finds, or None."""
    found = find_nodes(graph, query)
    return found[0] if found else None


class JumpScreen(ModalScreen[int | str | None]):
    """The prompt over a list of its matches; returns the chosen node's id, the text typed
    when nothing matches, or None on esc."""

    AUTO_FOCUS = "#jump-input"
    BINDINGS = [Binding("escape", "cancel", "Cancel"), Binding("down", "to_list", show=False)]
    DEFAULT_CSS = """
    JumpScreen { align: left bottom; background: transparent; }
    JumpScreen > Vertical { width: 90%; max-width: 110; height: auto; max-height: 80%; margin: 0 0 2 0; }
    JumpScreen OptionList { height: auto; max-height: 20; border: round $accent; display: none; }
    JumpScreen OptionList.-shown { display: block; }
    JumpScreen Input { border: round $accent; }
    """

    def __init__(self, graph) -> None:
        super().__init__()
        self.graph = graph
        self.matches: list[int] = []

    def compose(self) -> ComposeResult:
        with Vertical():
            yield OptionList(id="jump-matches")
            field = Input(placeholder="a node's name, definition or module path (v4, softmax, blocks.3.attn)",
                          id="jump-input")
            field.border_title = "/ jump: enter goes to the only match, or into the list"
            yield field

    def on_input_changed(self, event: Input.Changed) -> None:
        self.matches = find_nodes(self.graph, event.value)
        listing = self.query_one(OptionList)
        listing.clear_options()
        for node_id in self.matches[:LISTED]:
            node = self.graph.nodes[node_id]
            module = node.meta.get("module") or ""
            where = f"  [dim]in {escape(module)}[/dim]" if module and module != node.label else ""
            listing.add_option(Option(f"{escape(node.label)}{where}  [dim]{escape(node.definition)}[/dim]",
                                      id=str(node_id)))
        if len(self.matches) > LISTED:
            listing.add_option(Option(f"[dim]… {len(self.matches) - LISTED} more: type more of the name[/dim]",
                                      disabled=True))
        listing.set_class(len(self.matches) > 1, "-shown")
        listing.border_title = f"{len(self.matches)} matches" if len(self.matches) > 1 else ""

    def on_input_submitted(self, event: Input.Submitted) -> None:
        if len(self.matches) == 1:
            self.dismiss(self.matches[0])
        elif self.matches:
            self.action_to_list()
        else:
            self.dismiss(event.value)

    def action_to_list(self) -> None:
        """Move into the list of matches, the first one highlighted."""
        listing = self.query_one(OptionList)
        if self.matches:
            listing.focus()
            if listing.highlighted is None:
                listing.highlighted = 0

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        if event.option.id is not None:
            self.dismiss(int(event.option.id))

    def action_cancel(self) -> None:
        self.dismiss(None)
