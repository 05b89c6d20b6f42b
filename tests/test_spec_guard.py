"""Running a spec's code is bounded: exits, runaway loops and odd outputs are one line."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import torch

from gradviz.cli import main
from gradviz.errors import SpecError
from gradviz.sources import spec as spec_module
from gradviz.sources import spec_run
from gradviz.sources.spec import check_spec, load_spec
from gradviz.sources.spec_run import set_spec_timeout

REAL_EXIT = os._exit

ROOT = Path(__file__).resolve().parent.parent

MODEL = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(3, 4)
        self.fc2 = nn.Linear(4, 1)

    def forward(self, x):
        h = torch.tanh(self.fc1(x))
        return {forward}

def build_model():
    {build}
    return Net()

def loss(output, target):
    return ((output - target) ** 2).mean()

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)
"""


def write(tmp_path: Path, *, top: str = "", forward: str = "self.fc2(h)", build: str = "pass",
          tail: str = "") -> Path:
    path = tmp_path / "spec.py"
    path.write_text(top + "\n" + textwrap.dedent(MODEL).format(forward=forward, build=build) + "\n" + tail)
    return path


@pytest.fixture(autouse=True)
def restore_timeout():
    yield
    set_spec_timeout(spec_run.DEFAULT_TIMEOUT)


@pytest.mark.parametrize("top, said", [
    ("import sys; sys.exit(0)", "import called sys.exit(0)"),
    ("raise SystemExit(3)", "import called sys.exit(3)"),
    ("import os; os._exit(0)", "import called os._exit(0)"),
    ("exit()", "import called sys.exit(None)"),
])
def test_exiting_on_import_is_an_error_naming_the_file(tmp_path, capsys, top, said):
    path = write(tmp_path, top=top)
    assert main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.strip() == f"gradviz: error: {path}: {said}; a spec must not exit the process"
    assert os._exit is REAL_EXIT and not any(name.startswith("gradviz_spec_spec_") and
                                                        sys.modules[name].__file__ == str(path)
                                                        for name in list(sys.modules))


def test_exiting_in_build_model_is_an_error_too(tmp_path):
    with pytest.raises(SpecError, match=r"build_model\(\) called os._exit\(1\)"):
        load_spec(write(tmp_path, build="import os; os._exit(1)"))


@pytest.mark.parametrize("where", ["import", "build_model"])
def test_a_runaway_phase_is_stopped_with_a_message_naming_it(tmp_path, where):
    loop = "while True: pass"
    path = write(tmp_path, top=loop) if where == "import" else write(tmp_path, build=loop)
    set_spec_timeout(0.5)
    started = time.monotonic()
    with pytest.raises(SpecError) as info:
        load_spec(path)
    assert time.monotonic() - started < 5
    phase = "import" if where == "import" else "build_model()"
    assert f"{phase} ran longer than 0.5 s and was stopped (--spec-timeout" in info.value.message


def test_a_sleeping_forward_is_stopped_and_the_alarm_is_put_back(tmp_path):
    import signal

    path = write(tmp_path, forward="__import__('time').sleep(60) or self.fc2(h)")
    spec = load_spec(path)
    set_spec_timeout(0.3)
    before = signal.getsignal(signal.SIGALRM)
    with pytest.raises(SpecError, match="the model's forward ran longer than 0.3 s"):
        check_spec(spec)
    assert signal.getsignal(signal.SIGALRM) is before
    assert signal.getitimer(signal.ITIMER_REAL) == (0.0, 0.0)


def test_the_hard_stop_says_one_line_and_exits_2_when_c_code_ignores_the_alarm(capsys):
    codes = []
    done = threading.Event()
    spec_run._hard_stop(done, 0.05, "x.py: import ran longer than 1 s", codes.append)
    assert codes == [2]
    assert capsys.readouterr().err == "gradviz: error: x.py: import ran longer than 1 s\n"
    done.set()
    spec_run._hard_stop(done, 0.05, "never shown", codes.append)
    assert codes == [2]


def test_the_cli_bounds_a_runaway_spec_in_a_real_process(tmp_path):
    path = write(tmp_path, build="while True: pass")
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-m", "gradviz", "trace", str(path), "--spec-timeout", "1"],
                            capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr.strip() == (f"gradviz: error: {path}: build_model() ran longer than 1 s and was "
                                     "stopped (--spec-timeout SECONDS to allow more)")


def test_a_spec_that_is_not_a_regular_file_is_refused_at_once(tmp_path):
    fifo = tmp_path / "pipe.py"
    os.mkfifo(fifo)
    with pytest.raises(SpecError, match="a spec must be a regular .py file"):
        load_spec(fifo)


