"""The --json schema: documented keys, real numbers, non-finite values as strings."""

from __future__ import annotations

import json

import pytest

from gradviz.cli import main


def run_json(capsys, *argv):
    code = main(["trace", *argv, "--json"])
    return code, json.loads(capsys.readouterr().out)


def test_a_reassigned_outputs_node_is_named_with_its_value(capsys):
    """`g = f/2; g += 10/f`: the output g is the node labelled g₂; output_nodes says so, and its
    value there is the one torch computes (micrograd's test_more_ops: 24.7041), not the first g's."""
    code, data = run_json(capsys, "f = a * a\ng = f / 2.0\ng += 10.0 / f", "--at", "a=7")
    assert code == 0
    assert data["outputs"] == ["g"]
    node = data["nodes"][data["output_nodes"]["g"]]
    assert node["label"] == "g₂" and node["value"] == pytest.approx(49 / 2 + 10 / 49)
    assert node["adjoints"]["g"] == 1.0


def test_lecture_json_has_the_documented_schema(capsys):
    code, data = run_json(capsys, "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1")
    assert code == 0
    assert data["schema"] == 2  # 2: big expression tensors are summaries (issue 22)
    assert data["outputs"] == ["f"]
    assert data["inputs"] == {"x1": 0.5, "x2": 1.0}
    assert data["passes"] == {"forward_mode": 2, "reverse_mode": 1}
    assert data["gradients"]["f"]["x1"] == pytest.approx(3.4731, abs=5e-5)
    assert data["gradients"]["f"]["x2"] == pytest.approx(-3.8853, abs=5e-5)
    v1 = next(n for n in data["nodes"] if n["label"] == "v1")
    assert set(v1) >= {"id", "op", "inputs", "value", "tangents", "adjoints"}
    assert v1["op"] == "div" and v1["inputs"] == [0, 1]
    assert v1["tangents"] == {"x1": 1.0, "x2": -0.5}
    assert v1["adjoints"]["f"] == pytest.approx(3.4731, abs=5e-5)
    assert [t["value"] for t in v1["terms"]["f"]] == pytest.approx([0.8244, 0.5, 2.1487], abs=5e-5)
    assert data["first_nonfinite"] is None


def test_tensors_are_nested_lists_and_non_finite_are_strings(capsys):
    code, data = run_json(capsys, "log(W)", "--at", "W=[[1,0],[-1,2]]")
    assert code == 1
    f = next(n for n in data["nodes"] if n["label"] == "f")
    assert f["shape"] == [2, 2]
    assert f["value"][0] == [0.0, "-inf"]
    assert f["value"][1][0] == "nan"
    assert data["first_nonfinite"] == {"kind": "value", "node": f["id"], "label": "f"}
