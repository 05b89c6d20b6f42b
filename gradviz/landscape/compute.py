"""A landscape: the grid of losses on the slice, its axes, and the projected trajectory."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from gradviz.landscape.directions import filter_normalised, pca_directions, project
from gradviz.landscape.grid import batched_grid, centre_loss, pointwise_grid
from gradviz.landscape.load import LandscapeError, Subject

MAX_GRID = 201


@dataclass(frozen=True)
class Landscape:
    """values[r, c] = loss at θ* + alphas[c]·d1 + betas[r]·d2 (betas ascending)."""

    name: str
    method: str  # 'random' or 'pca'
    alphas: np.ndarray
    betas: np.ndarray
    values: np.ndarray
    centre_value: float  # the model's own loss at θ*, computed without the grid
    trajectory: np.ndarray | None  # (n, 2) projected snapshots, the last one θ* itself
    steps: tuple[int, ...]  # the step of each trajectory point
    explained: tuple[float, float] | None  # PCA: share of the trajectory's variance per axis
    axis_names: tuple[str, str]
    note: str = ""  # why the grid was evaluated point by point, when it was


def axis(half: float, n: int) -> np.ndarray:
    """n points from −half to half; the middle one exactly 0 when n is odd (the centre θ*)."""
    values = np.linspace(-half, half, n)
    if n % 2 == 1:
        values[n // 2] = 0.0
    return values


def check_corners(subject: Subject, d1, d2, half: float) -> None:
    """θ* ± half·d1 ± half·d2 must be finite numbers: a span past the float range gives a map of NaN."""
    for n, centre in subject.centre.items():
        reach = centre.abs() + half * (d1[n].abs() + d2[n].abs())
        if not bool(torch.isfinite(reach).all()):
            raise LandscapeError(f"--span {half:g} takes the parameter {n} past the range of "
                                 f"{str(centre.dtype).removeprefix('torch.')}; give a smaller --span")


def compute_landscape(subject: Subject, method: str = "random", n: int = 25, span: float | None = None,
                      seed: int = 0, budget_bytes: int = 256 << 20, batched: bool = True) -> Landscape:
    """Pick the directions, lay the grid, evaluate it (batched, or per point with batched=False)."""
    if not 3 <= n <= MAX_GRID:
        raise LandscapeError(f"--grid must lie in 3..{MAX_GRID}, got {n}")
    if span is not None and not (np.isfinite(span) and span > 0):
        raise LandscapeError(f"--span must be a positive number, got {span}")
    trajectory, steps, explained = None, (), None
    if method == "pca":
        if len(subject.trajectory) < 3:
            raise LandscapeError(f"{subject.name}: PCA directions need a trajectory of at least 3 snapshots; "
                                 "train with --snapshots N (or use --directions random)")
        snaps = [params for _, params in subject.trajectory]
        d1, d2, explained = pca_directions(subject.centre, snaps)
        steps = tuple(step for step, _ in subject.trajectory)
        last = subject.trajectory[-1][1]
        if not all(torch.equal(last[k], subject.centre[k]) for k in subject.centre):
            snaps, steps = snaps + [subject.centre], steps + (-1,)  # -1: the final parameters
        trajectory = project(snaps, subject.centre, d1, d2).numpy()
        coords = trajectory
        half = span if span is not None else 1.25 * float(np.abs(coords).max() or 1.0)
        names = (f"PC1 ({100 * explained[0]:.0f}%)", f"PC2 ({100 * explained[1]:.0f}%)")
    elif method == "random":
        gen = torch.Generator().manual_seed(seed)
        d1, d2 = filter_normalised(subject.centre, gen), filter_normalised(subject.centre, gen)
        half = span if span is not None else 1.0
        names = ("α (random dir 1)", "β (random dir 2)")
    else:
        raise LandscapeError(f"unknown directions {method!r}; use random or pca")
    check_corners(subject, d1, d2, half)
    alphas, betas = axis(half, n), axis(half, n)
    note = ""
    if batched:
        try:
            values = batched_grid(subject, d1, d2, alphas, betas, budget_bytes)
        except (RuntimeError, NotImplementedError) as exc:
            # A forward torch.vmap cannot batch (.item(), data-dependent control flow) still
            # has a landscape: one point at a time.
            note = f"torch.vmap could not batch this model ({str(exc).splitlines()[0][:120]}); evaluated point by point"
            values = pointwise_grid(subject, d1, d2, alphas, betas)
    else:
        values = pointwise_grid(subject, d1, d2, alphas, betas)
    if not np.isfinite(values).any():
        raise LandscapeError(f"{subject.name}: the loss is not finite anywhere on the slice (span {half:g}); "
                             "give a smaller --span")
    return Landscape(subject.name, method, alphas, betas, values, centre_loss(subject), trajectory, steps,
                     explained, names, note)
