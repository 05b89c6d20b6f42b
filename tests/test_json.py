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


def test_a_targets_derivatives_are_data_as_in_the_table_and_outputs_start_at_one(capsys):
    """The table shows a loss's target as `data` (no tangent, no adjoint) and each output's
    own adjoint as 1; --json said ∂L/∂y = 0.755 for the target y and listed it among the
    gradients with that number. Both now say what the table says; the other numbers are torch's."""
    torch = pytest.importorskip("torch")
    w, x, y = (torch.tensor(v, dtype=torch.float64, requires_grad=True) for v in (0.5, 1.0, 1.0))
    loss = torch.nn.functional.mse_loss(torch.sigmoid(w * x), y)
    loss.backward()
    code, data = run_json(capsys, "L = mse(sigmoid(w*x), y); M = w + x", "--at", "w=0.5,x=1,y=1")
    assert code == 0
    nodes = {n["label"]: n for n in data["nodes"]}
    assert nodes["y"]["data"] is True
    assert nodes["y"]["adjoints"] == {"L": None, "M": None} and nodes["y"]["terms"] == {"L": [], "M": []}
    assert data["gradients"] == {"L": {"w": pytest.approx(w.grad.item()), "x": pytest.approx(x.grad.item()),
                                       "y": None}, "M": {"w": 1.0, "x": 1.0, "y": None}}  # null, as a model's target
    assert all(set(n["tangents"]) == {"w", "x"} for n in data["nodes"])  # no forward pass seeded at the data
    assert nodes["L"]["adjoints"]["L"] == 1.0 and nodes["M"]["adjoints"]["M"] == 1.0  # ∂L/∂L by definition
    assert nodes["L"]["adjoints"]["M"] == 0.0 and nodes["M"]["adjoints"]["L"] == 0.0
    main(["trace", "L = mse(sigmoid(w*x), y); M = w + x", "--at", "w=0.5,x=1,y=1", "--mode", "all"])
    row = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("y "))
    assert row.replace("│", " ").split()[-3:] == ["data", "data", "data"]  # the table: tangent, ∂L, ∂M
