"""NaN to its origin: the first non-finite step found without a per-step sync, its batch
and pre-update parameters saved, traced with gradviz's model tracer to the node where it
began; the run exits 1; `gradviz step RUN_DIR` opens at that node."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest
import torch

from gradviz.commands.step import nan_start
from gradviz.commands.train import exit_code
from gradviz.errors import NonFiniteError
from gradviz.sources.spec import build_model, load_spec, make_data
from gradviz.train.nan_origin import trace_saved
from train_support import LINEAR_SPEC, records, run_worker, status, train_here, write_spec
from tui_support import run_async

# log of fc2's output: positive at first, driven below zero by the loss (target log y = -4).
LOG_SPEC = """
import torch
import torch.nn.functional as F
from torch import nn

TRAINING = {"lr": 0.02, "epochs": 20, "batch_size": 64, "optimizer": "sgd", "val_fraction": 0.0}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 8)
        self.fc2 = nn.Linear(8, 1)
        with torch.no_grad():
            self.fc2.weight.mul_(0.1)
            self.fc2.bias.fill_(2.0)

    def forward(self, x):
        return torch.log(self.fc2(torch.relu(self.fc1(x))))

def build_model():
    return Net()

def loss(output, target):
    return F.mse_loss(output, target)

def make_data(seed, n=64):
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(n, 2, generator=gen), torch.full((n, 1), -4.0)
"""

# An exploding learning rate on the small tanh network the training tests use.
EXPLODING_SPEC = LINEAR_SPEC.replace('{"lr": 0.1, "epochs": 2,', '{"lr": 50.0, "epochs": 20,')
assert EXPLODING_SPEC != LINEAR_SPEC


def plain_full_batch(spec_path: str, lr: float, steps: int) -> tuple[int, dict[str, torch.Tensor]]:
    """An independent full-batch SGD loop: (first step whose loss is non-finite, parameters before it)."""
    spec = load_spec(spec_path)
    x, y = make_data(spec, 0)
    torch.manual_seed(0)
    model = build_model(spec)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    for step in range(1, steps + 1):
        opt.zero_grad()
        loss = spec.loss(model(x), y)
        if not torch.isfinite(loss):
            return step, {k: v.clone() for k, v in model.state_dict().items()}
        loss.backward()
        opt.step()
    raise AssertionError("the plain loop never went non-finite")


def test_log_of_a_negative_fc2_output_is_traced_to_log_in_the_forward_pass(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, LOG_SPEC)
    step, before = plain_full_batch(spec, 0.02, 20)
    assert step > 2  # the NaN begins mid-window: finding it takes the replay (log every 25)
    assert run_worker(tmp_path / "run", spec, seed=0) == 0  # training goes on without --stop-on-nan
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    assert trace["step"] == step
    origin = trace["origin"]
    assert (origin["label"], origin["phase"], origin["from"]) == ("log", "forward", "fc2")
    assert origin["inputs"][0]["label"] == "fc2" and origin["inputs"][0]["min"] < 0 and origin["inputs"][0]["nan"] == 0
    assert origin["value"]["nan"] > 0
    assert trace["message"] == f"NaN at step {step}, born at fc2 → log (forward)"
    saved = torch.load(tmp_path / "run" / "nan_step.pt", weights_only=False)
    for name, value in before.items():  # the parameters before the bad update, as the plain loop had them
        torch.testing.assert_close(saved["model"][name], value, rtol=1e-5, atol=1e-6)
    assert saved["x"].shape == (64, 2)
    assert status(tmp_path / "run")["nan"]["message"] == trace["message"]
    assert records(tmp_path / "run")[-1]["step"] == 20  # the live run was put back after the replay
    with pytest.raises(NonFiniteError) as error:
        exit_code("finished", tmp_path / "run")
    assert error.value.exit_code == 1 and trace["message"] in error.value.message


def test_stop_on_nan_traces_the_same_step_without_a_replay(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, LOG_SPEC)
    step, _ = plain_full_batch(spec, 0.02, 20)
    assert run_worker(tmp_path / "run", spec, seed=0, stop_on_nan=True) == 1
    state = status(tmp_path / "run")
    assert state["state"] == "failed" and state["kind"] == "NonFiniteError"
    assert f"NaN at step {step}, born at fc2 → log (forward)" in state["message"]
    assert state["nan"]["message"] == f"NaN at step {step}, born at fc2 → log (forward)"  # what the monitor shows
    assert records(tmp_path / "run")[-1]["step"] == step
    with pytest.raises(NonFiniteError):
        exit_code("failed", tmp_path / "run")


def first_bad_module(model: torch.nn.Module, x: torch.Tensor) -> str | None:
    """Independently: the first leaf module whose output is non-finite, by forward hooks."""
    bad: list[str] = []
    for name, module in model.named_modules():
        if not list(module.children()):
            module.register_forward_hook(lambda m, i, o, name=name: bad.append(name) if not torch.isfinite(o).all() else None)
    model(x)
    return bad[0] if bad else None


def test_an_exploding_learning_rate_is_traced_to_the_first_bad_node(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, EXPLODING_SPEC)
    train_here(tmp_path / "sparse", spec, log_every=1000, seed=0)
    train_here(tmp_path / "dense", spec, log_every=1, seed=0)
    sparse = json.loads((tmp_path / "sparse" / "nan_trace.json").read_text())
    dense = json.loads((tmp_path / "dense" / "nan_trace.json").read_text())
    # Logged every step, the first non-finite record is the bad step itself: the replay agrees.
    first_logged = next(r["step"] for r in records(tmp_path / "dense") if "nonfinite" in r)
    assert sparse["step"] == dense["step"] == first_logged
    assert sparse["origin"] == dense["origin"]
    saved = torch.load(tmp_path / "sparse" / "nan_step.pt", weights_only=False)
    loaded = load_spec(spec)
    model = build_model(loaded)
    model.load_state_dict(saved["model"])
    assert all(torch.isfinite(v).all() for v in saved["model"].values()), "saved before the update"
    # Independently, in plain torch: every module's output and the squared error stay finite
    # (below 3.4e38), their float32 mean overflows — the loss node itself is where Inf is born.
    assert first_bad_module(model, saved["x"]) is None
    squares = (model(saved["x"]) - saved["y"]) ** 2
    assert torch.isfinite(squares).all() and not torch.isfinite(squares.mean())
    origin = sparse["origin"]
    assert (origin["label"], origin["phase"], origin["from"]) == ("loss", "forward", "pow_1")
    assert origin["value"]["inf"] == 1 and origin["inputs"][0]["max"] > 1e37


@run_async
async def test_gradviz_step_on_the_run_dir_opens_at_the_origin(tmp_path: Path) -> None:
    from gradviz.tui.app import StepperApp

    spec = write_spec(tmp_path, LOG_SPEC)
    train_here(tmp_path / "run", spec, seed=0)
    trace = trace_saved(tmp_path / "run")
    k = nan_start(trace)
    app = StepperApp(trace, source=str(tmp_path / "run"), start=k)
    async with app.run_test(size=(120, 40)):
        screen = app.screen
        assert screen.k == k > 0
        assert screen.trace.graph.nodes[screen.scene.current].label == "log"
        assert screen.scene.phase == "forward"


# sqrt(z²) at z = 0: the forward is finite (0), the adjoint of z² is 1/(2·0) = Inf.
BACKWARD_SPEC = LINEAR_SPEC.replace('"batch_size": 8', '"batch_size": 16').replace(
    """def build_model():
    return nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))""",
    """class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 1)
        nn.init.zeros_(self.fc2.weight)
        nn.init.zeros_(self.fc2.bias)

    def forward(self, x):
        return torch.sqrt(self.fc2(torch.tanh(self.fc1(x))) ** 2)

