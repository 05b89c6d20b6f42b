"""Export a trace through Graphviz: DOT built once from the look, rendered to SVG/PNG/PDF/DOT.

The only module that imports the `graphviz` package (to write DOT with correct quoting);
rendering runs the `dot` program. SVGs carry each node's id and full value in its
`<title>`, which browsers show as a tooltip.
"""

from __future__ import annotations

import html
import json
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from gradviz.core.explain import bar
from gradviz.core.fmt import fmt_full, fmt_shape, fmt_value
from gradviz.core.steps import state_at, stepper_steps
from gradviz.core.trace import Trace
from gradviz.draw.dot import NODE_LIMIT, run_dot
from gradviz.draw.fold import MODULE, Fold, fold_look, plan_fold
from gradviz.draw.handoff import BoxSpec
from gradviz.draw.look import (
    CURRENT_FILL,
    STYLES,
    GraphLook,
    Numbers,
    View,
    make_view,
    node_kind,
    sizing_look,
    trace_look,
)
from gradviz.errors import ExportError
from gradviz.files.write import output_path, write_atomic

FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
LABEL_LIMIT = 400  # edge labels are nodes to dot too: drop them on bigger graphs
# A tooltip prints a tensor of up to this many elements whole; a bigger one as its summary and
# its first elements. Graphviz refuses any string over 16,384 characters (a 1×1 convolution's
# 600–1,000 weights printed whole passed it), and nobody reads 1,000 numbers in a tooltip.
FULL_VALUE_LIMIT = 64
FIRST_ELEMENTS = 8
# By default a model's picture opens its modules only as deep as keeps this many boxes: opened
# whole, ResNet-18 (134 nodes at module level) was a 21,378 × 9,024 px PNG; at 23 boxes
# (depth 2) it is 1,565 × 2,024. A graph without modules is not folded by it.
EXPORT_MODULE_BUDGET = 40
FRAME_LIMIT = 1000  # each frame is one run of dot
# `--detail fit` (the default) draws the most detailed form whose picture is at most this wide:
# a full-HD screen or projector (1920 px at Graphviz's 96 dpi) shows it whole with its 11 pt
# text unscaled. Only the width is asked of it: a page of a deep graph scrolls down, as
# documents do, but a picture wider than the screen must be shrunk until it is unreadable.
PAGE_WIDTH_PX = 1920
FIT_FORMS = ("full", "compact", "line", "ops", "dots")
FONT = "Helvetica"
NODE_FONT_PT = 11
EDGE_FONT_PT = 9
EDGE_LOOK = {
    "edge": {"color": "#555555"},
    "edge.pending": {"color": "#c8c8c8", "fontcolor": "#a0a0a0", "style": "dashed"},
    "edge.active": {"color": "#e08a00", "fontcolor": "#a05a00", "penwidth": "2.2"},
}


@dataclass(frozen=True)
class Picture:
    """What one exported image shows: boxes and edges, node tooltips, and a title."""

    look: GraphLook
    tooltips: Mapping[str, str]
    title: str
    detail: str = "full"


def export_format(path: Path) -> str:
    """The Graphviz format for a file name's extension, or an ExportError listing them."""
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        known = ", ".join(sorted(set(FORMATS)))
        raise ExportError(f"cannot export to {path.name!r}: unknown extension (use one of {known})")
    return fmt


def _full(value: np.ndarray | None) -> str:
    """A tensor for a tooltip: whole when small, else its summary and its first elements."""
    if value is not None and np.asarray(value).size > FULL_VALUE_LIMIT:
        first = np.asarray(value).reshape(-1)[:FIRST_ELEMENTS]
        return f"{fmt_value(value)}; first {FIRST_ELEMENTS} (flattened): {fmt_full(first)} …"
    return fmt_full(value)


