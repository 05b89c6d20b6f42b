"""The `?` help screen: every key, and how to read the panes."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

KEYS = (
    ("→ n / ← p", "next / previous step (stepping back is exact)"),
    ("home g / end G", "first / last step"),
    ("space", "play / pause;  [ ] slower / faster"),
    ("m / M", "next / previous mode: forward values → tangents → adjoints"),
    ("w", "next input: the tangent pass of another input (forward mode)"),
    ("o", "next output: the adjoint pass of another output (reverse mode)"),
    ("/", "jump to a node by name (v4, f, fc1…)"),
    ("!", "jump to the first non-finite value or adjoint"),
    ("click, esc", "select a node (graph or tape); esc follows the current node again"),
    ("+ / - / f", "more / less detail in the graph; fit the graph to the pane"),
    ("h j k l, shift+arrows", "pan the graph (or drag it with the mouse)"),
    ("tab", "move focus: graph, tape, inspector, findings"),
    ("v", "narrow terminals (under 100 columns): show the tape instead of the graph, and back"),
    ("e", "export the graph at this step to SVG"),
    ("b", "backprop by layers: δ_k, ∂L/∂W_k, ∂L/∂b_k in the lecture's matrix form, checked"),
    ("t", "train this model in the live monitor (model specs)"),
    ("?", "this help;  q quits"),
)

LEGEND = """How to read it
  graph: dim boxes are pending, the highlighted box is the node this step computes,
         red is non-finite.  '= ' is a value, '′ ' a tangent, '¯ ' an adjoint.
  tape:  the lecture's trace table; '·' is not computed yet.
  inspector: the node's definition, inputs, local partials ∂vj/∂vi, its tangent
         v′ = Σ ∂v/∂u·u′ and its adjoint v̄i = Σ over children v̄j·∂vj/∂vi, term by term
         ('?' while a child's adjoint is not final).
  status: forward mode needs one pass per input element, reverse mode one per output
         element; with millions of parameters and one loss, reverse mode wins."""


class HelpScreen(ModalScreen[None]):
    """Keys and legend; any of esc, q or ? closes it."""

    BINDINGS = [Binding("escape,q,question_mark", "dismiss", "Close")]
    DEFAULT_CSS = """
    HelpScreen { align: center middle; }
    HelpScreen > VerticalScroll { width: 90%; max-width: 100; height: 90%; border: round $accent;
                                  background: $surface; padding: 0 1; }
    """

    def compose(self) -> ComposeResult:
        table = Table(show_header=False, box=None, pad_edge=False)
        table.add_column(style="bold cyan", no_wrap=True)
        table.add_column()
        for keys, what in KEYS:
            table.add_row(keys, what)
        with VerticalScroll() as scroll:
            scroll.border_title = "gradviz step: keys (esc closes)"
            yield Static(table)
            yield Static(Text("\n" + LEGEND))