def build_model():
    return Net()""")
assert "class Net" in BACKWARD_SPEC and '"batch_size": 16' in BACKWARD_SPEC


def test_a_nan_born_in_the_backward_pass_names_the_adjoint(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, BACKWARD_SPEC)
    train_here(tmp_path / "run", spec, seed=0)
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    origin = trace["origin"]
    assert trace["step"] == 1 and origin["phase"] == "backward"
    assert origin["value"]["nan"] == origin["value"]["inf"] == 0  # the forward value is finite
    assert origin["definition"].endswith("** 2") or origin["op"] == "pow"
    assert origin["from"] == "sqrt" and origin["adjoint"]["inf"] + origin["adjoint"]["nan"] > 0
    # 1/(2·0) is +Inf, and Inf is what the message names (an overflow is not a NaN).
    assert origin["adjoint"]["nan"] == 0 and origin["adjoint"]["inf"] > 0
    assert trace["message"] == f"Inf at step 1, born at sqrt → {origin['label']} (backward)"
    # Independently: the same parameters and batch give a finite loss and non-finite gradients.
    saved = torch.load(tmp_path / "run" / "nan_step.pt", weights_only=False)
    loaded = load_spec(spec)
    model = build_model(loaded)
    model.load_state_dict(saved["model"])
    z = model.fc2(torch.tanh(model.fc1(saved["x"])))
    z.retain_grad()
    squared = z ** 2
    squared.retain_grad()
    loaded.loss(torch.sqrt(squared), saved["y"]).backward()
    assert not torch.isfinite(squared.grad).all() and torch.isfinite(squared).all()


def test_replaying_a_window_leaves_the_run_bit_for_bit_unchanged(tmp_path: Path, monkeypatch) -> None:
    from gradviz.train.nan_origin import NanWatch
    from train_support import sample

    settings = dict(max_steps=40, log_every=10, batch_size=32, dropout=0.3, optimizer="adam", seed=3, epochs=50)
    train_here(tmp_path / "plain", sample("deep_mlp"), **settings)
    replays: list[object] = []
    begin = NanWatch.begin_window

    def replay_then_begin(self, next_step: int) -> None:
        if self.snapshots:  # replay the window that just ended (finite: nothing found), then go on
            replays.append(self.replay(next_step - 1))
        begin(self, next_step)

    monkeypatch.setattr(NanWatch, "begin_window", replay_then_begin)
    train_here(tmp_path / "replayed", sample("deep_mlp"), **settings)
    assert len(replays) >= 4 and replays[0] is None
    keys = ("step", "loss", "grad_norm", "param_norm", "keep_rate")
    assert [{k: r[k] for k in keys} for r in records(tmp_path / "plain")] == \
        [{k: r[k] for k in keys} for r in records(tmp_path / "replayed")]
    a = torch.load(tmp_path / "plain" / "final.pt", weights_only=False)
    b = torch.load(tmp_path / "replayed" / "final.pt", weights_only=False)
    for name in a["model"]:
        assert torch.equal(a["model"][name], b["model"][name])


def test_step_on_a_run_that_never_went_nan_says_so(tmp_path: Path) -> None:
    from gradviz.errors import TrainingError

    (tmp_path / "config.json").write_text("{}")
    with pytest.raises(TrainingError, match="no nan_step.pt"):
        trace_saved(tmp_path)


# The classic where-gradient NaN: the forward masks sqrt of a negative out (finite loss),
# the backward multiplies the masked 0 by sqrt's derivative there (NaN).
WHERE_SQRT_SPEC = """
import torch
from torch import nn