def tooltip(trace: Trace, node_id: int, view: View) -> str:
    """A node's id, kind, definition and full numbers (those known at this step)."""
    node = trace.graph.nodes[node_id]
    value = trace.values[node_id]
    lines = [f"{node.label} (node {node.id}, {node_kind(trace, node)}, {fmt_shape(np.shape(value))})"]
    if not node.is_leaf:
        lines.append(node.definition)
    known = view.values is None or node_id in view.values
    lines.append(f"value = {_full(value)}" if known else "value: not computed yet")
    if view.phase == "tangent" and view.pass_key is not None and node.op != "const":
        if view.tangents is None or node_id in view.tangents:
            lines.append(f"{node.label}' = ∂{node.label}/∂{view.pass_key} = {_full(trace.tangents[view.pass_key][node_id])}")
    if view.phase == "reverse" and view.pass_key is not None and node.op != "const":
        if view.adjoints is None or node_id in view.adjoints:
            shown = trace.graph.shown_output(view.pass_key)  # c₃ where c was assigned again
            symbol = bar(node.label, shown)
            named = symbol if symbol.startswith("∂") else f"{symbol} = ∂{shown}/∂{node.label}"
            lines.append(f"{named} = "
                         f"{_full(trace.adjoints[view.pass_key][node_id])}")
    return "\n".join(lines)


def make_picture(trace: Trace, step: int | None = None, mode: str = "reverse", wrt: str | None = None,
                 output: str | None = None, detail: str = "full", labels: bool | None = None,
                 node_limit: int = NODE_LIMIT, numbers: Numbers | None = None, fold: Fold | None = None) -> Picture:
    """The picture of step `step` of the stepper's steps (None: the finished pass); a graph
    of more than `node_limit` boxes is folded (fold.plan_fold) and the title says how."""
    if step is None:
        view = make_view(trace, None, mode, wrt, output)
        title = f"{MODE_NAMES[view.phase]}" + (f" ({_pass_name(trace, view)})" if view.pass_key else "")
    else:
        # the stepper's numbering: a step seen live is exported by the number it showed
        steps = stepper_steps(trace, wrt)
        if not 0 <= step <= len(steps):
            raise ExportError(f"--step {step} is out of range: the stepper's steps are 0..{len(steps)}")
        state = state_at(trace, steps, step)
        view = make_view(trace, state)
        title = f"step {step}/{len(steps)}"
        if state.current is not None:
            title += f", {MODE_NAMES[view.phase]}: {trace.graph.nodes[state.current].label}"
            title += f" ({_pass_name(trace, view)})" if view.phase != "forward" else ""
    if fold is None:
        fold = plan_fold(trace.graph, budget=node_limit, module_budget=EXPORT_MODULE_BUDGET)
    if labels is None:
        labels = detail == "full" and len(trace.graph.nodes) <= LABEL_LIMIT and fold.is_identity
    look = fold_look(trace.graph, trace_look(trace, view, detail, labels, long_labels=True, numbers=numbers),
                     fold, detail)
    tips = {}
    for box in look.boxes:
        node_id = look.node_of(box.key)
        if node_id is not None:
            tip = tooltip(trace, node_id, view)
            if box.key.startswith(MODULE):
                tip = f"module {box.key[len(MODULE):]} ({len(fold.members(box.key))} nodes), its output:\n{tip}"
            tips[box.key] = tip
    if fold.note:
        title += f" — {fold.note}"
    return Picture(look, tips, title, detail)


MODE_NAMES = {"forward": "values", "tangent": "forward mode", "reverse": "reverse mode"}


def frame_steps(trace: Trace, mode: str, wrt: str | None = None, output: str | None = None) -> list[int]:
    """The stepper's step numbers a --frames export writes: 0, the values, then the chosen
    mode's pass (`wrt`'s tangent pass, or `output`'s adjoint pass)."""
    steps = stepper_steps(trace, wrt)
    key = None
    if mode == "tangent" and trace.tangents:
        key = wrt if wrt in trace.tangents else next(iter(trace.tangents))
    elif mode == "reverse" and trace.adjoints:
        key = output if output in trace.adjoints else next(iter(trace.adjoints))
    return [0] + [k for k, s in enumerate(steps, start=1)
                  if s.phase == "forward" or (s.phase == mode and s.pass_key == key)]


