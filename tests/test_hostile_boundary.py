"""One boundary for errors and for user code, every command through it.

Whatever fails inside a command becomes one line on stderr and exit 2 (1 for a non-finite
value), `--debug` shows the traceback; a warning is one line too. User code (a script, a
landscape's loss, the `step RUN` replay) is time-bounded by --spec-timeout, and its exits,
forks, closed streams and changes of directory come back as one line naming file and phase.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
SAMPLES = ROOT / "samples"


def gradviz(argv: list[str], cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    env.pop("GRADVIZ_DEBUG", None)
    return subprocess.run([sys.executable, "-m", "gradviz", *argv], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, stdin=subprocess.DEVNULL)


def one_line(result: subprocess.CompletedProcess, code: int = 2) -> str:
    lines = result.stderr.strip().splitlines()
    assert result.returncode == code, (result.returncode, result.stderr)
    assert "Traceback" not in result.stderr and len(lines) == 1 and lines[0].startswith("gradviz: error:"), result.stderr
    return lines[0]


SPEC_HEAD = """
import torch
from torch import nn

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(16, 2, generator=g)
    return x, x.sum(dim=1, keepdim=True)
"""
LANDSCAPE_SPECS = {
    "a vector loss": ("def build_model(): return nn.Linear(2, 1)\ndef loss(o, t): return (o - t) ** 2",
                      "shape (16, 1), not one number"),
    "a float loss": ("def build_model(): return nn.Linear(2, 1)\ndef loss(o, t): return 0.5", "returned a float"),
    "a loss that raises": ("def build_model(): return nn.Linear(2, 1)\ndef loss(o, t): raise ValueError('boom')",
                           "raised ValueError: boom"),
    "no parameters": ("def build_model(): return nn.Identity()\ndef loss(o, t): return ((o.sum(1, keepdim=True) - t) ** 2).mean()",
                      "has no parameters"),
    "a loss that loops": ("def build_model(): return nn.Linear(2, 1)\ndef loss(o, t):\n    while True: pass",
                          "ran longer than 2 s"),
    "a loss that exits": ("import os\ndef build_model(): return nn.Linear(2, 1)\ndef loss(o, t): os._exit(0)",
                          "called os._exit(0)"),
}


@pytest.mark.parametrize("case", sorted(LANDSCAPE_SPECS))
def test_a_landscape_spec_whose_loss_misbehaves_is_one_line(case, tmp_path):
    body, said = LANDSCAPE_SPECS[case]
    (tmp_path / "spec.py").write_text(SPEC_HEAD + textwrap.dedent(body) + "\n")
    started = time.monotonic()
    bound = "2" if "loops" in case else "60"
    result = gradviz(["landscape", "spec.py", "--grid", "3", "--spec-timeout", bound], tmp_path)
    assert said in one_line(result)
    assert time.monotonic() - started < 30


@pytest.mark.parametrize("argv, said", [
    (["batches", "--seed", "-1"], "--seed: -1 is out of range"),
    (["landscape", str(SAMPLES / "two_layer_mlp.py"), "--seed", str(10**23)], "is out of range"),
    (["landscape", str(SAMPLES / "two_layer_mlp.py"), "--span", "1e308", "--grid", "3"], "past the range"),
    (["landscape", str(SAMPLES / "two_layer_mlp.py"), "--span", "nan", "--grid", "3"], "--span must be a positive number"),
])
def test_bad_values_that_were_tracebacks_are_one_line(argv, said, tmp_path):
    result = gradviz(argv, tmp_path)
    assert said in result.stderr and result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr


SCRIPT_HEAD = "import os, sys, torch\nw = torch.tensor([1.0, 2.0], requires_grad=True)\ntotal = (w * w).sum()\n"
SCRIPTS = {  # what the script does, before or after its backward(); what the one line says
    "loops before backward": ("while True: pass\ntotal.backward()\n", "the script ran longer than 2 s"),
    "loops after backward": ("total.backward()\nwhile True: pass\n", "the script ran longer than 2 s"),
    "os._exit before backward": ("os._exit(0)\ntotal.backward()\n", "called os._exit(0)"),
    "os._exit after backward": ("total.backward()\nos._exit(0)\n", "called os._exit(0)"),
    "forks": ("os.fork()\ntotal.backward()\n", "called os.fork()"),
}


@pytest.mark.parametrize("command", ["trace", "export"])
@pytest.mark.parametrize("case", sorted(SCRIPTS))
def test_a_script_that_misbehaves_is_stopped_with_one_line(command, case, tmp_path):
    body, said = SCRIPTS[case]
    (tmp_path / "script.py").write_text(SCRIPT_HEAD + body)
    bound = "2" if "loops" in case else "60"  # a loaded machine can take 2 s just to record the script
    argv = [command, "script.py", "--spec-timeout", bound] + (["-o", "out.svg"] if command == "export" else ["--json"])
    if "after backward" in case:  # by default a script stops at its traced backward: run what follows it
        argv.append("--run-to-end")
    line = one_line(gradviz(argv, tmp_path))
    assert said in line and "script.py" in line
    assert not (tmp_path / "out.svg").exists()


@pytest.mark.parametrize("json_out", [False, True])
def test_a_script_that_closes_stdout_still_gets_its_trace_printed(tmp_path, json_out):
    (tmp_path / "script.py").write_text(SCRIPT_HEAD + "total.backward()\nsys.stdout.close()\n")
    result = gradviz(["trace", "script.py"] + (["--json"] if json_out else []), tmp_path)
    assert result.returncode == 0 and "Traceback" not in result.stderr and "error" not in result.stderr, result.stderr
    if json_out:
        import json

        assert json.loads(result.stdout)["inputs"]["w"]["shape"] == [2]
    else:
        assert "total" in result.stdout and "findings" in result.stdout


REPLAY_SPEC = """
import torch
from torch import nn

