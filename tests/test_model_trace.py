"""Model tracing: every sample's captured numbers against torch itself.

Parameter adjoints must equal `param.grad` of a plain `loss.backward()` on the same batch
and seed bit for bit; every node's edge contributions must sum to its adjoint and match
the node's own vjp recomputed on its own (model.check's oracle).
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch

from gradviz.core.findings import find_issues, sum_mismatches
from gradviz.sources.model import pick_batch, trace_model, trace_spec
from gradviz.sources.model.check import check_model
from gradviz.sources.script import is_spec_file
from gradviz.sources.spec import load_spec
from tests.model_specs import write_spec

SAMPLES = sorted(p for p in (Path(__file__).parent.parent / "samples").glob("*.py") if is_spec_file(p))  # not the scripts


def plain_gradients(path: Path, batch_size: int = 8, seed: int = 0):
    """(model, x, y, loss, {name: param.grad}) from a plain forward and backward on the same batch."""
    spec = load_spec(path)
    x_all, y_all = spec.make_data(seed)
    x, y = pick_batch(x_all, y_all, batch_size, seed)
    torch.manual_seed(seed)
    model = spec.build_model().train()
    torch.manual_seed(seed)
    value = spec.loss(model(x), y)
    value.backward()
    return model, x, y, value, {name: p.grad.clone() for name, p in model.named_parameters()}


def assert_sums(trace) -> None:
    """Every node's contributions sum to its adjoint (rtol 1e-5), as the findings check."""
    assert sum_mismatches(trace) == []
    adjoints = trace.adjoints["loss"]
    for node in trace.graph.nodes:
        terms = [v for _, v in trace.edge_terms("loss", node.id) if v is not None]
        if adjoints[node.id] is not None and terms:
            np.testing.assert_allclose(sum(terms), adjoints[node.id], rtol=1e-5, atol=1e-7, err_msg=node.label)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_parameter_adjoints_equal_plain_backward_exactly(path: Path) -> None:
    model, x, y, value, grads = plain_gradients(path)
    trace = trace_spec(path, batch_size=8, seed=0)
    assert trace.values[trace.graph.outputs["loss"]] == value.item()
    for name, grad in grads.items():
        captured = trace.gradient("loss", name)
        assert captured.dtype == np.float32
        assert np.array_equal(captured, grad.numpy()), name
    assert_sums(trace)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_contributions_match_each_nodes_own_vjp(path: Path) -> None:
    model, x, y, _, _ = plain_gradients(path)
    check = check_model(model, load_spec(path).loss, x, y, "module", seed=0)
    assert check.ok, check.summary().plain
    assert check.edges > 5


@pytest.mark.parametrize("name", ["two_layer_mlp", "transformer_block"])
def test_aten_level_splits_linear_into_matmul_and_add(name: str) -> None:
    path = Path(__file__).parent.parent / "samples" / f"{name}.py"
    _, _, _, _, grads = plain_gradients(path)
    trace = trace_spec(path, level="aten")
    ops = {n.op for n in trace.graph.nodes}
    assert {"mm", "add", "t"} <= ops and "Linear" not in ops
    for name_, grad in grads.items():
        np.testing.assert_allclose(trace.gradient("loss", name_), grad.numpy(), rtol=1e-6, atol=1e-8)
    assert_sums(trace)


