"""`gradviz step` as a command: its options, and the app it builds (without running it)."""

from __future__ import annotations

import pytest

from gradviz.cli import build_parser, main
from gradviz.tui.app import StepperApp


def run_step(monkeypatch, *argv: str) -> StepperApp:
    """Run `gradviz step ARGV` with App.run replaced, returning the app it would show."""
    monkeypatch.setattr("gradviz.commands.step.terminal_problem", lambda: None)
    shown = []
    monkeypatch.setattr(StepperApp, "run", lambda self: shown.append(self))
    assert main(["step", *argv]) == 0
    return shown[0]


def test_step_builds_the_app_for_an_expression(monkeypatch):
    app = run_step(monkeypatch, "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1",
                   "--start", "4", "--wrt", "x2")
    assert app.start == 4 and app.spec_path is None
    assert [p.key for p in app.timeline.phase_passes("tangent")] == ["x2", "x1"]


def test_step_reads_expression_files_with_their_defaults(monkeypatch):
    app = run_step(monkeypatch, "@samples/lecture.expr")
    assert app.trace.graph.find("v4") is not None


def test_step_knows_a_model_spec(monkeypatch):
    pytest.importorskip("torch")
    app = run_step(monkeypatch, "samples/two_layer_mlp.py")
    assert app.spec_path == "samples/two_layer_mlp.py"


def test_bad_input_is_one_line_and_exit_2(capsys):
    assert main(["step", "exp(x1", "--at", "x1=1"]) == 2
    assert capsys.readouterr().err.startswith("gradviz: error:")
    assert main(["step", "x1*2", "--at", "x1=1", "--start", "-1"]) == 2


def test_step_takes_the_source_options_and_its_own():
    parser = build_parser()
    actions = {a.dest for a in parser._subparsers._group_actions[0].choices["step"]._actions}
    assert {"source", "at", "shape", "wrt", "start", "detail"} <= actions
