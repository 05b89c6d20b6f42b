"""Findings: each deliberately broken spec is flagged at the right node, and healthy ones are not."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.core.findings import CHECKS, Finding, find_issues, none_found, note_kinds
from gradviz.sources.expr import trace_expression
from gradviz.sources.model import trace_spec
from tests.model_specs import write_spec


def flagged(trace) -> list[tuple[str, str]]:
    return [(f.kind, trace.graph.nodes[f.node].label) for f in find_issues(trace)]


def test_saturated_sigmoid_is_flagged_at_the_hidden_sigmoid(tmp_path: Path) -> None:
    trace = trace_spec(write_spec(tmp_path, "saturated"), batch_size=16)
    assert ("saturated", "sigmoid") in flagged(trace)
    assert ("saturated", "sigmoid_1") not in flagged(trace)
    message = next(f.message for f in find_issues(trace) if f.kind == "saturated")
    assert "σ' < 0.01" in message


def test_nan_from_log_is_the_first_finding_at_the_log_node(tmp_path: Path, capsys) -> None:
    path = write_spec(tmp_path, "nan_log")
    trace = trace_spec(path)
    first = find_issues(trace)[0]
    assert (first.kind, trace.graph.nodes[first.node].label) == ("non-finite", "log")
    assert "NaN" in first.message and "its inputs are finite" in first.message
    assert main(["trace", str(path)]) == 1
    out = capsys.readouterr().out
    assert "findings" in out and "non-finite" in out


def test_dead_relu_and_vanishing_gradient(tmp_path: Path) -> None:
    dead = trace_spec(write_spec(tmp_path, "dead_relu"), batch_size=16)
    assert ("dead-relu", "relu") in flagged(dead)
    vanishing = trace_spec(write_spec(tmp_path, "vanishing"), batch_size=16)
    kinds = flagged(vanishing)
    assert any(kind == "vanishing" for kind, _ in kinds)
    # Only the node where it starts is reported, not every node before it.
    assert sum(kind == "vanishing" for kind, _ in kinds) == 1


def test_dropout_in_the_wrong_mode(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "dropout_modes")
    training = find_issues(trace_spec(path, training=True))
    assert [f.kind for f in training] == ["dropout"] and "not active" in training[0].message
    evaluation = find_issues(trace_spec(path, training=False))
    assert [f.kind for f in evaluation] == ["dropout"] and "evaluation mode" in evaluation[0].message


def test_samples_and_the_lecture_example_are_healthy(lecture_trace) -> None:
    assert find_issues(lecture_trace) == []
    root = Path(__file__).parent.parent / "samples"
    for name in ("two_layer_mlp", "deep_mlp", "small_cnn"):
        assert find_issues(trace_spec(root / f"{name}.py")) == [], name


def test_expressions_get_the_same_signals() -> None:
    trace = trace_expression("log(x) * 2", {"x": -1.0})
    assert find_issues(trace)[0] == Finding("non-finite", trace.graph.find("v1").id,
                                            "first non-finite value: 1 NaN of 1; its inputs are finite")
    assert flagged(trace_expression("sigmoid(20 * x)", {"x": 1.0})) == [("saturated", "f")]
    assert flagged(trace_expression("relu(x - 2)", {"x": 1.0})) == [("dead-relu", "f")]


def test_contributions_that_do_not_add_up_are_reported_by_node(lecture_trace) -> None:
    contributions = dict(lecture_trace.contributions["f"])
    edge = next(iter(contributions))
    contributions[edge] = contributions[edge] + 1.0
    broken = replace(lecture_trace, contributions={"f": contributions})
    source = broken.graph.nodes[broken.graph.nodes[edge[0]].inputs[edge[1]]]
    assert [(f.kind, f.node) for f in find_issues(broken)] == [("adjoint-sum", source.id)]


@pytest.mark.parametrize("ratio, kind", [(1e-9, "vanishing"), (1e6, "exploding")])
def test_gradient_scale_thresholds(ratio: float, kind: str) -> None:
    trace = trace_expression("f = 2 * (w * x)", {"w": ratio, "x": 1.0})
    assert (kind, "x") in flagged(trace)


def test_findings_need_neither_torch_nor_rich() -> None:
    import subprocess
    import sys

    code = ("import sys, gradviz.core.findings\n"
            "print(sorted(m for m in ('torch', 'rich', 'textual') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "[]"


def test_checks_never_ask_whether_they_hold_arrays_or_statistics() -> None:
    """Each check reads numbers through core.stats.ArrayFacts, which answers alike for an
    array and for the statistics a summaries-only trace keeps: no check (nor the mask
    search the masks check runs) tests for the one or the other itself."""
    import ast
    import gradviz.core.findings as findings
    import gradviz.core.masks as masks

    for module in (findings, masks):
        tree = ast.parse(Path(module.__file__).read_text())
        names = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        names |= {n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
        strings = {n.value for n in ast.walk(tree) if isinstance(n, ast.Constant) and isinstance(n.value, str)}
        assert not names & {"TensorStats", "Summary", "hasattr"}, module.__name__
        assert not strings & {"posinf_count", "nan_count", "inf_count", "zero_fraction"}, module.__name__


@pytest.mark.parametrize("spelling", ["sigmoid", "Sigmoid", "sigmoid_", "tanh_", "Tanh"])
def test_activations_are_recognised_by_their_one_name_at_any_level(spelling: str) -> None:
    # an in-place sigmoid_ (or tanh_) used to slip past the findings' own name sets
    trace = trace_expression("sigmoid(20 * x)" if "igmoid" in spelling else "tanh(20 * x)", {"x": 1.0})
    nodes = tuple(replace(n, op=spelling) if n.op in ("sigmoid", "tanh") else n for n in trace.graph.nodes)
    trace = replace(trace, graph=type(trace.graph)(nodes, trace.graph.outputs))
    assert flagged(trace) == [("saturated", "f")]


def test_each_check_gives_only_the_kinds_it_declares(tmp_path: Path, lecture_trace) -> None:
    """CHECKS' kinds are what the views sort notes from problems by: a check giving an
    undeclared kind would be shown as neither."""
    traces = [lecture_trace, trace_expression("log(x) * 2", {"x": -1.0}),
              trace_expression("sigmoid(20 * x) + relu(x - 2)", {"x": 1.0}),
              trace_expression("f = 2 * (w * x)", {"w": 1e-9, "x": 1.0}),
              trace_spec(write_spec(tmp_path, "dropout_modes"), training=False)]
    seen = set()
    for trace in traces:
        for check in CHECKS:
            kinds = {f.kind for f in check.find(trace)}
            assert kinds <= set(check.kinds), (check.name, kinds)
            seen |= kinds
    assert {"non-finite", "saturated", "dead-relu", "vanishing", "dropout"} <= seen
    assert note_kinds() == {"masked", "discarded", "structural-zero"}
    assert len({check.name for check in CHECKS}) == len(CHECKS)


def test_the_no_findings_sentence_names_what_the_checks_look_for(lecture_trace, capsys) -> None:
    # The sentence as it was written by hand before CHECKS made it (a new check adds its part).
    assert none_found().startswith("findings: none (no NaN/Inf, no vanishing or exploding adjoints, "
                                   "no saturated or dead units")
    assert all(check.clear in none_found() for check in CHECKS)
    root = Path(__file__).parent.parent / "samples"
    assert main(["trace", str(root / "two_layer_mlp.py")]) == 0
    assert none_found() in " ".join(capsys.readouterr().out.split())  # wrapped at the console's width
