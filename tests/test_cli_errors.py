"""Every bad input: one clear line (a caret where there is a column), exit 2, no traceback."""

from __future__ import annotations

import subprocess
import sys

import pytest

from gradviz.cli import main

LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"

CASES = [
    # (argv after 'trace', fragment of the message, has a caret)
    (["exp(x1", "--at", "x1=1"], "syntax error", True),
    (["foo(x1)", "--at", "x1=1"], "unknown function 'foo'", True),
    (["x1.shape", "--at", "x1=1"], "attribute '.shape' is not supported (only .T", True),
    (["import os"], "imports are not allowed", True),
    (["lambda x: x"], "lambdas are not supported", True),
    (["sum([x for x in y])"], "comprehensions are not supported", True),
    (["x[0]", "--at", "x=[1,2]"], "subscripts (x[0]) are not supported", True),
    (["x1 < x2"], "comparisons are not supported", True),
    (["x1 + x2 + x3", "--at", "x1=1"], "no value for x2, x3", False),
    (["x1", "--at", "x1"], "--at expects name=value", False),
    (["x1", "--at", "x1=abc"], "is not a number or a nested list", False),
    (["x1", "--at", "x1=[[1,2],[3]]"], "not a rectangular nested list", False),
    (["x1", "--at", "x1=1,x9=2"], "no input named x9", False),
    (["W", "--shape", "W=2y3"], "is not a shape like 2x16", False),
    (["W", "--shape", "W=0x3"], "every dimension must be positive", False),
    (["A @ B", "--shape", "A=2x3,B=2x3"], "shapes do not fit at f = A @ B: A (2, 3) and B (2, 3)", False),
    (["x * 9**9**9", "--at", "x=1"], "is absurdly large", True),
    (["x ** 100000", "--at", "x=1"], "is absurdly large", True),
    (["W", "--shape", "W=100000x100000"], "10,000,000,000 elements", False),
    (["(" * 300 + "x" + ")" * 300, "--at", "x=1"], "too many nested parentheses", True),
    (["0 + " + "-" * 5000 + "x", "--at", "x=1"], "nested", False),
    (["exp(x)", "--at", "x=1", "--wrt", "y"], "--wrt y: no such input", False),
    (["@/nonexistent/file.expr"], "cannot read expression file", False),
    ([""], "the expression is empty", False),
    (["exp = x", "--at", "x=1"], "'exp' is a function name", True),
    (["dropout(x, 1.5)", "--at", "x=1"], "dropout's p must be in [0, 1)", True),
    (["max(x)", "--at", "x=1"], "max() takes 2 arguments", True),
    (["'text'"], "only numbers are allowed as constants", True),
]


@pytest.mark.parametrize("argv, fragment, caret", CASES, ids=[c[1][:40] for c in CASES])
def test_bad_input_gives_one_clear_line_and_exit_2(capsys, argv, fragment, caret):
    code = main(["trace", *argv])
    err = capsys.readouterr().err
    assert code == 2
    assert err.startswith("gradviz: error: ")
    assert fragment in err.splitlines()[0]
    assert "Traceback" not in err
    if caret:
        lines = err.rstrip("\n").splitlines()
        assert len(lines) == 3 and lines[2].strip() == "^", err


def test_caret_sits_under_the_offending_column(capsys):
    main(["trace", "x1 + foo(x2)", "--at", "x1=1,x2=2"])
    lines = capsys.readouterr().err.splitlines()
    assert lines[1] == "  x1 + foo(x2)"
    assert lines[2].index("^") == lines[1].index("foo")


def test_non_finite_value_is_shown_not_refused(capsys):
    code = main(["trace", "log(x) * 2", "--at", "x=0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "v1 ◀" in out
    assert "non-finite: the first value to become NaN/Inf is at v1 = log(x)" in out


def test_non_finite_adjoint_is_marked(capsys):
    # sqrt(x) at 0 is finite (0) but its derivative 1/(2√x) is infinite.
    code = main(["trace", "sqrt(x)", "--at", "x=0"])
    out = capsys.readouterr().out
    assert code == 1
    assert "non-finite: the first adjoint x̄ to become NaN/Inf is at x" in out


def test_a_real_process_prints_no_traceback():
    result = subprocess.run([sys.executable, "-m", "gradviz", "trace", "foo(x)"], capture_output=True, text=True)
    assert result.returncode == 2
    assert result.stderr.startswith("gradviz: error: unknown function 'foo'")
    assert "Traceback" not in result.stderr


def test_help_lists_the_commands():
    result = subprocess.run([sys.executable, "-m", "gradviz", "--help"], capture_output=True, text=True)
    assert result.returncode == 0
    assert "trace" in result.stdout


@pytest.mark.parametrize("seed", ["-1", "4294967296", "abc"])
def test_a_seed_out_of_range_is_refused(capsys, seed):
    with pytest.raises(SystemExit) as exit_info:
        main(["trace", "sum(x)", "--shape", "x=2", "--seed", seed])
    assert exit_info.value.code == 2
    assert "argument --seed" in capsys.readouterr().err


def test_an_expression_longer_than_a_path_can_be_is_traced_not_refused_as_a_file_name(tmp_path, capsys):
    """`export`/`step` ask whether the source is a run folder; an expression past the
    system's path length (4,000+ characters) made that question raise 'File name too long'."""
    from gradviz.cli import main

    text = " + ".join(f"sin(x*{i})" for i in range(1, 400))
    assert len(text) > 4096
    out = tmp_path / "long.svg"
    # --detail dots: the form `fit` picks for this graph, drawn without measuring the others first
    assert main(["export", text, "--at", "x=1", "-o", str(out), "--detail", "dots"]) == 0
    assert out.read_text().lstrip().startswith("<?xml") or "<svg" in out.read_text()
    assert "File name too long" not in capsys.readouterr().err
