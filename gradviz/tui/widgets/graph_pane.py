"""The graph pane: a GraphPicture painted line by line, restyled per step.

Keys when focused: arrows ↑ ↓ and h j k l (or shift+arrows) pan; the mouse wheel
scrolls and dragging pans; clicking a node selects it. The screen owns `+`/`-`/`f`.
A step repaints only the rows of nodes whose look changed (row cache, refresh_lines).
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

from gradviz.tui.picture import GraphPicture
from gradviz.tui.scene import Scene, changed_nodes

LOOKS = ("pending", "known", "current", "bad", "off", "selected")


class GraphPane(ScrollView, can_focus=True):
    """The drawn graph with the current node highlighted and kept in view."""

    COMPONENT_CLASSES = {f"graph--{look}" for look in LOOKS} | {"graph--lines"}
    DEFAULT_CSS = """
    GraphPane { background: $surface; }
    GraphPane > .graph--lines { color: $text-muted; }
    GraphPane > .graph--pending { color: $text-disabled; }
    GraphPane > .graph--off { color: $text-disabled; }
    GraphPane > .graph--known { color: $text; }
    GraphPane > .graph--current { color: $text; background: $accent 50%; text-style: bold; }
    GraphPane > .graph--selected { color: $text; text-style: bold underline; }
    GraphPane > .graph--bad { color: $error; text-style: bold; }
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
        self.picture: GraphPicture | None = None
        self.scene: Scene | None = None
        self.selected: int | None = None
        self._rows: dict[int, tuple[tuple, Strip]] = {}
        self._drag: tuple[int, int, float, float] | None = None
        self._dragged = False

    # -- attributes down ---------------------------------------------------------------
    def set_picture(self, picture: GraphPicture) -> None:
        """Show a new drawing (after layout or a detail change)."""
        self.picture = picture
        self._rows.clear()
        self.virtual_size = Size(picture.width, picture.height)
        self.refresh()
        self.keep_in_view()

    def show(self, scene: Scene, selected: int | None) -> None:
        """Move to a new step: repaint the rows whose nodes changed look."""
        old, old_selected = self.scene, self.selected
        self.scene, self.selected = scene, selected
        if self.picture is None:
            return
        changed = changed_nodes(old, scene) if old is not None else None
        if changed is None:
            self.refresh()
        else:
            changed |= {n for n in (old_selected, selected) if n is not None}
            for node in changed:
                rows = self.picture.rows_of(node)
                if rows:
                    self.refresh_lines(rows.start, len(rows))
        self.keep_in_view()

    def keep_in_view(self, center: bool = True) -> None:
        """Centre the focus node (selected, else current), as far as the scroll range allows.

        Always centring (rather than scrolling the least distance) makes the scroll
        position a function of the step alone, so stepping back restores the view exactly.
        """
        node = self.selected if self.selected is not None else (self.scene.current if self.scene else None)
        box = self.picture.boxes.get(node) if self.picture is not None and node is not None else None
        if box is not None:
            region = Region(box.x, box.y, box.width, box.height)
            self.scroll_to_region(region, animate=False, center=center, immediate=True, force=True)
        elif self.picture is not None:
            self.scroll_to(0, 0, animate=False, immediate=True)

    # -- painting ----------------------------------------------------------------------
    def render_line(self, y: int) -> Strip:
        scroll_x, scroll_y = self.scroll_offset
        width = self.scrollable_content_region.width
        row = scroll_y + y
        picture = self.picture
        if picture is None or self.scene is None or row >= picture.height:
            return Strip.blank(width, self.rich_style)
        return self._row_strip(row).crop_extend(scroll_x, scroll_x + width, self.rich_style)

    def _row_strip(self, row: int) -> Strip:
        picture, scene = self.picture, self.scene
        assert picture is not None and scene is not None
        spans = picture.row_spans[row]
        looks = []
        for x0, x1, node in spans:
            look = "selected" if node == self.selected and node != scene.current else scene.look(node)
            box = picture.boxes[node]
            slots = tuple((x, w, scene.slot_text(kind, node)) for kind, x, sy, w in box.slots if sy == row)
            looks.append((x0, x1, node, look, slots))
        key = tuple(looks)
        cached = self._rows.get(row)
        if cached is not None and cached[0] == key:
            return cached[1]
        strip = self._paint(picture.rows[row], looks)
        self._rows[row] = (key, strip)
        return strip

    def _paint(self, text: str, looks: list) -> Strip:
        base = self.get_component_rich_style("graph--lines")
        segments: list[Segment] = []
        cursor = 0
        chars = list(text.ljust(max((x1 for _, x1, *_ in looks), default=0)))
        for x0, x1, node, look, slots in looks:
            for x, w, slot_text in slots:
                chars[x:x + w] = list(slot_text[:w].center(w))
            if x0 > cursor:
                segments.append(Segment("".join(chars[cursor:x0]), base))
            style: Style = self.get_component_rich_style(f"graph--{look}")
            segments.append(Segment("".join(chars[x0:x1]), style))
            cursor = x1
        if cursor < len(chars):
            segments.append(Segment("".join(chars[cursor:]), base))
        return Strip(segments)

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
        if not self._dragged and self.picture is not None and offset is not None:
            node = self.picture.node_at(offset.x + int(self.scroll_x), offset.y + int(self.scroll_y))
            if node is not None:
                self.post_message(self.NodeClicked(node))

