"""Expression parsing: sharing, labels, statements and outputs."""

from __future__ import annotations

import numpy as np
import pytest

from gradviz.core.graph import Graph, Node
from gradviz.core.passes import run_passes
from gradviz.core.rules import rule_for
from gradviz.errors import MissingRuleError
from gradviz.sources.expr import parse_expression, trace_expression


def test_identical_subexpressions_become_one_node():
    graph = parse_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))")
    divisions = [n for n in graph.nodes if n.op == "div"]
    assert len(divisions) == 1
    assert [graph.nodes[u].label for u in graph.users(divisions[0].id)] == ["v2", "v3", "v5"]


def test_statements_name_their_nodes_and_unused_names_are_outputs():
    graph = parse_expression("u = x1/x2; f = exp(u) * u")
    assert list(graph.outputs) == ["f"]
    assert [n.definition for n in graph.nodes if not n.is_leaf] == ["u = x1/x2", "v1 = exp(u)", "f = v1·u"]


def test_several_assignments_give_several_outputs():
    graph = parse_expression("s = a + b\np = a * b")
    assert list(graph.outputs) == ["s", "p"]


def test_a_name_reassigned_is_still_an_output():
    graph = parse_expression("u = a * 2; u = u + 1")
    assert list(graph.outputs) == ["u"]
    assert graph.nodes[graph.outputs["u"]].op == "add"


def test_a_bare_name_at_the_end_is_that_names_output():
    """`y = a*b` then `y`: the output is y (∂y/∂·), not an f that no row of the table shows."""
    graph = parse_expression("y = a * b\ny")
    assert list(graph.outputs) == ["y"]
    assert graph.nodes[graph.outputs["y"]].label == "y"
    trace = trace_expression("u = a * 2\nu = u + 1\nu", {"a": 3.0})
    assert list(trace.adjoints) == ["u"] and trace.gradient("u", "a") == pytest.approx(2.0)


def test_ln_is_log_and_constants_are_shared_leaves():
    graph = parse_expression("ln(x) * 2 + x * 2")
    assert [n.op for n in graph.nodes].count("const") == 1
    assert graph.find("v1").op == "log"


def test_user_names_never_collide_with_v_numbers():
    graph = parse_expression("v1 * exp(v1)")
    labels = [n.label for n in graph.nodes]
    assert labels.count("v1") == 1 and "v2" in labels


def test_transpose_matmul_and_broadcasting_values():
    trace = trace_expression("sum(W.T @ x + b)", at={"W": [[1, 2], [3, 4]], "x": [1, 1], "b": 1.0})
    assert float(trace.values[trace.graph.outputs["f"]]) == pytest.approx((1 + 3) + (2 + 4) + 2)
    np.testing.assert_allclose(trace.gradient("f", "b"), 2.0)
    np.testing.assert_allclose(trace.gradient("f", "W"), [[1, 1], [1, 1]])


def test_dropout_uses_a_seeded_mask_and_scales_kept_units():
    at = {"x": np.ones(1000)}
    first = trace_expression("sum(dropout(x, 0.25))", at=at, seed=7)
    again = trace_expression("sum(dropout(x, 0.25))", at=at, seed=7)
    other = trace_expression("sum(dropout(x, 0.25))", at=at, seed=8)
    out = first.values[first.graph.find("v1").id]
    np.testing.assert_allclose(np.unique(out), [0.0, 1 / 0.75])
    assert 0.2 < np.mean(out == 0) < 0.3
    np.testing.assert_array_equal(out, again.values[again.graph.find("v1").id])
    assert not np.array_equal(out, other.values[other.graph.find("v1").id])
    np.testing.assert_allclose(first.gradient("f", "x"), out)  # ∂/∂x = mask/(1−p)


def test_float32_trace_keeps_its_dtype():
    trace = trace_expression("exp(x) * y", at={"x": 0.5, "y": 2.0}, dtype="float32")
    assert all(v.dtype == np.float32 for v in trace.values)
    assert float(trace.gradient("f", "x")) == pytest.approx(2 * np.exp(0.5), rel=1e-6)


def test_graph_is_immutable_and_validates():
    graph = parse_expression("x * y")
    with pytest.raises(AttributeError):
        graph.nodes[0].label = "z"  # type: ignore[misc]
    with pytest.raises(TypeError):
        graph.outputs["g"] = 0  # type: ignore[index]
    bad = Graph((Node(0, "exp", (1,), "v1"), Node(1, "input", (), "x")), {"f": 0})
    with pytest.raises(ValueError, match="does not come before it"):
        bad.validate()


def test_networkx_view_has_every_edge():
    graph = parse_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))")
    g = graph.to_networkx()
    assert g.number_of_nodes() == len(graph.nodes)
    assert g.number_of_edges() == sum(len(n.inputs) for n in graph.nodes)


def test_a_missing_rule_fails_loudly_naming_the_op():
    with pytest.raises(MissingRuleError, match="'frobnicate'"):
        rule_for("frobnicate")
    graph = Graph((Node(0, "input", (), "x"), Node(1, "frobnicate", (0,), "v1")), {"f": 1})
    with pytest.raises(MissingRuleError, match="'frobnicate'"):
        run_passes(graph, {"x": np.asarray(1.0)})


def test_x_squared_shares_the_input_on_both_edges():
    trace = trace_expression("x * x", at={"x": 3.0})
    assert float(trace.gradient("f", "x")) == 6.0
    x = trace.graph.find("x").id
    assert [float(v) for _, v in trace.edge_terms("f", x)] == [3.0, 3.0]


def test_powers_read_naturally():
    graph = parse_expression("x ** 2 + x ** 3 + x ** y")
    defs = [n.definition for n in graph.nodes if n.op == "pow"]
    assert defs == ["v1 = x²", "v2 = x³", "v4 = x^y"]
    assert graph.find("v1").meta["partials"][0] == "2·x"


def test_a_long_flat_sum_is_not_too_deep():
    # 'a0 + a1 + … + a999' nests 1000 deep in the ast; a person sees no nesting at all.
    graph = parse_expression(" + ".join(f"a{i}" for i in range(1000)))
    assert sum(1 for n in graph.nodes if n.op == "add") == 999


def test_sources_of_multiline_and_non_ascii_statements():
    graph = parse_expression("u = exp(α)\nf = (u +\n  α) * 2")
    assert [n.meta["source"] for n in graph.nodes if not n.is_leaf] == ["exp(α)", "u +\nα", "(u +\nα) * 2"]


def test_ops_on_constants_alone_are_not_differentiated():
    # (1+1) is a constant: no NaN adjoint from d(x**y)/dy = x**y·ln(x) at x = −1.
    trace = trace_expression("x ** (1 + 1)", at={"x": -1.0})
    assert trace.first_nonfinite() is None
    assert float(trace.gradient("f", "x")) == -2.0
    two = next(n for n in trace.graph.nodes if n.op == "add")
    assert trace.adjoints["f"][two.id] is None


def test_powers_at_zero_differentiate_as_torch_does():
    pytest.importorskip("torch")
    from gradviz.check import torch_gradients

    trace = trace_expression("x ** 0 + x ** 2 + x ** y", at={"x": 0.0, "y": 2.0})
    expected = torch_gradients(trace)["f"]
    assert float(trace.gradient("f", "x")) == float(expected["x"]) == 0.0
    assert float(trace.gradient("f", "y")) == float(expected["y"]) == 0.0
