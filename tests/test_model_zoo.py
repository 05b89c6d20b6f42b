"""Realistic models (tests/model_zoo.py), each traced at module and aten level, training and
evaluation, against a plain loss.backward() on the same batch and seed.

Invariants: every parameter's gradient (under every name it has) equals param.grad;
every node's value equals the node re-run on its captured inputs (--check's value
oracle) and, at module level, the module's own output seen by a forward hook in the
plain run; every adjoint is the sum of its edge terms; --check is clean; no NaN/Inf
is reported where none is real. One trace per combination, shared by the tests
(module-scoped fixture): aten tracing costs a make_fx each.
"""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch

from gradviz.core.findings import find_issues, sum_mismatches
from gradviz.sources.model import trace_model
from gradviz.sources.model.check import check_model
from tests.model_zoo import T, ZOO, make

SEED = 0
COMBOS = [(name, level, training) for name in ZOO for level in ("module", "aten") for training in (True, False)]


class Traced:
    """One combination: the check (with its trace), and what a plain run gave."""

    def __init__(self, name: str, level: str, training: bool):
        model, loss, x, y = make(name, SEED, training)
        plain = copy.deepcopy(model)
        self.check = check_model(model, loss, x, y, level, SEED)
        self.trace = self.check.trace
        self.grads, self.outputs = _plain_run(plain, loss, x, y)
        self.names = [name for name, _ in plain.named_parameters(remove_duplicate=False)]


def _plain_run(model, loss, x, y):
    """param.grad by every name, and each module's output (cloned: later in-place ops must not reach it)."""
    outputs: dict[str, list[torch.Tensor]] = {}
    hooks = []
    for path, module in model.named_modules():
        if path:
            def hook(module, args, out, path=path):
                first = out if isinstance(out, torch.Tensor) else next(
                    (o for o in out if isinstance(o, torch.Tensor)), None)
                if first is not None:
                    outputs.setdefault(path, []).append(first.detach().clone())
            hooks.append(module.register_forward_hook(hook))
    torch.manual_seed(SEED)
    loss(model(x), y).backward()
    for h in hooks:
        h.remove()
    grads = {name: p.grad.numpy().copy() for name, p in model.named_parameters(remove_duplicate=False)
             if p.grad is not None}
    return grads, outputs


@pytest.fixture(scope="module")
def traced():
    cache: dict[tuple[str, str, bool], Traced] = {}

    def get(name: str, level: str, training: bool) -> Traced:
        key = (name, level, training)
        if key not in cache:
            cache[key] = Traced(*key)
        return cache[key]

    return get


@pytest.mark.parametrize("name, level, training", COMBOS)
def test_zoo_invariants(traced, name: str, level: str, training: bool) -> None:
    t = traced(name, level, training)
    trace, check = t.trace, t.check
    # --check clean: parameters exact, each edge term its node's own vjp, each value its node re-run.
    assert check.ok, check.summary().plain
    assert check.values > 0 or trace.info["level"] == "autograd"
    # Every parameter, under every name it has, shows the gradient a plain backward stored in .grad.
    by_name = {n: node.id for node in trace.graph.nodes if node.kind == "parameter"
               for n in node.meta.get("names", (node.label,))}
    for param_name in t.names:
        expected = t.grads.get(param_name)
        got = trace.adjoints["loss"][by_name[param_name]]
        if expected is None:
            assert not np.any(got), param_name
        else:
            assert np.array_equal(got, expected), param_name
    # Every adjoint is the sum of its edge terms.
    assert not sum_mismatches(trace)
    # Nothing non-finite is reported where there is none (masks are by design).
    assert trace.first_nonfinite() is None
    assert not [f for f in find_issues(trace) if f.kind == "non-finite"]


@pytest.mark.parametrize("name, training", [(n, tr) for n in ZOO for tr in (True, False)])
def test_module_nodes_show_what_the_module_returned(traced, name: str, training: bool) -> None:
    """An independent oracle at module level: forward hooks on the plain run (cloned at once)."""
    t = traced(name, "module", training)
    if t.trace.info["level"] != "module":
        pytest.skip(f"{name}: fx refused; the run was recorded ({t.trace.info['notes'][0][:60]}…)")
    compared = 0
    for path, outs in t.outputs.items():
        node = t.trace.graph.find(path) or t.trace.graph.find(f"{path}[0]")
        if node is None or len(outs) != 1:
            continue  # called twice (a ReLU reused), or not a node of its own
        np.testing.assert_allclose(t.trace.values[node.id], outs[0].numpy(), rtol=1e-6, atol=1e-7, err_msg=path)
        compared += 1
    assert compared >= 1


