"""Gradients that are zero by construction are notes naming the reason, not "vanishing":
a key projection's bias (softmax is shift-invariant) and a convolution's bias before
BatchNorm (the normalisation subtracts the mean). A real vanishing gradient stays one."""

from __future__ import annotations

import pytest

from gradviz.core.findings import find_issues

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402


class Attention(nn.Module):
    """One attention head written out, as BERT's self-attention is."""

    def __init__(self, d: int = 8):
        super().__init__()
        self.query, self.key, self.value = nn.Linear(d, d), nn.Linear(d, d), nn.Linear(d, d)
        self.out = nn.Linear(d, 1)

    def forward(self, x):
        scores = self.query(x) @ self.key(x).transpose(-1, -2) / 8 ** 0.5
        return self.out(torch.softmax(scores, dim=-1) @ self.value(x)).mean(dim=1)


class ConvBatchNorm(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=True)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 1)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def _trace(model, x, y, level="module"):
    import gradviz

    torch.manual_seed(0)
    return gradviz.trace(model, x, target=y, loss=nn.functional.mse_loss, level=level).trace


@pytest.mark.parametrize("level", ["module", "aten"])
@pytest.mark.parametrize("case", ["attention", "batchnorm"])
def test_zero_by_construction_is_a_note_with_its_reason(case, level):
    torch.manual_seed(0)
    if case == "attention":
        model, x, bias, word = Attention(), torch.randn(4, 5, 8), "key.bias", "softmax is shift-invariant"
    else:
        model, x, bias, word = ConvBatchNorm(), torch.randn(4, 3, 6, 6), "conv.bias", "subtracts the mean"
    y = torch.randn(4, 1)
    nn.functional.mse_loss(model(x), y).backward()  # torch agrees the gradient is zero up to rounding
    grads = dict(model.named_parameters())
    assert grads[bias].grad.abs().max() < 1e-6 * grads[bias.replace("bias", "weight")].grad.abs().max()
    model.zero_grad()
    trace = _trace(model, x, y, level)
    findings = find_issues(trace)
    assert not [f for f in findings if f.kind == "vanishing"], [f.message for f in findings]
    notes = [f for f in findings if f.kind == "structural-zero"]
    assert [trace.graph.nodes[f.node].label for f in notes] == [bias]
    assert "zero by construction" in notes[0].message and word in notes[0].message


def test_a_real_vanishing_gradient_is_still_a_finding():
    class Scaled(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc = nn.Linear(3, 3).double()

        def forward(self, x):
            return (self.fc(x) * 1e-9).sum(dim=1, keepdim=True)  # a gradient scaled down 1e9, not cancelled

    torch.manual_seed(0)
    trace = _trace(Scaled(), torch.randn(4, 3, dtype=torch.float64), torch.zeros(4, 1, dtype=torch.float64))
    kinds = {f.kind for f in find_issues(trace)}
    assert "vanishing" in kinds and "structural-zero" not in kinds