def _pass_name(trace: Trace, view: View) -> str:
    if view.phase == "tangent":
        return f"∂·/∂{view.pass_key}"
    if view.phase == "reverse":
        return f"∂{trace.graph.shown_output(view.pass_key)}/∂·"
    return "values"


def _node_attrs(box: BoxSpec, detail: str, tip: str | None) -> dict[str, str]:
    kind, *states = box.style.split(".")
    look = STYLES.get(kind, STYLES["op"])
    attrs = {"id": box.key, "shape": look.shape, "fillcolor": look.fill, "color": look.border,
             "style": "filled,rounded" if look.shape == "box" and kind != "parameter" else "filled"}
    if tip:
        attrs["tooltip"] = tip
    if states:  # SVG classes (class="node current"): a page's script and tests find the step's nodes
        attrs["class"] = " ".join(states)
    if "current" in states:
        attrs.update(fillcolor=CURRENT_FILL, penwidth="2.5", color="#c08a00")
    elif "pending" in states:
        attrs.update(fontcolor="#9a9a9a", color="#bbbbbb", fillcolor="#f7f7f7", style=attrs["style"] + ",dashed")
    if detail == "dots":
        attrs.update(shape="circle", width="0.15", height="0.15", fixedsize="true", label="")
        return attrs
    rows = []
    for i, line in enumerate(box.lines):
        text = markup(line) or " "
        bad = i < len(box.line_styles) and box.line_styles[i] and box.line_styles[i].endswith("nonfinite")
        if i == 0 and detail == "full" and len(box.lines) > 1:
            text = f"<B>{text}</B>"
        rows.append(f'<FONT COLOR="#d62728">{text}</FONT>' if bad else text)
    attrs["label"] = "<" + "".join(_spaced(row, box.lines[i], i) for i, row in enumerate(rows)) + ">"
    return attrs


_SUPERSCRIPT = re.compile(r"\^\{([^{}]*)\}")


def markup(line: str) -> str:
    """One line of text as Graphviz HTML: escaped, with e^{v1} as a real superscript.

    The adjoint's bar stays a combining macron on its one letter (v̄1): Graphviz's <O>
    overline lands on the line above in PNG and PDF output."""
    return _SUPERSCRIPT.sub(r"<SUP>\1</SUP>", html.escape(line))


def _spaced(row: str, line: str, index: int) -> str:
    """A line break before each line after the first; a taller one above a barred letter
    (b̄, W̄), whose macron would otherwise sit on the line above and read as an underscore."""
    if index == 0:
        return row
    gap = '<BR/><FONT POINT-SIZE="4"> </FONT><BR/>' if "\u0304" in line else "<BR/>"
    return gap + row


def _label_html(text: str, size: tuple[float, float] | None) -> str:
    body = "<BR/>".join(markup(line) for line in text.split("\n")) or " "
    if size is None:
        return f"<{body}>"
    w, h = size
    return (f'<<TABLE BORDER="0" CELLBORDER="0" CELLPADDING="0" FIXEDSIZE="TRUE" WIDTH="{w:.0f}" '
            f'HEIGHT="{h:.0f}"><TR><TD>{body}</TD></TR></TABLE>>')


def _legend(kinds: set[str]) -> str:
    """The colours of the kinds in this picture, then the states of a step."""
    cells = "".join(
        f'<TD BGCOLOR="{look.fill}" BORDER="1" COLOR="{look.border}">{html.escape(kind)}</TD>'
        for kind, look in STYLES.items()
        if kind in kinds
    )
    cells += f'<TD BGCOLOR="{CURRENT_FILL}" BORDER="1">current</TD><TD BORDER="1" COLOR="#bbbbbb">' \
             '<FONT COLOR="#9a9a9a">pending</FONT></TD><TD BORDER="1"><FONT COLOR="#d62728">non-finite</FONT></TD>'
    return f'<TABLE BORDER="0" CELLSPACING="4" CELLPADDING="3"><TR>{cells}</TR></TABLE>'


@dataclass(frozen=True)
class Sizes:
    """Measured node sizes (inches) and edge label sizes (points), to keep frames still."""

    nodes: Mapping[str, tuple[float, float]]
    labels: Mapping[int, tuple[float, float]]


