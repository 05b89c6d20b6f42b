"""Models fx cannot trace: the run is recorded instead, or the error names the line fx refused."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from gradviz.cli import main
from gradviz.core.findings import sum_mismatches
from gradviz.errors import SpecError
from gradviz.sources.model import pick_batch, trace_spec
from gradviz.sources.model.check import check_model
from gradviz.sources.spec import load_spec
from tests.model_specs import write_spec


def test_data_dependent_control_flow_falls_back_to_the_recorded_run(tmp_path: Path) -> None:
    path = write_spec(tmp_path, "branchy")
    trace = trace_spec(path, batch_size=8, seed=1)
    assert trace.info["level"] == "autograd"
    assert "if h.sum() > -1000:" in trace.info["notes"][0] and f"{path}:" in trace.info["notes"][0]
    labels = [n.label for n in trace.graph.nodes]
    assert labels[:2] == ["x", "y"] and {"fc1", "fc2", "tanh", "mul", "drop", "sigmoid", "loss"} <= set(labels)
    assert "sum" not in labels and "gt" not in labels  # the condition does not reach the loss
    fc1 = trace.graph.find("fc1")
    assert fc1.meta["module"] == "fc1" and fc1.op == "linear"
    assert [trace.graph.nodes[i].label for i in fc1.inputs] == ["x", "fc1.weight", "fc1.bias"]
    assert trace.aux[trace.graph.find("drop").id]["mask"].shape == (8, 6)
    # The same numbers as a plain run, and consistent edge sums.
    spec = load_spec(path)
    x, y = pick_batch(*spec.make_data(1), 8, 1)
    torch.manual_seed(1)
    model = spec.build_model().train()
    torch.manual_seed(1)
    spec.loss(model(x), y).backward()
    for name, param in model.named_parameters():
        assert np.array_equal(trace.gradient("loss", name), param.grad.numpy()), name
    assert sum_mismatches(trace) == []
    check = check_model(model, spec.loss, x, y, seed=1)
    assert check.parameter_error == 0 and not check.sum_errors


def test_the_aten_level_follows_the_branch_the_batch_takes(tmp_path: Path) -> None:
    trace = trace_spec(write_spec(tmp_path, "branchy"), level="aten")
    assert trace.info["level"] == "aten"
    assert "mul" in {n.op for n in trace.graph.nodes}
    assert sum_mismatches(trace) == []


def test_when_recording_fails_too_the_error_names_the_line_fx_refused(tmp_path: Path, capsys) -> None:
    path = write_spec(tmp_path, "untraceable")
    with pytest.raises(SpecError) as error:
        trace_spec(path)
    message = error.value.message
    assert "fx cannot trace the model" in message and f"{path}:" in message
    assert "`if h.mean() > -1000:`" in message and "in-place mul_" in message
    assert main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradviz: error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1
