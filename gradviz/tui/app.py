"""The stepper app: thin; it holds the trace and shows the stepper screen.

Training (`t`) pushes the monitor screen on top; leaving it pops back to the stepper.
"""

from __future__ import annotations

import gc

from textual.app import App
from textual.binding import Binding

from gradviz.core.steps import stepper_steps
from gradviz.core.trace import Trace
from gradviz.draw.fold import FoldChoice
from gradviz.tui.screens.stepper import StepperScreen
from gradviz.tui.timeline import Timeline
from gradviz.tui.widgets.findings import load_findings


class StepperApp(App):
    """`gradviz step`: walk a trace node by node."""

    CSS_PATH = "stepper.tcss"
    TITLE = "gradviz step"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    ENABLE_COMMAND_PALETTE = False  # its footer hint would crowd out the stepper's keys
    BINDINGS = [Binding("ctrl+c", "quit", show=False)]  # as q (textual's default only hints at ctrl+q)

    def __init__(self, trace: Trace, *, source: str = "", spec_path: str | None = None,
                 wrt: str | None = None, start: int = 0, detail: str = "fit",
                 choice: FoldChoice | None = None) -> None:
        super().__init__()
        self.trace = trace
        self.timeline = Timeline(trace, stepper_steps(trace, wrt))
        self.source = source
        self.spec_path = spec_path
        self.start = start
        self.detail = detail
        self.choice = choice
        self.sub_title = source
        self._frozen = False

    def on_graph_pane_drawn(self) -> None:
        """After the first picture is on screen: collect once, then freeze what exists.

        A model's trace (and torch) leave hundreds of thousands of objects that live as long
        as the app; each full collection walked them all, about 100 ms on a GPT-2-sized
        trace, in the middle of every ~12th step. Frozen, the collector leaves them alone
        until the app ends (gc.unfreeze), so a step's repaint is not stalled by it."""
        if not self._frozen:
            self._frozen = True
            self.call_after_refresh(self._freeze)

    def _freeze(self) -> None:
        gc.collect()  # garbage from tracing is freed first, not kept by the freeze
        gc.freeze()

    def on_unmount(self) -> None:
        if self._frozen:
            gc.unfreeze()

    def get_default_screen(self) -> StepperScreen:
        return StepperScreen(self.timeline, source=self.source, spec_path=self.spec_path,
                             findings=lambda: load_findings(self.trace), start=self.start, detail=self.detail,
                             choice=self.choice)
