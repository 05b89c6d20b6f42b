"""`gradviz descent` on a terminal: the map with the paths growing step by step.

Keys: → n / ← p step; home g / end G first / last; space play; c choose the path the
panel follows; s open the stepper on f's graph at that path's θ (q there comes back);
e write an SVG of the map; q quit.
"""

from __future__ import annotations

import numpy as np
from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer
from textual.widget import Widget
from textual.widgets import Static

from gradviz.descent.draw import run_map, run_surface
from gradviz.descent.runs import DescentRun, path_label
from gradviz.descent.table import is_plain_descent
from gradviz.descent.surface import Surface
from gradviz.tui.screens.stepper import StepperScreen
from gradviz.tui.widgets.footer import WholeKeysFooter


def _num(x: float) -> str:
    return f"{x:.5g}"


def step_text(run: DescentRun, index: int, k: int) -> Text:
    """The panel: path `index` at step k: θ, f(θ), ∇f and the step taken (η∇f for GD, Δθ otherwise)."""
    path = run.paths[index]
    several = len({tuple(p.start) for p in run.paths}) > 1
    x, y = run.objective.names
    step = path.steps[min(k, len(path.steps) - 1)]
    out = Text()
    out.append(f"{path_label(path, several)}\n", style="bold")
    done = k >= path.end_step
    out.append(f"{path.verdict if done else f'step {step.k} of {path.end_step}'}\n\n",
               style="red" if path.status == "diverged" and done else "")
    out.append(f"θ{step.k}  = ({_num(step.theta[0])}, {_num(step.theta[1])})\n")
    out.append(f"f(θ) = {_num(step.value)}\n")
    out.append(f"∇f   = ({_num(step.grad[0])}, {_num(step.grad[1])})\n")
    if is_plain_descent(path.optimizer):  # gd or sgd: its step is −η∇f
        eta = path.lr * step.grad
        out.append(f"η∇f  = ({_num(eta[0])}, {_num(eta[1])})\n")
    else:  # momentum and Adam do not step by η∇f: show only the step they take
        out.append(f"Δθ   = ({_num(step.update[0])}, {_num(step.update[1])})\n")
        out.append(f"(the step {path.optimizer} takes)\n", style="dim")
    out.append(f"\n∂f/∂{x}, ∂f/∂{y}: gradviz's reverse pass\n(s opens the stepper at θ)\n", style="dim")
    out.append("\npaths\n", style="bold")
    for i, p in enumerate(run.paths):
        marker = "▸ " if i == index else "  "
        state = p.verdict if k >= p.end_step else "moving"
        out.append(f"{marker}{path_label(p, several)}: {state}\n", style="bold" if i == index else "")
    return out


class DescentMap(Widget):
    """The map of f with the paths cut at step k; the surface is cached per size."""

    def __init__(self, run: DescentRun, cells: str, **kwargs) -> None:
        super().__init__(**kwargs)
        self.run, self.cells, self.k = run, cells, 0
        self._surface: tuple[tuple[int, int], Surface] | None = None

    def show(self, k: int) -> None:
        """Draw the paths up to step k."""
        self.k = k
        self.refresh()

    def render(self) -> Text:
        width, height = self.size.width, self.size.height
        if width < 20 or height < 8:
            return Text("(too small for the map)")
        cols, rows = max(10, width - 10), max(4, height - 4 - len(self.run.paths))
        key = (cols, rows)
        if self._surface is None or self._surface[0] != key:
            self._surface = (key, run_surface(self.run, cols, rows * 2 if self.cells == "half" else rows))
        return run_map(self.run, width, height, self.cells, self.k, self._surface[1])


class BackToDescent(StepperScreen):
    """The stepper on f's graph at θ; q returns to the descent map."""

    # the stepper's keys (its Keys list and help read them from BINDINGS), q going back
    BINDINGS = [b for b in StepperScreen.BINDINGS if b.key != "q"] + [
        Binding("q", "app.pop_screen", "Back", tooltip="back to the descent map")]


