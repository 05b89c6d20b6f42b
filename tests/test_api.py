"""gradviz.trace() from Python: the same Trace and the same JSON as the command line."""

from __future__ import annotations

import json
import math
import xml.etree.ElementTree as ET

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import gradviz
from gradviz.cli import main
from gradviz.errors import GradvizError
from gradviz.sources.model import prepare_spec
from train_support import sample

LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"
SPECS = ("two_layer_mlp", "deep_mlp", "small_cnn", "transformer_block")


def lecture_by_hand(x1: float, x2: float) -> tuple[float, float]:
    """∂f/∂x1 and ∂f/∂x2 of the lecture's f, differentiated on paper."""
    a = x1 / x2
    u, v = math.exp(a) + a, a - math.log(x2)
    du_da, dv_da = math.exp(a) + 1, 1.0
    df_da = du_da * v + u * dv_da
    return df_da / x2, df_da * (-x1 / x2**2) + u * (-1 / x2)


def cli_json(capsys, *argv: str) -> dict:
    assert main(["trace", *argv, "--json"]) in (0, 1)
    return json.loads(capsys.readouterr().out)


def test_lecture_expression_gives_the_slides_numbers():
    t = gradviz.trace(LECTURE, x1=0.5, x2=1.0)
    g1, g2 = lecture_by_hand(0.5, 1.0)
    assert t.gradient("x1") == pytest.approx(g1, rel=1e-12) and round(float(t.gradient("x1")), 4) == 3.4731
    assert t.gradient("x2") == pytest.approx(g2, rel=1e-12) and round(float(t.gradient("x2")), 4) == -3.8853
    assert t.labels == ["x1", "x2", "v1", "v2", "v3", "v4", "v5", "f"]
    assert t.value("v2") == pytest.approx(math.exp(0.5))
    assert t.tangent("f", "x1") == pytest.approx(g1)  # forward mode agrees with reverse mode
    terms = t.edge_terms("v1")
    assert sorted(terms) == ["v2", "v3", "v5"]
    assert sum(terms.values()) == pytest.approx(t.adjoint("v1"))
    assert t.findings == []


def test_values_as_lists_numpy_arrays_and_tensors_agree():
    w = [[1.0, -2.0], [0.5, 3.0]]
    by_list = gradviz.trace("sum(tanh(W @ x))", W=w, x=[0.3, -0.7])
    by_numpy = gradviz.trace("sum(tanh(W @ x))", W=np.array(w), x=np.array([0.3, -0.7]))
    by_tensor = gradviz.trace("sum(tanh(W @ x))", W=torch.tensor(w, dtype=torch.float64),
                              x=torch.tensor([0.3, -0.7], dtype=torch.float64))
    W = torch.tensor(w, dtype=torch.float64, requires_grad=True)
    torch.tanh(W @ torch.tensor([0.3, -0.7], dtype=torch.float64)).sum().backward()
    for t in (by_list, by_numpy, by_tensor):
        np.testing.assert_allclose(t.gradient("W"), W.grad.numpy(), rtol=1e-12)


def test_expression_json_is_the_command_lines(capsys):
    assert gradviz.trace(LECTURE, x1=0.5, x2=1.0).to_json() == \
        {**cli_json(capsys, LECTURE, "--at", "x1=0.5,x2=1"), "source": LECTURE}


@pytest.mark.parametrize("name", SPECS)
def test_module_trace_matches_the_spec_json(capsys, name):
    """gradviz.trace(model, x, target=y, loss=...) on the spec's batch = `gradviz trace SPEC --json`."""
    spec, model, x, y, _ = prepare_spec(sample(name), 8, 0, None, True)
    ours = gradviz.trace(model, x, target=y, loss=spec.loss, seed=0).to_json()
    theirs = cli_json(capsys, sample(name))
    for data in (ours, theirs):
        data.pop("source"), data.pop("model")
    assert ours == theirs
    assert any(n["kind"] == "parameter" for n in ours["nodes"])


def test_module_trace_eval_mode_and_check_restore_the_model():
    spec, model, x, y, _ = prepare_spec(sample("deep_mlp"), 8, 0, None, True)
    model.train()
    t = gradviz.trace(model, x, target=y, loss=spec.loss, train=False, check=True)
    assert model.training  # the user's model is left in the mode it was in
    assert t.trace.info["training"] is False and t.check.ok
    for name, param in model.named_parameters():
        model.zero_grad()
        spec.loss(model.eval()(x), y).backward()
        np.testing.assert_array_equal(t.gradient(name), param.grad.numpy())
        break


