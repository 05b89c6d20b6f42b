"""Our own charts (descent and batches maps, methods curves, run charts) as files: SVG, PNG or GIF.

The charts are small SVGs that gradviz writes itself from a handful of elements (rect,
line, polyline, circle, text, g with translate, clip paths); this module rasterises
exactly that subset with Pillow, so PNG and GIF need no SVG library, and themes them:
light (white paper, the default for files) or dark. A GIF is a list of such SVGs, one per
frame (a descent path growing step by step). Pillow is the `images` extra; without it,
.png and .gif are refused in one line that names it.
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Sequence
from xml.etree import ElementTree as ET

from gradviz.errors import ExportError

THEMES = ("light", "dark")
CHART_FORMATS = (".svg", ".png", ".gif")
PILLOW_MISSING = "writing {suffix} needs Pillow: pip install 'gradviz[images]' (or Pillow==13.0.0)"
DARK = {"white": "#1e1e1e", "black": "#dcdcdc", "#eee": "#3a3a3a"}
PALE_SPREAD = 64  # a tint's channels lie this close (#fde2e2: 27); viridis' yellow #fde725 spans 216
FONT_FILES = ("/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf", "DejaVuSans.ttf")
SVG_NS = "{http://www.w3.org/2000/svg}"


def themed(svg: str, theme: str = "light") -> str:
    """The chart in `theme`: light is as drawn (black on white); dark swaps paper and ink,
    leaving the data's own colours (paths, heat maps) alone."""
    if theme == "light":
        return svg
    for light, dark in DARK.items():
        svg = re.sub(rf'(fill|stroke)="{re.escape(light)}"', rf'\1="{dark}"', svg)
    svg = re.sub(r'fill="(#[0-9a-fA-F]{6})"', lambda m: f'fill="{_darkened(m.group(1))}"', svg)
    # text with no fill of its own inherits the root's: make the default ink light too
    return re.sub(r"<svg ", f'<svg fill="{DARK["black"]}" ', svg, count=1)


def _darkened(colour: str) -> str:
    """A pale background tint (a region band) as a deep one, so light ink stays readable
    on it; the data's saturated colours are left as they are, bright ones too (a heat
    map's top yellow is as light as a tint but far from grey)."""
    if colour.lower() == "#ffffff":  # paper is written "white"; #ffffff is a data colour (a path's)
        return colour
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    if 0.2126 * r + 0.7152 * g + 0.0722 * b < 0.85 * 255 or max(r, g, b) - min(r, g, b) > PALE_SPREAD:
        return colour
    return "#" + "".join(f"{round(c * 0.3):02x}" for c in (r, g, b))


def chart_format(path: Path, what: str) -> str:
    """The file's format from its extension; ExportError naming the ones `what` is written as."""
    suffix = path.suffix.lower()
    if suffix not in CHART_FORMATS:
        raise ExportError(f"{path}: {what} is written as .svg, .png or .gif, not {suffix or 'no extension'}")
    if suffix != ".svg":
        require_pillow(suffix)
    return suffix


def require_pillow(suffix: str) -> None:
    """ExportError in one line when Pillow is not installed."""
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ExportError(PILLOW_MISSING.format(suffix=suffix)) from None


def write_chart(path: Path, frames: Sequence[str], theme: str = "light", frame_ms: int = 200,
                scale: float = 1.0, what: str = "the chart") -> Path:
    """Write the chart: SVG and PNG show the last frame (the whole picture), GIF every frame."""
    from gradviz.draw.export import write_file

    path = Path(path)
    suffix = chart_format(path, what)
    frames = [themed(svg, theme) for svg in frames]
    if suffix == ".svg":
        write_file(path, frames[-1].encode("utf-8"))
    elif suffix == ".png":
        write_file(path, svg_to_png(frames[-1], scale))
    else:
        write_file(path, animate_charts(frames, frame_ms, scale))
    return path


def animate_charts(frames: Sequence[str], frame_ms: int, scale: float = 1.0) -> bytes:
    """The frames as one looping GIF; the last frame is held three times as long."""
    from PIL import Image

    images = [image.convert("RGB") for image in render_frames(frames, scale)]
    palette = [image.quantize(colors=255, dither=Image.Dither.NONE) for image in images]
    durations = [frame_ms] * (len(palette) - 1) + [frame_ms * 3]
    out = io.BytesIO()
    palette[0].save(out, format="GIF", save_all=True, append_images=palette[1:], duration=durations, loop=0)
    return out.getvalue()


GIF_FRAMES = 60  # at most: a path of 200 steps grows a few steps a frame


