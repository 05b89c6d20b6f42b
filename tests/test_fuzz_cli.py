"""Fuzzing the command line: malformed expressions, --at/--shape values and spec files.

Whatever comes in, gradviz answers with exit 0, 1 (a NaN/Inf found) or 2 (bad input),
never a traceback, and soon. Most examples run in-process through gradviz.cli.main (fast);
a few run as real processes, as a user types them. derandomize keeps CI reproducible.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gradviz.cli import main
from gradviz.sources import spec_run

REAL_EXIT = os._exit

ROOT = Path(__file__).resolve().parent.parent
LIMIT_SECONDS = 10
FAST = settings(max_examples=150, deadline=None, derandomize=True,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])

TOKENS = ["x", "y", "W", "b", "exp", "log", "sigmoid", "sum", "mean", "max", "norm", "mse", "dropout", "relu",
          "(", ")", "[", "]", "+", "-", "*", "/", "**", "@", ".T", ".shape", ",", ";", "=", "\n", " ", "0", "1",
          "2.5", "1e308", "-1e-308", "9**9**9", "nan", "inf", "axis=", "p=", "lambda", ":", "import", "σ", "x[0]",
          "'s'", "if", "u", "u =", "#", "\t", "\\", "{", "}", "<", "and"]
AT_VALUES = ["1", "0", "-0.5", "nan", "inf", "-inf", "1e309", "[1,2,3]", "[[1,2],[3,4]]", "[[1],[2,3]]", "[]",
             "[[]]", "abc", "[" * 200 + "]" * 200, "[1,", "1,2", "True", "None", "'x'", "0x10", "1_000", "()",
             "[nan, inf]", "[[1e308, -1e308]]", "[1,[2]]"]
SHAPES = ["3", "2x3", "3x2", "1x1", "scalar", "0", "-1", "axb", "2×3", "1x1x1x1x1x1x1", "4000x4000", "100000",
          "3x", "x3", "", "2,3", "1e3", "5x1", "1x5"]
NAMES = ["x", "y", "W", "b", "u", "1x", "x y", "", "σ"]


def run_cli(argv: list[str]) -> tuple[int, str, float]:
    """main(argv) in-process: (exit code, stderr, seconds); argparse's exits count too."""
    out, err = io.StringIO(), io.StringIO()
    started = time.monotonic()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = main(argv)
        except SystemExit as exc:  # argparse: usage errors exit 2
            code = exc.code if isinstance(exc.code, int) else 2
    return code, err.getvalue(), time.monotonic() - started


def assert_held(argv: list[str], code: int, err: str, seconds: float) -> None:
    assert code in (0, 1, 2), (argv, code, err)
    assert "Traceback" not in err and "Error:" not in err.split("gradviz: error:")[0], (argv, err)
    assert seconds < LIMIT_SECONDS, (argv, seconds)
    if code == 2:
        assert err.strip(), argv  # a failure always says why


def _trees(children):
    """One level of a well-formed expression over `children` (shapes may still clash)."""
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**", "@"]), children).map(
            lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["exp", "log", "sigmoid", "sum", "mean", "norm", "relu", "tanh", "sqrt", "abs",
                                   "softplus", "sin", "-"]), children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["max", "min", "mse", "bce"]), children, children).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        children.map(lambda c: f"{c}.T"),
        st.tuples(st.sampled_from(["sum", "mean"]), children, st.sampled_from(["0", "1", "-1", "2", "axis=0"])).map(
            lambda t: f"{t[0]}({t[1]}, {t[2]})"),
        st.tuples(children, st.sampled_from(["0.5", "0", "0.99", "p=0.2"])).map(lambda t: f"dropout({t[0]}, {t[1]})"),
    )


LEAVES = st.sampled_from(["x", "y", "W", "1", "2.5", "0", "[1, 2]", "[[1], [2]]", "[[1, 2], [3, 4]]", "1e308"])
TREES = st.recursive(LEAVES, _trees, max_leaves=8)


@st.composite
def expressions(draw) -> str:
    kind = draw(st.integers(0, 9))
    if kind < 6:  # well formed: these get past the parser into binding, the budget and the passes
        statements = draw(st.lists(TREES, min_size=1, max_size=3))
        if len(statements) > 1 and draw(st.booleans()):
            return "; ".join(f"u{i} = {s}" for i, s in enumerate(statements[:-1])) + f"; {statements[-1]}"
        return "\n".join(statements)
    if kind < 9:
        return "".join(draw(st.lists(st.sampled_from(TOKENS), min_size=0, max_size=14)))
    return draw(st.text(max_size=40))


VALID_SHAPES = ["3", "2x3", "3x2", "1x1", "scalar", "5x1", "1x5", "2", "2x2", "1x3x1"]


