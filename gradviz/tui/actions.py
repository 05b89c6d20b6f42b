"""What the stepper's keys do, as plain functions of the timeline and k (textual-free where possible).

Mode and pass switching return the new k; export and training return what happened in
words, because they depend on modules other branches provide (gradviz.draw, gradviz.train,
gradviz.monitor) and must say plainly when those are missing.
"""

from __future__ import annotations

from pathlib import Path

from gradviz.tui.scene import Scene
from gradviz.tui.timeline import Timeline


def phases(timeline: Timeline) -> list[str]:
    """The phases the steps hold, in order."""
    seen: list[str] = []
    for p in timeline.passes:
        if p.phase not in seen:
            seen.append(p.phase)
    return seen


def next_phase_start(timeline: Timeline, k: int, direction: int = 1) -> int:
    """The first step of the next (or previous) phase; past the last phase, back to step 0."""
    starts = [0] + [timeline.find_pass(phase).start for phase in phases(timeline)]  # type: ignore[union-attr]
    current = timeline.pass_at(k)
    index = 0 if current is None else phases(timeline).index(current.phase) + 1
    if direction < 0 and k > starts[index]:
        return starts[index]  # back to the start of this phase first
    return starts[(index + direction) % len(starts)]


def switch_pass(timeline: Timeline, k: int, phase: str) -> tuple[int, str]:
    """The same point in the next pass of `phase` (next input's tangents, next output's adjoints)."""
    passes = timeline.phase_passes(phase)
    what = "input" if phase == "tangent" else "output"
    symbol = (lambda key: f"∂·/∂{key}") if phase == "tangent" else (lambda key: f"∂{key}/∂·")
    if not passes:
        return k, f"this trace has no {'tangent' if phase == 'tangent' else 'adjoint'} passes"
    current = timeline.pass_at(k)
    if current is None or current.phase != phase:
        target = passes[0]
        return target.start, f"{phase} pass {target.number} of {target.count}: {symbol(target.key)}"
    if len(passes) == 1:
        return k, f"only one {what} ({current.key}): one {phase} pass"
    target = passes[(passes.index(current) + 1) % len(passes)]
    offset = min(k - current.start, len(target) - 1)
    return target.start + offset, f"{phase} pass {target.number} of {target.count}: {symbol(target.key)}"


def export_path(source: str, k: int, directory: Path | None = None) -> Path:
    """A file name that says what it holds: gradviz-step-<k>.svg, numbered if taken."""
    directory = directory or Path.cwd()
    stem = "gradviz-" + (Path(source).stem if source.endswith(".py") else "step")
    path = directory / f"{stem}-{k}.svg"
    number = 1
    while path.exists():
        number += 1
        path = directory / f"{stem}-{k}-{number}.svg"
    return path


def export_svg(trace, scene: Scene, detail: str, source: str) -> tuple[Path | None, str]:
    """Write the graph at this step as SVG through gradviz.draw.export; (path, message)."""
    try:
        from gradviz.draw import export as exporter
    except ImportError:
        return None, "SVG export is not available in this version (it needs gradviz.draw.export)"
    path = export_path(source, scene.k)
    try:
        exporter.export_trace(trace, path, state=scene.state, fmt="svg")  # type: ignore[attr-defined]
    except Exception as exc:  # the exporter's own errors are GradvizErrors with a clear message
        return None, f"export failed: {getattr(exc, 'message', exc)}"
    return path, f"wrote {path}"


def training_screen(spec_path: str | None):
    """(screen, message): the live monitor training `spec_path`, or why there is none."""
    if spec_path is None:
        return None, "t trains a model spec (gradviz step FILE.py); this source is an expression"
    try:
        from gradviz.monitor import launch  # type: ignore[attr-defined]
    except ImportError:
        return None, "training from the stepper is not available in this version (needs gradviz.train and gradviz.monitor)"
    return launch(spec_path), ""
