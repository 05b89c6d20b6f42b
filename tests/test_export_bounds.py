"""Export never fails on a valid trace: tooltips stay under Graphviz's 16,384-character
string limit, a big model's default picture is folded to a readable size, and a notebook
gets a picture or a one-line reason."""

from __future__ import annotations

import re
import struct
import textwrap
from pathlib import Path

import pytest

from gradviz.cli import main

torch = pytest.importorskip("torch")

RESNET18 = str(Path(__file__).resolve().parent / "resnet18_spec.py")
GRAPHVIZ_STRING_LIMIT = 16_384

# MobileNetV3's failing kind of layer: 1×1 convolutions with 768 and 960 weights, whose
# values and adjoints printed whole passed Graphviz's limit.
POINTWISE = """
import torch
import torch.nn.functional as F
from torch import nn


def build_model():
    return nn.Sequential(nn.Conv2d(3, 24, 1), nn.ReLU(), nn.Conv2d(24, 32, 1), nn.ReLU(),
                         nn.Conv2d(32, 30, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(30, 2))


def loss(output, target):
    return F.cross_entropy(output, target)


def make_data(seed, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 4, 4, generator=g), torch.randint(0, 2, (n,), generator=g)
"""


def _png_size(path: Path) -> tuple[int, int]:
    return struct.unpack(">II", path.read_bytes()[16:24])


@pytest.mark.parametrize("level", ["module", "aten"])
def test_pointwise_convolutions_export_to_svg_and_png(tmp_path, capsys, level):
    spec = tmp_path / "pointwise.py"
    spec.write_text(textwrap.dedent(POINTWISE))
    for name in ("p.svg", "p.png", "p.dot"):
        assert main(["export", str(spec), "--level", level, "--batch-size", "2", "-o", str(tmp_path / name)]) == 0, \
            capsys.readouterr().err
    dot = (tmp_path / "p.dot").read_text()
    tooltips = re.findall(r'tooltip="((?:[^"\\]|\\.)*)"', dot)
    assert tooltips and max(map(len, tooltips)) < GRAPHVIZ_STRING_LIMIT
    svg = (tmp_path / "p.svg").read_text()
    # the 768-weight convolution's tooltip: its summary and first elements, not 768 numbers
    weight = next(t for t in re.findall(r"<title>([^<]*)</title>", svg) if "(node" in t and "24×3×1×1" not in t
                  and "32×24×1×1" in t)
    assert "first 8 (flattened)" in weight and len(weight) < 2_000
    assert _png_size(tmp_path / "p.png")[0] > 0


def test_resnet18_shaped_model_exports_by_default_to_a_readable_picture(tmp_path, capsys):
    out = tmp_path / "r.png"
    assert main(["export", RESNET18, "--batch-size", "2", "-o", str(out)]) == 0, capsys.readouterr().err
    width, height = _png_size(out)
    assert width <= 3000 and height <= 3000, (width, height)  # opened whole it was 21,378 × 9,024
    wide = tmp_path / "whole.svg"
    assert main(["export", RESNET18, "--batch-size", "2", "--max-nodes", "2000", "-o", str(wide)]) == 0
    assert "folded" not in wide.read_text().split("</title>")[0]  # --max-nodes still opens everything


def test_notebook_gets_a_picture_or_a_one_line_reason(monkeypatch):
    import gradviz

    traced = gradviz.trace("relu(a) * b", a=1.5, b=2.0)
    assert "<svg" in traced._repr_svg_() and "<svg" in traced._repr_html_()
    fresh = gradviz.trace("relu(a) * b", a=1.5, b=2.0)
    monkeypatch.setenv("PATH", "/nonexistent")  # no Graphviz dot
    html = fresh._repr_html_()
    svg = fresh._repr_svg_()
    assert html.count("\n") == 0 and "gradviz: no drawing:" in html and "dot" in html
    assert svg.startswith("<svg") and "gradviz: no drawing:" in svg
