"""`gradviz trace SPEC.py`: what it prints for a model."""

from __future__ import annotations

from pathlib import Path

from gradviz.cli import main

SAMPLES = Path(__file__).parent.parent / "samples"


def test_report_shows_graph_statistics_sums_and_findings(capsys) -> None:
    assert main(["trace", str(SAMPLES / "transformer_block.py")]) == 0
    out = capsys.readouterr().out
    assert "model transformer_block · module level (torch.fx) · batch of 8" in out
    for fragment in ("graph", "Embedding(8, 32)(x)", "block.attn_drop", "tensors: value v",
                     "adjoints as sums of edge contributions", "forward-mode tangents are not computed",
                     "findings", "structural-zero  block.key.bias"):
        assert fragment in out, fragment
    # The key projection's bias gets no gradient by construction (softmax is shift-invariant):
    # a note, not the "vanishing" finding this test once asked for.
    assert "vanishing" not in out
    # block.norm1 feeds query, key and value: three terms.
    lines = out.split("adjoints as sums of edge contributions")[1].splitlines()
    row = next(i for i, line in enumerate(lines) if line.startswith("block.norm1 "))
    cell = " ".join(lines[row:row + 4])  # the terms cell wraps at 80 columns
    assert "block.query" in cell and "block.key" in cell and "block.value" in cell


def test_show_prints_statistics_heatmaps_and_the_mask(capsys) -> None:
    assert main(["trace", str(SAMPLES / "deep_mlp.py"), "--show", "drop2"]) == 0
    out = capsys.readouterr().out.split("findings")[-1]
    assert "drop2 = Dropout(p=0.1)(relu_1)" in out
    assert "value 8×64 float32: mean" in out and "adjoint ∂loss/∂drop2 8×64 float32" in out
    assert "dropout mask (p=0.1, active): kept" in out and "██ kept · dropped" in out
