"""The `b` screen: backprop by layers for the stepper's trace, the lecture's matrix form."""

from __future__ import annotations

from rich.console import RenderableType
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import VerticalScroll
from textual.screen import ModalScreen
from textual.widget import Widget

from gradviz.core.layers import Backprop
from gradviz.core.trace import Trace
from gradviz.views.layers import layers_report


class LayersText(Widget):
    """The layers view, laid out for the widget's own width (matrices that fit stay numbers)."""

    DEFAULT_CSS = "LayersText { height: auto; }"

    def __init__(self, trace: Trace, backprop: Backprop) -> None:
        super().__init__()
        self.trace = trace
        self.backprop = backprop

    def render(self) -> RenderableType:
        return layers_report(self.trace, self.backprop, max(40, self.content_region.width or 100))


class LayersScreen(ModalScreen[None]):
    """δ_k, ∂L/∂W_k, ∂L/∂b_k per layer, each checked against the adjoints; esc, q or b closes."""

    BINDINGS = [Binding("escape,q,b", "dismiss", "Close")]
    DEFAULT_CSS = """
    LayersScreen { align: center middle; }
    LayersScreen > VerticalScroll { width: 96%; height: 94%; border: round $accent; background: $surface;
                                    padding: 0 1; }
    """

    def __init__(self, trace: Trace, backprop: Backprop) -> None:
        super().__init__()
        self.trace = trace
        self.backprop = backprop

    def compose(self) -> ComposeResult:
        with VerticalScroll() as scroll:
            scroll.border_title = "backprop by layers (↑ ↓ scroll, esc closes)"
            yield LayersText(self.trace, self.backprop)
