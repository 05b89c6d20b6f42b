"""The graph pane: a GraphPicture painted line by line, restyled per step.

Keys when focused: arrows ↑ ↓ and h j k l (or shift+arrows) pan; the mouse wheel
scrolls and dragging pans; clicking a node selects it. The screen owns `+`/`-`/`f`.
A step repaints only the rows of nodes whose look changed (row cache, refresh_line);
the selected node is underlined on top of whichever drawing is shown.
"""

from __future__ import annotations

from rich.segment import Segment
from rich.style import Style
from textual import events
from textual.binding import Binding
from textual.geometry import Region, Size
from textual.message import Message
from textual.scroll_view import ScrollView
from textual.strip import Strip

from gradviz.tui.drawing import Drawing
from gradviz.tui.scene import Scene

SELECTED = Style(underline=True, bold=True)


class GraphPane(ScrollView, can_focus=True):
    """The drawn graph with the current node highlighted and kept in view."""

    DEFAULT_CSS = """
    GraphPane { background: $surface; }
    """
    BINDINGS = [
        Binding("h,shift+left", "scroll_left", "Pan left", show=False),
        Binding("l,shift+right", "scroll_right", "Pan right", show=False),
        Binding("k,shift+up", "scroll_up", "Pan up", show=False),
        Binding("j,shift+down", "scroll_down", "Pan down", show=False),
    ]

    class NodeClicked(Message):
        """A node was clicked."""

        def __init__(self, node: int) -> None:
            super().__init__()
            self.node = node

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.drawing: Drawing | None = None
        self.scene: Scene | None = None
        self.selected: int | None = None
        self._rows: dict[int, Strip] = {}
        self._drag: tuple[int, int, float, float] | None = None
        self._dragged = False

    # -- attributes down ---------------------------------------------------------------
    def set_drawing(self, drawing: Drawing) -> None:
        """Show a new drawing (after layout or a detail change)."""
        self.drawing = drawing
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
                self.refresh_line(y)
        self.keep_in_view()

    def keep_in_view(self) -> None:
        """Centre the focus node (selected, else current), as far as the scroll range allows.

        Always centring (rather than scrolling the least distance) makes the scroll
        position a function of the step alone, so stepping back restores the view exactly.
        """
        if self.drawing is None:
            return
        node = self.selected if self.selected is not None else (self.scene.current if self.scene else None)
        box = self.drawing.box(node) if node is not None else None
        if box is not None:
            self.scroll_to_region(Region(*box), animate=False, center=True, immediate=True, force=True)
        else:
            self.scroll_to(0, 0, animate=False, immediate=True)

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

