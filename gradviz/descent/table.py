"""A descent run as plain text: one verdict line per path, then every step as a table."""

from __future__ import annotations

from gradviz.descent.paths import Path
from gradviz.descent.runs import DescentRun, path_label


def _num(x: float) -> str:
    return f"{x:.6g}"


def verdict_lines(run: DescentRun) -> list[str]:
    """'gd η=0.11: diverged at step 30 (f = 2.1e+05)' per path."""
    several = len({tuple(p.start) for p in run.paths}) > 1
    lines = []
    for p in run.paths:
        last = p.steps[-1]
        lines.append(f"{path_label(p, several)}: {p.verdict} at ({_num(last.theta[0])}, {_num(last.theta[1])}), "
                     f"f = {_num(last.value)}")
    return lines


def is_plain_descent(name: str) -> bool:
    """sgd, or gd (its other name in the optimizer registry): the step is −η∇f."""
    from gradviz.optimizers import find_optimizer

    entry = find_optimizer(name)
    return entry is not None and entry.name == "sgd"


def path_table(path: Path, names: tuple[str, str], label: str) -> list[str]:
    """One row per step: k, θ, f(θ), ∇f, and the update (−η∇f for GD)."""
    x, y = names
    update = "−η∇f" if is_plain_descent(path.optimizer) else "Δθ"
    head = ["k", x, y, "f", f"∂f/∂{x}", f"∂f/∂{y}", f"{update} {x}", f"{update} {y}"]
    rows = [[str(s.k), _num(s.theta[0]), _num(s.theta[1]), _num(s.value), _num(s.grad[0]), _num(s.grad[1]),
             _num(s.update[0]), _num(s.update[1])] for s in path.steps]
    widths = [max(len(r[i]) for r in rows + [head]) for i in range(len(head))]
    lines = [f"# {label}: {path.verdict}", "  ".join(h.rjust(w) for h, w in zip(head, widths))]
    lines += ["  ".join(c.rjust(w) for c, w in zip(row, widths)) for row in rows]
    return lines


def update_lines(run: DescentRun) -> list[str]:
    """Each optimizer's update rule as its class states it: 'update (gd): θ ← θ − η∇f(θ)'."""
    from gradviz.optimizers import make_update

    names = dict.fromkeys(p.optimizer for p in run.paths)
    return [f"update ({name}): {(make_update(name, 1.0).__doc__ or '').strip().rstrip('.')}" for name in names]


def run_text(run: DescentRun) -> str:
    """Verdicts, then each path's table, separated by blank lines."""
    several = len({tuple(p.start) for p in run.paths}) > 1
    parts = ["\n".join([f"f({', '.join(run.objective.names)}) = {run.objective.text}"] + update_lines(run)
                       + verdict_lines(run))]
    for p in run.paths:
        parts.append("\n".join(path_table(p, run.objective.names, path_label(p, several))))
    return "\n\n".join(parts) + "\n"
