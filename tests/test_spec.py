"""The spec loader: every sample loads and checks; every broken spec gives one useful line."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from gradviz.errors import SpecError
from gradviz.sources.script import is_spec_file
from gradviz.sources.spec import Spec, check_spec, load_spec

SAMPLES = sorted(p for p in (Path(__file__).parent.parent / "samples").glob("*.py") if is_spec_file(p))  # not the scripts

GOOD = """
import torch
from torch import nn

def build_model():
    return nn.Linear(3, 1)

def loss(output, target):
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
"""


def write(tmp_path: Path, text: str, name: str = "spec.py") -> Path:
    """Write a spec file into tmp_path and return its path."""
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_loads_and_checks(path: Path) -> None:
    spec = load_spec(path)
    assert isinstance(spec, Spec)
    assert spec.name == path.stem
    assert spec.accuracy is not None
    assert {"lr", "epochs", "batch_size", "optimizer"} <= set(spec.training)
    check_spec(spec, seed=0)


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.stem)
def test_every_sample_is_fx_traceable_and_documented(path: Path) -> None:
    import torch.fx

    spec = load_spec(path)
    graph = torch.fx.symbolic_trace(spec.build_model())
    assert len(graph.graph.nodes) > 3
    assert path.read_text().lstrip().startswith('"""')  # a module docstring says what it shows


def test_samples_data_is_deterministic_per_seed() -> None:
    spec = load_spec(SAMPLES[0])
    x1, y1 = spec.make_data(3)
    x2, y2 = spec.make_data(3)
    x3, _ = spec.make_data(4)
    assert (x1 == x2).all() and (y1 == y2).all()
    assert not (x1 == x3).all()


def test_two_layer_forward_is_the_lecture_formula() -> None:
    import torch

    spec = load_spec(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py")
    model = spec.build_model()
    x, _ = spec.make_data(0)
    w1, b1 = model.fc1.weight, model.fc1.bias
    w2, b2 = model.fc2.weight, model.fc2.bias
    expected = torch.sigmoid(torch.sigmoid(x @ w1.T + b1) @ w2.T + b2)
    assert torch.allclose(model(x), expected)
    assert (w1.shape, w2.shape) == ((8, 2), (1, 8))
    assert x.shape == (512, 2)


def test_same_file_loads_twice_as_separate_modules(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD)
    a, b = load_spec(path), load_spec(path)
    assert a.build_model.__module__ != b.build_model.__module__


def test_loading_a_spec_does_not_import_torch_before_it_is_needed() -> None:
    code = "import sys, gradviz.sources.spec; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


BROKEN = {
    "missing_name": (GOOD.replace("def loss(output, target):", "def not_loss(output, target):"), "missing required name 'loss'"),
    "not_callable": (GOOD + "\naccuracy = 0.5\n", "'accuracy' must be a function"),
    "import_error": ("import torch\n\nx = 1\nraise ValueError('boom')\n", "line 4: ValueError: boom"),
    "syntax_error": ("def build_model(:\n    pass\n", "SyntaxError"),
    "not_a_module": (GOOD.replace("return nn.Linear(3, 1)", "return 42"), "must return a torch.nn.Module, got int"),
    "not_a_pair": (GOOD.replace("return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)", "return torch.randn(10, 3)"), "must return a pair (X, y)"),
    "not_tensors": (GOOD.replace("return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)", "return [1, 2], torch.zeros(2)"), "must return two tensors"),
    "unequal_lengths": (GOOD.replace("torch.randn(10, 1, generator=g)", "torch.randn(9, 1, generator=g)"), "X (10, 3) and y (9, 1)"),
    "raises_in_make_data": (GOOD.replace("g = torch.Generator().manual_seed(seed)", "g = 1 / 0"), "make_data() raised ZeroDivisionError"),
    "bad_training": (GOOD + "\nTRAINING = [1]\n", "TRAINING must be a dict"),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_broken_spec_gives_one_line_spec_error(tmp_path: Path, case: str) -> None:
    text, expected = BROKEN[case]
    path = write(tmp_path, text)
    with pytest.raises(SpecError) as info:
        load_spec(path)
    message = info.value.message
    assert expected in message
    assert str(path) in message
    assert "\n" not in message


def test_line_number_of_the_failure_inside_make_data(tmp_path: Path) -> None:
    path = write(tmp_path, BROKEN["raises_in_make_data"][0])
    with pytest.raises(SpecError, match=r"line 12: make_data\(\) raised"):
        load_spec(path)


def test_missing_file_and_wrong_suffix(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="no such spec file"):
        load_spec(tmp_path / "nope.py")
    other = tmp_path / "spec.txt"
    other.write_text(GOOD)
    with pytest.raises(SpecError, match=r"must be a \.py file"):
        load_spec(other)
    with pytest.raises(SpecError, match=r"must be a \.py file"):
        load_spec(tmp_path)


def test_shape_mismatch_names_both_shapes(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("nn.Linear(3, 1)", "nn.Linear(5, 1)"))
    spec = load_spec(path)
    with pytest.raises(SpecError) as info:
        check_spec(spec, seed=0)
    assert "(2, 3)" in info.value.message and "(batch, 5)" in info.value.message


def test_loss_that_is_not_a_scalar(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("((output - target) ** 2).mean()", "(output - target) ** 2"))
    with pytest.raises(SpecError, match=r"scalar tensor .* got shape \(2, 1\)"):
        check_spec(load_spec(path), seed=0)


def test_loss_that_fails_on_the_target(tmp_path: Path) -> None:
    path = write(tmp_path, GOOD.replace("((output - target) ** 2).mean()", "torch.nn.functional.nll_loss(output, target)"))
    with pytest.raises(SpecError, match=r"loss\(output, target\) failed on output \(2, 1\) and target \(2, 1\)"):
        check_spec(load_spec(path), seed=0)