def test_aten_gru_node_values_are_not_overwritten_by_later_in_place_ops(traced) -> None:
    """Defect 1: make_fx kept add_/sigmoid_/tanh_ in the GRU cell; nodes showed later values."""
    t = traced("gru", "aten", True)
    inplace = [n for n in t.trace.graph.nodes if "ran in place" in n.meta.get("definition", "")]
    assert {"add_", "sigmoid_", "tanh_", "mul_"} <= {n.label.rsplit("_", 1)[0] + "_" if n.label.count("_") > 1
                                                    else n.label for n in inplace}
    assert t.check.value_error == 0 and t.check.values > 60


def test_in_place_ops_are_shown_as_such_and_keep_every_value(traced) -> None:
    for level in ("module", "aten"):
        t = traced("inplace", level, True)
        graph = t.trace.graph
        defs = [n.definition for n in graph.nodes if "ran in place" in n.meta.get("definition", "")]
        assert len(defs) >= 4, defs  # ReLU(inplace=True), mul_, masked_fill_, tanh_
        fc1 = graph.find("fc1") if level == "module" else next(n for n in graph.nodes if n.label == "add")
        assert (t.trace.values[fc1.id] < 0).any()  # not the ReLU's result, which overwrote it in place
    t = traced("rescnn", "aten", True)
    assert t.check.values > 15 and t.check.value_error == 0


@pytest.mark.parametrize("name, level, matrices", [
    ("causal_by_hand", "module", 3), ("causal_by_hand", "aten", 3), ("additive_mask", "module", 3),
    ("additive_mask", "aten", 3), ("mha", "aten", 6), ("sdpa", "aten", 6)])
def test_intended_minus_inf_is_a_note_not_an_error(traced, name: str, level: str, matrices: int) -> None:
    """Defect 2: a causal mask's -inf before a softmax is by design (T(T−1)/2 per batch×head matrix)."""
    positions = matrices * T * (T - 1) // 2
    trace = traced(name, level, True).trace
    assert trace.first_nonfinite() is None
    notes = [f for f in find_issues(trace) if f.kind == "masked"]
    assert notes and f"{positions} masked positions, -inf by design" in notes[0].message, notes


def _masked_net(kind: str):
    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = torch.nn.Linear(3, 4)

        def forward(self, x):
            s = self.fc(x)
            if kind == "all-masked":  # a whole row masked: softmax gives NaN, a real problem
                s = s.masked_fill(torch.ones(4, dtype=torch.bool), float("-inf"))
            elif kind == "log0":  # -inf from an ordinary op, made finite by exp: not a mask
                s = torch.log(torch.relu(s) * 0)
            return torch.softmax(s, dim=-1).sum(1) if kind != "log0" else torch.exp(s).sum(1) + s.sum(1) * 0
    return Net()


@pytest.mark.parametrize("kind, level", [("all-masked", "module"), ("all-masked", "aten"), ("log0", "module"),
                                         ("log0", "aten")])
def test_a_real_non_finite_value_is_still_an_error_at_its_first_node(kind: str, level: str) -> None:
    """A row masked whole (softmax of all -inf is NaN, which reaches the loss) is blamed on the
    mask where the -inf first appeared; log(0) is no mask even when exp makes it finite."""
    torch.manual_seed(0)
    trace = trace_model(_masked_net(kind), lambda out, y: ((out - y) ** 2).mean(), torch.randn(2, 3),
                        torch.zeros(2), level=level)
    where, node_id = trace.first_nonfinite()
    assert where == "value" and trace.graph.nodes[node_id].op == ("masked_fill" if kind == "all-masked" else "log")
    finding = next(f for f in find_issues(trace) if f.kind == "non-finite")
    assert "8 Inf of 8" in finding.message and "its inputs are finite" in finding.message
    assert not [f for f in find_issues(trace) if f.kind == "masked"]


def test_a_non_finite_leaf_is_blamed_with_its_kind() -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(3, 1)
    x = torch.randn(2, 3)
    x[0, 0] = float("inf")
    trace = trace_model(model, torch.nn.functional.mse_loss, x, torch.zeros(2, 1))
    finding = next(f for f in find_issues(trace) if f.kind == "non-finite")
    assert trace.graph.nodes[finding.node].label == "x" and "it is the data" in finding.message
    with torch.no_grad():
        model.bias.fill_(float("nan"))
    trace = trace_model(model, torch.nn.functional.mse_loss, torch.randn(2, 3), torch.zeros(2, 1))
    finding = next(f for f in find_issues(trace) if f.kind == "non-finite")
    assert trace.graph.nodes[finding.node].label == "bias" and "it is a parameter" in finding.message