def dot_source(picture: Picture, sizes: Sizes | None = None, scale: float = 1.0) -> str:
    """The picture as DOT text; with `sizes`, every node and label has a fixed size."""
    import graphviz

    kinds = {box.style.split(".")[0] for box in picture.look.boxes}
    graph = graphviz.Digraph(
        "gradviz",
        graph_attr={"rankdir": "TB", "fontname": FONT, "nodesep": "0.3", "ranksep": "0.35", "newrank": "true",
                    "labelloc": "t", "label": f'<<TABLE BORDER="0"><TR><TD><B>{html.escape(picture.title)}</B>'
                                               f"</TD></TR><TR><TD>{_legend(kinds)}</TD></TR></TABLE>>"},
        node_attr={"fontname": FONT, "fontsize": str(NODE_FONT_PT), "margin": "0.12,0.06"},
        edge_attr={"fontname": FONT, "fontsize": str(EDGE_FONT_PT), "arrowsize": "0.7"},
    )
    if scale != 1.0:  # PNG resolution: Graphviz's default is 96 dots per inch
        graph.attr(dpi=f"{96 * scale:g}")
    look = picture.look
    children: dict[str | None, list] = {}
    for box in look.boxes:
        children.setdefault(box.cluster, []).append(box)
    # in the order the look first meets them (a set's order changes from process to process)
    paths = sorted(dict.fromkeys(p for box in look.boxes if box.cluster for p in _prefixes(box.cluster)),
                   key=lambda p: p.count("."))

    def emit(target, parent: str | None) -> None:
        for box in children.get(parent, ()):
            attrs = _node_attrs(box, picture.detail, picture.tooltips.get(box.key))
            if sizes is not None and box.key in sizes.nodes:
                w, h = sizes.nodes[box.key]
                attrs.update(width=f"{w:.3f}", height=f"{h:.3f}", fixedsize="true")
            target.node(box.key, **attrs)
        for path in paths:
            if (path.rsplit(".", 1)[0] if "." in path else None) == parent:
                with target.subgraph(name=f"cluster_{path}") as sub:
                    sub.attr(label=path.rsplit(".", 1)[-1], style="rounded,dashed", color="#999999",
                             fontcolor="#666666", fontname=FONT)
                    emit(sub, path)

    emit(graph, None)
    for j, edge in enumerate(look.edges):
        attrs = dict(EDGE_LOOK.get(edge.style.removesuffix(".nonfinite"), EDGE_LOOK["edge"]))
        if "." in edge.style:  # SVG classes (class="edge active"), as for nodes
            attrs["class"] = " ".join(edge.style.split(".")[1:])
        if edge.style.endswith(".nonfinite"):
            attrs.update(color="#d62728", fontcolor="#d62728")
        size = sizes.labels.get(j) if sizes is not None else None
        if edge.label is not None or size is not None:
            attrs["label"] = _label_html(edge.label or "", size)
            attrs["tooltip"] = f"{edge.label or ''}"
        if edge.weight != 1:
            attrs["weight"] = str(edge.weight)
        graph.edge(edge.src, edge.dst, **attrs)
    return graph.source


def _prefixes(path: str) -> list[str]:
    parts = path.split(".")
    return [".".join(parts[: i + 1]) for i in range(len(parts))]


_NODE_TITLE = re.compile(r'(<g id="([^"]+)" class="node[^"]*">\s*<title>)([^<]*)(</title>)')
_DOCTYPE = re.compile(r"<!DOCTYPE[^>]*>\s*")


def render(picture: Picture, fmt: str, sizes: Sizes | None = None, scale: float = 1.0) -> bytes:
    """The picture rendered by `dot` (or its DOT text); SVG titles carry the tooltips;
    `scale` multiplies a PNG's resolution (2 or 3 reads on a projector)."""
    source = dot_source(picture, sizes, scale if fmt == "png" else 1.0)
    if fmt == "dot":
        return source.encode("utf-8")
    out = run_dot(source, fmt)
    if fmt != "svg":
        return out

    def title(match: re.Match) -> str:
        tip = picture.tooltips.get(match.group(2))
        return match.group(0) if tip is None else match.group(1) + html.escape(tip, quote=False) + match.group(4)

    # the DOCTYPE only points at a DTD on the web: without it the file needs nothing outside
    svg = _DOCTYPE.sub("", out.decode("utf-8"), count=1)
    return _NODE_TITLE.sub(title, svg).encode("utf-8")


