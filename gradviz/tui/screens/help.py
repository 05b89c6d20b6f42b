"""The `?` help screen: every key (as a screen's bindings describe them), and how to read the panes."""

from __future__ import annotations

from rich.console import RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

LEGEND = """Mouse: click a node (graph or tape) to inspect it; drag or scroll the graph.
tab moves focus: graph, tape, inspector, findings."""

# How to read each pane: a table, so that a line wrapped on a narrow screen keeps its indent
READING = (
    ("graph:", "dim boxes are pending, the highlighted box is the node this step computes, "
               "red is non-finite.  '= ' is a value, '′ ' a tangent, '¯ ' an adjoint."),
    ("tape:", "the lecture's trace table; '·' is not computed yet."),
    ("inspector:", "the node's definition, inputs, local partials ∂vj/∂vi, its tangent "
                   "v′ = Σ ∂v/∂u·u′ and its adjoint v̄i = Σ over children v̄j·∂vj/∂vi, term by term "
                   "('?' while a child's adjoint is not final)."),
    ("status:", "forward mode needs one pass per input element, reverse mode one per output "
                "element; with millions of parameters and one loss, reverse mode wins."),
)


def reading_table() -> Table:
    """The panes and how to read them, two columns."""
    table = Table(show_header=False, box=None, pad_edge=False, title="How to read it", title_justify="left")
    table.add_column(no_wrap=True)
    table.add_column()
    for pane, how in READING:
        table.add_row("  " + pane, how)
    return table


class HelpScreen(ModalScreen[None]):
    """Keys and legend; any of esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]

    def __init__(self, keys: list[tuple[str, str]], title: str = "gradviz step",
                 notes: tuple[RenderableType, ...] | None = None) -> None:
        super().__init__()
        self.keys = keys  # (keys, what they do) rows, from the screen's bindings
        self.title = title
        # what follows the keys: the stepper's mouse legend and how to read its panes by default
        self.notes = (Text("\n" + LEGEND + "\n"), reading_table()) if notes is None else notes
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in self.keys:
            table.add_row(keys, what)
        with VerticalScroll() as scroll:
            scroll.border_title = f"{self.title}: keys (esc closes)"
            yield Static(table)
            for note in self.notes:
                yield Static(note)
