"""The graph pane: a Drawing laid out in a worker, painted line by line, restyled per step.

Keys when focused: arrows ↑ ↓ and h j k l (or shift+arrows) pan; the mouse wheel
scrolls and dragging pans; clicking a node selects it. The screen's `+`/`-`/`f` call
`step_detail` and `fit`; each detail level is laid out once per orientation (in a thread:
`dot` takes seconds on big graphs, meanwhile a loading indicator shows) and kept. Fit
tries ranks top to bottom, then left to right (a wide, short pane), at each form.
A step repaints only the rows of nodes whose look changed (row cache, refresh_line);
the selected node is underlined on top of whichever drawing is shown.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events, work
from textual.binding import Binding
from textual.geometry import Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gradviz.core.trace import Trace
from gradviz.draw.fold import MODULE, Fold, FoldChoice
from gradviz.draw.look import DETAILS, WITH_VALUES, Numbers, bordered
from gradviz.draw.terminal import LABEL_LIMIT
from gradviz.textfit import fit_words
from gradviz.tui.drawing import Drawing, build_drawing
from gradviz.tui.layout import centred_offset
from gradviz.tui.scene import Scene

SELECTED = Style(underline=True, bold=True)
OPENING = "compact"  # the opening form where no form with values fits whole: values kept, it scrolls
FIT_LIMIT = 100  # nodes: above this no form with values fits a terminal; open at OPENING at once
PAN = "pan the graph (or shift+arrows, or drag it with the mouse)"


def fold_title(trace: Trace, fold: Fold | None) -> str:
    """What the pane's title says of a folding, and the key that changes it."""
    if fold is None or fold.is_identity:
        return ""
    if fold.focus is not None:
        return f" · focus on {trace.graph.nodes[fold.focus].label}, {fold.hops} hops (Z: whole graph)"
    stubs = " · many-user nodes as stubs" if fold.stubs else ""
    if fold.depth is not None:
        return f" · modules folded at depth {fold.depth} (z opens one)" + stubs
    folded = len({key for key in fold.groups if key.startswith(MODULE)})
    if folded:  # folded by hand (z) in a graph drawn open
        return f" · {folded} module{'s' if folded != 1 else ''} folded (z opens)" + stubs
    return stubs