def measure(picture: Picture) -> Sizes:
    """Node and edge-label sizes as `dot` measures them, from one -Tjson run."""
    data = json.loads(run_dot(dot_source(picture), "json"))
    nodes = {
        obj["name"]: (float(obj["width"]), float(obj["height"]))
        for obj in data.get("objects", [])
        if "width" in obj and "nodes" not in obj
    }
    labels: dict[int, tuple[float, float]] = {}
    for j, edge in enumerate(sorted(data.get("edges", []), key=lambda e: e["_gvid"])):
        texts = [op for op in edge.get("_ldraw_", []) if op.get("op") == "T"]
        if texts:
            labels[j] = (max(op["width"] for op in texts) + 4, len(texts) * EDGE_FONT_PT * 1.25 + 4)
    return Sizes(nodes, labels)


def page_size(picture: Picture) -> tuple[int, int]:
    """The picture's size in pixels at 96 dpi (title and legend included), as `dot` lays it out."""
    data = json.loads(run_dot(dot_source(picture), "json"))
    _, _, right, top = (float(v) for v in data["bb"].split(","))
    return round(right * 96 / 72), round(top * 96 / 72)


def fit_detail(trace: Trace, mode: str = "reverse", step: int | None = None, wrt: str | None = None,
               output: str | None = None, node_limit: int = NODE_LIMIT, fold: Fold | None = None,
               page_width: int = PAGE_WIDTH_PX) -> tuple[str, int]:
    """(form, width in px): the most detailed form of the picture that is at most `page_width`
    pixels wide (the least detailed when none is), measured on the finished pass (the widest
    numbers) or on step `step`; what `export --detail fit` draws, as `draw.terminal.fitted`
    does for a terminal's columns."""
    numbers = Numbers(trace)
    for detail in FIT_FORMS:
        width, _ = page_size(make_picture(trace, step, mode, wrt, output, detail, node_limit=node_limit,
                                          numbers=numbers, fold=fold))
        if width <= page_width:
            break
    return detail, width


def write_file(path: Path, data: bytes) -> None:
    """Write bytes whole or not at all (files.write); an unwritable path is a one-line ExportError."""
    write_atomic(path, data, shown=path)


def export_trace(trace: Trace, path: Path, mode: str = "reverse", step: int | None = None,
                 wrt: str | None = None, output: str | None = None, detail: str = "full",
                 node_limit: int = NODE_LIMIT, scale: float = 1.0, fold: Fold | None = None) -> Path:
    """Write one picture of the trace to `path`, its format taken from the extension."""
    fmt = export_format(path)
    picture = make_picture(trace, step, mode, wrt, output, detail, node_limit=node_limit, fold=fold)
    write_file(path, render(picture, fmt, scale=scale))
    return path