def growth_steps(longest: int, count: int = GIF_FRAMES) -> list[int]:
    """The steps a growing path is shown at before the whole of it: 0 … longest − 1,
    about `count` of them evenly (the caller adds the whole path as the last frame)."""
    if longest <= 0:
        return []
    if longest < count:
        return list(range(longest))
    return sorted({round((longest - 1) * i / (count - 1)) for i in range(count)})


def _number(value: str | None, default: float = 0.0) -> float:
    if value is None:
        return default
    try:
        return float(value)
    except ValueError:
        pass
    match = re.match(r"-?[\d.]+(?:e-?\d+)?", value.strip())
    return float(match.group(0)) if match else default


def _font(size: float, bold: bool = False):
    from PIL import ImageFont

    for name in FONT_FILES:
        try:
            return ImageFont.truetype(name.replace("Sans.ttf", "Sans-Bold.ttf") if bold else name, max(1, round(size)))
        except OSError:
            continue
    return ImageFont.load_default(size=max(1, round(size)))


class _Painter:
    """Draws the SVG subset onto a Pillow image at `scale` pixels per SVG unit."""

    def __init__(self, width: float, height: float, scale: float):
        from PIL import Image, ImageDraw

        self.scale = scale
        self.clips: dict[str, tuple[int, int, int, int]] = {}
        self.image = Image.new("RGBA", (max(1, round(width * scale)), max(1, round(height * scale))), "white")
        self.draw = ImageDraw.Draw(self.image)

    def colour(self, value: str | None, opacity: float = 1.0):
        from PIL import ImageColor

        if value is None or value == "none":
            return None
        rgb = ImageColor.getrgb(value)[:3]
        return (*rgb, round(255 * opacity))

    def xy(self, x: float, y: float, dx: float, dy: float) -> tuple[float, float]:
        return ((x + dx) * self.scale, (y + dy) * self.scale)

    def paint(self, element: ET.Element, dx: float, dy: float, inherited: dict[str, str]) -> None:
        style = {**inherited, **{k: v for k, v in element.attrib.items()
                                 if k in ("fill", "stroke", "font-size", "font-weight", "text-anchor", "opacity")}}
        tag = element.tag.removeprefix(SVG_NS)
        transform = element.get("transform", "")
        move = re.match(r"translate\(([-\d.e]+)[ ,]+([-\d.e]+)\)", transform)
        if move:
            dx, dy = dx + float(move.group(1)), dy + float(move.group(2))
        if tag == "clipPath":
            box = element.find(f"{SVG_NS}rect")
            if box is not None:
                (x0, y0) = self.xy(_number(box.get("x")), _number(box.get("y")), dx, dy)
                (x1, y1) = self.xy(_number(box.get("x")) + _number(box.get("width")),
                                   _number(box.get("y")) + _number(box.get("height")), dx, dy)
                self.clips[element.get("id", "")] = (round(x0), round(y0), round(x1), round(y1))
            return
        if tag in ("svg", "g"):
            clip = re.match(r"url\(#(.+)\)", element.get("clip-path", ""))
            box = self.clips.get(clip.group(1)) if clip else None
            if box is None:
                for child in element:
                    self.paint(child, dx, dy, style)
                return
            from PIL import Image, ImageDraw  # paint the group apart, then keep what lies inside the clip

            below, below_draw = self.image, self.draw
            self.image = Image.new("RGBA", below.size, (0, 0, 0, 0))
            self.draw = ImageDraw.Draw(self.image)
            for child in element:
                self.paint(child, dx, dy, style)
            inside = self.image.crop(box)
            self.image, self.draw = below, below_draw
            self.image.alpha_composite(inside, (box[0], box[1]))
            return
        opacity = _number(style.get("opacity"), 1.0)
        target = self.draw
        layer = None
        if opacity < 1:  # blend through a layer of its own
            from PIL import Image, ImageDraw

            layer = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
            target = ImageDraw.Draw(layer)
        fill = self.colour(style.get("fill", "black") if tag in ("rect", "circle", "text") else style.get("fill"), opacity)
        stroke = self.colour(style.get("stroke"), opacity)
        width = max(1, round(_number(element.get("stroke-width"), 1.0) * self.scale))
        if tag == "rect":
            x, y = _number(element.get("x")), _number(element.get("y"))
            w, h = element.get("width", "0"), element.get("height", "0")
            w = self.image.width / self.scale if w.endswith("%") else _number(w)
            h = self.image.height / self.scale if h.endswith("%") else _number(h)
            (x0, y0), (x1, y1) = self.xy(x, y, dx, dy), self.xy(x + w, y + h, dx, dy)
            target.rectangle([x0, y0, max(x0, x1 - 1), max(y0, y1 - 1)], fill=fill, outline=stroke,
                             width=width if stroke else 0)
        elif tag == "line":
            points = [self.xy(_number(element.get("x1")), _number(element.get("y1")), dx, dy),
                      self.xy(_number(element.get("x2")), _number(element.get("y2")), dx, dy)]
            target.line(points, fill=stroke or fill, width=width)
        elif tag == "polyline":
            numbers = [float(n) for n in re.split(r"[ ,]+", element.get("points", "").strip()) if n]
            points = [self.xy(numbers[i], numbers[i + 1], dx, dy) for i in range(0, len(numbers) - 1, 2)]
            if len(points) > 1 and stroke is not None:
                target.line(points, fill=stroke, width=width, joint="curve")
        elif tag == "circle":
            cx, cy = self.xy(_number(element.get("cx")), _number(element.get("cy")), dx, dy)
            r = _number(element.get("r")) * self.scale
            target.ellipse([cx - r, cy - r, cx + r, cy + r], fill=fill, outline=stroke, width=width if stroke else 0)
        elif tag == "text":
            self.text(element, dx, dy, style, fill)
        if layer is not None:
            self.image.alpha_composite(layer)

    def text(self, element: ET.Element, dx: float, dy: float, style: dict[str, str], fill) -> None:
        from PIL import Image, ImageDraw

        content = "".join(element.itertext())
        if not content or fill is None:
            return
        font = _font(_number(style.get("font-size"), 12.0) * self.scale, style.get("font-weight") == "bold")
        x, y = self.xy(_number(element.get("x")), _number(element.get("y")), dx, dy)
        anchor = {"middle": "ms", "end": "rs"}.get(style.get("text-anchor", ""), "ls")
        rotate = re.search(r"rotate\(([-\d.]+)", element.get("transform", ""))
        if not rotate:
            self.draw.text((x, y), content, fill=fill, font=font, anchor=anchor)
            return
        left, top, right, bottom = font.getbbox(content, anchor=anchor)
        patch = Image.new("RGBA", (right - left + 2, bottom - top + 2), (0, 0, 0, 0))
        ImageDraw.Draw(patch).text((-left + 1, -top + 1), content, fill=fill, font=font, anchor=anchor)
        turned = patch.rotate(-float(rotate.group(1)), expand=True)
        self.image.alpha_composite(turned, (max(0, round(x - turned.width / 2)), max(0, round(y - turned.height / 2))))


