"""`gradviz step RUN`: the replay of a run's non-finite step opens where the run's message says
the non-finite number was born (commands.step.nan_start against train.nan_origin.origin_of)."""

from __future__ import annotations

import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402

from gradviz.commands.step import nan_start  # noqa: E402
from gradviz.sources.model import trace_model  # noqa: E402
from gradviz.train.nan_origin import message, origin_of  # noqa: E402
from gradviz.tui.app import stepper_steps  # noqa: E402


class MadeFiniteAgain(nn.Module):
    """sqrt of a pre-activation with negative entries (NaN there), made finite by nan_to_num: the
    loss is finite, and sqrt's backward turns those NaN into NaN gradients for fc1."""

    def __init__(self, clean: bool = True):
        super().__init__()
        torch.manual_seed(0)
        self.fc1, self.fc2 = nn.Linear(3, 4), nn.Linear(4, 1)
        self.clean = clean

    def forward(self, x):
        root = torch.sqrt(self.fc1(x))
        return self.fc2(torch.nan_to_num(root) if self.clean else root)


def _replay(clean: bool):
    x, y = torch.randn(8, 3, generator=torch.Generator().manual_seed(1)), torch.zeros(8, 1)
    model = MadeFiniteAgain(clean)
    trace = trace_model(model, nn.MSELoss(), x, y, seed=0)
    return model, x, y, trace


def test_a_nan_born_in_the_backward_pass_opens_at_its_adjoint_not_at_the_value_made_finite():
    model, x, y, trace = _replay(clean=True)
    # torch, independently: a finite loss, a NaN on the way, NaN gradients into fc1
    z = model.fc1(x)
    z.retain_grad()
    loss = nn.MSELoss()(model.fc2(torch.nan_to_num(torch.sqrt(z))), y)
    loss.backward()
    assert torch.isfinite(loss) and not torch.isfinite(torch.sqrt(z)).all() and not torch.isfinite(z.grad).all()
    origin = origin_of(trace)
    assert origin["phase"] == "backward" and origin["label"] == "fc1"
    assert "(backward)" in message(3, origin)
    k = nan_start(trace)
    step = stepper_steps(trace)[k - 1]
    assert (step.phase, trace.graph.nodes[step.node].label) == ("reverse", "fc1")


def test_a_nan_born_in_the_forward_pass_still_opens_at_its_value():
    _, _, _, trace = _replay(clean=False)
    origin = origin_of(trace)
    assert origin["phase"] == "forward" and origin["label"] == "sqrt"
    step = stepper_steps(trace)[nan_start(trace) - 1]
    assert (step.phase, trace.graph.nodes[step.node].label) == ("forward", "sqrt")