# -- model outputs that are not one tensor ---------------------------------------------------
@pytest.mark.parametrize("forward, tail, note", [
    ("(self.fc2(h), h)", "", "returns a tuple; gradviz takes its first tensor, element 0, as the output"),
    ("[3, self.fc2(h)]", "", "returns a list; gradviz takes its first tensor, element 1, as the output"),
    ("{'hidden': h, 'out': self.fc2(h)}", "OUTPUT = 'out'", "returns a dict; OUTPUT = 'out' names 'out'"),
    ("Result(self.fc2(h), h)", "", "returns a dataclass; gradviz takes its first tensor, 'y', as the output"),
])
def test_tuple_dict_and_dataclass_outputs_pick_one_tensor_and_say_so(tmp_path, capsys, forward, tail, note):
    top = ("from dataclasses import dataclass\nimport torch\n@dataclass\nclass Result:\n"
           "    y: torch.Tensor\n    hidden: torch.Tensor\n")
    path = write(tmp_path, top=top, forward=forward, tail=tail)
    assert main(["trace", str(path), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert any(note in n for n in report["model"]["notes"]), report["model"]
    # the loss saw the chosen tensor: its adjoint reached fc2, whose output is the model's
    fc2 = next(n for n in report["nodes"] if n["label"] == "fc2")
    assert fc2["shape"] == [8, 1]


def test_the_chosen_output_is_what_plain_torch_computes(tmp_path):
    path = write(tmp_path, forward="(self.fc2(h), h)")
    spec = load_spec(path)
    torch.manual_seed(0)
    model = spec.build_model()
    torch.manual_seed(0)
    wrapped = spec_module.build_model(spec)
    x = torch.randn(4, 3)
    assert torch.equal(wrapped(x), model(x)[0])
    assert type(wrapped).__name__ == "Net" and [n for n, _ in wrapped.named_modules()] == ["", "fc1", "fc2"]


@pytest.mark.parametrize("forward, tail, said", [
    ("'text'", "", "the model's forward returned a str; it must return a tensor"),
    ("(1, 2)", "", "the model's forward returned a tuple with no tensor in it"),
    ("{'a': self.fc2(h)}", "OUTPUT = 'b'", "OUTPUT = 'b', but the model's forward returned a dict whose elements are 'a'"),
    ("self.fc2(h)", "OUTPUT = 1.5", "OUTPUT must be an index (0) or a name ('logits'), got float"),
])
def test_outputs_without_a_usable_tensor_are_one_line(tmp_path, capsys, forward, tail, said):
    path = write(tmp_path, forward=forward, tail=tail)
    assert main(["trace", str(path)]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1 and "Traceback" not in err


def test_an_alarm_at_any_moment_is_a_spec_error_never_a_stray_timeout(tmp_path):
    # A timeout this short fires anywhere: before the body, during it, or while the guard
    # cleans up; each must end as nothing or as a SpecError, never as _SpecTimeout.
    set_spec_timeout(1e-6)
    stray = 0
    for _ in range(3000):
        try:
            with spec_run.running_spec(tmp_path / "s.py", "import"):
                sum(range(20))
        except SpecError:
            pass
        except spec_run._SpecTimeout:
            stray += 1
    assert stray == 0
    assert os._exit is REAL_EXIT


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf", "1e30", "abc"])
def test_a_spec_timeout_that_would_switch_the_bound_off_or_overflow_is_refused(capsys, value):
    # nan, -1 and 0 used to disable the bound silently; inf and 1e30 overflowed the timer
    # and the OverflowError was blamed on the spec.
    with pytest.raises(SystemExit) as info:
        main(["trace", str(ROOT / "samples" / "two_layer_mlp.py"), "--spec-timeout", value])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "argument --spec-timeout" in err and "above 0 and at most 1e+06" in err


def test_a_large_finite_spec_timeout_is_taken():
    from gradviz.commands.common import timeout_seconds

    assert timeout_seconds("1e6") == 1e6 and timeout_seconds("0.25") == 0.25


def _run_process(path: Path, timeout: float = 30) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    return subprocess.run([sys.executable, "-m", "gradviz", "trace", str(path)], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=timeout)


def test_a_thread_the_spec_leaves_running_does_not_hold_the_process(tmp_path):
    # A non-daemon thread kept the interpreter from exiting after the output was out.
    path = write(tmp_path, top="import threading, time\nthreading.Thread(target=lambda: time.sleep(1e9)).start()")
    done = _run_process(path)
    assert done.returncode == 0, done.stderr
    assert "fc2" in done.stdout and not done.stderr


def test_an_atexit_hook_in_the_spec_cannot_change_the_exit_status(tmp_path):
    # The spec's forward makes a NaN (exit 1); its atexit hook would have forced exit 0.
    path = write(tmp_path, top="import atexit, os\natexit.register(lambda: os._exit(0))",
                 forward="self.fc2(h) * float('nan')")
    done = _run_process(path)
    assert done.returncode == 1, (done.stdout[-500:], done.stderr)
    assert "non-finite" in done.stdout
