"""The Python API under bad arguments: every failure a GradvizError subclass with one clear
line, never numpy's, torch's or an AttributeError from deep inside; `--at` takes nan/inf
inside lists as the README says."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch import nn

import gradviz
from gradviz.cli import main
from gradviz.errors import GradvizError


@pytest.mark.parametrize("shape, expected", [("2x3", (2, 3)), ((2, 3), (2, 3)), ([4], (4,)), (5, (5,))])
def test_shapes_take_tuples_and_the_command_lines_text(shape, expected):
    traced = gradviz.trace("sum(W)", shapes={"W": shape})
    assert traced.value("W").shape == expected
    assert float(traced.value("f")) == pytest.approx(float(traced.value("W").sum()))


BAD_CALLS = {
    "a shape with a negative size": (lambda: gradviz.trace("sum(W)", shapes={"W": (2, -3)}), "is not a shape"),
    "a shape that is text nonsense": (lambda: gradviz.trace("sum(W)", shapes={"W": "axb"}), "W"),
    "shapes not a dict": (lambda: gradviz.trace("sum(W)", shapes=[(2, 3)]), "shapes must be a dict"),
    "an integer dtype": (lambda: gradviz.trace("x * 2", x=1.0, dtype="int8"), "dtype 'int8'"),
    "a dtype for models that does not exist": (lambda: gradviz.trace(nn.Linear(2, 1), torch.ones(3, 2), dtype="float16"),
                                               "dtype 'float16'"),
    "a missing .py file": (lambda: gradviz.trace("/nonexistent/model.py"), "No such file"),
    "a model whose output is not one number, no loss": (lambda: gradviz.trace(nn.Linear(2, 3), torch.ones(4, 2)),
                                                        "shape (4, 3), not one number; give target"),
    "a loss returning a float": (lambda: gradviz.trace(nn.Linear(2, 1), torch.ones(4, 2), target=torch.ones(4, 1),
                                                       loss=lambda o, t: 0.5), "is a float, not a tensor"),
    "a loss returning a vector": (lambda: gradviz.trace(nn.Linear(2, 1), torch.ones(4, 2), target=torch.ones(4, 1),
                                                        loss=lambda o, t: (o - t) ** 2), "reduce it"),
    "a function that raises": (lambda: gradviz.trace(lambda w: (_ for _ in ()).throw(KeyError("inside")),
                                                     torch.ones(2, requires_grad=True)), "KeyError"),
    "the optimizer as a name": (lambda: gradviz.watch(nn.Linear(2, 1), optimizer="adam"), "torch.optim.Optimizer"),
}


@pytest.mark.parametrize("case", sorted(BAD_CALLS))
def test_a_bad_call_is_a_gradviz_error_with_one_line(case):
    call, said = BAD_CALLS[case]
    with pytest.raises(GradvizError) as error:
        call()
    message = str(error.value)
    assert said in message and "\n" not in message, message


def test_two_watches_on_one_run_folder_are_refused(tmp_path):
    model = nn.Linear(2, 1)
    first = gradviz.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path / "run")
    try:
        with pytest.raises(GradvizError, match="still going in this process"):
            gradviz.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path / "run")
    finally:
        first.close()
    again = gradviz.watch(model, torch.optim.SGD(model.parameters(), lr=0.1), run_dir=tmp_path / "run")
    again.close()  # once closed, the folder is free again


def test_the_stepper_without_a_terminal_is_refused_not_a_hang():
    traced = gradviz.trace("x * 2", x=1.0)
    with pytest.raises(GradvizError, match="interactive app"):
        traced.step()


def test_nan_and_inf_inside_lists_are_values(capsys):
    assert main(["trace", "sum(W)", "--at", "W=[[1, nan], [-inf, 2]]", "--json"]) == 1  # non-finite: exit 1
    from gradviz.sources.bindings import parse_value

    value = parse_value("W", "[[1, nan], [-inf, 2], [INF, 0]]")
    assert value.shape == (3, 2) and math.isnan(value[0, 1]) and value[1, 0] == -np.inf and value[2, 0] == np.inf
    with pytest.raises(GradvizError, match="not a number or a nested list"):
        parse_value("W", "[[1, nan_]]")
