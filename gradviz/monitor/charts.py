"""`gradviz export RUN_DIR… -o curves.svg`: the dashboard's charts as a self-contained SVG.

The loss curves of every run overlaid (a colour per run; the legend names each run with
the settings that differ), the per-layer gradient-norm heatmap of each run (log colour,
as the dashboard) and the first run's latest gradient histograms. Plain SVG text: no
plotting library, no torch.
"""

from __future__ import annotations

import math
from html import escape
from pathlib import Path

from gradviz.errors import ExportError
from gradviz.monitor.compare import differing_settings, run_labels
from gradviz.monitor.heat import ramp_color
from gradviz.monitor.state import RunView

SVG_COLORS = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f")
WIDTH = 900


def export_charts(run_dirs: list[Path], out: Path) -> Path:
    """Write the charts of the runs to out (.svg only); the path written."""
    if out.suffix.lower() != ".svg":
        raise ExportError(f"{out}: run charts are written as .svg (convert it for .png/.pdf)")
    views = []
    for path in run_dirs:
        view = RunView(path)
        while view.poll():
            pass
        if not view.records:
            raise ExportError(f"{path}: the run has no logged steps to chart")
        views.append(view)
    svg = render_svg(views)
    from gradviz.files.write import write_atomic

    write_atomic(out, svg, shown=out)
    return out


def render_svg(views: list[RunView]) -> str:
    """The whole picture as SVG text."""
    labels = run_labels(views)
    parts: list[str] = []
    y = 10
    legend = _legend(views, labels)
    h, body = _loss_chart(views, y, legend)
    parts.append(body)
    y += h + 20
    for view, label in zip(views, labels):
        h, body = _heatmap(view, label, y)
        parts.append(body)
        y += h + 20
    if views[0].hists:
        h, body = _histograms(views[0], labels[0], y)
        parts.append(body)
        y += h + 20
    head = (f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{y}" viewBox="0 0 {WIDTH} {y}" '
            f'font-family="sans-serif" font-size="12"><rect width="100%" height="100%" fill="white"/>')
    return head + "".join(parts) + "</svg>\n"


def _legend(views: list[RunView], labels: list[str]) -> list[str]:
    diffs = differing_settings(views)
    out = []
    for k, label in enumerate(labels):
        settings = ", ".join(f"{key}={values[k]}" for key, values in diffs)
        out.append(label + (f" ({settings})" if settings else ""))
    return out


def _loss_chart(views: list[RunView], top: int, legend: list[str]) -> tuple[int, str]:
    left, width, height = 70, WIDTH - 90, 260
    xs = [s for v in views for s in v.series.steps]
    ys = [y for v in views for y in v.series.loss if math.isfinite(y)]
    if not ys:
        ys = [0.0, 1.0]
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y0, y1 = min(ys), max(ys) if max(ys) > min(ys) else min(ys) + 1
    sx = lambda s: left + (s - x0) / (x1 - x0) * width  # noqa: E731 - local scales
    sy = lambda v: top + 30 + (1 - (v - y0) / (y1 - y0)) * height  # noqa: E731
    every = views[0].log_every
    note = f" (each point the mean over a {every}-step logging window)" if every and every > 1 else ""
    out = [f'<text x="{left}" y="{top + 14}" font-weight="bold">training loss{escape(note)}</text>',
           f'<rect x="{left}" y="{top + 30}" width="{width}" height="{height}" fill="none" stroke="#999"/>']
    for value in (y0, (y0 + y1) / 2, y1):
        out.append(f'<text x="{left - 6}" y="{sy(value) + 4:.1f}" text-anchor="end">{value:.4g}</text>')
    for step in (x0, x1):
        out.append(f'<text x="{sx(step):.1f}" y="{top + 30 + height + 16}" text-anchor="middle">{step:g}</text>')
    out.append(f'<text x="{left + width / 2}" y="{top + 30 + height + 30}" text-anchor="middle">step</text>')
    for k, view in enumerate(views):
        color = SVG_COLORS[k % len(SVG_COLORS)]
        points = [f"{sx(s):.1f},{sy(v):.1f}" for s, v in zip(view.series.steps, view.series.loss) if math.isfinite(v)]
        if points:
            out.append(f'<polyline fill="none" stroke="{color}" stroke-width="1.5" points="{" ".join(points)}"/>')
        for s, v in zip(view.series.val_steps, view.series.val_loss):
            if math.isfinite(v):
                out.append(f'<circle cx="{sx(s):.1f}" cy="{sy(v):.1f}" r="2.5" fill="{color}"/>')
    for k, text in enumerate(legend):
        ly = top + 44 + 16 * k
        color = SVG_COLORS[k % len(SVG_COLORS)]
        out.append(f'<line x1="{left + width - 330}" y1="{ly - 4}" x2="{left + width - 310}" y2="{ly - 4}" '
                   f'stroke="{color}" stroke-width="3"/><text x="{left + width - 305}" y="{ly}">{escape(text)}</text>')
    return 30 + height + 34, "".join(out)


def _heatmap(view: RunView, label: str, top: int) -> tuple[int, str]:
    layers = view.layers
    left, width, row = 120, WIDTH - 140, 14
    columns = view.series.grad
    logs = [math.log10(v) for name in layers for v in columns.get(name, []) if 0 < v < math.inf]
    lo, hi = (min(logs), max(logs)) if logs else (0.0, 1.0)
    n = len(view.series.steps)
    cell = width / max(1, n)
    out = [f'<text x="10" y="{top + 14}" font-weight="bold">gradient norm per layer, {escape(label)} '
           f'(log colour {10 ** lo:.3g} … {10 ** hi:.3g}; red: non-finite)</text>']
    for r, name in enumerate(layers):
        y = top + 24 + r * row
        out.append(f'<text x="{left - 6}" y="{y + row - 3}" text-anchor="end">{escape(name)}</text>')
        for i, v in enumerate(columns.get(name, [])):
            if not math.isfinite(v):
                fill = "#d62728"
            elif v <= 0:
                continue
            else:
                fill = ramp_color((math.log10(v) - lo) / ((hi - lo) or 1.0)).triplet.hex
            out.append(f'<rect x="{left + i * cell:.2f}" y="{y}" width="{cell + 0.3:.2f}" height="{row}" fill="{fill}"/>')
    return 24 + row * len(layers), "".join(out)


def _histograms(view: RunView, label: str, top: int) -> tuple[int, str]:
    edges = view.hist_edges
    layers = [name for name in view.layers if name in view.hists]
    left, width, height = 70, (WIDTH - 100) / max(1, len(layers)), 120
    step = view.hist_steps[-1]
    out = [f'<text x="10" y="{top + 14}" font-weight="bold">gradient values at step {step}, {escape(label)} '
           f'(bins log-spaced from ±{edges[len(edges) // 2]:.0e} to ±{edges[-1]:.0e})</text>']
    for k, name in enumerate(layers):
        counts = view.hists[name][-1]
        peak = max(counts) or 1
        x = left + k * width
        bar = (width - 20) / len(counts)
        out.append(f'<text x="{x}" y="{top + 34}">{escape(name)}</text>')
        for i, c in enumerate(counts):
            h = height * c / peak
            out.append(f'<rect x="{x + i * bar:.2f}" y="{top + 40 + height - h:.2f}" width="{bar * 0.9:.2f}" '
                       f'height="{h:.2f}" fill="#1f77b4"/>')
        out.append(f'<text x="{x}" y="{top + 40 + height + 14}">−</text>'
                   f'<text x="{x + width - 30}" y="{top + 40 + height + 14}">+</text>')
    return 40 + height + 20, "".join(out)
