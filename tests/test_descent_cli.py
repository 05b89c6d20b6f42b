"""`gradviz descent`: the table when piped, the verdicts, the SVG, bad input, and the map's text."""

from __future__ import annotations

import subprocess
import sys
from xml.etree import ElementTree

import numpy as np
import pytest

from gradviz.cli import build_parser, main
from gradviz.commands.descent import build_run
from gradviz.descent.draw import run_map
from snapshot_text import assert_text_snapshot, plain

QUAD = ["descent", "x**2 + 10*y**2", "--from", "x=2,y=1"]


def descent(capsys, *args):
    code = main(list(args))
    out, err = capsys.readouterr()
    return code, out, err


def test_piped_output_is_the_verdicts_and_every_step_as_a_table(capsys):
    code, out, _ = descent(capsys, *QUAD, "--lr", "0.01,0.09,0.11,1.1")
    assert code == 0
    lines = out.splitlines()
    assert lines[0] == "f(x, y) = x**2 + 10*y**2"
    assert lines[1] == "update (gd): θ ← θ − η∇f(θ)"  # the slide's rule, once per optimizer
    assert lines[2].startswith("gd η=0.01: still moving after 200 steps")
    assert lines[3].startswith("gd η=0.09: converged at step")
    assert lines[4].startswith("gd η=0.11: diverged at step 30")
    assert lines[5].startswith("gd η=1.1: diverged at step 2")
    header = out.split("# gd η=0.09")[1].splitlines()[1].split()
    assert header == ["k", "x", "y", "f", "∂f/∂x", "∂f/∂y", "−η∇f", "x", "−η∇f", "y"]
    row0 = [float(v) for v in out.split("# gd η=0.09")[1].splitlines()[2].split()]
    assert row0 == [0, 2, 1, 14, 4, 20, -0.36, -1.8]  # θ0, f, ∇f = (2x, 20y), −η∇f


def test_sgd_is_plain_descent_in_the_table_too(capsys):
    """sgd is gd's other name in the registry: its steps are −η∇f, and its rule is the slide's."""
    code, out, _ = descent(capsys, *QUAD, "--lr", "0.09", "--optimizer", "sgd")
    assert code == 0
    assert out.splitlines()[1] == "update (sgd): θ ← θ − η∇f(θ)"
    header = out.split("# sgd η=0.09")[1].splitlines()[1].split()
    assert header == ["k", "x", "y", "f", "∂f/∂x", "∂f/∂y", "−η∇f", "x", "−η∇f", "y"]


def test_two_starts_on_a_double_well_reach_two_minima(capsys):
    code, out, _ = descent(capsys, "descent", "(x**2 - 1)**2 + y**2", "--from", "x=-0.3,y=1", "--from", "x=0.3,y=1",
                           "--lr", "0.05")
    assert code == 0
    assert "gd η=0.05 from (-0.3, 1): converged at step 110 at (-1, " in out
    assert "gd η=0.05 from (0.3, 1): converged at step 110 at (1, " in out


def test_momentum_and_adam_side_by_side_in_the_table(capsys):
    code, out, _ = descent(capsys, *QUAD, "--lr", "0.01", "--optimizer", "gd,momentum,adam", "--steps", "5")
    assert code == 0
    assert "# momentum η=0.01" in out and "# adam η=0.01" in out
    assert "Δθ x" in out.split("# momentum")[1].splitlines()[1]


def test_svg_export(tmp_path, capsys):
    code, _, err = descent(capsys, *QUAD, "--lr", "0.01,0.09", "-o", str(tmp_path / "d.svg"))
    assert code == 0 and "wrote" in err
    root = ElementTree.fromstring((tmp_path / "d.svg").read_text())
    texts = " ".join(e.text or "" for e in root.iter() if e.tag.endswith("text"))
    assert "gd η=0.09  converged at step" in texts and "f(x, y) = x**2 + 10*y**2" in texts


