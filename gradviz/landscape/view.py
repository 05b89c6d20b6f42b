"""A landscape as a map: the surface, the projected trajectory, the title; terminal and SVG."""

from __future__ import annotations

import numpy as np
from rich.text import Text

from gradviz.descent.surface import Surface, Track, Window
from gradviz.descent.svg import map_svg
from gradviz.descent.terminal import render_map
from gradviz.landscape.compute import Landscape


def landscape_surface(land: Landscape) -> Surface:
    """The grid as a Surface whose cells are centred on the grid points (rows top = largest β)."""
    da = (land.alphas[-1] - land.alphas[0]) / (len(land.alphas) - 1)
    db = (land.betas[-1] - land.betas[0]) / (len(land.betas) - 1)
    window = Window(land.alphas[0] - da / 2, land.alphas[-1] + da / 2, land.betas[0] - db / 2, land.betas[-1] + db / 2)
    return Surface(window, np.flipud(land.values), land.axis_names[0], land.axis_names[1], "loss")


def landscape_tracks(land: Landscape) -> list[Track]:
    """The projected trajectory (PCA) and θ* at the centre."""
    tracks = []
    if land.trajectory is not None:
        first = land.steps[0]
        tracks.append(Track(f"trajectory: {len(land.trajectory)} snapshots from step {first}", land.trajectory,
                            "projected; ends at θ*"))
    tracks.append(Track("θ* (trained parameters)", np.zeros((1, 2)), f"loss {land.centre_value:.5g}"))
    return tracks


def landscape_title(land: Landscape) -> str:
    """'two_layer_mlp: loss on a slice along filter-normalised random directions, 25×25'."""
    how = "filter-normalised random directions" if land.method == "random" else "the trajectory's first two PCs"
    return f"{land.name}: loss along {how}, {len(land.alphas)}×{len(land.betas)}"


def landscape_map(land: Landscape, width: int, height: int, cells: str = "half") -> Text:
    """The terminal map."""
    return render_map(landscape_surface(land), landscape_tracks(land), width, height, cells=cells,
                      title=landscape_title(land))


def landscape_svg(land: Landscape) -> str:
    """The SVG map."""
    return map_svg(landscape_surface(land), landscape_tracks(land), landscape_title(land))


def landscape_summary(land: Landscape) -> str:
    """Plain numbers: the centre, the range, and the projected trajectory."""
    window = landscape_surface(land).window  # what the map's axes span: cells centred on the grid points
    lines = [landscape_title(land),
             f"loss at θ*: {land.centre_value:.6g} (grid centre {land.values[len(land.betas) // 2, len(land.alphas) // 2]:.6g})",
             f"grid: min {land.values.min():.6g}, max {land.values.max():.6g}; "
             f"{land.axis_names[0]} and {land.axis_names[1]} at points in [{land.alphas[0]:.4g}, {land.alphas[-1]:.4g}]; "
             f"the map's cells around them span [{window.x0:.4g}, {window.x1:.4g}] × [{window.y0:.4g}, {window.y1:.4g}], "
             "as its axes show"]
    if land.note:
        lines.append(f"note: {land.note}")
    if land.trajectory is not None:
        lines.append("projected trajectory (step: coordinates)")
        for step, (a, b) in zip(land.steps, land.trajectory):
            lines.append(f"  {'final' if step < 0 else step:>7}: ({a + 0.0:.5g}, {b + 0.0:.5g})")
    return "\n".join(lines) + "\n"