def export_frames(trace: Trace, directory: Path, mode: str = "reverse", wrt: str | None = None,
                  output: str | None = None, detail: str = "full", node_limit: int = NODE_LIMIT,
                  gif: Path | None = None, scale: float = 1.0, frame_ms: int = 800,
                  fold: Fold | None = None) -> list[Path]:
    """One SVG per step (step_000.svg …), every frame with the same layout; with `gif`,
    the same frames as one animated GIF too (PNG at `scale`, `frame_ms` per step)."""
    if gif is not None:
        try:
            from PIL import Image  # noqa: F401  (fail before any frame is drawn)
        except ImportError:
            raise ExportError("--gif needs Pillow: pip install 'gradviz[images]' (or Pillow==13.0.0)") from None
    ks = frame_steps(trace, mode, wrt, output)
    if len(ks) > FRAME_LIMIT:
        raise ExportError(f"{MODE_NAMES.get(mode, mode)} has {len(ks) - 1} steps, too many frames to write "
                          f"(at most {FRAME_LIMIT}); export single steps with --step N, or trace a smaller graph")
    # measure every box and label at its widest once, so that no frame moves a node.
    numbers = Numbers(trace)
    fold = fold if fold is not None else plan_fold(trace.graph, budget=node_limit, module_budget=EXPORT_MODULE_BUDGET)
    widest = make_picture(trace, None, mode, wrt, output, detail, node_limit=node_limit, numbers=numbers, fold=fold)
    labels, sizes = frame_sizes(trace, widest, detail, numbers, fold)
    written = []
    pngs = []
    for k in ks:  # named by the stepper's step numbers, so step_028.svg is the stepper's step 28
        picture = make_picture(trace, k, mode, wrt, output, detail, labels, node_limit, numbers, fold)
        path = directory / f"step_{k:03d}.svg"
        svg = render(picture, "svg", sizes)
        if not written:  # every refusal before the folder is made: a refused export leaves nothing behind
            if gif is not None:  # the first frame's size, before any PNG is made
                check_gif_pixels(svg, len(ks), scale)
            try:
                output_path(directory, "--frames").mkdir(parents=True, exist_ok=True)
            except OSError as exc:
                raise ExportError(f"cannot create {directory}: {exc.strerror or exc}") from None
        write_file(path, svg)
        written.append(path)
        if gif is not None:
            pngs.append(render(picture, "png", sizes, scale))
    if gif is not None:
        write_file(gif, animate(pngs, frame_ms))
    return written


def frame_sizes(trace: Trace, widest: Picture, detail: str, numbers: Numbers,
                fold: Fold) -> tuple[bool, Sizes | None]:
    """(edge labels shown, sizes) for a series of frames drawn like `widest` (the finished
    pass): every box and label measured at its widest over all steps, once, so that no
    frame moves a node."""
    labels = any(edge.label is not None for edge in widest.look.edges)
    sizing = fold_look(trace.graph, sizing_look(trace, detail, labels, long_labels=True, numbers=numbers), fold, detail)
    same = [box.key for box in widest.look.boxes] == [box.key for box in sizing.boxes]
    return labels, measure(replace(widest, look=sizing)) if same else None


GIF_PIXELS = 100_000_000  # frames × pixels: every frame is held decoded (RGB) while the GIF is made
_SVG_SIZE = re.compile(rb'<svg[^>]*?width="([\d.]+)pt"[^>]*?height="([\d.]+)pt"')


def check_gif_pixels(svg: bytes, frames: int, scale: float) -> None:
    """frames × pixels of the GIF, from the first frame's size in points, within GIF_PIXELS
    (the lecture's 15 frames at --scale 10 took 46 s and 3.8 GB)."""
    from gradviz.budgets import Factor, check_work

    found = _SVG_SIZE.search(svg)
    if found is None:
        return
    width, height = (float(v) / 72 * 96 * scale for v in found.groups())
    check_work("the GIF", [Factor("frames", frames, "--mode or a smaller graph"),
                           Factor(f"pixels a frame ({width:.0f}×{height:.0f} at --scale {scale:g})", width * height, "--scale")],
               GIF_PIXELS, "pixels")


def animate(pngs: list[bytes], frame_ms: int = 800) -> bytes:
    """PNG frames as one looping GIF, each on a white canvas as big as the biggest frame
    (a longer title can widen one frame)."""
    import io

    from PIL import Image

    frames = [Image.open(io.BytesIO(png)).convert("RGB") for png in pngs]
    width = max(f.width for f in frames)
    height = max(f.height for f in frames)
    canvases = []
    for frame in frames:
        canvas = Image.new("RGB", (width, height), "white")
        canvas.paste(frame, ((width - frame.width) // 2, 0))
        canvases.append(canvas.quantize(colors=255, dither=Image.Dither.NONE))
    out = io.BytesIO()
    canvases[0].save(out, format="GIF", save_all=True, append_images=canvases[1:], duration=frame_ms, loop=0)
    return out.getvalue()