@st.composite
def bindings(draw, text: str = "x y W") -> list[str]:
    argv: list[str] = []
    for name in ("x", "y", "W"):  # mostly usable values for the names the expression uses
        choice = draw(st.integers(0, 9))
        if name not in text and choice < 9:
            continue
        if choice < 3:
            argv += ["--at", f"{name}={draw(st.sampled_from(AT_VALUES))}"]
        elif choice < 9:
            argv += ["--shape", f"{name}={draw(st.sampled_from(VALID_SHAPES))}"]
    if draw(st.integers(0, 3)) == 0:  # and now and then something malformed
        name = draw(st.sampled_from(NAMES))
        flag = draw(st.sampled_from(["--at", "--shape"]))
        value = draw(st.sampled_from(AT_VALUES if flag == "--at" else SHAPES))
        argv += [flag, f"{name}={value}"]
    return argv


@st.composite
def cases(draw) -> tuple[str, list[str]]:
    """An expression and --at/--shape options for (mostly) the names it uses."""
    text = draw(expressions())
    return text, draw(bindings(text))


@FAST
@given(case=cases(), mode=st.sampled_from(["all", "forward", "reverse", "tangent"]), json_out=st.booleans())
def test_malformed_expressions_and_values_are_held(case, mode, json_out):
    text, extra = case
    argv = ["trace", text, *extra, "--mode", mode, "--max-memory", "256M"] + (["--json"] if json_out else [])
    assert_held(argv, *run_cli(argv))


@FAST
@given(text=st.sampled_from(["x", "x * y", "W @ x", "sum(x * x)", "exp(x) / y", "x @ x.T", "mse(x, y)",
                             "max(x, y) + x", "mean(W, 1)", "sum(x, 3)", "norm(W - x)"]),
       extra=bindings(), seed=st.sampled_from(["0", "-1", "4294967296", "abc", "7"]),
       dtype=st.sampled_from(["float32", "float64", "int8"]))
def test_well_formed_expressions_with_malformed_inputs_are_held(text, extra, seed, dtype):
    argv = ["trace", text, *extra, "--seed", seed, "--dtype", dtype, "--max-memory", "256M"]
    assert_held(argv, *run_cli(argv))


# -- spec files ------------------------------------------------------------------------------
MODEL_LINES = ["return nn.Linear(2, 1)", "return nn.Sequential(nn.Linear(2, 4), nn.Tanh(), nn.Linear(4, 1))",
               "return None", "return 3", "raise ValueError('no')", "return nn.Linear(5, 1)",
               "import sys; sys.exit(0)", "import os; os._exit(0)", "return Tupled()", "return Texty()",
               "return nn.Sequential(nn.Linear(2, 1), nn.Dropout(0.5))"]
LOSS_LINES = ["return ((output - target) ** 2).mean()", "return output.sum(1)", "return 'loss'",
              "return torch.nn.functional.binary_cross_entropy(output, target)", "raise KeyError('t')",
              "return (output - target).mean() * float('nan')"]
DATA_LINES = ["return torch.randn(10, 2, generator=g), torch.randn(10, 1, generator=g)",
              "return torch.randn(10, 2, generator=g)", "return [1, 2]", "return torch.randn(1, 2), torch.randn(1, 1)",
              "return torch.randn(10, 2, generator=g), torch.randn(7, 1, generator=g)", "return None",
              "return torch.randn(10, 3, generator=g), torch.randn(10, 1, generator=g)", "sys.exit(1)"]
HEADS = ["", "TRAINING = 5", "OUTPUT = 7", "OUTPUT = 'x'", "1/0", "import sys", "build_model = 3",
         "def helper(:", "from nowhere import thing", "OUTPUT = 1"]

SPEC = '''import sys
import torch
from torch import nn
{head}

class Tupled(nn.Module):
    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(2, 1)

    def forward(self, x):
        return self.fc(x), x

class Texty(nn.Module):
    def forward(self, x):
        return "text"

def build_model():
    {model}

def loss(output, target):
    {loss}

def make_data(seed):
    g = torch.Generator().manual_seed(seed)
    {data}
'''


@pytest.fixture(autouse=True)
def soft_spec_timeout():
    yield  # the CLI arms a hard stop for its own process; the test process gets the default back
    spec_run.set_spec_timeout(spec_run.DEFAULT_TIMEOUT)