TRAINING = {"lr": 0.05, "epochs": 3, "batch_size": 32, "optimizer": "sgd", "val_fraction": 0.0}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(2, 6)
        self.fc2 = nn.Linear(6, 1)

    def forward(self, x):
        z = self.fc2(torch.relu(self.fc1(x)))
        return torch.where(z > 0, torch.sqrt(z), torch.zeros_like(z))

def build_model():
    return Net()

def loss(output, target):
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(96, 2, generator=g)
    return x, torch.ones(96, 1)
"""

# Gradient ascent on exp: the output grows each step until exp overflows to +Inf (no NaN).
EXP_OVERFLOW_SPEC = """
import torch
from torch import nn

TRAINING = {"lr": 0.5, "epochs": 200, "batch_size": 16, "optimizer": "sgd", "val_fraction": 0.0}

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        return torch.exp(self.fc(x))

def build_model():
    return Net()

def loss(output, target):
    return -(output * target).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(16, 2, generator=g), torch.ones(16, 1)
"""


def test_a_finite_loss_with_a_nan_gradient_is_born_in_the_backward_pass(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, WHERE_SQRT_SPEC)
    train_here(tmp_path / "run", spec, seed=0)
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    # Independently, plain torch on the saved step: a finite loss, NaN (not Inf) gradients.
    saved = torch.load(tmp_path / "run" / "nan_step.pt", weights_only=False)
    loaded = load_spec(spec)
    model = build_model(loaded)
    model.load_state_dict(saved["model"])
    loss = loaded.loss(model(saved["x"]), saved["y"])
    loss.backward()
    assert torch.isfinite(loss) and math.isfinite(trace["loss"])
    assert any(torch.isnan(p.grad).any() for p in model.parameters())
    origin = trace["origin"]
    assert origin["phase"] == "backward" and origin["from"] == "sqrt" and origin["kind"] == "NaN"
    assert trace["message"] == f"NaN at step {trace['step']}, born at sqrt → {origin['label']} (backward)"


def test_an_overflow_is_named_inf_not_nan(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, EXP_OVERFLOW_SPEC)
    loaded = load_spec(spec)
    x, y = make_data(loaded, 0)
    torch.manual_seed(0)
    model = build_model(loaded)
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    for step in range(1, 200):  # an independent loop: the first step whose loss is not finite
        opt.zero_grad()
        loss = loaded.loss(model(x), y)
        if not torch.isfinite(loss):
            break
        loss.backward()
        opt.step()
    assert step > 2 and torch.isinf(loss) and not torch.isnan(model(x)).any()
    train_here(tmp_path / "run", spec, seed=0)
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    assert trace["step"] == step
    assert trace["message"] == f"Inf at step {step}, born at fc → exp (forward)"
    assert status(tmp_path / "run")["nan"]["message"] == trace["message"]


# Two examples of the dataset carry a NaN feature; nothing else in the data or model is bad.
DATA_NAN_SPEC = LINEAR_SPEC.replace("""    x = torch.randn(64, 3, generator=g)
    return x, x.sum(dim=1, keepdim=True)""", """    x = torch.randn(64, 3, generator=g)
    y = x.sum(dim=1, keepdim=True)
    x[37, 2] = float("nan")
    y[11, 0] = float("inf")
    return x, y""")
assert DATA_NAN_SPEC != LINEAR_SPEC


def test_a_data_nan_names_its_dataset_indices_and_the_last_finite_parameters_are_kept(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, DATA_NAN_SPEC)
    assert run_worker(tmp_path / "run", spec, seed=2, val_fraction=0.0, epochs=2, batch_size=16) == 0
    trace = json.loads((tmp_path / "run" / "nan_trace.json").read_text())
    saved = torch.load(tmp_path / "run" / "nan_step.pt", weights_only=False)
    # Independently: which of the dataset's examples sit in the saved batch, by value.
    x, y = make_data(load_spec(spec), 2)
    in_batch = sorted(i for i in (37, 11) if any(torch.equal(torch.nan_to_num(x[i]), torch.nan_to_num(row))
                                                  for row in saved["x"]))
    assert in_batch and sorted(trace["bad_examples"]) == in_batch
    noun = "examples" if len(in_batch) > 1 else "example"
    assert trace["message"].endswith(f"; non-finite data in dataset {noun} " + ", ".join(map(str, trace["bad_examples"])))
    last = torch.load(tmp_path / "run" / "last_finite.pt", weights_only=False)
    final = torch.load(tmp_path / "run" / "final.pt", weights_only=False)
    assert last["step"] == trace["step"] - 1
    assert all(torch.isfinite(v).all() for v in last["model"].values())
    assert not all(torch.isfinite(v).all() for v in final["model"].values())  # why last_finite.pt exists
    for name, value in saved["model"].items():  # the parameters the bad step started from
        assert torch.equal(last["model"][name], value)
