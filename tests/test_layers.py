"""Backprop by layers: the lecture's matrix form against the trace's adjoints and torch."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gradviz.commands.common import read_source
from gradviz.core.layers import backprop_by_layers, find_layers
from gradviz.sources.bindings import parse_at, parse_shapes
from gradviz.sources.expr import trace_expression
from gradviz.views.layers import layers_report, matrix_lines

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"
SNAPSHOTS = Path(__file__).parent / "snapshots"


def sample_trace(name: str):
    source = read_source(f"@{SAMPLES / name}")
    return trace_expression(source.text, parse_at(source.at), parse_shapes(source.shape), 0)


def text_of(trace, width: int, delta: str = "lecture") -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(layers_report(trace, backprop_by_layers(trace), width, delta))
    return out.getvalue()


def snapshot(name: str, text: str) -> None:
    path = SNAPSHOTS / name
    if os.environ.get("GRADVIZ_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{name} changed (GRADVIZ_UPDATE_SNAPSHOTS=1 to accept)"


def torch_grads(trace, names=("W1", "b1", "W2", "b2")):
    """The lecture's network rebuilt in torch from the trace's inputs: autograd's gradients."""
    torch = pytest.importorskip("torch")
    v = {n: torch.tensor(trace.values[trace.graph.find(n).id], requires_grad=True) for n in ("x", *names)}
    y = torch.tensor(trace.values[trace.graph.find("y").id])
    h = torch.sigmoid(torch.sigmoid(v["x"] @ v["W1"] + v["b1"]) @ v["W2"] + v["b2"])
    torch.nn.functional.binary_cross_entropy(h, y).backward()
    return {n: v[n].grad.numpy() for n in names}, h.detach().numpy(), y.numpy()