@settings(max_examples=30, deadline=None, derandomize=True,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(head=st.sampled_from(HEADS), model=st.sampled_from(MODEL_LINES), loss=st.sampled_from(LOSS_LINES),
       data=st.sampled_from(DATA_LINES), command=st.sampled_from([["trace"], ["trace", "--json"], ["trace", "--check"],
                                                                  ["trace", "--level", "aten"]]),
       batch=st.sampled_from(["8", "0", "1000", "2"]))
def test_malformed_spec_files_are_held(tmp_path_factory, head, model, loss, data, command, batch):
    folder = tmp_path_factory.mktemp("spec")
    path = folder / "fuzzed.py"
    path.write_text(SPEC.format(head=head, model=model, loss=loss, data=data))
    argv = [*command, str(path), "--batch-size", batch, "--spec-timeout", "20"]
    code, err, seconds = run_cli(argv)
    assert_held(argv, code, err, seconds)
    if "exit(" in model + data and code != 2:
        pytest.fail(f"a spec that exits was not an error: {argv} {code} {err}")
    assert os._exit is REAL_EXIT  # the guard put the real one back


# -- a few real processes ------------------------------------------------------------------------
@settings(max_examples=6, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=cases())
def test_real_processes_hold_too(case):
    text, extra = case
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    argv = [sys.executable, "-m", "gradviz", "trace", text, *extra, "--max-memory", "256M"]
    started = time.monotonic()
    result = subprocess.run(argv, capture_output=True, text=True, timeout=60, env=env, cwd=ROOT)
    assert_held(argv, result.returncode, result.stderr, time.monotonic() - started)


# -- methods and trace --layers ------------------------------------------------------------------
def _scalar_trees(children):
    return st.one_of(
        st.tuples(children, st.sampled_from(["+", "-", "*", "/", "**"]), children).map(lambda t: f"({t[0]} {t[1]} {t[2]})"),
        st.tuples(st.sampled_from(["exp", "log", "sigmoid", "tanh", "sqrt", "abs", "softplus", "sin", "relu", "-"]),
                  children).map(lambda t: f"{t[0]}({t[1]})"),
        st.tuples(st.sampled_from(["max", "min", "mse", "bce"]), children, children).map(lambda t: f"{t[0]}({t[1]}, {t[2]})"),
    )


SCALAR_TREES = st.recursive(st.sampled_from(["x", "y", "1", "2.5", "0", "1e308", "-1"]), _scalar_trees, max_leaves=6)
SCALARS = ["0", "-0", "1", "-1", "0.5", "800", "-800", "1e308", "-1e308", "1e-320", "nan", "inf", "-inf", "[1, 2]", "abc"]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(text=SCALAR_TREES, x=st.sampled_from(SCALARS), y=st.sampled_from(SCALARS),
       extra=st.sampled_from([[], ["--full"], ["--wrt", "y"], ["--wrt", "z"], ["--depth", "1"]]))
def test_methods_holds_at_any_point(text, x, y, extra):
    # NaN/Inf in f or its gradient is a finding (exit 1), never a traceback.
    at = [f"--at={name}={value}" for name, value in (("x", x), ("y", y)) if name in text]
    argv = ["methods", text, *at, "--depth", "0", *extra]
    assert_held(argv, *run_cli(argv))


LAYER_BODIES = ["L = sum(sigmoid(x @ W + b))", "L = sum(tanh(x @ W))", "L = mse(relu(x @ W + b) @ V, y)",
                "L = sum(sigmoid(W @ x + b))", "L = sum(softplus(sigmoid(x @ W + b) @ V))", "L = sum(x @ W)",
                "L = bce(sigmoid(x @ W + b) @ V, y)", "L = sum(exp(x))"]
# Values that fit together (x 1×2, W 2×2, b 2, V 2×1, y 1×1), finite or not, and a few that do not.
LAYER_VALUES = {"x": ["[[1,1]]", "[[1e308,1e308]]", "[[nan,1]]", "[[1],[1]]"],
                "W": ["[[1,2],[3,4]]", "[[1e308,1],[1,1]]", "[[inf,0],[0,1]]", "[[1,2,3]]"],
                "b": ["[1,1]", "[1e308,-1e308]", "[[1],[1]]"],
                "V": ["[[1],[2]]", "[[inf],[1]]"], "y": ["[[1]]", "[[0.5]]", "[[nan]]"]}


@st.composite
def layer_cases(draw) -> list[str]:
    body = draw(st.sampled_from(LAYER_BODIES))
    names = [n for n in LAYER_VALUES if re.search(rf"\b{n}\b", body)]
    return [body] + [f"--at={n}={draw(st.sampled_from(LAYER_VALUES[n]))}" for n in names]


@settings(max_examples=60, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.too_slow])
@given(case=layer_cases(), flags=st.sampled_from([[], [], [], ["--json"], ["--format", "csv"], ["--mode", "tangent"]]))
def test_trace_layers_holds(case, flags):
    argv = ["trace", *case, "--layers", *flags]
    assert_held(argv, *run_cli(argv))