def test_module_level_graph_of_the_lecture_network() -> None:
    trace = trace_spec(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py")
    labels = [n.label for n in trace.graph.nodes]
    assert labels == ["x", "y", "fc1.weight", "fc1.bias", "fc2.weight", "fc2.bias",
                      "fc1", "sigmoid", "fc2", "sigmoid_1", "loss"]
    fc1 = trace.graph.find("fc1")
    assert fc1.definition == "fc1 = Linear(2→8)(x)"
    assert [trace.graph.nodes[i].label for i in fc1.inputs] == ["x", "fc1.weight", "fc1.bias"]
    assert fc1.meta["module"] == "fc1" and fc1.meta["shape"] == (8, 8) and fc1.meta["dtype"] == "float32"
    assert trace.graph.find("sigmoid").meta["partials"] == ("sigmoid·(1 − sigmoid)",)
    assert trace.graph.find("fc1.weight").kind == "parameter" and trace.graph.find("x").kind == "input"
    assert trace.graph.outputs == {"loss": len(labels) - 1}
    assert trace.tangents == {}  # forward mode is not run for models
    sigmoid = trace.graph.find("sigmoid").id
    np.testing.assert_allclose(trace.partials[(sigmoid, 0)], trace.values[sigmoid] * (1 - trace.values[sigmoid]))


def test_dropout_mask_is_the_one_torch_drew() -> None:
    path = Path(__file__).parent.parent / "samples" / "deep_mlp.py"
    trace = trace_spec(path, batch_size=16, seed=3)
    drop1 = trace.graph.find("drop1")
    data = trace.aux[drop1.id]
    assert data["training"] and data["p"] == pytest.approx(0.1)
    relu = trace.values[trace.graph.find("relu").id]
    expected = relu * data["mask"] * np.float32(1 / 0.9)
    assert np.array_equal(trace.values[drop1.id], expected)
    # Guessing from zeros would be wrong: ReLU zeros are kept units too.
    assert np.any((relu == 0) & data["mask"])
    evaluation = trace_spec(path, batch_size=16, seed=3, training=False)
    assert evaluation.aux[evaluation.graph.find("drop1").id]["mask"] is None
    assert find_issues(evaluation) == []


def test_float64_and_seeds_change_what_they_should() -> None:
    path = Path(__file__).parent.parent / "samples" / "two_layer_mlp.py"
    a = trace_spec(path, seed=1, dtype="float64")
    b = trace_spec(path, seed=2)
    assert a.values[0].dtype == np.float64 and b.values[0].dtype == np.float32
    assert not np.array_equal(a.values[a.graph.find("fc1.weight").id].astype(np.float32),
                              b.values[b.graph.find("fc1.weight").id])
    assert a.info["level"] == "module" and a.info["batch_size"] == 8


def test_a_tuple_valued_call_splits_its_contributions_by_piece(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "pieces")
    trace = trace_spec(path, batch_size=8)
    labels = {n.label for n in trace.graph.nodes}
    assert {"chunk[0]", "chunk[1]", "mix", "mix_1"} <= labels
    # Both pieces of fc's output reach the loss: fc's adjoint is the sum of their shares.
    fc = trace.graph.find("fc").id
    assert len([v for _, v in trace.edge_terms("loss", fc) if v is not None]) >= 2
    # mix.weight is used by two calls: one term per call.
    weight = trace.graph.find("mix.weight").id
    assert len(trace.edge_terms("loss", weight)) == 2
    assert_sums(trace)
    spec = load_spec(path)
    x, y = pick_batch(*spec.make_data(0), 8, 0)
    torch.manual_seed(0)
    check = check_model(spec.build_model().train(), spec.loss, x, y)
    assert check.ok, check.summary().plain


def test_check_notices_a_wrong_contribution() -> None:
    from gradviz.sources.model.capture import execute, to_trace
    from gradviz.sources.model.check import _edge_error
    from gradviz.sources.model.fx import module_program, trace_module_level

    path = Path(__file__).parent.parent / "samples" / "two_layer_mlp.py"
    model, x, y, _, _ = plain_gradients(path)
    gm, _ = trace_module_level(model, load_spec(path).loss)
    program = module_program(gm, model)
    run = execute(program, x.requires_grad_(), y)
    trace = to_trace(program, run, {})
    fc2 = trace.graph.find("fc2").id
    wrong = dict(trace.contributions["loss"])
    wrong[(fc2, 0)] = wrong[(fc2, 0)] * 1.01
    tampered = replace(trace, contributions={"loss": wrong})
    assert _edge_error(tampered, program, run)[1] == pytest.approx(0.01, rel=1e-3)
    assert [f.kind for f in sum_mismatches(tampered)] == ["adjoint-sum"]


def test_trace_model_takes_any_module_and_loss() -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.Tanh(), torch.nn.Linear(4, 2))
    x, y = torch.randn(5, 3), torch.randn(5, 2)
    trace = trace_model(model, lambda out, target: ((out - target) ** 2).mean(), x, y)
    assert [n.label for n in trace.graph.nodes if not n.is_leaf] == ["0", "1", "2", "sub", "pow_1", "loss"]
    assert trace.graph.find("1").op == "Tanh"
    assert_sums(trace)


