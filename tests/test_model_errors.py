"""Broken spec files: one clear line naming the file and the problem, exit 2, no traceback."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from gradviz.cli import main

GOOD_DATA = """
import torch
from torch import nn

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(16, 3, generator=g), torch.randn(16, 1, generator=g)

def loss(output, target):
    return ((output - target) ** 2).mean()
"""

CASES = {
    "missing_name": (GOOD_DATA, "missing required name 'build_model'"),
    "raises_on_import": ("import torch\nraise ValueError('no GPU here')\n", "ValueError: no GPU here"),
    "wrong_type": (GOOD_DATA + "\ndef build_model():\n    return 'a model'\n",
                   "build_model() must return a torch.nn.Module, got str"),
    "shape_mismatch": (GOOD_DATA + "\ndef build_model():\n    return nn.Linear(5, 1)\n",
                       "the model does not accept the data: X[:2] has shape (2, 3)"),
    "scalar_loss": (GOOD_DATA.replace("** 2).mean()", "** 2)") + "\ndef build_model():\n    return nn.Linear(3, 1)\n",
                    "loss(output, target) must return a scalar tensor"),
    # Fine in evaluation mode (the spec check), fails in training mode on one example:
    # the error names the node it happened at.
    "fails_while_training": (GOOD_DATA + "\ndef build_model():\n    return nn.Sequential(nn.Linear(3, 4), "
                             "nn.BatchNorm1d(4), nn.Linear(4, 1))\n", "while running 1 = BatchNorm1d"),
}


@pytest.mark.parametrize("name", sorted(CASES))
def test_broken_spec_gives_one_line_and_exit_2(tmp_path: Path, capsys, name: str) -> None:
    text, fragment = CASES[name]
    path = tmp_path / f"{name}.py"
    path.write_text(textwrap.dedent(text))
    extra = ["--batch-size", "1"] if name == "fails_while_training" else []
    assert main(["trace", str(path), *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"gradviz: error: {path}")
    assert fragment in err and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1


def test_batch_size_larger_than_the_data(capsys) -> None:
    spec = str(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py")
    assert main(["trace", spec, "--batch-size", "100000"]) == 2
    assert "--batch-size 100000 is larger than the data (512 examples)" in capsys.readouterr().err


def test_show_names_an_unknown_node(capsys) -> None:
    spec = str(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py")
    assert main(["trace", spec, "--show", "fc9"]) == 2
    assert "--show fc9: no such node" in capsys.readouterr().err
