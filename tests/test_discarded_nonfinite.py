"""NaN/Inf that never reaches the loss's value or gradient is a note, not an error: T5's
relative-position bucketing (log(0) cast to an integer, then discarded by where). A log(0)
that does reach the loss, or whose gradient does, still exits 1."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from gradviz.cli import main
from gradviz.core.findings import find_issues

torch = pytest.importorskip("torch")

T5_BUCKET = str(Path(__file__).resolve().parent / "t5_bucket_spec.py")


def test_t5_style_bucket_traces_with_exit_0_and_a_note(capsys):
    assert main(["trace", T5_BUCKET, "--level", "aten"]) == 0
    out = capsys.readouterr().out
    assert "discarded  log  6 NaN/Inf never reach the loss or its gradient: thrown away by" in out
    assert "where" in out.split("discarded  log")[1]
    assert "log ◀" not in out  # not flagged in the graph table


def test_the_note_names_the_origin_and_the_where_that_drops_it():
    from gradviz.sources.model import trace_spec

    trace = trace_spec(T5_BUCKET, level="aten")
    assert trace.first_nonfinite() is None
    notes = [f for f in find_issues(trace) if f.kind == "discarded"]
    assert [trace.graph.nodes[f.node].label for f in notes] == ["log"]
    region = trace.discarded_regions()[0]
    assert [trace.graph.nodes[i].op for i in region.ends] == ["where"]
    log = trace.graph.find("log").id
    assert region.count == int(np.isinf(trace.values[log]).sum()) == 6  # the diagonal: relative position 0


def test_a_log_of_zero_reaching_the_loss_still_exits_1(capsys):
    assert main(["trace", "sum(log(a))", "--at", "a=[0,1,2]"]) == 1
    assert "non-finite: the first value to become NaN/Inf is at v1 = log(a)" in capsys.readouterr().out


def test_a_value_discarded_forward_whose_gradient_is_nan_still_exits_1(capsys):
    import gradviz

    # where(a > 0, log(a), 0) drops log(0) from the value, but log's derivative 1/0 times the
    # zero gradient where sends back is NaN: torch's a.grad is NaN too.
    a = torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64, requires_grad=True)
    torch.where(a > 0, torch.log(a), torch.zeros_like(a)).sum().backward()
    assert torch.isnan(a.grad).any()
    traced = gradviz.trace(lambda a: torch.where(a > 0, torch.log(a), torch.zeros_like(a)).sum(),
                           torch.tensor([0.0, 1.0, 2.0], dtype=torch.float64))
    first = traced.trace.first_nonfinite()
    assert first is not None and first[0] == "adjoint"


PICKED = '''
import torch
import torch.nn.functional as F
from torch import nn


class Picked(nn.Module):
    def __init__(self):
        super().__init__()
        self.lin = nn.Linear(3, 3)

    def forward(self, x):
        table = torch.log(torch.arange(4.0))  # log(0) = -inf in position 0
        return self.lin(x) + table[FIRST:].sum()


def build_model():
    return Picked()


def loss(output, target):
    return F.mse_loss(output, target)


def make_data(seed, n=8):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=g), torch.randn(n, 3, generator=g)
'''


@pytest.mark.parametrize("first, code", [(1, 0), (0, 1)])
def test_indexing_that_leaves_the_inf_out_is_a_note_and_one_that_takes_it_an_error(tmp_path, capsys, first, code):
    spec = tmp_path / "picked.py"
    spec.write_text(PICKED.replace("FIRST", str(first)))
    assert main(["trace", str(spec), "--level", "aten"]) == code
    out = capsys.readouterr().out
    if code == 0:
        assert "discarded  log  1 NaN/Inf never reach the loss or its gradient: thrown away by" in out
        assert "slice" in out.split("discarded  log")[1]
    else:
        assert "discarded" not in out and "non-finite" in out
