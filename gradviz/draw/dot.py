"""Running Graphviz's `dot` program: one place for the missing-program and timeout errors."""

from __future__ import annotations

import shutil
import subprocess

from gradviz.errors import ExportError


class LayoutTimeout(ExportError):
    """`dot` did not finish within the time it was given."""

INSTALL_HINT = "install Graphviz (apt-get install graphviz, or brew install graphviz)"

# dot's network simplex grows fast past a few thousand nodes (0.2 s at 1,700 boxes here,
# over 120 s at 17,000): above NODE_LIMIT boxes gradviz folds modules or focuses (fold.py).
NODE_LIMIT = 2000
DEFAULT_TIMEOUT_S = 120.0
# a terminal drawing whose layout takes longer than this is drawn smaller instead (terminal.laid_out)
LAYOUT_BUDGET_S = 10.0


def dot_program() -> str:
    """The path of `dot`, or an ExportError saying how to install Graphviz."""
    path = shutil.which("dot")
    if path is None:
        raise ExportError(f"Graphviz's `dot` program was not found on PATH: {INSTALL_HINT}")
    return path


def run_dot(source: str, fmt: str, timeout_s: float = DEFAULT_TIMEOUT_S) -> bytes:
    """Lay out `source` with `dot -T<fmt>` and return its output."""
    try:
        done = subprocess.run(
            [dot_program(), f"-T{fmt}"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=timeout_s,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise LayoutTimeout(
            f"`dot` took longer than {timeout_s:.0f} s to lay out this graph; "
            "draw a smaller graph (a lower --detail, or collapse modules)"
        ) from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise ExportError(f"`dot -T{fmt}` failed: {message[-1] if message else 'no message'}")
    return done.stdout
