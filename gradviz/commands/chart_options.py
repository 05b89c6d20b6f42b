"""The options every chart file shares (descent, batches, methods): --theme, --frame-ms, --scale."""

from __future__ import annotations

import argparse

from gradviz.draw.chart_file import THEMES


def add_theme_option(parser: argparse.ArgumentParser) -> None:
    """`--theme light|dark`: light (white paper) by default for files."""
    parser.add_argument("--theme", choices=THEMES, default="light",
                        help="colours of the written file: light (white paper, the default) or dark")


def add_chart_options(parser: argparse.ArgumentParser, animated: bool = True) -> None:
    """--theme, --scale and (for charts that grow) --frame-ms."""
    add_theme_option(parser)
    parser.add_argument("--scale", type=_scale, default=1.0, metavar="S",
                        help="PNG and GIF resolution as a multiple of the SVG's size: 2 or 3 for a projector")
    if animated:
        parser.add_argument("--frame-ms", type=_frame_ms, default=120, metavar="MS",
                            help="with a .gif: milliseconds per frame (default 120; the last is held 3×)")


def _bounded(convert, low: float, high: float, what: str, unit: str = ""):
    """An argparse type: `convert(text)` within [low, high], else one line saying why."""
    def check(text: str):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {what}") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{text} is out of range: {low:g} to {high:g}{unit}")
        return value
    return check


_scale = _bounded(float, 0.25, 8, "a number")
_frame_ms = _bounded(int, 10, 10_000, "a whole number of milliseconds", " ms")
