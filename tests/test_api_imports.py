"""`import gradviz` stays light: the public API is imported on first use (PEP 562)."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "textual", "graphviz", "networkx", "rich", "numpy")


def run(code: str) -> list[str]:
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return result.stdout.strip().splitlines()


def test_import_gradviz_loads_no_heavy_library():
    lines = run("import sys, gradviz\n"
                f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
                "print(sorted(gradviz.__all__))\n")
    assert lines == ["[]", "['Run', 'Traced', '__version__', 'trace', 'watch']"]


def test_tracing_an_expression_from_python_needs_no_torch_textual_or_graphviz():
    lines = run("import sys, gradviz\n"
                "t = gradviz.trace('exp(x1/x2) * x2', x1=0.5, x2=1.0)\n"
                "print(round(float(t.gradient('x1')), 4), t.findings)\n"
                "print(sorted(m for m in ('torch', 'textual', 'graphviz') if m in sys.modules))\n")
    assert lines == ["1.6487 []", "[]"]


def test_unknown_attributes_still_raise():
    lines = run("import gradviz\n"
                "try:\n    gradviz.nonsense\nexcept AttributeError as e:\n    print(e)\n")
    assert lines == ["module 'gradviz' has no attribute 'nonsense'"]