class GraphPane(ScrollView, can_focus=True):
    """The drawn graph with the current node highlighted and kept in view."""

    DEFAULT_CSS = """
    GraphPane { background: $surface; }
    """
    BINDINGS = [
        Binding("h,shift+left", "scroll_left", "Pan left", show=False, key_display="h", tooltip=PAN),
        Binding("j,shift+down", "scroll_down", "Pan down", show=False, key_display="j", tooltip=PAN),
        Binding("k,shift+up", "scroll_up", "Pan up", show=False, key_display="k", tooltip=PAN),
        Binding("l,shift+right", "scroll_right", "Pan right", show=False, key_display="l", tooltip=PAN),
    ]

    class Drawn(Message):
        """A drawing is shown (note: why the stand-in layout is used, if it is)."""

        def __init__(self, detail: str, note: str) -> None:
            super().__init__()
            self.detail = detail
            self.note = note

    class _Ready(Message):
        """The layout worker finished a drawing."""

        def __init__(self, drawing: Drawing, across: bool, label_rows: bool) -> None:
            super().__init__()
            self.drawing = drawing
            self.across = across  # the orientation asked for (the stand-in draws down all the same)
            self.label_rows = label_rows

    class NodeClicked(Message):
        """A node was clicked."""

        def __init__(self, node: int) -> None:
            super().__init__()
            self.node = node

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.drawing: Drawing | None = None
        self.trace: Trace | None = None
        self.detail = "full"
        self.choice = FoldChoice()  # which modules are folded, what is in focus (draw/fold.py)
        self.drawings: dict[tuple[str, FoldChoice], Drawing] = {}  # ranks top to bottom
        self.drawings_across: dict[tuple[str, FoldChoice], Drawing] = {}  # ranks left to right
        self.drawings_label_rows: dict[tuple[str, FoldChoice], Drawing] = {}  # down, edge numbers in rows
        self.across = False
        self.label_rows = False  # the full form with a row for each edge's number
        self.numbers: Numbers | None = None  # the trace's formatted numbers, shared by its drawings
        self.narrow = False
        self._fitting = False
        self._keep_values = False
        self._room: tuple[int, int] | None = None
        self.scene: Scene | None = None
        self.selected: int | None = None
        self._rows: dict[int, Strip] = {}
        self._drag: tuple[int, int, float, float] | None = None
        self._dragged = False
        self.centred: tuple | None = None  # (node, geometry, offset) of the last centring

    # -- attributes down ---------------------------------------------------------------
    def use_detail(self, trace: Trace, detail: str, choice: FoldChoice | None = None,
                   across: bool | None = None, label_rows: bool | None = None) -> None:
        """Show `trace` at `detail`, folded as `choice` asks (default: as now), ranks left to
        right if `across` (default: as now, where the form has borders to put ports on), the
        full form's edge numbers in rows of their own if `label_rows` (default: as now),
        laying it out first (in a worker) if need be; each is laid out once and kept."""
        if self.numbers is None or self.numbers.trace is not trace:
            self.numbers = Numbers(trace)
        self.trace, self.detail = trace, detail
        self.choice = choice if choice is not None else self.choice
        self.across = (self.across if across is None else across) and bordered(detail)
        rows = self.label_rows if label_rows is None else label_rows
        self.label_rows = rows and detail == "full" and not self.across
        kept = self._kept(self.across, self.label_rows)
        if (detail, self.choice) in kept:
            self.set_drawing(kept[(detail, self.choice)])
            return
        self.loading = True
        self.border_title = f"graph  laying out {len(trace.graph)} nodes ({detail})…"
        self._lay_out(trace, detail, self.choice, self.across, self.label_rows)

    def _kept(self, across: bool, label_rows: bool = False) -> dict[tuple[str, FoldChoice], Drawing]:
        """The drawings laid out so far in one orientation (down: with or without label rows)."""
        if across:
            return self.drawings_across
        return self.drawings_label_rows if label_rows else self.drawings

    def _orientations(self, detail: str, room: tuple[int, int]) -> tuple[bool, ...]:
        """Down, then across where the pane's shape asks for it (the downward drawing
        overflows the room's rows more than its columns) and the form can go across: boxes
        with borders, every node its own (no module frames, no stubs)."""
        down = self.drawings.get((detail, self.choice))
        if down is None or not bordered(detail) or (down.fold is not None and not down.fold.is_identity):
            return (False,)
        taller = down.height * room[0] > down.width * room[1]  # height/rows > width/columns
        could_fit = down.least_across_width() <= room[0]
        return (False, True) if taller and down.height > room[1] and could_fit else (False,)

    def _variants(self, detail: str, room: tuple[int, int]) -> list[tuple[bool, bool]]:
        """(across, label rows) to try, most readable first: the full form of a small graph
        with a row for each edge's number (every edge of the current node shows its term),
        then the orientations without. The rows only add height, so they are laid out only
        once the full form without them is known to fit (one dot run fewer where it does not)."""
        down = self.drawings.get((detail, self.choice))
        fits = down is not None and down.width <= room[0] and down.height <= room[1]
        rows = [(False, True)] if detail == "full" and len(self.trace.graph) <= LABEL_LIMIT and fits else []
        return rows + [(across, False) for across in self._orientations(detail, room)]

    def toggle_module(self, node: int) -> bool:
        """Open the folded module holding `node`, or fold the module around it; False when
        it is in no module."""
        if self.trace is None or self.drawing is None or self.drawing.fold is None:
            return False
        choice = self.choice.toggle_module(self.trace.graph, self.drawing.fold, node)
        if choice is None:
            return False
        self.use_detail(self.trace, self.detail, choice)
        return True

    def toggle_focus(self, node: int) -> None:
        """Show `node`'s neighbourhood alone, or the whole graph again."""
        if self.trace is not None:
            self.use_detail(self.trace, self.detail, self.choice.toggle_focus(node))

    def step_detail(self, direction: int) -> None:
        """One detail level more (-1) or less (+1): full, compact, line+, line, op names, dots."""
        index = max(0, min(len(DETAILS) - 1, DETAILS.index(self.detail) + direction))
        if self.trace is not None:
            self.use_detail(self.trace, DETAILS[index])

    def fit(self, room: tuple[int, int] | None = None, keep_values: bool | None = None) -> None:
        """The most detailed drawing that fits `room` whole (the screen can make the pane that
        big; default: the pane as it is), laying out the others as needed. `keep_values`
        (the stepper's opening form): only forms with values, else OPENING, which scrolls;
        otherwise (`f`) down to dots, saying so when values are dropped."""
        if self.trace is None:
            return
        if room is not None:
            self._room = room
        if keep_values is not None:
            self._keep_values = keep_values
        size = self._room or tuple(self.scrollable_content_region.size)
        forms = WITH_VALUES if self._keep_values else DETAILS
        if self._keep_values and len(self.trace.graph) > FIT_LIMIT:
            forms = ()  # too many nodes to show whole with values: do not lay out forms to measure
        # nothing fits whole: on a narrow terminal the one-line boxes scroll least
        chosen = ("line" if self.narrow else OPENING) if self._keep_values else DETAILS[-1]
        across = rows = False
        for detail in forms:
            for across, rows in self._variants(detail, size):
                drawing = self._kept(across, rows).get((detail, self.choice))
                if drawing is None:
                    self._fitting = True
                    self.use_detail(self.trace, detail, across=across, label_rows=rows)
                    return
                if drawing.width <= size[0] and drawing.height <= size[1]:
                    break
            else:
                continue
            chosen = detail
            break
        else:
            across = rows = False  # nothing fits whole: the fallback form goes down
        self._room = None
        self._fitting = False
        self.use_detail(self.trace, chosen, across=across, label_rows=rows)
        if chosen not in WITH_VALUES:  # say what was given up, and why
            self.notify(f"no drawing with values fits {size[0]}×{size[1]} cells: showing {chosen} "
                        "(+ for more detail; the inspector and tape keep every number)", timeout=6)
        elif chosen == "line" and (self.trace.tangents or self.trace.adjoints):
            self.notify(f"no drawing with tangents or adjoints fits {size[0]}×{size[1]} cells: showing values "
                        "only (+ for more detail; the inspector keeps every number)", timeout=6)

    def resize_room(self, room: tuple[int, int]) -> None:
        """The room a fit under way measures its forms against, after the terminal resized."""
        self._room = room

    @property
    def fitting(self) -> bool:
        """True while `fit` is laying out forms to measure them."""
        return self._fitting

    def set_narrow(self, narrow: bool) -> None:
        """Title the pane; on narrow terminals it says that v shows the tape instead."""
        self.narrow = narrow
        if self.drawing is not None and self.trace is not None:
            self.border_title = self.title_text(self.size.width - 4 if self.size.width else 200)

    def on_resize(self) -> None:
        self.set_narrow(self.narrow)  # the title fits the pane's new width
        # The screen sizes the panes once the drawing is known (proportion_panes), after
        # set_drawing centred the node in the pane's old size: centre again in the new one,
        # once its scrollbars are settled, so the opening picture does not depend on timing.
        self.call_after_refresh(self.keep_in_view)

    def watch_show_horizontal_scrollbar(self) -> None:
        # A scrollbar that comes or goes changes the rows or columns the node is centred in
        # (one CI run opened two_layer_mlp one row off): centre again once it has.
        self.call_after_refresh(self.keep_in_view)

    def watch_show_vertical_scrollbar(self) -> None:
        self.call_after_refresh(self.keep_in_view)

    def title_text(self, width: int) -> str:
        """The pane's title in `width` cells, by one declared rule: the key hints go first,
        then the folding's hint, then the folding (the node count and form always stay)."""
        drawing, trace = self.drawing, self.trace
        assert drawing is not None and trace is not None
        head = f"graph  {len(trace.graph)} nodes · {drawing.detail}" + (" across" if drawing.across else "")
        fold = fold_title(trace, drawing.fold)
        swap = " · v: tape" if self.narrow else ""
        plain_fold = fold.split(" (")[0] if " (" in fold else fold
        forms = [head + " (+/- detail, f fit)" + fold + swap, head + fold + swap, head + plain_fold + swap,
                 head + swap, head]
        return fit_words(forms[0], width, forms[1:])

    # a description, or Textual writes repr() of the arguments on the app's thread: a
    # 10,000-node trace's repr is millions of characters (1.4 s before the layout starts)
    @work(thread=True, exclusive=True, group="layout", description="layout")
    def _lay_out(self, trace: Trace, detail: str, choice: FoldChoice, across: bool, label_rows: bool) -> None:
        self.post_message(self._Ready(build_drawing(trace, detail, choice=choice, numbers=self.numbers,
                                                    across=across, label_rows=label_rows), across, label_rows))

    def on_graph_pane__ready(self, message: _Ready) -> None:
        message.stop()
        drawing = message.drawing
        self._kept(message.across, message.label_rows)[(drawing.detail, drawing.choice)] = drawing
        if self._fitting:
            self.fit()
        elif ((drawing.detail, message.across, message.label_rows, drawing.choice)
              == (self.detail, self.across, self.label_rows, self.choice)):
            self.set_drawing(drawing)

    def set_drawing(self, drawing: Drawing) -> None:
        """Show a new drawing (after layout or a detail change)."""
        self.drawing = drawing
        self.loading = False
        self.set_narrow(self.narrow)
        self.post_message(self.Drawn(drawing.detail, drawing.note))
        self._rows.clear()
        self.virtual_size = Size(drawing.width, drawing.height)
        if self.scene is not None:
            drawing.paint(self.scene)
        self.refresh()
        self.keep_in_view()

    def show(self, scene: Scene, selected: int | None) -> None:
        """Move to a new step: repaint the rows whose nodes changed look."""
        old_selected = self.selected
        self.scene, self.selected = scene, selected
        if self.drawing is None:
            return
        rows = self.drawing.paint(scene)
        if rows is None:
            self._rows.clear()
            self.refresh()
        else:
            for node in {old_selected, selected} - {None}:
                box = self.drawing.box(node)  # type: ignore[arg-type]
                if box is not None:
                    rows.update(range(box[1], box[1] + box[3]))
            for y in rows:
                self._rows.pop(y, None)
            # Repaint the changed rows in view, as one band: a long edge can span many rows.
            top = int(self.scroll_y)
            visible = [y for y in rows if top <= y < top + self.size.height]
            if visible:
                self.refresh_lines(min(visible), max(visible) - min(visible) + 1)
        self.keep_in_view()

    def keep_in_view(self) -> None:
        """Centre the focus node (selected, else current), as far as the scroll range allows.

        Always centring (rather than scrolling the least distance) makes the scroll
        position a function of the step alone, so stepping back restores the view exactly.
        The offset is computed whole from the pane's geometry (layout.centred_offset), not
        as a step from where the pane was: Textual's centring rounds that step toward zero,
        so it landed a row or a column apart depending on which side the pane came from.
        """
        if self.drawing is None:
            return
        node = self.focus_node()
        box = self.drawing.box(node) if node is not None else None
        geometry = self.geometry()
        if box is not None and geometry[0]:
            x, y = centred_offset(box, geometry[0], geometry[2])
        else:  # no node drawn, or the pane has no room yet: its top-left corner
            x, y = 0, 0
        self.scroll_to(x, y, animate=False, immediate=True, force=True)
        self.centred = (node, geometry, self.scroll_offset)

    def focus_node(self) -> int | None:
        """The node kept in view: the selected one, else the current one, else (step 0) the
        first input drawn, not a blank corner."""
        node = self.selected if self.selected is not None else (self.scene.current if self.scene else None)
        if node is None and self.trace is not None and self.drawing is not None:
            node = next((n.id for n in self.trace.graph.nodes if n.kind == "input" and self.drawing.box(n.id)), None)
        return node

    def geometry(self) -> tuple[Size, Size, tuple[int, int]]:
        """What centring depends on: the cells the drawing shows in (the content less its
        scrollbars), the drawing's size, and how far it scrolls."""
        window = Size(max(0, self.container_size.width - self.scrollbar_size_vertical),
                      max(0, self.container_size.height - self.scrollbar_size_horizontal))
        return window, self.virtual_size, (self.max_scroll_x, self.max_scroll_y)

    def is_centred(self) -> bool:
        """True when the focus node was last centred for the pane as it is now (same node,
        window, drawing and scroll range) and nothing has scrolled it since."""
        if self.centred is None or self.drawing is None:
            return False
        node, geometry, offset = self.centred
        return node == self.focus_node() and geometry == self.geometry() and offset == self.scroll_offset

    # -- painting ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        drawing = self.drawing
        if drawing is None or self.scene is None or row >= drawing.height:
            return Strip.blank(width, self.rich_style)
        strip = self._rows.get(row)
        if strip is None:
            strip = Strip([Segment(text, drawing.style(key)) for text, key in drawing.runs(row)])
            self._rows[row] = strip
        box = drawing.box(self.selected) if self.selected is not None else None
        if box is not None and box[1] <= row < box[1] + box[3]:
            x0, x1 = box[0], box[0] + box[2]
            strip = Strip.join([strip.crop(0, x0), strip.crop(x0, x1).apply_style(SELECTED), strip.crop(x1)])
        return strip.crop_extend(scroll_x, scroll_x + width, self.rich_style)

    # -- mouse -------------------------------------------------------------------------
    def on_mouse_down(self, event: events.MouseDown) -> None:
        self._drag = (event.screen_x, event.screen_y, self.scroll_x, self.scroll_y)
        self._dragged = False
        self.capture_mouse()

    def on_mouse_move(self, event: events.MouseMove) -> None:
        if self._drag is None:
            return
        x0, y0, sx, sy = self._drag
        dx, dy = event.screen_x - x0, event.screen_y - y0
        if dx or dy:
            self._dragged = True
            self.scroll_to(sx - dx, sy - dy, animate=False, immediate=True)

    def on_mouse_up(self, event: events.MouseUp) -> None:
        if self._drag is None:
            return
        self._drag = None
        self.release_mouse()
        offset = event.get_content_offset(self)
        if not self._dragged and self.drawing is not None and offset is not None:
            node = self.drawing.node_at(offset.x + int(self.scroll_x), offset.y + int(self.scroll_y))
            if node is not None:
                self.post_message(self.NodeClicked(node))

