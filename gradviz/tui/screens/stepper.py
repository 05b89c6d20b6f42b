"""The stepper screen: graph, tape, inspector and status, all drawn from the step k.

State lives in reactives (k, selected, playing, speed); every pane is redrawn
from Scene(timeline, k), never from accumulated changes, so stepping back is exact.

BINDINGS is the one list of keys: each binding's tooltip is its help text, from which
the help screen, the inspector's intro and the screen's docstring are written
(gradviz.tui.keys), and a test checks the README's key table against it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.reactive import reactive
from textual.screen import Screen
from textual.timer import Timer

from gradviz.draw.fold import MODULE, FoldChoice
from gradviz.tui import actions
from gradviz.tui.keys import key_rows, key_table
from gradviz.tui.scene import Scene, first_bad_step
from gradviz.tui.screens.help import HelpScreen
from gradviz.tui.screens.jump import JumpScreen, find_node
from gradviz.tui.timeline import Timeline
from gradviz.tui.widgets.findings import FindingsList
from gradviz.tui.widgets.footer import WholeKeysFooter
from gradviz.tui.widgets.graph_pane import GraphPane
from gradviz.tui.widgets.inspector import Inspector
from gradviz.tui.widgets.status import StatusBar
from gradviz.tui.widgets.tape import Tape

SPEEDS = (0.5, 1, 2, 4, 8, 16, 32, 64)


class StepperScreen(Screen):
    """Step through a trace: forward values, tangent passes, adjoint passes."""

    BINDINGS = [
        # Arrows and home/end take priority over the panes' scrolling; the footer shows the
        # letter keys (the footer orders priority bindings differently from run to run).
        # The tooltip is a key's help text; the arrows and home/end are documented through
        # their letter twins' key_display.
        Binding("right", "step(1)", "Next", show=False, priority=True),
        Binding("left", "step(-1)", "Prev", show=False, priority=True),
        Binding("home", "goto('first')", "First", show=False, priority=True),
        Binding("end", "goto('last')", "Last", show=False, priority=True),
        Binding("p", "step(-1)", "Prev", key_display="← p", tooltip="previous / next step (stepping back is exact)"),
        Binding("n", "step(1)", "Next", key_display="→ n", tooltip="previous / next step (stepping back is exact)"),
        Binding("g", "goto('first')", "First", show=False, key_display="home g", tooltip="first / last step"),
        Binding("G", "goto('last')", "Last", show=False, key_display="end G", tooltip="first / last step"),
        Binding("space", "play", "Play", tooltip="play / pause"),
        # e and t before the rest: the footer shows bindings in this order, and at 80 columns
        # it cuts the last ones
        Binding("e", "export", "SVG", tooltip="export the graph at this step to SVG"),
        Binding("t", "train", "Train", tooltip="train this model in the live monitor (model specs)"),
        Binding("m", "mode(1)", "Mode", tooltip="next / previous mode: values → tangents → adjoints"),
        Binding("slash", "jump", "Jump", key_display="/",
                tooltip="find nodes by name, definition or module path (v4, softmax, blocks.3.attn) and jump"),
        Binding("question_mark", "help", "Help", key_display="?", tooltip="every key, and how to read the panes"),
        Binding("q", "app.quit", "Quit", tooltip="quit"),
        Binding("w", "switch_pass('tangent')", "Input",
                tooltip="another input's tangent pass (forward mode)"),
        Binding("o", "switch_pass('reverse')", "Output",
                tooltip="another output's adjoint pass (reverse mode)"),
        Binding("v", "swap_panes", "Graph/tape", show=False,
                tooltip="narrow terminals (under 100 columns): show the tape instead of the graph, and back"),
        Binding("left_square_bracket", "speed(-1)", "Slower", show=False, tooltip="slower / faster play"),
        Binding("right_square_bracket", "speed(1)", "Faster", show=False, tooltip="slower / faster play"),
        Binding("M", "mode(-1)", "Prev mode", show=False,
                tooltip="next / previous mode: values → tangents → adjoints"),
        Binding("exclamation_mark", "first_bad", "NaN", key_display="!", show=False,
                tooltip="jump to the first non-finite value or adjoint"),
        Binding("plus,equals_sign", "detail(-1)", "Detail+", key_display="+", show=False,
                tooltip="more / less detail in the graph; fit the graph to the pane"),
        Binding("minus", "detail(1)", "Detail-", key_display="-", show=False,
                tooltip="more / less detail in the graph; fit the graph to the pane"),
        Binding("f", "fit", "Fit", show=False, tooltip="more / less detail in the graph; fit the graph to the pane"),
        Binding("b", "layers", "Layers", show=False,
                tooltip="backprop by layers: δ_k, ∂L/∂W_k, ∂L/∂b_k in the lecture's matrix form, checked"),
        Binding("z", "fold", "Fold", show=False,
                tooltip="open the folded module of the node in focus, or fold the module around it"),
        Binding("Z", "focus_view", "Focus", show=False,
                tooltip="show only the neighbourhood of the node in focus, or the whole graph again"),
        Binding("escape", "follow", "Follow", show=False,
                tooltip="follow the current node again (after a click selected another)"),
    ]

    # repaint=False: a reactive on a screen repaints the whole screen when it changes (every
    # pane's every visible line, and the footer, re-rendered on each step); the watchers'
    # redraw() refreshes just what each pane changed.
    k: reactive[int] = reactive(0, init=False, repaint=False)
    selected: reactive[int | None] = reactive(None, init=False, repaint=False)
    playing: reactive[bool] = reactive(False, init=False, repaint=False)
    speed: reactive[float] = reactive(4.0, init=False, repaint=False)

    def __init__(self, timeline: Timeline, *, source: str = "", spec_path: str | None = None,
                 findings: list | Callable[[], list] | None = None, start: int = 0, detail: str = "full",
                 choice: FoldChoice | None = None) -> None:
        """`findings`: the list, or a function that finds them (called in a worker once the
        first picture is shown: on a big model it takes seconds, as long as the layout)."""
        super().__init__()
        self.timeline = timeline
        self.trace = timeline.trace
        self.source = source
        self.spec_path = spec_path
        self._find = findings if callable(findings) else None
        self.findings: list = [] if callable(findings) else (findings or [])
        self._timer: Timer | None = None
        self.training = None  # the TrainingHandle once `t` started one
        self.train_settings: dict = {}
        self.set_reactive(StepperScreen.k, max(0, min(start, timeline.last)))
        self.initial_detail = detail
        self.auto_fit = detail == "fit"  # refit on resize until +/- picks a form
        self.initial_choice = choice

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            with Vertical(id="left"):
                graph = GraphPane(id="graph")
                graph.border_title = f"graph  {len(self.trace.graph)} nodes"
                yield graph
                yield Tape(id="tape")
            with Vertical(id="right"):
                inspector = Inspector(id="inspector", keys=key_rows(self.usable(shown=True)))
                inspector.border_title = "inspector"
                yield inspector
                if self.findings:
                    yield self.findings_list()
        yield StatusBar(id="status")
        yield WholeKeysFooter()

    def findings_list(self) -> FindingsList:
        findings = FindingsList(self.trace, self.findings, id="findings")
        findings.border_title = f"findings ({len(self.findings)})"
        return findings

    async def on_mount(self) -> None:
        graph = self.query_one(GraphPane)
        # The layout first: its worker thread runs while this thread measures the tape's
        # columns (on a GPT-2-sized trace each takes seconds); findings wait for the picture.
        if self.initial_detail == "fit":  # the most detailed form that fits whole (as `f`)
            graph.choice = self.initial_choice or graph.choice
            graph.trace = self.trace
            self.call_after_refresh(self.fit, True)
        else:
            graph.use_detail(self.trace, self.initial_detail, self.initial_choice)
        await asyncio.sleep(0)  # a worker's thread starts on the event loop's next turn
        self.set_class(bool(self.findings), "-has-findings")  # narrow terminals give them room
        self.redraw()
        graph.focus()
        self.set_titles()

    # -- drawing -----------------------------------------------------------------------
    @property
    def scene(self) -> Scene:
        return Scene(self.timeline, self.k)

    def redraw(self) -> None:
        """Hand the scene at k to every pane."""
        scene = self.scene
        self.query_one(GraphPane).show(scene, self.selected)
        self.query_one(Tape).show(scene, self.selected)
        focus = self.selected if self.selected is not None else scene.current
        self.query_one(Inspector).show(scene, focus, self.selected is not None)
        self.query_one(StatusBar).show(scene, self.playing, self.speed, compact=self.size.width < 100)

    def on_resize(self) -> None:
        self.call_after_refresh(self.set_titles)  # the breakpoint classes change on resize
        self.call_after_refresh(self.proportion_panes)
        if self.auto_fit and self.query_one(GraphPane).trace is not None:
            self.call_after_refresh(self.fit, True)  # the form that fits the new size
        self.redraw()

    def proportion_panes(self) -> None:
        """Split the screen by what the panes hold (layout.pane_sizes), not half and half."""
        from gradviz.tui.layout import pane_sizes

        graph, tape = self.query_one(GraphPane), self.query_one(Tape)
        drawing = graph.drawing
        if drawing is None:
            return
        width, height = self.size
        sizes = pane_sizes(width, height - 3, (drawing.width, drawing.height),
                           (tape.natural_width(), len(tape.nodes) + 1), narrow=self.has_class("-narrow"),
                           findings=bool(self.findings))
        left, right = self.query_one("#left"), self.query_one("#right")
        if sizes.left_width is None:
            left.styles.width = right.styles.width = None  # the stylesheet's narrow layout
            left.styles.height = sizes.graph_height  # the drawing's rows, the inspector the rest
            right.styles.height = "1fr"
        else:
            left.styles.width = sizes.left_width
            right.styles.width = "1fr"
            left.styles.height = right.styles.height = None
        tape.styles.max_height = sizes.tape_max_height

    def watch_k(self) -> None:
        self.redraw()

    def watch_selected(self) -> None:
        self.redraw()

    def watch_playing(self, playing: bool) -> None:
        if self._timer is not None:
            self._timer.stop()
            self._timer = None
        if playing:
            self._timer = self.set_interval(1 / self.speed, self._tick)
        self.redraw()

    def watch_speed(self) -> None:
        if self.playing:
            self.watch_playing(True)
        else:
            self.redraw()

    def set_titles(self) -> None:
        """On narrow terminals the titles say that v swaps graph and tape."""
        narrow = self.has_class("-narrow")
        self.query_one(GraphPane).set_narrow(narrow)
        tape = self.query_one(Tape)
        tape.border_title = "tape: the trace table (· = not computed yet)" + (" · v: graph" if narrow else "")

    def on_graph_pane_drawn(self, message: GraphPane.Drawn) -> None:
        self.call_after_refresh(self.proportion_panes)
        if self._find is not None:  # after the first picture, not before nor beside its layout
            find, self._find = self._find, None
            self._find_findings(find)
        if message.note:
            severe = message.note.startswith("simple layout")
            self.notify(message.note, severity="warning" if severe else "information", timeout=8)

    @work(thread=True, group="findings", description="findings", exit_on_error=False)
    def _find_findings(self, find: Callable[[], list]) -> None:
        findings = list(find())
        try:
            self.app.call_from_thread(self._show_findings, findings)
        except RuntimeError:  # the app ended meanwhile
            pass

    def _show_findings(self, findings: list) -> None:
        self.findings = findings
        if findings:
            self.query_one("#right").mount(self.findings_list())
        self.set_class(bool(findings), "-has-findings")  # narrow terminals give them room
        self.call_after_refresh(self.proportion_panes)
        if findings and self.auto_fit and self.has_class("-narrow"):
            self.call_after_refresh(self.fit, True)  # the graph's room shrank under the findings

    def _tick(self) -> None:
        if self.k >= self.timeline.last:
            self.playing = False
        else:
            self.k += 1

    # -- messages up -------------------------------------------------------------------
    @on(GraphPane.NodeClicked)
    @on(Tape.RowClicked)
    @on(FindingsList.Chosen)
    def select_node(self, message) -> None:
        self.selected = message.node

    # -- actions -----------------------------------------------------------------------
    def check_action(self, action: str, parameters: tuple) -> bool | None:
        """`t` exists only for model specs (an expression has no model to train): hidden else."""
        return not (action == "train" and self.spec_path is None)

    def action_step(self, delta: int) -> None:
        self.k = max(0, min(self.timeline.last, self.k + delta))

    def action_goto(self, where: str) -> None:
        self.k = 0 if where == "first" else self.timeline.last

    def action_play(self) -> None:
        if not self.playing and self.k >= self.timeline.last:
            self.k = 0
        self.playing = not self.playing

    def action_speed(self, direction: int) -> None:
        index = min(range(len(SPEEDS)), key=lambda i: abs(SPEEDS[i] - self.speed))
        self.speed = SPEEDS[max(0, min(len(SPEEDS) - 1, index + direction))]
        if not self.playing:  # the status bar shows the speed only while playing: say it here
            self.notify(f"play speed {self.speed:g} steps/s (space plays)", timeout=3)

    def action_mode(self, direction: int) -> None:
        self.k = actions.next_phase_start(self.timeline, self.k, direction)

    def action_switch_pass(self, phase: str) -> None:
        k, message = actions.switch_pass(self.timeline, self.k, phase)
        self.k = k
        if message:
            self.notify(message)

    def action_jump(self) -> None:
        self.app.push_screen(JumpScreen(self.trace.graph), self.jump_to)

    def jump_to(self, query: int | str | None) -> None:
        """Go to node `query` (an id, or text to search for): its step in this pass (or its
        first), selected, and its module opened where it is folded."""
        if query is None or query == "":
            return
        node = query if isinstance(query, int) else find_node(self.trace.graph, query)
        if node is None:
            self.notify(f"no node matches {query!r}", severity="warning")
            return
        graph = self.query_one(GraphPane)
        fold = graph.drawing.fold if graph.drawing is not None else None
        if fold is not None and (fold.box_of(node) or "").startswith(MODULE):
            graph.toggle_module(node)  # folded away: open its module
        target = self.timeline.jump_target(node, self.k)
        self.selected = None if target is not None else node
        if target is not None:
            self.k = target

    def action_first_bad(self) -> None:
        found = first_bad_step(self.timeline)
        if found is None:
            self.notify("every value and adjoint is finite")
            return
        k, node = found
        self.k = k
        self.selected = None if self.scene.current == node else node

    def action_follow(self) -> None:
        if self.selected is None:  # nothing selected, but the view may be panned away: centre again
            self.query_one(GraphPane).keep_in_view()
        self.selected = None

    def action_detail(self, direction: int) -> None:
        self.auto_fit = False  # the person chose a form: keep it when the terminal resizes
        self.query_one(GraphPane).step_detail(direction)

    def action_fit(self) -> None:
        self.fit(keep_values=False)

    def fit(self, keep_values: bool) -> None:
        """The most detailed form that fits the room the panes can give the graph (as `f`;
        `keep_values`: only forms with values, as on opening)."""
        from gradviz.tui.layout import graph_room

        graph, tape = self.query_one(GraphPane), self.query_one(Tape)
        narrow = self.has_class("-narrow")
        room = graph_room(self.size.width, self.size.height - 3, len(tape.nodes) + 1, narrow, bool(self.findings))
        if graph.fitting:  # a form is being laid out to be measured: measure it against this room
            graph.resize_room(room)
        else:
            graph.fit(room, keep_values)

    def _focus_node(self) -> int | None:
        return self.selected if self.selected is not None else self.scene.current

    def action_fold(self) -> None:
        """Open the folded module of the node in focus (selected, else current), or fold its module."""
        node = self._focus_node()
        if node is None or not self.query_one(GraphPane).toggle_module(node):
            self.notify("no module to open or fold here: select a node inside a module (click, or /)",
                        severity="warning", timeout=4)

    def action_focus_view(self) -> None:
        """The neighbourhood of the node in focus alone, or the whole graph again."""
        node = self._focus_node()
        if node is None:
            self.notify("step to a node (or select one) first: Z shows its neighbourhood", timeout=4)
            return
        self.query_one(GraphPane).toggle_focus(node)

    def action_export(self) -> None:
        detail = self.query_one(GraphPane).detail
        path, message = actions.export_svg(self.timeline, self.k, detail, self.source)
        self.notify(message, severity="information" if path else "warning", timeout=6)

    def key_t(self) -> None:
        """`t` on an expression (its binding is hidden there): say why nothing trains."""
        if self.spec_path is None:
            self.notify("t trains a model spec (a .py file); an expression has no model to train",
                        severity="warning", timeout=5)

    def action_train(self) -> None:
        """Train the same model spec and watch it live; leaving the monitor comes back here."""
        if self.training is not None and self.training.alive():
            self.notify(f"already training: gradviz monitor {self.training.run_dir} (t shows it again)")
            from gradviz.monitor.screen import MonitorScreen

            self.app.push_screen(MonitorScreen(self.training.run_dir, self.training), self._left_training)
            return
        handle, message = actions.start_training(self.app, self.spec_path, self._left_training,
                                                 **self.train_settings)
        self.training = handle
        self.notify(message, severity="information" if handle else "warning", timeout=6)

    def _left_training(self, choice: str | None) -> None:
        run_dir = self.training.run_dir if self.training is not None else ""
        if choice == "detached":
            self.notify(f"training goes on: t shows it again, or gradviz monitor {run_dir}", timeout=8)
        elif choice == "stopped":
            self.notify("training stopped (a checkpoint is saved in the run directory)", timeout=8)

    def action_swap_panes(self) -> None:
        """On narrow terminals only one of graph and tape fits: show the other one."""
        self.toggle_class("-show-tape")

    def action_help(self) -> None:
        self.app.push_screen(HelpScreen(key_rows([*self.usable(), *GraphPane.BINDINGS])))

    def usable(self, shown: bool = False) -> list[Binding]:
        """This screen's bindings that work here (`t` only for model specs); `shown`: the footer's."""
        return [b for b in self.BINDINGS if isinstance(b, Binding) and (b.show or not shown)
                and self.check_action(b.action.partition("(")[0], ()) is not False]

    def action_layers(self) -> None:
        """Backprop by layers: δ_k and ∂L/∂W_k in the lecture's matrix form, checked against the adjoints."""
        from gradviz.core.layers import backprop_by_layers, no_layers_message
        from gradviz.tui.screens.layers import LayersScreen

        backprop = backprop_by_layers(self.trace) if self.trace.adjoints else None
        message = no_layers_message(backprop)
        if message is not None:
            self.notify(f"no layers here: {message}", severity="warning")
            return
        self.app.push_screen(LayersScreen(self.trace, backprop))


StepperScreen.__doc__ = f"""{StepperScreen.__doc__}

Keys:
{key_table(key_rows(StepperScreen.BINDINGS))}
"""