def test_function_of_tensors_matches_autograd():
    def f(a, b):
        return (torch.sigmoid(a @ b) * a.sum()).mean()

    a, b = torch.randn(3, 4, dtype=torch.float64), torch.randn(4, 2, dtype=torch.float64)
    t = gradviz.trace(f, a, b, check=True)
    ar, br = a.clone().requires_grad_(), b.clone().requires_grad_()
    ga, gb = torch.autograd.grad(f(ar, br), (ar, br))
    np.testing.assert_allclose(t.gradient("a"), ga.numpy(), rtol=1e-12)
    np.testing.assert_allclose(t.gradient("b"), gb.numpy(), rtol=1e-12)
    assert t.outputs == ["f"] and t.check.worst < 1e-12
    for label in t.labels:  # every adjoint is the sum of its edge terms
        terms = t.edge_terms(label)
        if len(terms) > 1:
            np.testing.assert_allclose(sum(terms.values()), t.adjoint(label), rtol=1e-10, atol=1e-14)


def test_repr_svg_is_a_valid_svg_with_the_numbers():
    t = gradviz.trace(LECTURE, x1=0.5, x2=1.0)
    svg = t._repr_svg_()
    root = ET.fromstring(svg)
    assert root.tag.endswith("svg")
    assert "3.4731" in svg and "v5 = v1 − v4" in svg
    html = t._repr_html_()
    assert "<svg" in html and "<?xml" not in html and "∂f/∂x1 = 3.4731" in html


def test_printing_shows_the_trace_table(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    assert main(["trace", LECTURE, "--at", "x1=0.5,x2=1"]) == 0
    assert gradviz.trace(LECTURE, x1=0.5, x2=1.0).report(width=100) == capsys.readouterr().out


def test_export_and_step(tmp_path, monkeypatch):
    t = gradviz.trace(LECTURE, x1=0.5, x2=1.0)
    path = t.export(tmp_path / "f.svg", step=3)
    assert ET.parse(path).getroot().tag.endswith("svg")
    from gradviz.tui import app

    opened = []
    monkeypatch.setattr(app.StepperApp, "run", lambda self: opened.append(self))
    monkeypatch.setattr("gradviz.streams.terminal_problem", lambda: None)  # as on a terminal
    t.step(start=5)
    assert opened and opened[0].trace is t.trace


def test_bad_use_is_one_clear_error():
    t = gradviz.trace(LECTURE, x1=0.5, x2=1.0)
    with pytest.raises(GradvizError, match="no node labelled 'v9'"):
        t.value("v9")
    with pytest.raises(GradvizError, match="not a number"):
        gradviz.trace("x * 2", x=object())
    with pytest.raises(GradvizError, match="cannot trace a int"):
        gradviz.trace(3)
    with pytest.raises(GradvizError, match="say which loss"):
        gradviz.trace(torch.nn.Linear(2, 1), torch.ones(3, 2), target=torch.ones(3, 1))
    with pytest.raises(GradvizError, match="scalar"):
        gradviz.trace(lambda a: a * 2, torch.ones(3))


def test_a_name_assigned_again_is_asked_for_by_the_label_of_each_value():
    # c = x·2, c₂ = c + 1, c₃ = c₂·c₂: "c" names three values, so value("c") says which
    # labels to ask for instead of quietly giving the first.
    x = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    c1 = x * 2
    c2 = c1 + 1
    c3 = c2 * c2
    c1.retain_grad()
    c3.backward()
    t = gradviz.trace("c = x * 2; c += 1; c = c * c", x=1.5)
    with pytest.raises(GradvizError) as refused:
        t.value("c")
    message = str(refused.value)
    assert "'c₃' (its value at the end)" in message and "'c₂'" in message and "'c₁' (its first" in message
    assert t.value("c₃") == pytest.approx(c3.item()) and t.value("c₂") == pytest.approx(c2.item())
    assert t.value("c₁") == pytest.approx(c1.item())
    assert t.adjoint("c₁") == pytest.approx(c1.grad.item())
    assert t.gradient("x") == pytest.approx(x.grad.item())


def test_an_input_assigned_again_keeps_its_own_label():
    # x = x·2 made a second node labelled x: value("x") and the table could not tell them apart
    t = gradviz.trace("x = x * 2; f = x + 1", x=3.0)
    assert sorted(t.labels).count("x") == 1 and "x₂" in t.labels
    assert t.value("x₂") == 6.0 and t.value("f") == 7.0
    assert t.gradient("x") == 2.0
    with pytest.raises(GradvizError, match="'x₂' \\(its value at the end\\)"):
        t.value("x")
