"""`gradviz monitor A B …`: several runs overlaid, a colour per run, and the settings that differ."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.reactive import reactive
from textual.widget import Widget

from gradviz.monitor.compare import SMOOTHING, differing_settings, loss_lines, run_labels, val_lines, x_range
from gradviz.monitor.x_axis import X_LABELS, next_axis
from gradviz.monitor.plain import fmt
from gradviz.monitor.plot import render_plot
from gradviz.monitor.state import RunView
from gradviz.tui.widgets.footer import WholeKeysFooter


class OverlayPanel(Widget):
    """The runs' training losses overlaid (validation as markers), with a legend."""

    version: reactive[int] = reactive(0)
    smoothing: reactive[float] = reactive(0.0)
    x_axis: reactive[str] = reactive("step")
    log_scale: reactive[bool] = reactive(False)

    def __init__(self, views: list[RunView], labels: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.views, self.labels = views, labels

    def render(self) -> RenderableType:
        lines = loss_lines(self.views, self.labels, self.smoothing, self.x_axis)
        lines += val_lines(self.views, self.labels, self.x_axis)
        head = Text()
        for line in lines:
            if line.markers:
                continue
            last = next((y for y in reversed(line.ys) if y == y), None)
            piece = Text("━ ", style=line.color).append(line.name).append(f" {fmt(last)}  ", style="bold")
            head.append_text(piece)
        axis = X_LABELS[self.x_axis]
        for note in (f"smoothing {self.smoothing:g} (m)", f" · x: {axis} (x)", " · loss = mean of each logging window"):
            if head.cell_len + len(note) <= self.size.width:  # whole notes only, never a cut one
                head.append(note, style="dim")
        head.truncate(max(1, self.size.width), overflow="ellipsis")
        head.no_wrap = True
        rows = render_plot(lines, self.size.width, max(2, self.size.height - 1), self.log_scale, x_range(lines),
                           empty="no records yet")
        return Group(head, *rows)


class SettingsPanel(Widget):
    """The settings that differ between the runs, one column per run, and how each ended."""

    version: reactive[int] = reactive(0)

    def __init__(self, views: list[RunView], labels: list[str], **kwargs: Any):
        super().__init__(**kwargs)
        self.views, self.labels = views, labels

    def render(self) -> RenderableType:
        from gradviz.monitor.compare import COLORS

        rows = differing_settings(self.views)
        table = Table(box=None, pad_edge=False, expand=False, header_style="bold")
        # the row labels keep their width (a value without its 'lr' says nothing); the runs'
        # columns wrap whole words when the runs' names or values are long
        names = max([len("setting"), len("ended"), *(len(key) for key, _ in rows)])
        table.add_column("setting", no_wrap=True, min_width=names)
        for k, label in enumerate(self.labels):
            table.add_column(Text(label, style=COLORS[k % len(COLORS)]), overflow="fold")
        for key, values in rows:
            table.add_row(key, *(fmt(v) for v in values))
        if not rows:
            table.add_row(Text("(all settings equal)", style="dim"), *("" for _ in self.labels))
        table.add_row("ended", *(v.ending() if v.done else v.state for v in self.views))
        return table


class CompareApp(App[None]):
    """Runs side by side: overlaid loss curves and the table of differing settings."""

    TITLE = "gradviz monitor (compare)"
    CSS = """
    OverlayPanel { height: 1fr; border: round $primary 50%; padding: 0 1; }
    SettingsPanel { height: auto; max-height: 45%; border: round $primary 50%; padding: 0 1; }
    """
    BINDINGS = [
        Binding("m", "smoothing", "smoothing"),
        Binding("x", "x_axis", "x: steps/epochs/samples/time"),
        Binding("l", "toggle_log", "log scale"),
        Binding("q", "quit", "quit"),
        Binding("ctrl+c", "quit", show=False),  # as in `gradviz monitor RUN`: leave, the runs go on
    ]

    def __init__(self, run_dirs: list[Path], poll_seconds: float = 0.5):
        super().__init__()
        self.views = [RunView(path) for path in run_dirs]
        self.labels = run_labels(self.views)
        self.poll_seconds = poll_seconds

    def compose(self) -> ComposeResult:
        yield OverlayPanel(self.views, self.labels, id="overlay")
        yield SettingsPanel(self.views, self.labels, id="settings")
        yield WholeKeysFooter()

    def on_mount(self) -> None:
        self.query_one("#overlay").border_title = "training loss, runs overlaid"
        self.query_one("#settings").border_title = "settings that differ"
        self.poll()
        self.set_interval(self.poll_seconds, self.poll)

    def poll(self) -> None:
        changed = False
        for view in self.views:
            while view.poll():  # replayed runs: read them to the end
                changed = True
        if changed:
            for panel in (self.query_one(OverlayPanel), self.query_one(SettingsPanel)):
                panel.version += 1

    def action_smoothing(self) -> None:
        panel = self.query_one(OverlayPanel)
        panel.smoothing = SMOOTHING[(SMOOTHING.index(panel.smoothing) + 1) % len(SMOOTHING)]

    def action_x_axis(self) -> None:
        panel = self.query_one(OverlayPanel)
        panel.x_axis = next_axis(panel.x_axis)

    def action_toggle_log(self) -> None:
        panel = self.query_one(OverlayPanel)
        panel.log_scale = not panel.log_scale
