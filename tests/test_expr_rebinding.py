"""Expressions follow Python's rebinding: `c = c + c + 1` and `c += …` make a new node with
its own label (c, c₂, c₃…), and a name means its latest value. micrograd's own tests,
written as expressions the way its test file writes them, against torch."""

from __future__ import annotations

import io

import pytest
from rich.console import Console

from gradviz.cli import main
from gradviz.sources.expr import trace_expression
from gradviz.views.trace_report import trace_report

torch = pytest.importorskip("torch")

# micrograd test/test_engine.py, test_sanity_check: the lines between Value(...) and backward().
SANITY_CHECK = """
z = 2 * x + 2 + x
q = z.relu() + z * x
h = (z * z).relu()
y = h + q + q * x
"""

# test_more_ops, the same way: a, b are the Values; the rest is the test's text verbatim.
MORE_OPS = """
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + (b + a).relu()
d += 3 * d + (b - a).relu()
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
"""


def _torch_run(text: str, inputs: dict[str, float]) -> tuple[dict[str, list], dict[str, float]]:
    """Run the same statements in torch (exec on tensors: the oracle), keeping every value a name took."""
    env = {k: torch.tensor(v, dtype=torch.float64, requires_grad=True) for k, v in inputs.items()}
    history: dict[str, list] = {}
    for line in text.strip().splitlines():
        name, op, rest = line.split(maxsplit=2)
        if op == "+=":  # micrograd's Value has no __iadd__: c += x makes a new c; a tensor would change in place
            line = f"{name} = {name} + ({rest})"
        exec(line, {}, env)  # noqa: S102 - the test's own fixed text
        env[name].retain_grad()
        history.setdefault(name, []).append(env[name])
    return history, env


@pytest.mark.parametrize("text, inputs, output", [(SANITY_CHECK, {"x": -4.0}, "y"),
                                                  (MORE_OPS, {"a": -4.0, "b": 2.0}, "g")])
def test_micrograd_tests_give_every_value_and_gradient_torch_gives(text, inputs, output):
    trace = trace_expression(text, at=inputs)
    history, env = _torch_run(text, inputs)
    env[output].backward()
    assert list(trace.graph.outputs) == [output]
    for name, values in history.items():
        for k, tensor in enumerate(values, start=1):
            label = name if k == 1 else name + str(k).translate(str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉"))
            node = trace.graph.find(label)
            assert node is not None, label
            assert float(trace.values[node.id]) == pytest.approx(float(tensor.detach()), rel=1e-12, abs=1e-12), label
            assert float(trace.adjoints[output][node.id]) == pytest.approx(float(tensor.grad), rel=1e-12, abs=1e-12), label
    for name in inputs:
        assert float(trace.gradient(output, name)) == pytest.approx(float(env[name].grad), rel=1e-12), name
    if output == "g":  # micrograd's own numbers
        assert float(trace.values[trace.graph.outputs["g"]]) == pytest.approx(24.70408163265306, abs=1e-12)
        assert float(trace.gradient("g", "a")) == pytest.approx(138.83381924198252, abs=1e-10)
        assert float(trace.gradient("g", "b")) == pytest.approx(645.5772594752186, abs=1e-10)


def test_each_assignment_is_its_own_labelled_node_and_the_table_says_so():
    trace = trace_expression("c = a + 1\nc = c + c + 1\nc * 2", at={"a": 3.0})
    labels = [n.label for n in trace.graph.nodes]
    assert len(labels) == len(set(labels))
    assert trace.graph.find("c₂").definition == "c₂ = v1 + 1"
    assert float(trace.values[trace.graph.find("c").id]) == 4.0
    assert float(trace.values[trace.graph.find("c₂").id]) == 9.0
    assert float(trace.values[trace.graph.outputs["f"]]) == 18.0  # the last c, as Python reads it
    console = Console(file=io.StringIO(), width=120, record=True)
    console.print(trace_report(trace))
    assert "c₂: a later value of c (the name was assigned again)" in console.export_text()


def test_show_names_a_later_value_by_its_label(capsys):
    assert main(["trace", "c = a + 1; c += 1; c * 2", "--at", "a=1", "--show", "c₂"]) == 0
    assert "c₂ = c + 1" in capsys.readouterr().out


def test_handouts_write_a_later_value_as_a_subscript():
    from gradviz.views.trace_table import to_latex, to_markdown

    trace = trace_expression("c = a + 1; c += 1; c * 2", at={"a": 1.0})
    assert "| c₂ | c₂ = c + 1 | 3.0 |" in to_markdown(trace)
    latex = to_latex(trace)
    assert r"$c_{2}$ & $c_{2} = c + 1$ & $3.0$" in latex and "₂" not in latex
