"""The adjoint's notation reads on any name: v̄1 for one-letter names, ∂out/∂name for the
rest, in exported SVG and the terminal alike; e^{v1} is a real superscript in SVG."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.core.explain import adjoint_equation, bar, times_term

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
SVG = "{http://www.w3.org/2000/svg}"
# a combining mark after a letter that follows another name character: 'fc1.weight̄', 'loss̄'
BAD_BAR = re.compile(r"[\w.][A-Za-z][\u0300-\u036f]")


def test_bar_is_a_macron_on_one_letter_names_only():
    assert bar("v1") == "v\u03041" and bar("x") == "x\u0304"
    assert bar("fc1.weight", "loss") == "∂loss/∂fc1.weight"
    assert bar("loss") == "∂J/∂loss"  # no output named: the slides' objective J
    # as a factor, the long form is parenthesised; as a vector-Jacobian product it replaces v̄
    assert times_term(bar("fc2", "loss"), "σ'") == "(∂loss/∂fc2)·σ'"
    assert times_term(bar("fc2", "loss"), "v̄ @ Wᵀ") == "(∂loss/∂fc2) @ Wᵀ"
    assert times_term(bar("fc2", "loss"), "1") == "∂loss/∂fc2"


def test_long_names_get_the_derivative_form_in_equations():
    from gradviz.sources.expr import trace_expression

    trace = trace_expression("hidden = x*w; out = hidden*hidden", at={"x": 2.0, "w": 3.0})
    text = adjoint_equation(trace, "out", trace.graph.find("hidden").id)
    assert text.startswith("∂out/∂hidden = (∂out/∂out)·hidden + (∂out/∂out)·hidden")
    assert text.endswith("= 12.0000") and not BAD_BAR.search(text)


def _svg_text(path: Path) -> str:
    root = ET.parse(path).getroot()
    return "\n".join((t.text or "") for t in root.iter() if t.tag in (SVG + "text", SVG + "title"))


EXPRESSIONS = sorted(p.name for p in SAMPLES.glob("*.expr"))
MODELS = ["two_layer_mlp.py", "transformer_block.py"]


@pytest.mark.parametrize("sample", EXPRESSIONS + MODELS)
def test_exported_svg_has_no_bar_on_a_long_name(sample, tmp_path, capsys):
    source = f"@{SAMPLES / sample}" if sample.endswith(".expr") else str(SAMPLES / sample)
    out = tmp_path / "g.svg"
    assert main(["export", source, "-o", str(out), "--batch-size", "2"] if sample in MODELS
                else ["export", source, "-o", str(out)]) == 0
    text = _svg_text(out)
    assert not BAD_BAR.search(text), BAD_BAR.search(text)
    visible = "\n".join(t.text or "" for t in ET.parse(out).getroot().iter(SVG + "text"))
    assert "^{" not in visible  # superscripts are drawn raised, not spelled in TeX
    if sample in MODELS:
        assert "∂loss/∂fc" in text or "∂loss/∂block" in text


def test_lecture_svg_superscript_is_raised(tmp_path):
    out = tmp_path / "l.svg"
    assert main(["export", f"@{SAMPLES / 'lecture.expr'}", "-o", str(out)]) == 0
    svg = out.read_text()
    assert re.search(r'baseline-shift="super"[^>]*>v1</text>', svg)
    visible = "\n".join(t.text or "" for t in ET.parse(out).getroot().iter(SVG + "text"))
    assert "e^{v1}" not in visible and "v\u03041" in visible  # the lecture keeps v̄1


def test_terminal_graph_of_a_model_has_no_bar_on_a_long_name(capsys):
    assert main(["trace", str(SAMPLES / "two_layer_mlp.py"), "--graph", "--detail", "full", "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "∂loss/∂fc1.weight" in out or "∂loss/∂fc1" in out
    assert not BAD_BAR.search(out), BAD_BAR.search(out)
