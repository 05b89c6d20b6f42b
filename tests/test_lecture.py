"""The lecture's worked example, number for number (its slides are the acceptance test)."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.core.explain import adjoint_equation, tangent_equation


def value(trace, label, table="values", key=None):
    node = trace.graph.find(label)
    source = trace.values if table == "values" else getattr(trace, table)[key]
    return float(source[node.id])


def test_nodes_are_the_lectures_v1_to_v5(lecture_trace):
    labels = [n.label for n in lecture_trace.graph.nodes]
    assert labels == ["x1", "x2", "v1", "v2", "v3", "v4", "v5", "f"]
    definitions = [n.definition for n in lecture_trace.graph.nodes if not n.is_leaf]
    assert definitions == ["v1 = x1/x2", "v2 = exp(v1)", "v3 = v2 + v1", "v4 = log(x2)", "v5 = v1 − v4", "f = v3·v5"]


@pytest.mark.parametrize("label, expected", [
    ("v1", 0.5), ("v2", 1.6487), ("v3", 2.1487), ("v4", 0.0), ("v5", 0.5), ("f", 1.0744)])
def test_forward_values(lecture_trace, label, expected):
    assert value(lecture_trace, label) == pytest.approx(expected, abs=5e-5)


@pytest.mark.parametrize("label, expected", [
    ("v1", 1.0), ("v2", 1.6487), ("v3", 2.6487), ("v4", 0.0), ("v5", 1.0), ("f", 3.4731)])
def test_forward_mode_tangents_wrt_x1(lecture_trace, label, expected):
    assert value(lecture_trace, label, "tangents", "x1") == pytest.approx(expected, abs=5e-5)


def test_forward_mode_needs_two_passes_reverse_one(lecture_trace):
    assert lecture_trace.pass_counts() == {"forward_mode": 2, "reverse_mode": 1}
    assert set(lecture_trace.tangents) == {"x1", "x2"}
    assert set(lecture_trace.adjoints) == {"f"}


@pytest.mark.parametrize("label, expected", [
    ("v3", 0.5), ("v5", 2.1487), ("v2", 0.5), ("v4", -2.1487), ("v1", 3.4731), ("x1", 3.4731), ("x2", -3.8853)])
def test_reverse_mode_adjoints(lecture_trace, label, expected):
    assert value(lecture_trace, label, "adjoints", "f") == pytest.approx(expected, abs=5e-5)


def test_adjoint_of_v1_is_three_contributions(lecture_trace):
    v1 = lecture_trace.graph.find("v1").id
    terms = lecture_trace.edge_terms("f", v1)
    children = [lecture_trace.graph.nodes[child].label for (child, _), _ in terms]
    assert children == ["v2", "v3", "v5"]
    numbers = [float(v) for _, v in terms]
    assert numbers == pytest.approx([0.8244, 0.5, 2.1487], abs=5e-5)
    assert sum(numbers) == pytest.approx(float(lecture_trace.adjoints["f"][v1]), rel=1e-12)
    text = adjoint_equation(lecture_trace, "f", v1)
    assert text == "v̄1 = v̄2·e^{v1} + v̄3 + v̄5 = 0.8244 + 0.5000 + 2.1487 = 3.4731"


def test_pending_terms_are_marked(lecture_trace):
    graph = lecture_trace.graph
    v1 = graph.find("v1").id
    known = frozenset({graph.find("v5").id})
    text = adjoint_equation(lecture_trace, "f", v1, known=known)
    assert text.endswith("= ? + ? + 2.1487 = ?")


def test_tangent_equation_reads_like_the_slide(lecture_trace):
    graph = lecture_trace.graph
    assert tangent_equation(lecture_trace, "x1", graph.find("v2").id) == "v2' = e^{v1}·v1' = 1.6487"
    assert tangent_equation(lecture_trace, "x1", graph.find("f").id) == "f' = v5·v3' + v3·v5' = 3.4731"


def test_local_partials_as_formulas_and_numbers(lecture_trace):
    graph = lecture_trace.graph
    v1 = graph.find("v1")
    assert v1.meta["partials"] == ("1/x2", "−x1/x2²")
    assert float(lecture_trace.partials[(v1.id, 1)]) == pytest.approx(-0.5)
    v2 = graph.find("v2")
    assert v2.meta["partials"] == ("e^{v1}",)
    assert float(lecture_trace.partials[(v2.id, 0)]) == pytest.approx(np.exp(0.5))


def test_matches_torch_autograd_on_the_slide_code():
    torch = pytest.importorskip("torch")
    from gradviz.sources.expr import trace_expression

    x1 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    f = (torch.exp(x1 / x2) + x1 / x2) * (x1 / x2 - torch.log(x2))
    f.backward()
    trace = trace_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", at={"x1": 0.5, "x2": 1.0})
    assert float(trace.gradient("f", "x1")) == pytest.approx(x1.grad.item(), rel=1e-12)
    assert float(trace.gradient("f", "x2")) == pytest.approx(x2.grad.item(), rel=1e-12)
