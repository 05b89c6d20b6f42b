"""A real notebook: nbclient runs a local IPython kernel that draws a gradviz.trace inline."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

nbformat = pytest.importorskip("nbformat", reason="nbformat is a dev dependency (requirements-dev.txt)")
nbclient = pytest.importorskip("nbclient", reason="nbclient is a dev dependency (requirements-dev.txt)")
pytest.importorskip("ipykernel", reason="ipykernel is a dev dependency (requirements-dev.txt)")

ROOT = Path(__file__).resolve().parent.parent


def test_trace_displays_itself_as_svg_in_a_notebook(monkeypatch, tmp_path):
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]))
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import gradviz\n"
                                  "t = gradviz.trace('(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))', x1=0.5, x2=1.0)\n"
                                  "t"),
        nbformat.v4.new_code_cell("print(round(float(t.gradient('x1')), 4), round(float(t.gradient('x2')), 4))"),
    ]
    client = nbclient.NotebookClient(notebook, timeout=120, kernel_name="python3",
                                     resources={"metadata": {"path": str(tmp_path)}})
    client.execute()
    outputs = notebook.cells[0].outputs
    assert len(outputs) == 1 and outputs[0].output_type == "execute_result"
    data = outputs[0].data
    assert "image/svg+xml" in data and "<svg" in data["image/svg+xml"]
    assert "<svg" in data["text/html"] and "∂f/∂x1 = 3.4731" in data["text/html"]
    assert data["text/plain"].startswith("<gradviz.Traced")
    assert notebook.cells[1].outputs[0].text == "3.4731 -3.8853\n"
