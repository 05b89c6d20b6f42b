"""The expression path must start fast: it imports neither torch, textual nor graphviz."""

from __future__ import annotations

import subprocess
import sys

HEAVY = ("torch", "textual", "graphviz", "networkx")


def test_expression_path_imports_no_heavy_library():
    code = (
        "import sys\n"
        "from gradviz.cli import main\n"
        "main(['trace', 'exp(x1/x2) * x2', '--at', 'x1=0.5,x2=1'])\n"
        "main(['trace', 'exp(x1/x2) * x2', '--at', 'x1=0.5,x2=1', '--json'])\n"
        f"print(sorted(m for m in {HEAVY!r} if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_core_imports_no_view_library():
    code = (
        "import sys\n"
        "import gradviz.core.graph, gradviz.core.passes, gradviz.core.steps, gradviz.core.explain\n"
        "import gradviz.sources.expr\n"
        "print(sorted(m for m in ('rich', 'textual', 'torch', 'graphviz') if m in sys.modules))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"