def test_in_place_layers_keep_every_nodes_value() -> None:
    torch.manual_seed(0)

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1, self.act, self.fc2 = torch.nn.Linear(3, 8), torch.nn.ReLU(inplace=True), torch.nn.Linear(8, 1)

        def forward(self, x):
            h = self.fc1(x)
            g = torch.nn.functional.relu(self.act(h) - 0.1, inplace=True)
            return self.fc2(g + h)  # h after act: in place, h is act's result

    model = Net()
    x, y = torch.randn(6, 3), torch.randn(6, 1)
    trace = trace_model(model, torch.nn.functional.mse_loss, x, y)
    fc1 = trace.values[trace.graph.find("fc1").id]
    assert (fc1 < 0).any()  # not overwritten by the ReLU that ran in place
    add = trace.graph.find("add")
    assert [trace.graph.nodes[i].label for i in add.inputs] == ["relu", "act"]
    model2 = Net()
    model2.load_state_dict(model.state_dict())
    torch.nn.functional.mse_loss(model2(x), y).backward()
    for name, param in model2.named_parameters():
        assert np.array_equal(trace.gradient("loss", name), param.grad.numpy()), name
    assert_sums(trace)


class Recurrent(torch.nn.Module):
    """An LSTM (a tuple of tuples) feeding self-attention (the same tensor as query, key, value)."""

    def __init__(self, branch: bool = False):
        super().__init__()
        self.branch = branch
        self.emb = torch.nn.Linear(3, 8)
        self.lstm = torch.nn.LSTM(8, 8, batch_first=True)
        self.attn = torch.nn.MultiheadAttention(8, 2, batch_first=True)
        self.head = torch.nn.Linear(8, 1)

    def forward(self, x):
        out, (hn, cn) = self.lstm(self.emb(x))
        if self.branch and out.sum() > -1e9:  # data-dependent: fx refuses, the run is recorded
            out = out * 1.5
        a, _ = self.attn(out, out, out)
        m, _ = torch.max(a + hn.transpose(0, 1), dim=1)
        return self.head(m + cn[0])


@pytest.mark.parametrize("branch, level, recorded", [(False, "module", "module"), (False, "aten", "aten"),
                                                     (True, "module", "autograd")])
def test_recurrent_and_attention_layers_are_exact(branch: bool, level: str, recorded: str) -> None:
    torch.manual_seed(0)
    model = Recurrent(branch).train()
    x, y = torch.randn(4, 5, 3), torch.randn(4, 1)
    trace = trace_model(model, torch.nn.functional.mse_loss, x, y, level=level)
    assert trace.info["level"] == recorded
    check = check_model(model, torch.nn.functional.mse_loss, x, y, level)
    assert check.ok, check.summary().plain
    if level == "module" and not branch:
        labels = {n.label for n in trace.graph.nodes}
        assert {"lstm[0]", "lstm[1][0]", "lstm[1][1]", "attn[0]"} <= labels
        # attn takes `out` three times: one edge, so identity checks inside it still hold.
        attn = trace.graph.find("attn[0]")
        assert [trace.graph.nodes[i].label for i in attn.inputs].count("lstm[0]") == 1


def test_a_loss_fx_cannot_look_into_is_one_node() -> None:
    def loss(output, target):
        if output.sum() > -1e9:  # data-dependent: fx refuses to trace inside
            return ((output - target) ** 2).mean()
        return (output - target).abs().mean()

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(3, 2), torch.nn.Tanh())
    x, y = torch.randn(4, 3), torch.randn(4, 2)
    trace = trace_model(model, loss, x, y)
    assert trace.info["level"] == "module" and "it is shown as one node" in trace.info["notes"][0]
    assert trace.graph.find("loss").definition == "loss = loss(1, y)"
    check = check_model(model, loss, x, y)
    assert check.ok, check.summary().plain