def _root_style(root: ET.Element) -> dict[str, str]:
    return {k: v for k, v in root.attrib.items() if k in ("fill", "font-size")}


def svg_to_png(svg: str, scale: float = 1.0) -> bytes:
    """Rasterise one of gradviz's own chart SVGs (the subset above) as PNG bytes."""
    root = ET.fromstring(svg)
    width, height = _number(root.get("width"), 640), _number(root.get("height"), 480)
    painter = _Painter(width, height, scale)
    painter.paint(root, 0.0, 0.0, _root_style(root))
    out = io.BytesIO()
    painter.image.convert("RGB").save(out, format="PNG")
    return out.getvalue()


def render_frames(frames: Sequence[str], scale: float = 1.0) -> list:
    """Every frame as a Pillow image. The frames of a growing path share their first lines
    (the map, axes, colour bar): those are painted once and each frame paints the rest."""
    rows = [svg.splitlines() for svg in frames]
    common = 0
    while all(common < len(r) for r in rows) and len({r[common] for r in rows}) == 1:
        common += 1
    head = None
    while common > 1 and head is None:  # back off to a prefix that closes as a document
        try:
            head = ET.fromstring("\n".join(rows[0][:common]) + "\n</svg>")
        except ET.ParseError:
            common -= 1
    if head is None:
        return [Image_open(svg_to_png(svg, scale)) for svg in frames]
    painter = _Painter(_number(head.get("width"), 640), _number(head.get("height"), 480), scale)
    painter.paint(head, 0.0, 0.0, _root_style(head))
    base, clips = painter.image, dict(painter.clips)
    images = []
    for r in rows:
        rest = ET.fromstring("\n".join([r[0]] + r[common:]))
        painter.image = base.copy()
        painter.clips = dict(clips)
        from PIL import ImageDraw

        painter.draw = ImageDraw.Draw(painter.image)
        painter.paint(rest, 0.0, 0.0, _root_style(rest))
        images.append(painter.image)
    return images


def Image_open(png: bytes):
    """PNG bytes as a Pillow image."""
    from PIL import Image

    return Image.open(io.BytesIO(png))