class DescentScreen(Screen):
    """The map and the step panel."""

    BINDINGS = [
        Binding("right", "step(1)", "Next", show=False, priority=True),
        Binding("left", "step(-1)", "Prev", show=False, priority=True),
        Binding("home", "goto('first')", "First", show=False, priority=True),
        Binding("end", "goto('last')", "Last", show=False, priority=True),
        Binding("p", "step(-1)", "Prev", key_display="← p"),
        Binding("n", "step(1)", "Next", key_display="→ n"),
        Binding("g", "goto('first')", "First", show=False),
        Binding("G", "goto('last')", "Last", show=False),
        Binding("space", "play", "Play"),
        Binding("c", "cycle", "Path"),
        Binding("s", "stepper", "Stepper"),
        Binding("e", "export", "SVG"),
        Binding("q", "app.quit", "Quit"),
    ]
    DEFAULT_CSS = """
    DescentScreen #descent-main { height: 1fr; }
    DescentScreen #descent-map { width: 1fr; }
    DescentScreen #descent-info { width: 32; height: 100%; border-left: solid $primary 60%; padding: 0 1; }
    """

    k: reactive[int] = reactive(0, init=False)
    index: reactive[int] = reactive(0, init=False)

    def __init__(self, run: DescentRun, cells: str = "half", svg_path: str = "descent.svg") -> None:
        super().__init__()
        self.run, self.cells, self.svg_path = run, cells, svg_path
        self.last = max(p.end_step for p in run.paths)
        self._timer: Timer | None = None

    def compose(self) -> ComposeResult:
        with Horizontal(id="descent-main"):
            yield DescentMap(self.run, self.cells, id="descent-map")
            yield Static(id="descent-info")
        yield WholeKeysFooter()

    def on_mount(self) -> None:
        self.redraw()

    def redraw(self) -> None:
        """Show step k on the map and in the panel."""
        self.query_one(DescentMap).show(self.k)
        self.query_one("#descent-info", Static).update(step_text(self.run, self.index, self.k))

    def watch_k(self) -> None:
        self.redraw()

    def watch_index(self) -> None:
        self.redraw()

    def action_step(self, delta: int) -> None:
        """One step forward or back."""
        self.k = max(0, min(self.last, self.k + delta))

    def action_goto(self, where: str) -> None:
        """First or last step."""
        self.k = 0 if where == "first" else self.last

    def action_cycle(self) -> None:
        """The panel follows the next path."""
        self.index = (self.index + 1) % len(self.run.paths)

    def action_play(self) -> None:
        """Play or pause: a step every 0.15 s until the last."""
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
            return
        self._timer = self.set_interval(0.15, self._tick)

    def _tick(self) -> None:
        if self.k >= self.last and self._timer is not None:
            self._timer.stop()
            self._timer = None
            return
        self.k += 1

    def action_stepper(self) -> None:
        """Open the stepper on f's graph at the followed path's θ_k."""
        from gradviz.tui.app import stepper_steps
        from gradviz.tui.timeline import Timeline

        path = self.run.paths[self.index]
        theta = path.steps[min(self.k, len(path.steps) - 1)].theta
        if not np.all(np.isfinite(theta)):
            self.notify("θ is not finite here: nothing to step through", severity="warning")
            return
        trace = self.run.objective.trace_at(theta)
        names = self.run.objective.names
        source = f"{self.run.objective.text} at {names[0]}={theta[0]:.6g}, {names[1]}={theta[1]:.6g}"
        self.app.push_screen(BackToDescent(Timeline(trace, stepper_steps(trace)), source=source))

    def action_export(self) -> None:
        """Write the whole run as SVG and say where."""
        from gradviz.descent.draw import run_svg
        from gradviz.descent.svg import write_svg
        from gradviz.errors import GradvizError

        try:
            path = write_svg(run_svg(self.run), self.svg_path)
        except GradvizError as exc:
            self.notify(exc.message, severity="error")
            return
        self.notify(f"wrote {path}")


class DescentApp(App):
    """`gradviz descent`: a thin app around DescentScreen (stepper.tcss for the stepper it opens)."""

    CSS_PATH = "stepper.tcss"
    TITLE = "gradviz descent"
    HORIZONTAL_BREAKPOINTS = [(0, "-narrow"), (100, "-wide")]
    ENABLE_COMMAND_PALETTE = False

    def __init__(self, run: DescentRun, cells: str = "half", start: int = 0) -> None:
        super().__init__()
        self.run_ = run
        self.cells = cells
        self.start = start

    def get_default_screen(self) -> DescentScreen:
        screen = DescentScreen(self.run_, self.cells)
        screen.set_reactive(DescentScreen.k, max(0, min(self.start, screen.last)))
        return screen
