"""The stepper's status line as rich Text (phase, pass, step, node, pass counts): textual-free,
so the terminal stepper's status bar and the browser stepper write the same line."""

from __future__ import annotations

from rich.text import Text

from gradviz.tui.scene import Scene

PHASE_TEXT = {
    "start": ("START", "inputs only: press → (or n) to compute the values"),
    "forward": ("VALUES", "values, in topological order"),
    "tangent": ("FORWARD MODE", "tangents: v′ = Σ ∂v/∂u·u′"),
    "reverse": ("REVERSE MODE", "adjoints: v̄ = Σ v̄child·∂child/∂v"),
}

_COUNTS: list = [None, None]  # [trace, its pass counts]: the one trace shown


def _pass_counts(trace) -> dict[str, int]:
    """trace.pass_counts(), once per trace (it sums over every input's size); keyed by
    the trace itself, not its id, which a later trace may reuse."""
    if _COUNTS[0] is not trace:
        _COUNTS[:] = [trace, trace.pass_counts()]
    return _COUNTS[1]


def status_text(scene: Scene, playing: bool = False, speed: float = 0.0, compact: bool = False) -> Text:
    """Two lines: where we are, then why reverse mode (pass counts) and the play state."""
    timeline, state = scene.timeline, scene.state
    name, what = PHASE_TEXT[scene.phase]
    line = Text(no_wrap=True, overflow="ellipsis")
    line.append(f" {name} ", style="bold reverse")
    # say what a pass counts here: the stepper runs one per input tensor (seeded with ones)
    # or per output, while the line below counts the passes of the full gradient
    if scene.phase == "tangent":
        line.append(f" ∂·/∂{state.pass_key}  pass {state.pass_number} of {state.pass_count} (one per input)")
    elif scene.phase == "reverse":
        line.append(f" ∂{scene.trace.graph.shown_output(state.pass_key)}/∂·  pass {state.pass_number} of {state.pass_count} (one per output)")
    line.append(f"  step {scene.k}/{timeline.last}")
    if scene.current is not None:
        node = scene.trace.graph.nodes[scene.current]
        line.append("  node ")
        line.append(node.label, style="bold")
        module = node.meta.get("module")
        if module and module != node.label:
            line.append(f" in {module}")
    if playing:
        line.append(f"  ▶ {speed:g}/s", style="bold green")
    if not compact or scene.phase == "start":
        line.append(f"  {what}", style="dim")
    counts = _pass_counts(scene.trace)
    fwd, rev = counts["forward_mode"], counts["reverse_mode"]
    whole = "gradient" if rev == 1 else "Jacobian"
    line.append("\n")
    if compact:
        line.append(f" full {whole}: forward {fwd} pass{'es' if fwd != 1 else ''} (1/input element), "
                    f"reverse {rev} (1/output)", style="italic")
    else:
        line.append(f" full {whole}: forward mode {fwd} pass{'es' if fwd != 1 else ''} (one per input element), "
                    f"reverse mode {rev} (one per output element)", style="italic")
    return line