class Stuck(nn.Linear):
    def forward(self, x):
        while True:
            pass

def build_model(): return Stuck(3, 1)
def loss(o, t): return ((o - t) ** 2).mean()
def make_data(seed): return torch.zeros(8, 3), torch.zeros(8, 1)
"""


def test_the_step_run_replay_is_time_bounded(tmp_path):
    import torch

    from gradviz.train.nan_origin import save_step

    (tmp_path / "spec.py").write_text(REPLAY_SPEC)
    run = tmp_path / "run"
    run.mkdir()
    model = torch.nn.Linear(3, 1)
    save_step(run, 3, 0, 0, str(tmp_path / "spec.py"), None, model.state_dict(), torch.zeros(8, 3), torch.zeros(8, 1))
    started = time.monotonic()
    line = one_line(gradviz(["step", "run", "--spec-timeout", "2"], tmp_path))
    assert "the replayed step ran longer than 2 s" in line
    assert time.monotonic() - started < 30


# -- the error boundary itself, in-process -------------------------------------------------
def test_an_unexpected_exception_is_one_line_and_debug_shows_the_traceback(monkeypatch, capsys):
    from gradviz import cli
    from gradviz.commands import batches

    def broken(args):
        raise KeyError("a bug gradviz did not foresee")

    monkeypatch.setattr(batches, "run", broken)
    assert cli.main(["batches"]) == 2
    err = capsys.readouterr().err
    assert err.strip().splitlines() == ["gradviz: error: unexpected KeyError: 'a bug gradviz did not foresee' "
                                        "(gradviz --debug … shows the traceback)"]
    with pytest.raises(KeyError):
        cli.main(["--debug", "batches"])


def test_a_warning_is_one_line(monkeypatch, capsys):
    import warnings

    from gradviz import cli
    from gradviz.commands import batches

    def warns(args):
        import numpy as np

        np.float64(1e308) * np.float64(10)  # numpy's overflow RuntimeWarning
        warnings.warn("a second thing to know", UserWarning)
        return 0

    monkeypatch.setattr(batches, "run", warns)
    assert cli.main(["batches"]) == 0
    lines = capsys.readouterr().err.strip().splitlines()
    assert lines == ["gradviz: warning: overflow encountered in scalar multiply",
                     "gradviz: warning: a second thing to know"]
