"""The lecture's network traced from its spec matches, number for number, the same network
written as an expression, bce(sigmoid(sigmoid(x @ W1 + b1) @ W2 + b2), y), with --at values
taken from the spec's weights (nn.Linear computes x @ weight.T + bias, so W1 = fc1.weight.T)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from gradviz.cli import main

SPEC = str(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py")
EXPRESSION = "bce(sigmoid(sigmoid(x @ W1 + b1) @ W2 + b2), y)"
# expression node → (model node, transposed)
SAME = {"x": ("x", False), "y": ("y", False), "W1": ("fc1.weight", True), "b1": ("fc1.bias", False),
        "W2": ("fc2.weight", True), "b2": ("fc2.bias", False), "v2": ("fc1", False),
        "v3": ("sigmoid", False), "v5": ("fc2", False), "v6": ("sigmoid_1", False), "f": ("loss", False)}


def run_json(capsys, *argv: str) -> dict:
    main(["trace", *argv, "--json", "--full"])
    return json.loads(capsys.readouterr().out)


def as_array(value) -> np.ndarray:
    return np.asarray(value, dtype=np.float64)


def literal(array: np.ndarray) -> str:
    """A --at value that reads back exactly (repr of float64 round-trips)."""
    return json.dumps(np.asarray(array, dtype=np.float64).tolist())


def test_spec_and_expression_agree_number_for_number(capsys):
    model = run_json(capsys, SPEC, "--dtype", "float64", "--batch-size", "6", "--seed", "4")
    nodes = {n["label"]: n for n in model["nodes"]}
    at = {
        "x": as_array(nodes["x"]["value"]), "y": as_array(nodes["y"]["value"]),
        "W1": as_array(nodes["fc1.weight"]["value"]).T, "b1": as_array(nodes["fc1.bias"]["value"]),
        "W2": as_array(nodes["fc2.weight"]["value"]).T, "b2": as_array(nodes["fc2.bias"]["value"]),
    }
    argv = [EXPRESSION]
    for name, value in at.items():
        argv += ["--at", f"{name}={literal(value)}"]
    expression = run_json(capsys, *argv)
    enodes = {n["label"]: n for n in expression["nodes"]}
    assert set(SAME) <= set(enodes)
    for label, (model_label, transposed) in SAME.items():
        ours, theirs = enodes[label], nodes[model_label]
        value, model_value = as_array(ours["value"]), as_array(theirs["value"])
        np.testing.assert_allclose(value, model_value.T if transposed else model_value, rtol=1e-12, atol=1e-15,
                                   err_msg=f"value of {label} vs {model_label}")
        if theirs["adjoints"]["loss"] is None:  # targets are not differentiated in models
            continue
        adjoint, model_adjoint = as_array(ours["adjoints"]["f"]), as_array(theirs["adjoints"]["loss"])
        np.testing.assert_allclose(adjoint, model_adjoint.T if transposed else model_adjoint, rtol=1e-10,
                                   atol=1e-15, err_msg=f"adjoint of {label} vs {model_label}")
    assert expression["first_nonfinite"] is None and model["first_nonfinite"] is None


def test_model_json_summarises_tensors_unless_full(capsys):
    main(["trace", SPEC, "--json"])
    data = json.loads(capsys.readouterr().out)
    fc1 = next(n for n in data["nodes"] if n["label"] == "fc1")
    assert set(fc1["value"]) == {"shape", "dtype", "mean", "std", "min", "max", "norm", "zero_fraction", "nan", "inf"}
    assert fc1["value"]["shape"] == [8, 8] and fc1["dtype"] == "float32" and fc1["module"] == "fc1"
    assert data["model"]["level"] == "module" and data["model"]["batch_size"] == 8
    assert data["findings"] == []
    assert data["gradients"]["loss"]["fc1.weight"]["shape"] == [8, 2]
