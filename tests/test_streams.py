"""Output that cannot be written, terminals that are not there, files that are not files."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.streams import _ascii_errors, HANDLER

ROOT = Path(__file__).resolve().parent.parent
LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"


def gradviz(*args: str, env: dict | None = None, stdout=subprocess.PIPE, timeout: float = 60,
            **kwargs) -> subprocess.CompletedProcess:
    """`python -m gradviz ARGS` in a real process (stdout and encodings are per process)."""
    full_env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "gradviz", *args], stdout=stdout, stderr=subprocess.PIPE,
                          timeout=timeout, env=full_env, cwd=ROOT, **kwargs)


def one_error_line(result: subprocess.CompletedProcess) -> str:
    err = result.stderr.decode()
    assert "Traceback" not in err and "Exception ignored" not in err, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("gradviz: error: "), err
    return lines[0]


def test_closed_stdout_is_an_error_not_a_silent_success():
    # `>&-`: the shell closes descriptor 1, Python starts with sys.stdout None
    result = gradviz("trace", LECTURE, "--at", "x1=0.5,x2=1", stdout=None, pass_fds=(),
                     preexec_fn=lambda: os.close(1))
    assert result.returncode == 2
    assert "standard output is closed" in one_error_line(result)


@pytest.mark.parametrize("extra", [[], ["--json"], ["--graph"]])
def test_a_full_disk_is_one_line_and_exit_2(extra):
    with open("/dev/full", "w") as full:
        result = gradviz("trace", LECTURE, "--at", "x1=0.5,x2=1", *extra, stdout=full)
    assert result.returncode == 2
    assert one_error_line(result) == "gradviz: error: cannot write the output: No space left on device"


@pytest.mark.parametrize("env", [{"PYTHONIOENCODING": "ascii"},
                                 {"LC_ALL": "C", "LANG": "C", "PYTHONCOERCECLOCALE": "0", "PYTHONUTF8": "0",
                                  "PYTHONIOENCODING": ""}])
def test_an_ascii_terminal_gets_ascii_stand_ins(env):
    result = gradviz("trace", LECTURE, "--at", "x1=0.5,x2=1", "--graph", env=env)
    assert result.returncode == 0, result.stderr.decode()
    out = result.stdout.decode("ascii")  # every byte is ASCII
    assert "vbar1 = vbar2*e^{v1} + vbar3 + vbar5 = 0.8244 + 0.5000 + 2.1487 = 3.4731" in out
    assert "v5 = v1 - v4" in out and "+--" in out


def test_errors_reach_an_ascii_stderr_too():
    result = gradviz("trace", "σ(x)", env={"PYTHONIOENCODING": "ascii"})
    assert result.returncode == 2
    err = result.stderr.decode("ascii")
    assert err.startswith("gradviz: error: unknown function 'sigma'") and err.endswith("  sigma(x)\n  ^\n")


def test_the_stand_ins_for_the_report_glyphs():
    text = "v̄1 = ∂f/∂v1 · σ(x) − ‖W‖² ━┃╇ → Wᵀ"
    assert text.encode("ascii", HANDLER).decode() == "vbar1 = df/dv1 * sigma(x) - ||W||^2 -|+ -> W^T"
    glyphs = "truncation ∝ h, (δ2·W2ᵀ) ⊙ lay1, ∛ε ≈ 6e-06, ε^⅔"
    assert glyphs.encode("ascii", HANDLER).decode() == \
        "truncation ~ h, (delta2*W2^T) .* lay1, cbrt epsilon ~ 6e-06, epsilon^(2/3)"
    with pytest.raises(UnicodeDecodeError):
        _ascii_errors(UnicodeDecodeError("ascii", b"\xff", 0, 1, "bad"))


def test_step_refuses_to_start_the_app_into_a_pipe():
    result = gradviz("step", "@samples/lecture.expr", timeout=30)
    assert result.returncode == 2 and result.stdout == b""
    line = one_error_line(result)
    assert "standard output is not a terminal" in line and "gradviz trace @samples/lecture.expr" in line


def test_step_refuses_when_stdin_is_not_a_terminal(monkeypatch, capsys):
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    monkeypatch.setattr(sys, "stdin", io.StringIO())
    assert main(["step", "x * 2", "--at", "x=1"]) == 2
    assert "standard input is not a terminal" in capsys.readouterr().err


# -- @FILE --------------------------------------------------------------------------------
@pytest.mark.parametrize("target, said", [
    ("/dev/zero", "it is a device"),
    ("/dev/urandom", "it is a device"),
    ("DIR", "it is a directory"),
    ("FIFO", "it is a FIFO"),
    (sys.executable, "is not UTF-8 text (byte 0x"),
    ("BIG", "is larger than 1024 kB"),
])
def test_expression_files_must_be_small_regular_utf8_files(tmp_path, capsys, target, said):
    if target == "DIR":
        target = str(tmp_path)
    elif target == "FIFO":
        target = str(tmp_path / "fifo")
        os.mkfifo(target)  # no writer: opening it for reading would block forever
    elif target == "BIG":
        target = str(tmp_path / "big.expr")
        Path(target).write_text("x + " * 300_000 + "x")
    assert main(["trace", f"@{target}", "--at", "x=1"]) == 2
    err = capsys.readouterr().err
    assert said in err and len(err.strip().splitlines()) == 1


def test_a_utf8_expression_file_with_comments_still_works(tmp_path, capsys):
    path = tmp_path / "f.expr"
    path.write_text("# at: x=2\n# σ of x, in UTF-8\nsigmoid(x) * 2\n", encoding="utf-8")
    assert main(["trace", f"@{path}", "--json"]) == 0
    assert '"f"' in capsys.readouterr().out
