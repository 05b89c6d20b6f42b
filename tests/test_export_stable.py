"""An export is the same file every time: module frames are emitted in the look's order,
not in the order a set of names happens to iterate in (which changes with each process)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = """
import sys
from gradviz.sources.model import trace_spec
from gradviz.draw.export import make_picture, render
trace = trace_spec(sys.argv[1], batch_size=2, seed=0, level="module", dtype=None)
sys.stdout.write(render(make_picture(trace, None, "reverse", detail="ops"), "dot").decode())
"""


def test_a_models_export_is_the_same_in_every_process():
    pytest.importorskip("torch")
    spec = str(ROOT / "samples" / "transformer_block.py")  # sibling modules at every depth
    outputs = set()
    for seed in ("1", "2", "3"):
        env = {**os.environ, "PYTHONHASHSEED": seed, "PYTHONPATH": str(ROOT)}
        result = subprocess.run([sys.executable, "-c", SCRIPT, spec], capture_output=True, text=True, env=env,
                                timeout=300, check=True)
        assert "subgraph cluster_" in result.stdout
        outputs.add(result.stdout)
    assert len(outputs) == 1, "the DOT text (and so the SVG) changes from one process to the next"
