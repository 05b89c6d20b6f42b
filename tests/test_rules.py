"""Every op in the rules table, walked: it parses, evaluates as torch does, and its
derivatives in both modes match finite differences and torch. A new rule is tested here
without touching this file (unless it is a new operator rather than a named function)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from gradviz.check import finite_difference_gradients, torch_forward, torch_gradients, torch_tangents
from gradviz.core.passes import forward_values
from gradviz.core.rules import RULES
from gradviz.sources.expr import FUNCTIONS, OPTIONS, parse_expression, trace_expression
from gradviz.sources.model.describe import partial_formulas

torch = pytest.importorskip("torch")

# Ops written as operators rather than called by name: how the parser spells each.
OPERATORS = {"add": "a + b", "sub": "a - b", "mul": "a * b", "div": "a / b", "pow": "a ** b",
             "matmul": "a @ b", "neg": "-a", "transpose": "a.T"}
OPTION_VALUES = {"axis": (0, 1), "p": (0.3,)}
SHAPE = (3, 3)  # square: every op, matmul and transpose included, takes it
H = 1e-6


def _spellings(rule) -> list[str]:
    """Expression texts that use `rule` (each name, each option value), in inputs a and b."""
    if not rule.names:
        return [OPERATORS[rule.name]]
    args = ", ".join("ab"[:rule.arity])
    texts = [f"{name}({args})" for name in rule.names]
    for value in OPTION_VALUES.get(rule.option, ()):
        texts.append(f"{rule.names[0]}({args}, {rule.option}={value})")
    return texts


def _inputs(rule, text: str) -> dict[str, np.ndarray]:
    """Inputs in the op's domain: mixed signs away from kinks where the op is finite there,
    else in (0.1, 0.9) (log, sqrt, bce, pow with a real exponent)."""
    rng = np.random.default_rng(sum(map(ord, text)))
    mixed = {k: rng.uniform(0.2, 1.5, SHAPE) * rng.choice([-1.0, 1.0], SHAPE) for k in "ab"[:rule.arity]}
    graph = parse_expression(text)
    with np.errstate(all="ignore"):
        values = forward_values(graph, mixed, "float64")
    if all(np.all(np.isfinite(v)) for v in values):
        return mixed
    return {k: rng.uniform(0.1, 0.9, SHAPE) for k in mixed}


CASES = [(name, text) for name, rule in RULES.items() for text in _spellings(rule)]


def test_every_rule_is_reachable_and_has_an_oracle():
    named = {rule.name for rule in RULES.values() if rule.names}
    assert set(OPERATORS) == set(RULES) - named
    assert all(rule.oracle is not None for rule in RULES.values())
    assert FUNCTIONS["ln"] == ("log", 1) and OPTIONS["mean"] == "axis"
    assert {op for op, _ in FUNCTIONS.values()} == named


@pytest.mark.parametrize("op, text", CASES, ids=[text for _, text in CASES])
def test_rule_parses_evaluates_and_differentiates_both_ways(op, text):
    rule = RULES[op]
    graph = parse_expression(text)
    assert [n.op for n in graph.nodes if not n.is_leaf] == [op]
    at = _inputs(rule, text)
    trace = trace_expression(text, at=at)
    (out, oid), = graph.outputs.items()
    # evaluates as torch does
    leaves = {k: torch.tensor(v, dtype=torch.float64) for k, v in at.items()}
    expected = torch_forward(trace.graph, leaves)[oid].numpy()
    np.testing.assert_allclose(trace.values[oid], expected, rtol=1e-12, atol=1e-12)
    # reverse mode: against finite differences and torch.autograd
    fd = finite_difference_gradients(trace, step=H)
    autograd = torch_gradients(trace)
    for label in at:
        np.testing.assert_allclose(trace.gradient(out, label), fd[out][label], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(trace.gradient(out, label), autograd[out][label], rtol=1e-10, atol=1e-12)
    # forward mode: the tangent along all-ones of each input, against a central difference and torch.func.jvp
    jvp = torch_tangents(trace)
    for label in at:
        up = forward_values(trace.graph, {**at, label: at[label] + H}, "float64")[oid]
        down = forward_values(trace.graph, {**at, label: at[label] - H}, "float64")[oid]
        np.testing.assert_allclose(trace.tangents[label][oid], (up - down) / (2 * H), rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(trace.tangents[label][oid], jvp[label][out], rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("op", [name for name, rule in RULES.items() if rule.elementwise])
def test_model_nodes_read_the_rules_formulas(op):
    rule = RULES[op]
    inputs = ["h", "g"][:rule.arity]
    fields = {"p": "0.1"}
    assert partial_formulas(op, "y", inputs, **fields) == tuple(
        p.format(*inputs, out="y", **fields) for p in rule.partials)


def test_the_readme_names_every_function_the_parser_knows():
    from pathlib import Path

    text = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    language = text.split("**The language.**", 1)[1].split("\n\n", 1)[0]
    missing = [name for name in FUNCTIONS if f"`{name}" not in language]
    assert missing == [], f"README's 'The language' paragraph does not name {missing}"


def test_every_rule_has_a_scalar_closed_form_that_evaluates_as_the_rule():
    # methods' SymPy closed forms come from the table: a new op brings its own or is refused here.
    sp = pytest.importorskip("sympy")
    assert {name for name, rule in RULES.items() if rule.sympy is None} == {"dropout"}  # a random mask
    rng = np.random.default_rng(7)
    for name, rule in RULES.items():
        if rule.sympy is None:
            continue
        for _ in range(5):
            values = [float(v) for v in rng.uniform(0.1, 0.9, rule.arity) * rng.choice([-1, 1], rule.arity)]
            if name in ("log", "sqrt", "bce", "pow"):
                values = [abs(v) for v in values]
            form = rule.sympy(sp)(*(sp.Float(v, 30) for v in values))  # numbers: a branch has a truth value
            expected = rule.evaluate(tuple(np.full((1,), v) for v in values), {})  # matmul needs 1-D
            assert float(form) == pytest.approx(float(np.asarray(expected).reshape(-1)[0]), rel=1e-12), name


def test_branch_conditions_stop_on_symbols_and_scalar_outputs_are_one_number():
    sp = pytest.importorskip("sympy")
    x, y = sp.symbols("x y", real=True)
    for name, rule in RULES.items():
        if rule.branch is not None:
            with pytest.raises(TypeError):
                rule.sympy(sp)(*(x, y)[:rule.arity])
    for name, rule in RULES.items():
        args = tuple(np.full(SHAPE, 0.5) for _ in range(rule.arity))
        out = rule.evaluate(args, {"p": 0.3, "seed": 0} if rule.option == "p" else {})
        assert (np.ndim(out) == 0) == rule.scalar_out or rule.option == "axis", name


SECOND_ATTRS = {"p": 0.3, "seed": 0}


@pytest.mark.parametrize("name", [name for name, rule in RULES.items() if rule.elementwise and rule.arity == 1])
def test_every_one_input_elementwise_rule_has_a_second_derivative_equal_to_torch_double_backward(name):
    rule = RULES[name]
    assert rule.second is not None, f"{name}: give its second derivative (second=...)"
    rng = np.random.default_rng(sum(map(ord, name)))
    attrs = SECOND_ATTRS if rule.option == "p" else {}
    x = rng.uniform(0.2, 1.5, SHAPE) * rng.choice([-1.0, 1.0], SHAPE)  # mixed signs, away from kinks
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(rule.evaluate((x,), attrs))):  # log, sqrt: inside their domain
            x = rng.uniform(0.2, 0.9, SHAPE)
    out = rule.evaluate((x,), attrs)
    ours = rule.second((x,), out, attrs)
    t = torch.tensor(x, requires_grad=True)
    oracle = rule.oracle(torch)
    y = oracle(t, attrs["p"], attrs["seed"]) if attrs else oracle(t)
    (first,) = torch.autograd.grad(y.sum(), t, create_graph=True)
    theirs = torch.autograd.grad(first.sum(), t, allow_unused=True)[0] if first.requires_grad else None
    np.testing.assert_allclose(ours, np.zeros(SHAPE) if theirs is None else theirs.numpy(force=True), rtol=1e-9, atol=1e-12)
    # and the rule's own first derivative, differenced (away from relu's and abs's kink)
    d = lambda z: rule.derivs((z,), rule.evaluate((z,), attrs), attrs)[0]  # noqa: E731
    np.testing.assert_allclose(ours, (d(x + H) - d(x - H)) / (2 * H), rtol=1e-5, atol=1e-6)


def test_activations_are_the_rules_that_say_so_and_their_forms_name_their_own_quantities():
    activations = {name for name, rule in RULES.items() if rule.activation is not None}
    assert activations == {"sigmoid", "tanh", "relu", "softplus"}
    for name in activations:
        rule = RULES[name]
        assert rule.elementwise and rule.arity == 1
        assert set(re.findall(r"{(\w*)}", rule.activation)) <= {"0", "out"}


def test_one_canonical_name_for_every_level_an_op_is_traced_at():
    from gradviz.core.graph import canonical_op

    assert [canonical_op(op) for op in ("Sigmoid", "sigmoid_", "sigmoid", "ReLU", "relu_", "Tanh", "Dropout")] == \
        ["sigmoid", "sigmoid", "sigmoid", "relu", "relu", "tanh", "dropout"]
    assert all(canonical_op(name) == name for name in RULES)
