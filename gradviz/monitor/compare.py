"""Runs side by side, without textual: which runs, which settings differ, the overlaid
curves (smoothed, against steps or wall-clock time). The compare app and the plain
printer both draw from here."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from gradviz.errors import TrainingError
from gradviz.monitor.plot import Line
from gradviz.monitor.state import RunView
from gradviz.monitor.x_axis import at_steps, x_values
from gradviz.rundir.paths import is_run_dir

COLORS = ("cyan", "yellow", "magenta", "green", "red", "blue", "bright_white", "orange3")
SMOOTHING = (0.0, 0.6, 0.9, 0.97)  # exponential moving average weights, as TensorBoard's slider
SETTINGS = ("lr", "batch_size", "accum", "optimizer", "momentum", "l2", "dropout", "seed", "epochs",
            "max_steps", "log_every", "val_fraction", "nproc_per_node", "spec")


def find_runs(paths: list[Path]) -> list[Path]:
    """Run directories named, or found one level inside a folder of runs (sorted by name)."""
    runs: list[Path] = []
    for path in paths:
        if not path.is_dir():
            raise TrainingError(f"{path}: no such run directory")
        if is_run_dir(path):
            runs.append(path)
            continue
        inside = sorted(p for p in path.iterdir() if p.is_dir() and is_run_dir(p))
        if not inside:
            raise TrainingError(f"{path}: not a run directory and holds none (no config.json or metrics.jsonl)")
        runs += inside
    return runs


def run_labels(views: list[RunView]) -> list[str]:
    """Short unique names: the folder names, numbered where two are equal."""
    names = [v.paths.root.name for v in views]
    return [name if names.count(name) == 1 else f"{name}#{k + 1}" for k, name in enumerate(names)]


def differing_settings(views: list[RunView]) -> list[tuple[str, list[Any]]]:
    """(setting, value per run) for every setting that is not the same in all runs."""
    rows = []
    for key in SETTINGS:
        values = [_setting(v, key) for v in views]
        if any(value != values[0] for value in values[1:]):
            rows.append((key, values))
    return rows


def _setting(view: RunView, key: str) -> Any:
    value = view.config.get(key)
    if key == "spec" and isinstance(value, str):
        return Path(value).name
    if key == "dropout" and value is None:
        return _spec_dropout(view)
    return value


def _spec_dropout(view: RunView) -> Any:
    """The p the dropout layers trained with when --dropout did not set it (meta.json lists them):
    one number when they agree, else each layer's 'drop1=0.2 drop2=0.5'; None without dropout."""
    layers = [d for d in view.meta.get("dropout") or [] if isinstance(d.get("p"), (int, float))]
    ps = {d["p"] for d in layers}
    if not ps:
        return None
    if len(ps) == 1:
        return ps.pop()
    return " ".join(f"{d['name']}={d['p']:g}" for d in layers)


def smooth(values: list[float], weight: float) -> list[float]:
    """Exponential moving average with bias correction (as TensorBoard); NaN passes through."""
    if weight <= 0:
        return list(values)
    out, avg, n = [], 0.0, 0
    for v in values:
        if not math.isfinite(v):
            out.append(v)
            continue
        n += 1
        avg = weight * avg + (1 - weight) * v
        out.append(avg / (1 - weight ** n))
    return out


def loss_lines(views: list[RunView], labels: list[str], weight: float, x_axis: str) -> list[Line]:
    """The training loss of each run, one colour per run, smoothed, against steps or seconds."""
    lines = []
    for k, (view, label) in enumerate(zip(views, labels)):
        xs = _xs(view, x_axis)
        lines.append(Line(label, xs, smooth(view.series.loss, weight), COLORS[k % len(COLORS)]))
    return lines


def val_lines(views: list[RunView], labels: list[str], x_axis: str) -> list[Line]:
    """Each run's validation loss (epoch ends), as markers in the run's colour."""
    lines = []
    for k, (view, label) in enumerate(zip(views, labels)):
        if not view.series.val_steps:
            continue
        xs = at_steps(view, x_axis, list(view.series.val_steps))
        lines.append(Line(f"{label} val", xs, list(view.series.val_loss), COLORS[k % len(COLORS)], markers=True))
    return lines


def _xs(view: RunView, x_axis: str) -> list[float]:
    return x_values(view, x_axis)


def x_range(lines: list[Line]) -> tuple[float, float]:
    """The x extent of all lines together."""
    xs = [x for line in lines for x in line.xs if math.isfinite(x)]
    return (min(xs), max(xs)) if xs else (0.0, 1.0)