@pytest.mark.parametrize("args, message", [
    (["descent", "x**2"], "exactly two inputs; this one has 1 (x)"),
    ([*QUAD[:2], "--from", "x=1"], "--from x=1: give both inputs as x=…,y=…"),
    ([*QUAD, "--lr", "0"], "a learning rate must be a positive number"),
    ([*QUAD, "--lr", "fast"], "'fast' is not a number"),
    ([*QUAD, "--optimizer", "lbfgs"], "unknown optimizer 'lbfgs'; use sgd, momentum, adam"),
    ([*QUAD, "--window", "x=2:1,y=0:1"], "expected x=LO:HI,y=LO:HI with LO < HI"),
    ([*QUAD, "--lr", "1,2,3,4,5", "--optimizer", "gd,adam,momentum"], "15 paths asked for"),
    ([*QUAD, "--steps", "0"], "--steps must lie in 1..100000"),
    (["descent", "x +* y"], "syntax error"),
    (["descent", "samples/two_layer_mlp.py"], "descent takes an expression of two inputs"),
])
def test_bad_input_is_one_clear_line_and_exit_2(args, message, capsys):
    code, _, err = descent(capsys, *args)
    assert code == 2
    assert message in err and "Traceback" not in err


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_map_snapshot(size):
    args = build_parser().parse_args([*QUAD, "--lr", "0.01,0.09,0.11"])
    text = plain(run_map(build_run(args), *size, cells="shade"), size[0])
    assert len(text.splitlines()) <= size[1]
    assert "▲ gd η=0.11  diverged at step 30" in text
    assert_text_snapshot(text, f"descent_map_{size[0]}x{size[1]}.txt")


def test_the_descent_table_imports_neither_torch_nor_textual():
    code = ("import sys, io, contextlib\nfrom gradviz.cli import main\n"
            "with contextlib.redirect_stdout(io.StringIO()):\n"
            "    main(['descent', 'x**2 + y**2', '--optimizer', 'gd,momentum,adam'])\n"
            "print(sorted(m for m in ('torch', 'textual') if m in sys.modules))\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "[]"


def test_window_option_sets_the_map(capsys):
    args = build_parser().parse_args([*QUAD, "--window", "x=-3:3,y=-2:2"])
    run = build_run(args)
    assert (run.window.x0, run.window.x1, run.window.y0, run.window.y1) == (-3, 3, -2, 2)
    np.testing.assert_allclose(run.paths[0].start, [2, 1])


def test_help_lists_the_new_commands(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert all(name in out for name in ("descent", "batches", "landscape"))


def test_where_f_is_not_finite_the_map_says_so(capsys):
    args = build_parser().parse_args(["descent", "log(x) + y**2", "--from", "x=0.5,y=1", "--lr", "0.1,1"])
    run = build_run(args)
    assert [p.verdict for p in run.paths] == ["diverged at step 2", "diverged at step 1"]
    text = plain(run_map(run, 80, 20, cells="shade"), 80)
    assert "?: not finite" in text and "?" in text.splitlines()[1]
    code, out, _ = descent(capsys, *[a for a in ("descent", "log(x) + y**2", "--from", "x=0.5,y=1", "--lr", "1")])
    assert code == 0 and "gd η=1: diverged at step 1 at (-1.5, -1), f = nan" in out


SIDE = [*QUAD, "--lr", "0.01,0.09", "--optimizer", "gd,momentum,adam"]


@pytest.mark.parametrize("size", [(80, 24), (120, 40)])
def test_side_by_side_snapshot(size):
    from gradviz.descent.draw import side_by_side_map

    run = build_run(build_parser().parse_args(SIDE))
    text = plain(side_by_side_map(run, *size, cells="shade"), size[0])
    lines = text.splitlines()
    assert len(lines) <= size[1] and max(len(line) for line in lines) <= size[0]
    assert all(name in lines[0] for name in ("gd:", "momentum:", "adam:"))
    assert "■ gd η=0.09  converged at step 64" in text or size[0] == 80  # cropped to the panel at 80
    assert_text_snapshot(text, f"descent_side_{size[0]}x{size[1]}.txt")


def test_side_by_side_svg_has_one_panel_per_optimizer(tmp_path, capsys):
    code, _, _ = descent(capsys, *SIDE, "--layout", "side", "-o", str(tmp_path / "side.svg"))
    assert code == 0
    root = ElementTree.fromstring((tmp_path / "side.svg").read_text())
    groups = [e for e in root if e.tag.endswith("g") and e.get("transform", "").startswith("translate(")]
    assert len(groups) == 3
    clips = [e.get("id") for e in root.iter() if e.tag.endswith("clipPath")]
    assert len(set(clips)) == 3  # unique ids: each panel clips to its own plot
    texts = [" ".join(t.text or "" for t in g.iter() if t.tag.endswith("text")) for g in groups]
    assert "(gd)" in texts[0] and "(momentum)" in texts[1] and "(adam)" in texts[2]
    assert "momentum η=0.09" in texts[1] and "momentum" not in texts[0]