@pytest.mark.parametrize("name", ["two_layer_network.expr", "backprop.expr"])
def test_two_layer_network_reads_as_the_slides(name: str) -> None:
    trace = sample_trace(name)
    backprop = backprop_by_layers(trace)
    assert [g.layer.index for g in backprop.layers] == [2, 1]  # last layer first, as backprop runs
    assert backprop.ok, [c for c in backprop.checks if not c.ok]
    grads, h, y = torch_grads(trace)
    rows = h.size
    second, first = backprop.layers
    np.testing.assert_allclose(second.delta * rows, h - y, rtol=1e-12, atol=1e-15)  # δ2 = h − y per example
    np.testing.assert_allclose(second.grad_weight, grads["W2"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(first.grad_weight, grads["W1"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(first.grad_bias, grads["b1"], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(second.grad_bias, grads["b2"], rtol=1e-12, atol=1e-15)
    # ... and equal to the per-node adjoints the trace already has
    np.testing.assert_array_equal(first.grad_weight, trace.gradient(trace.output_names[0], "W1"))
    form = "h − y" if rows == 1 else f"(h − y)/{rows}"
    text = text_of(trace, 200, "pre-activation")
    for line in (f"δ2 = ∂J/∂z2 = ∂J/∂h · ∂h/∂lay2 ⊙ lay2(1 − lay2) = {form}",
                 "δk = ∂J/∂z_k: taken before the activation",
                 "∂J/∂h = (h − y) / (h(1 − h))", "∂h/∂lay2 = 1",
                 "∂J/∂W2 = lay1ᵀ·δ2", "∂J/∂W1 = xᵀ·δ1 = xᵀ·[(δ2·W2ᵀ) ⊙ lay1(1 − lay1)]",
                 "the slide writes it xᵀ·δ2·W2·lay1(1 − lay1)", "∂J/∂lay1 = δ2·W2ᵀ   (passed down: ∂z2/∂lay1 = W2ᵀ)",
                 "all 10 matrix-form quantities equal the reverse pass's adjoints"):
        assert line in text, line
    assert "∂lay2/∂lay1" not in text  # beside a δ taken before σ, that factor would count σ′ twice
    text = text_of(trace, 200)
    for line in ("δk = ∂J/∂lay_k: taken after the activation, as on the slides",
                 "δ2 = ∂J/∂lay2 = ∂J/∂h · ∂h/∂lay2", "z2 = lay1·W2 + b2", "lay2 = σ(z2)", "z1 = x·W1 + b1",
                 f"∂J/∂z2 = δ2 ⊙ ∂lay2/∂z2 = δ2 ⊙ lay2(1 − lay2) = {form}", f"{form}: the slide's cancellation",
                 "∂lay2/∂lay1 = lay2(1 − lay2)·W2ᵀ",
                 "δ1 = ∂J/∂lay1 = δ2·∂lay2/∂lay1 = (δ2 ⊙ lay2(1 − lay2))·W2ᵀ   (passed down)",
                 "∂J/∂W1 = δ1·∂lay1/∂W1 = xᵀ·(δ1 ⊙ lay1(1 − lay1))",
                 "per example, as on the slide: ∂lay1/∂W1 = lay1(1 − lay1)·xᵀ",
                 "all 10 matrix-form quantities equal the reverse pass's adjoints"):
        assert line in text, line
    # J, the batch mean, is named and its value shown: the trace's output value
    loss = float(np.asarray(trace.values[trace.graph.outputs[trace.output_names[0]]]))
    assert f"= {loss:.4f}" in text and ("J = 1/B·Σ L, the mean over B = 4" in text if rows > 1 else "J = L" in text)


@pytest.mark.parametrize("name", ["two_layer_network.expr", "backprop.expr"])
def test_the_lecture_delta_times_the_chain_on_screen_is_the_next_delta(name: str) -> None:
    """δ1 = δ2·∂lay2/∂lay1 with the numbers the view prints: the product a student computes."""
    trace = sample_trace(name)
    second, first = backprop_by_layers(trace).layers
    lay1, lay2 = trace.graph.nodes[first.layer.output].id, trace.graph.nodes[second.layer.output].id
    np.testing.assert_allclose(second.upstream, trace.adjoints[trace.output_names[0]][lay2], rtol=1e-12)  # δ2 = ∂J/∂lay2
    product = np.asarray(second.upstream).reshape(-1, 1)[0] @ second.chain  # first example, as the chain is shown
    np.testing.assert_allclose(product, np.asarray(trace.adjoints[trace.output_names[0]][lay1]).reshape(-1, 3)[0],
                               rtol=1e-12)
    # pre-activation: the δ before σ times ∂lay2/∂lay1 counts σ′ twice and misses δ1
    doubled = np.asarray(second.delta).reshape(-1, 1)[0] @ second.chain
    assert not np.allclose(doubled, product)


def test_named_statements_name_the_layers_and_group_their_nodes() -> None:
    trace = sample_trace("backprop.expr")
    layers = find_layers(trace.graph)
    assert [layer.name for layer in layers] == ["lay1", "lay2"]
    labels = [[trace.graph.nodes[i].label for i in layer.nodes] for layer in layers]
    assert labels == [["v1", "v2", "lay1"], ["v3", "v4", "lay2"]]
    assert trace.graph.nodes[layers[1].input].label == "lay1"
    other = trace_expression("a = tanh(x @ A); b = sigmoid(a @ B + c); J = sum(b * b) + sum(a)", {},
                             parse_shapes(["x=3x2,A=2x4,B=4x2,c=2"]), seed=1)
    assert [layer.name for layer in find_layers(other.graph)] == ["a", "b"]
    backprop = backprop_by_layers(other)
    assert backprop.ok and backprop.layers[1].upstream_from_trace  # a has two uses: its adjoint comes from the trace
    text = text_of(other, 120)
    assert "lay1 = tanh(x·W1)   nodes v1 a   (a, W1 = A)" in text and "∂lay1/∂W1 = (1 − lay1²)·xᵀ" in text


def test_model_spec_layers_equal_param_grad() -> None:
    torch = pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec
    from gradviz.sources.spec import load_spec

    trace = trace_spec(str(SAMPLES / "two_layer_mlp.py"), batch_size=4, seed=0)
    backprop = backprop_by_layers(trace)
    assert backprop.ok and backprop.head.kind == "bce" and backprop.head.delta_form == "(h − y)/4"
    second, first = backprop.layers
    assert (first.layer.name, second.layer.name) == ("fc1", "fc2") and first.layer.transposed
    # the oracle: a plain loss.backward() on the same batch
    spec = load_spec(str(SAMPLES / "two_layer_mlp.py"))
    torch.manual_seed(0)
    model = spec.build_model()
    x = torch.tensor(np.asarray(trace.values[trace.graph.find("x").id]))
    y = torch.tensor(np.asarray(trace.values[trace.graph.find("y").id]))
    spec.loss(model(x), y).backward()
    np.testing.assert_allclose(first.grad_weight.T, model.fc1.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(second.grad_weight.T, model.fc2.weight.grad.numpy(), rtol=1e-5, atol=1e-7)
    text = text_of(trace, 120)
    assert "W1 = fc1.weightᵀ" in text and "✓ equals the adjoint of fc1.weight" in text
    one = backprop_by_layers(trace_spec(str(SAMPLES / "two_layer_mlp.py"), batch_size=1, seed=0))
    assert one.ok and one.head.delta_form == "h − y"  # one example: the slide's δ2 = h − y exactly


@pytest.mark.parametrize("body, at", [
    ("h = tanh(x @ W1 + b1); o = relu(h @ W2) ; J = mse(o @ W3 + b3, y)", "x=4x3,W1=3x5,b1=5,W2=5x4,W3=4x2,b3=2,y=4x2"),
    ("J = sum(softplus(sigmoid(x @ A) @ B + c))", "x=3x2,A=2x2,B=2x6,c=6"),
    ("J = bce(sigmoid(x @ W + b), t)", "x=2,W=2x1,b=1"),
])
def test_every_quantity_equals_the_trace_on_other_networks(body: str, at: str) -> None:
    shapes = parse_shapes([at])
    trace = trace_expression(body, {"t": np.array([1.0])} if "bce" in body else {}, shapes, seed=3)
    backprop = backprop_by_layers(trace)
    assert backprop.layers and backprop.ok, [c for c in backprop.checks if not c.ok]
    assert len(backprop.checks) >= 3 * len(backprop.layers)


def test_a_wrong_adjoint_is_caught() -> None:
    """The checks can fail: tamper with W1's adjoint in the trace and the view says so."""
    trace = sample_trace("two_layer_network.expr")
    adjoints = list(trace.adjoints["J"])
    w1 = trace.graph.find("W1").id
    adjoints[w1] = adjoints[w1] * 1.001
    broken = replace(trace, adjoints={"J": tuple(adjoints)})
    backprop = backprop_by_layers(broken)
    assert not backprop.ok
    assert [c.what for c in backprop.checks if not c.ok] == ["∂J/∂W1"]
    assert "✗ differs from the adjoint of W1" in text_of(broken, 120)


def test_matrix_lines_small_in_full_big_as_norm() -> None:
    assert matrix_lines(np.array([[1.0, -0.5], [0.25, 2.0]])) == ["[[ 1.0000, -0.5000],", " [ 0.2500,  2.0000]]"]
    assert matrix_lines(np.ones((10, 10))) == ["10×10 ‖10‖"]


@pytest.mark.parametrize("width", [80, 120])
def test_layers_view_snapshot(width: int) -> None:
    text = text_of(sample_trace("two_layer_network.expr"), width)
    assert max(len(line) for line in text.splitlines()) <= width
    snapshot(f"layers_two_layer_network_{width}.txt", text)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gradviz", *args], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=60)


def test_cli_trace_and_export_layers(tmp_path: Path) -> None:
    done = run_cli("trace", "@samples/backprop.expr", "--layers")
    assert done.returncode == 0 and "δ2 = ∂J/∂lay2" in done.stdout
    done = run_cli("trace", "@samples/backprop.expr", "--layers", "--delta", "pre-activation")
    assert done.returncode == 0 and "δ2 = ∂J/∂z2" in done.stdout
    out = tmp_path / "layers.txt"
    done = run_cli("export", "@samples/backprop.expr", "--layers", "-o", str(out), "--delta", "pre-activation")
    assert done.returncode == 0 and "∂J/∂W1 = xᵀ·δ1" in out.read_text()
    svg = tmp_path / "layers.svg"
    assert run_cli("export", "@samples/backprop.expr", "--layers", "-o", str(svg)).returncode == 0
    assert svg.read_text().startswith("<svg")


@pytest.mark.parametrize("args, message", [
    (("trace", "@samples/lecture.expr", "--layers"), "no layer of the form act(a @ W + b)"),
    (("export", "@samples/backprop.expr", "--layers", "-o", "x.png"), "written as .svg, .html, .txt"),
    (("trace", "@samples/backprop.expr", "--layers", "--mode", "tangent"), "needs the reverse pass"),
    (("trace", "@samples/backprop.expr", "--layers", "--json"), "it has no --json form"),
    (("trace", "@samples/backprop.expr", "--layers", "--format", "csv"), "it has no --format form"),
])
def test_cli_layers_errors_are_one_line_exit_2(args, message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def test_cli_layers_names_a_nan_and_exits_1() -> None:
    # x·W overflows to inf, and inf − inf in the backward pass is NaN: trace's finding, not a clean view.
    done = run_cli("trace", "L = sum(sigmoid(x @ W + b))", "--at", "x=[[1e308,1e308]]",
                   "--at", "W=[[1e308,1],[1,1]]", "--shape", "b=2", "--layers")
    assert done.returncode == 1, done.stderr
    assert "non-finite: the first value to become NaN/Inf is at" in done.stdout and "Traceback" not in done.stderr


def test_a_factor_with_a_minus_is_parenthesised_wherever_it_multiplies() -> None:
    # ⊙ and · bind tighter than −: "(δ2·W2ᵀ) ⊙ 1 − lay1²" would read as ((δ2·W2ᵀ) ⊙ 1) − lay1².
    trace = trace_expression("L = sum(sigmoid(tanh(x @ W1 + b1) @ W2 + b2))", {},
                             parse_shapes(["x=2x3,W1=3x4,b1=4,W2=4x2,b2=2"]), seed=1)
    text = text_of(trace, 200, "pre-activation")
    assert "(δ2·W2ᵀ) ⊙ (1 − lay1²)" in text and "xᵀ·[(δ2·W2ᵀ) ⊙ (1 − lay1²)]" in text
    assert "xᵀ·δ2·W2·(1 − lay1²)" in text
    assert "⊙ 1 − " not in text and "·1 − " not in text


@pytest.mark.parametrize("body, at", [
    ("L = sum(sigmoid(W @ x + b))", "W=3x2,x=2x1,b=3x1"),  # named like a weight, on the left
    ("L = sum(sigmoid(A @ x + c))", "A=3x2,x=2x1,c=3x1"),  # a bias of one column of per-unit values
    ("L = sum(sigmoid(W @ x + b))", "W=3x2,x=2,b=3"),  # a vector x
    ("L = sum(tanh(W2 @ sigmoid(W1 @ x + b1) + b2))", "W1=4x3,x=3x1,b1=4x1,W2=2x4,b2=2x1"),
])
def test_the_column_vector_form_is_refused_not_misread(body: str, at: str) -> None:
    # Read as the row form, W @ x called x the weight and W the input: refuse it instead.
    trace = trace_expression(body, {}, parse_shapes([at]), seed=2)
    backprop = backprop_by_layers(trace)
    assert not backprop.layers and "column-vector form W·a" in backprop.notes[0]
    done = run_cli("trace", body, *sum((["--shape", s] for s in at.split(",")), []), "--layers")
    assert done.returncode == 2 and len(done.stderr.strip().splitlines()) == 1
    assert "@ x is the column-vector form W·a" in done.stderr and "write it a @ W + b" in done.stderr


def test_the_row_form_with_a_row_bias_is_still_a_layer() -> None:
    trace = trace_expression("L = sum(sigmoid(x @ W + b))", {}, parse_shapes(["x=4x2,W=2x3,b=1x3"]), seed=2)
    backprop = backprop_by_layers(trace)
    assert len(backprop.layers) == 1 and backprop.ok
    assert trace.graph.nodes[backprop.layers[0].layer.weight].label == "W"


def test_one_helper_says_why_there_are_no_layers() -> None:
    from gradviz.core.layers import no_layers_message

    trace = sample_trace("lecture.expr")
    backprop = backprop_by_layers(trace)
    message = no_layers_message(backprop)
    assert message == "no layer of the form act(a @ W + b) feeds f (an expression needs W, b as inputs; a model, Linear modules)"
    assert f"backprop by layers: {message}" in " ".join(text_of(trace, 400).split())
    assert no_layers_message(None) == "the layers view needs the reverse pass (adjoints)"
    assert no_layers_message(backprop_by_layers(sample_trace("backprop.expr"))) is None


def test_writing_the_layers_view_leaves_no_file_open(tmp_path: Path) -> None:
    import gc
    import warnings

    from gradviz.views.layers import write_layers

    trace = sample_trace("backprop.expr")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        write_layers(trace, backprop_by_layers(trace), tmp_path / "layers.txt")
        gc.collect()
    assert not [w for w in caught if issubclass(w.category, ResourceWarning)]
    assert "∂J/∂W1 = δ1·∂lay1/∂W1 = xᵀ·(δ1 ⊙ lay1(1 − lay1))" in (tmp_path / "layers.txt").read_text()


def test_every_activation_is_an_elementwise_rule_and_takes_its_derivative_from_it() -> None:
    from gradviz.core.layers import ACTIVATIONS
    from gradviz.core.rules import RULES

    pre = np.linspace(-2, 2, 9)
    for op, (_, _, prime) in ACTIVATIONS.items():
        rule = RULES[op]
        assert rule.elementwise and rule.arity == 1, op
        out = rule.evaluate((pre,), {})
        step = 1e-6
        numeric = (rule.evaluate((pre + step,), {}) - rule.evaluate((pre - step,), {})) / (2 * step)
        np.testing.assert_allclose(prime(out, pre)[pre != 0], numeric[pre != 0], rtol=1e-6, atol=1e-9)


def test_dropout_between_layers_is_written_with_its_mask_and_p() -> None:
    """δ1 = ∂J/∂h ⊙ mask/(1−p): the slide's x_i/(1−p), with the seeded mask the trace used."""
    from gradviz.core.rules import dropout_mask

    trace = trace_expression("h = dropout(sigmoid(x @ W1 + b1), 0.5); J = mse(h @ W2 + b2, y)", {},
                             parse_shapes(["x=4x3,W1=3x5,b1=5,W2=5x2,b2=2,y=4x2"]), seed=1)
    backprop = backprop_by_layers(trace)
    assert backprop.ok, [c for c in backprop.checks if not c.ok]
    second, first = backprop.layers
    drop = trace.graph.find("h")
    mask = dropout_mask((4, 5), 0.5, drop.attrs["seed"])
    np.testing.assert_array_equal(first.upstream, second.passed_down * mask / 0.5)
    np.testing.assert_allclose(first.upstream, trace.adjoints["J"][first.layer.output], rtol=1e-12)
    assert "δ1 = ∂J/∂lay1 = ∂J/∂h ⊙ mask/(1−0.5)   (back through the dropout h)" in text_of(trace, 120)
    assert "δ1 = ∂J/∂z1 = (∂J/∂h ⊙ mask/(1−0.5)) ⊙ lay1(1 − lay1)" in text_of(trace, 120, "pre-activation")
    assert "∂J/∂lay1" in [c.what for c in first.checks]  # checked, not copied from the trace


def test_a_models_dropout_between_layers_uses_the_mask_torch_drew() -> None:
    pytest.importorskip("torch")
    from gradviz.sources.model import trace_spec

    trace = trace_spec(str(SAMPLES / "deep_mlp.py"), batch_size=4, seed=0)
    backprop = backprop_by_layers(trace)
    assert backprop.ok and [g.dropout is not None for g in backprop.layers] == [False, True, True, True]
    text = text_of(trace, 120)
    for k in (1, 2, 3):
        assert f"δ{k} = ∂J/∂lay{k} = ∂J/∂drop{k} ⊙ mask/(1−0.1)" in text
