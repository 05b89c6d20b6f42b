"""The finite-difference error curve as a self-contained SVG: log-log axes, best h, regions."""

from __future__ import annotations

import math
from html import escape

from gradviz.methods.numeric import SLOPES, THEORY, Sweep

WIDTH, HEIGHT = 720, 496
LABEL_CHAR_WIDTH = 7  # px per character of 12 px sans-serif, at most (for placing a label inside the plot)
LEFT, RIGHT, TOP, BOTTOM = 70, 20, 76, 120  # margins: the top one holds the title, the legend and the theory marks
COLOURS = {"forward": "#d08700", "central": "#1f77b4"}
REGION_FILL = {"rounding": "#fde2e2", "truncation": "#e2ecfd"}


def error_curve_svg(forward: Sweep, central: Sweep, title: str) -> str:
    """An SVG page plotting |error| against h for both difference formulas."""
    sweeps = (forward, central)
    logs_h = [math.log10(h) for h in forward.steps]
    x_lo, x_hi = min(logs_h), max(logs_h)
    errors = [math.log10(max(e, 1e-17)) for s in sweeps for e in s.errors if not math.isnan(e)]
    y_lo, y_hi = math.floor(min(errors)), math.ceil(max(errors))
    y_hi = max(y_hi, y_lo + 1)
    plot_w, plot_h = WIDTH - LEFT - RIGHT, HEIGHT - TOP - BOTTOM

    def x(log_h: float) -> float:
        return LEFT + (log_h - x_lo) / (x_hi - x_lo) * plot_w

    def y(log_e: float) -> float:
        return TOP + (y_hi - log_e) / (y_hi - y_lo) * plot_h

    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{HEIGHT}" '
           f'viewBox="0 0 {WIDTH} {HEIGHT}" font-family="sans-serif" font-size="12">',
           f'<rect width="{WIDTH}" height="{HEIGHT}" fill="white"/>',
           f'<text x="{LEFT}" y="22" font-size="14" font-weight="bold">{escape(title)}</text>']
    for k in range(y_lo, y_hi + 1):  # grid and y labels, one per decade
        out.append(f'<line x1="{LEFT}" x2="{LEFT + plot_w}" y1="{y(k):.1f}" y2="{y(k):.1f}" stroke="#eee"/>')
        if (k - y_lo) % 2 == 0 or y_hi - y_lo <= 8:
            out.append(f'<text x="{LEFT - 6}" y="{y(k) + 4:.1f}" text-anchor="end">1e{k}</text>')
    for log_h in logs_h:
        out.append(f'<line x1="{x(log_h):.1f}" x2="{x(log_h):.1f}" y1="{TOP + plot_h}" y2="{TOP + plot_h + 5}" stroke="black"/>')
        out.append(f'<text x="{x(log_h):.1f}" y="{TOP + plot_h + 18}" text-anchor="middle" font-size="10">1e{round(log_h)}</text>')
    out.append(f'<rect x="{LEFT}" y="{TOP}" width="{plot_w}" height="{plot_h}" fill="none" stroke="black"/>')
    out.append(f'<text x="{LEFT + plot_w / 2}" y="{TOP + plot_h + 34}" text-anchor="middle">step h</text>')
    out.append(f'<text x="18" y="{TOP + plot_h / 2}" text-anchor="middle" '
               f'transform="rotate(-90 18 {TOP + plot_h / 2})">relative error vs AD</text>')
    for row, sweep in enumerate(sweeps):
        colour = COLOURS[sweep.method]
        best_x = x(math.log10(sweep.best_step))
        # the region band under the axis: rounding left of the best h, truncation right of it
        band_y = TOP + plot_h + 44 + row * 34
        out.append(f'<rect x="{LEFT}" y="{band_y}" width="{best_x - LEFT:.1f}" height="24" fill="{REGION_FILL["rounding"]}"/>')
        out.append(f'<rect x="{best_x:.1f}" y="{band_y}" width="{LEFT + plot_w - best_x:.1f}" height="24" '
                   f'fill="{REGION_FILL["truncation"]}"/>')
        out.append(f'<text x="{(LEFT + best_x) / 2:.1f}" y="{band_y + 16}" text-anchor="middle">'
                   f'{sweep.method}: rounding ∝ ε/h</text>')
        out.append(f'<text x="{(best_x + LEFT + plot_w) / 2:.1f}" y="{band_y + 16}" text-anchor="middle">'
                   f'truncation ∝ {SLOPES[sweep.method]}</text>')
        out.append(f'<line x1="{best_x:.1f}" x2="{best_x:.1f}" y1="{TOP}" y2="{band_y + 24}" stroke="{colour}" '
                   f'stroke-dasharray="4 3"/>')
        points = [(x(math.log10(h)), y(math.log10(max(e, 1e-17)))) for h, e in zip(sweep.steps, sweep.errors)
                  if not math.isnan(e)]
        path = " ".join(f"{px:.1f},{py:.1f}" for px, py in points)
        out.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        for px, py in points:
            out.append(f'<circle cx="{px:.1f}" cy="{py:.1f}" r="3" fill="{colour}"/>')
        label = f"best h = 1e{round(math.log10(sweep.best_step))} (error {sweep.best_error:.1e})"
        best_y = y(math.log10(max(sweep.best_error, 1e-17)))
        # under the best point, or over it where that would cross the axis and its tick labels;
        # right of the best h, or left of it where that would run out of the plot
        label_y = best_y + 16 if best_y + 16 <= TOP + plot_h - 4 else best_y - 8
        fits_right = best_x + 4 + LABEL_CHAR_WIDTH * len(label) <= LEFT + plot_w
        anchor = f'x="{best_x + 4:.1f}"' if fits_right else f'x="{best_x - 4:.1f}" text-anchor="end"'
        out.append(f'<text {anchor} y="{label_y:.1f}" fill="{colour}">{label}</text>')
        theory_x = x(math.log10(THEORY[sweep.method]))
        out.append(f'<text x="{theory_x:.1f}" y="{TOP - 4 - 12 * row}" fill="{colour}" text-anchor="middle" '
                   f'font-size="10">▼ theory {sweep.method}</text>')
    legend_x = LEFT  # a row of its own under the title: a long title never runs into it
    for row, sweep in enumerate(sweeps):
        legend_x += 170 * row
        ly = 42
        out.append(f'<line x1="{legend_x}" x2="{legend_x + 20}" y1="{ly - 4}" y2="{ly - 4}" '
                   f'stroke="{COLOURS[sweep.method]}" stroke-width="2"/>')
        out.append(f'<text x="{legend_x + 26}" y="{ly}">{sweep.method} differences</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"
