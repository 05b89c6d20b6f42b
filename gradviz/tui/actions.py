"""What the stepper's keys do, as plain functions of the timeline and k (textual-free where possible).

Mode and pass switching return the new k; export and training return what happened in
words, and import gradviz.draw.export / gradviz.monitor only when used (they pull in
graphviz and the trainer's monitor).
"""

from __future__ import annotations

from pathlib import Path

from gradviz.tui.timeline import Timeline


def phases(timeline: Timeline) -> list[str]:
    """The phases the steps hold, in order."""
    seen: list[str] = []
    for p in timeline.passes:
        if p.phase not in seen:
            seen.append(p.phase)
    return seen


def next_phase_start(timeline: Timeline, k: int, direction: int = 1) -> int:
    """The first step of the next (or previous) phase, round the phases the steps hold
    (values → tangents → adjoints → values, as `m` says): step 0, where only the inputs
    are known, is no phase, and `m` from there goes to the first (or, back, the last)."""
    names = phases(timeline)
    starts = [timeline.find_pass(phase).start for phase in names]  # type: ignore[union-attr]
    if not starts:
        return k
    current = timeline.pass_at(k)
    if current is None:  # step 0
        return starts[0] if direction > 0 else starts[-1]
    index = names.index(current.phase)
    if direction < 0 and k > starts[index]:
        return starts[index]  # back to the start of this phase first
    return starts[(index + direction) % len(starts)]


def switch_pass(timeline: Timeline, k: int, phase: str) -> tuple[int, str]:
    """The same point in the next pass of `phase` (next input's tangents, next output's adjoints)."""
    passes = timeline.phase_passes(phase)
    what = "input" if phase == "tangent" else "output"
    shown = timeline.trace.graph.shown_output  # c₃ where the output's name c was assigned again
    symbol = (lambda key: f"∂·/∂{key}") if phase == "tangent" else (lambda key: f"∂{shown(key)}/∂·")
    if not passes:
        return k, f"this trace has no {'tangent' if phase == 'tangent' else 'adjoint'} passes"
    current = timeline.pass_at(k)
    if current is None or current.phase != phase:
        target = passes[0]
        return target.start, f"{phase} pass {target.number} of {target.count}: {symbol(target.key)}"
    if len(passes) == 1:
        return k, f"only one {what} ({current.key if phase == 'tangent' else shown(current.key)}): one {phase} pass"
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


def export_args(timeline: Timeline, k: int) -> dict:
    """gradviz.draw.export's (mode, step, wrt, output) for step k of the stepper's timeline:
    the exporter numbers steps as the stepper does, so k is k."""
    tangents = timeline.phase_passes("tangent")
    p = timeline.pass_at(k)
    args = {"mode": "forward" if p is None else p.phase, "step": k,
            "wrt": tangents[0].key if tangents else None}
    if p is not None and p.phase == "reverse":
        args["output"] = p.key
    return args


def export_svg(timeline: Timeline, k: int, detail: str, source: str,
               directory: Path | None = None) -> tuple[Path | None, str]:
    """Write the graph at step k as SVG through gradviz.draw.export; (path, message)."""
    from gradviz.draw.export import export_trace
    from gradviz.errors import GradvizError

    path = export_path(source, k, directory)
    try:
        export_trace(timeline.trace, path, detail=detail, **export_args(timeline, k))
    except GradvizError as exc:
        return None, f"export failed: {exc.message}"
    return path, f"wrote {path.resolve()}"  # the full path: the folder is wherever gradviz started


def start_training(app, spec_path: str | None, on_leave=None, **settings) -> tuple[object | None, str]:
    """Train `spec_path` in its own process and push the live monitor onto `app`; (handle, message).

    Leaving the monitor pops it, back to the stepper; `on_leave` gets the user's choice.
    """
    if spec_path is None:
        return None, "t trains a model spec (gradviz step FILE.py); this source is an expression"
    from gradviz.errors import GradvizError
    from gradviz.monitor.app import open_training

    try:
        handle = open_training(app, spec_path, on_leave=on_leave, **settings)
    except GradvizError as exc:
        return None, f"training could not start: {exc.message}"
    return handle, f"training {Path(spec_path).name} in {handle.run_dir}"