@pytest.mark.parametrize("name", ["mha", "sdpa", "lstm", "causal_by_hand", "gru"])
def test_check_replays_dropout_inside_modules(traced, name: str) -> None:
    """Defect 3: the recomputation drew new masks (edge error 0.19 for MHA, 0.97 for SDPA)."""
    for level in ("module", "aten"):
        check = traced(name, level, True).check
        assert check.edge_error == 0 and check.value_error == 0, check.summary().plain


def test_a_shared_parameter_is_one_node_with_every_name(traced) -> None:
    """Defect 4: a weight-tied LM's shared weight was named after its first user."""
    for level in ("module", "aten"):
        t = traced("tied_lm", level, True)
        shared = [n for n in t.trace.graph.nodes if n.meta.get("names")]
        assert len(shared) == 1 and shared[0].label == "head.weight"
        assert set(shared[0].meta["names"]) == {"head.weight", "emb.weight"}
        gradient = t.trace.adjoints["loss"][shared[0].id]
        assert np.array_equal(gradient, t.grads["head.weight"]) and np.array_equal(gradient, t.grads["emb.weight"])
        assert t.check.parameter_error == 0


CAUSAL_SPEC = '''
import torch
import torch.nn.functional as F
from torch import nn


class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.qk = nn.Linear(3, 8)
        self.head = nn.Linear(4, 1)
        self.register_buffer("mask", torch.triu(torch.ones(4, 4, dtype=torch.bool), 1))

    def forward(self, x):
        q, k = self.qk(x).chunk(2, dim=-1)
        scores = (q @ k.transpose(-2, -1)).masked_fill(self.mask, float("-inf"))
        return self.head(F.dropout(torch.softmax(scores, dim=-1), 0.3, self.training).sum(1))


def build_model():
    return Net()


def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 4, 3, generator=g), torch.randn(16, 1, generator=g)


def loss(output, target):
    return F.mse_loss(output, target)
'''


@pytest.mark.parametrize("level", ["module", "aten"])
def test_cli_causal_mask_exits_0_with_a_note_and_check_json_has_the_check(tmp_path, capsys, level: str) -> None:
    """Defect 2 end to end (exit 0, the note), and --check --json keeps the check's results."""
    import json

    from gradviz.cli import main

    spec = tmp_path / "causal.py"
    spec.write_text(CAUSAL_SPEC)
    assert main(["trace", str(spec), "--level", level, "--batch-size", "2"]) == 0
    out = capsys.readouterr().out
    assert "12 masked positions, -inf by design" in " ".join(out.split())
    assert main(["trace", str(spec), "--level", level, "--batch-size", "2", "--check", "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    check = report["check"]
    assert check["ok"] is True and check["parameter_error"] == 0 and check["edge_error"] == 0
    assert check["values"] > 5 and check["value_error"] == 0 and check["parameters"] == 4


def test_a_model_aten_tracing_refuses_is_one_line_naming_why(tmp_path, capsys, monkeypatch) -> None:
    from gradviz.cli import main
    from gradviz.sources.model import aten

    def refuse(*args, **kwargs):
        raise RuntimeError("Cannot access data pointer of Tensor that doesn't have storage\nmore detail")

    monkeypatch.setattr(aten, "make_fx", refuse)
    spec = tmp_path / "causal.py"
    spec.write_text(CAUSAL_SPEC)
    assert main(["trace", str(spec), "--level", "aten"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "make_fx cannot trace the model at aten level (RuntimeError: Cannot" in err


class _ViewInPlace(torch.nn.Module):
    def __init__(self, later_view: bool):
        super().__init__()
        self.fc = torch.nn.Linear(3, 4)
        self.later_view = later_view

    def forward(self, x):
        h = self.fc(x)
        if self.later_view:  # the base is read after its view was written in place
            h[:, :2].mul_(2)
            return h.sum(1, keepdim=True)
        out = h.view(-1, 2, 2)  # the base is never read again: out of place is exact
        out.relu_()
        return out.sum((1, 2)).unsqueeze(1)


@pytest.mark.parametrize("later_view", [True, False])
def test_in_place_on_a_view_is_exact_or_refused_with_a_reason(later_view: bool) -> None:
    """Module level runs in-place calls out of place; where that would leave a view's base
    stale it refuses (one line naming --level aten) rather than show wrong numbers."""
    from gradviz.sources.model import ModelRunError

    torch.manual_seed(0)
    model = _ViewInPlace(later_view)
    x, y = torch.randn(5, 3), torch.randn(5, 1)
    if later_view:
        with pytest.raises(ModelRunError, match="shares memory with .*--level aten keeps both right"):
            trace_model(model, torch.nn.functional.mse_loss, x, y)
    else:
        assert check_model(model, torch.nn.functional.mse_loss, x, y).ok
    check = check_model(model, torch.nn.functional.mse_loss, x, y, "aten")
    assert check.ok and check.parameter_error == 0, check.summary().plain
