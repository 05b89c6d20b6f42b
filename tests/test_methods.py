"""`gradviz methods`: finite differences, SymPy and AD on the lecture's f, as theory predicts."""

from __future__ import annotations

import io
import math
import os
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from gradviz.core.passes import forward_values
from gradviz.methods.chain import chain_graph
from gradviz.methods.compare import compare
from gradviz.methods.svg import error_curve_svg
from gradviz.methods.symbolic import SymbolicStop, differentiate
from gradviz.sources.expr import parse_expression, trace_expression
from gradviz.views.methods import methods_report

ROOT = Path(__file__).resolve().parent.parent
SNAPSHOTS = Path(__file__).parent / "snapshots"
LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"
POINT = {"x1": 0.5, "x2": 1.0}


@pytest.fixture(scope="module")
def lecture():
    trace = trace_expression(LECTURE, POINT, {}, 0, "float64", ("reverse",))
    return compare(trace, LECTURE, depth=4, budget=math.inf)


def test_best_steps_are_where_floating_point_theory_puts_them(lecture) -> None:
    for name in POINT:
        forward, central = lecture.sweeps[name]
        assert forward.best_step in (1e-9, 1e-8, 1e-7), (name, forward.best_step)
        assert 1e-9 < forward.best_error < 1e-7  # about √ε
        assert central.best_step in (1e-6, 1e-5, 1e-4), (name, central.best_step)
        assert central.best_error < 1e-9  # about ε^⅔, around 1e-10 … 1e-11
        # truncation region: error ∝ h forward (10× per decade), ∝ h² central (100×)
        assert forward.errors[1] / forward.errors[2] == pytest.approx(10, rel=0.1)
        assert central.errors[1] / central.errors[2] == pytest.approx(100, rel=0.1)
        # rounding region: below the best h the error grows again, to ~1e-2 at h = 1e-15
        assert forward.errors[-1] > 1e3 * forward.best_error and central.errors[-1] > 1e3 * central.best_error
        assert [forward.region(i) for i in (0, forward.best, len(forward.steps) - 1)] == ["truncation", "best", "rounding"]


def test_sympy_derivative_evaluates_to_ads_value_and_torchs(lecture) -> None:
    torch = pytest.importorskip("torch")
    x1 = torch.tensor(0.5, dtype=torch.float64, requires_grad=True)
    x2 = torch.tensor(1.0, dtype=torch.float64, requires_grad=True)
    ((torch.exp(x1 / x2) + x1 / x2) * (x1 / x2 - torch.log(x2))).backward()
    assert lecture.symbolic.values["x1"] == pytest.approx(lecture.ad["x1"], rel=1e-15)
    assert lecture.symbolic.values["x2"] == pytest.approx(lecture.ad["x2"], rel=1e-15)
    assert lecture.ad["x1"] == pytest.approx(float(x1.grad), rel=1e-15)
    assert lecture.ad["x2"] == pytest.approx(float(x2.grad), rel=1e-15)
    assert round(lecture.ad["x1"], 4) == 3.4731 and round(lecture.ad["x2"], 4) == -3.8853


@pytest.mark.parametrize("text", ["sigmoid(x1*x2) * tanh(x2) + softplus(x1) - sqrt(x2) ** 3",
                                  "bce(sigmoid(x1 - x2), 0.25) + mse(x1, x2) + sin(x1) * cos(x2) / exp(-x1)"])
def test_closed_form_equals_ad_at_other_points(text: str) -> None:
    rng = np.random.default_rng(0)
    graph = parse_expression(text)
    for _ in range(3):
        point = {"x1": float(rng.uniform(0.2, 2)), "x2": float(rng.uniform(0.2, 2))}
        symbolic = differentiate(graph, "f", point)
        trace = trace_expression(text, point, {}, 0, "float64", ("reverse",))
        for name in point:
            assert symbolic.values[name] == pytest.approx(float(trace.gradient("f", name)), rel=1e-12)


def test_swell_closed_form_outgrows_ads_linear_graph(lecture) -> None:
    rows = lecture.swell
    assert [r.depth for r in rows] == [1, 2, 3, 4]
    assert [r.ad_nodes for r in rows] == [2 + 6 * k for k in (1, 2, 3, 4)]  # two inputs, six ops per level
    sizes = [r.symbolic_ops for r in rows]
    assert all(b > 3 * a for a, b in zip(sizes, sizes[1:]))  # at least threefold per level


def test_chain_graph_computes_f_of_f() -> None:
    graph = parse_expression(LECTURE)
    chained = chain_graph(graph, "f", "x1", 3)
    leaves = {k: np.asarray(v) for k, v in POINT.items()}

    def f(a: float, b: float) -> float:
        return (math.exp(a / b) + a / b) * (a / b - math.log(b))

    value = forward_values(chained, leaves)[chained.outputs["f"]]
    assert float(value) == pytest.approx(f(f(f(0.5, 1.0), 1.0), 1.0), rel=1e-14)


def test_a_branch_is_where_symbolic_stops() -> None:
    with pytest.raises(SymbolicStop, match=r"stops at v\d+ = relu\(v\d+\): the branch 'x > 0' has no truth value"):
        differentiate(parse_expression("relu(x1 * x2 - 1) + x1"), "f", POINT)
    text = "relu(x1 * x2 - 1) + x1"
    trace = trace_expression(text, POINT, {}, 0, "float64", ("reverse",))
    report = render(compare(trace, text, depth=4))
    assert "symbolic (SymPy)" in report and "stops at" in report
    assert "finite differences and AD only need f's value at the point" in report


def test_a_swollen_closed_form_is_refused_before_sympy_starts() -> None:
    lines = ["u1 = x1*x2 + sin(x1)"] + [f"u{k} = u{k - 1} * sin(u{k - 1}) + x2 * u{k - 1}" for k in range(2, 26)]
    text = "\n".join(lines)
    with pytest.raises(SymbolicStop, match=r"has 1,412,147,682,403 operations \(101 graph nodes\): expression swell"):
        differentiate(parse_expression(text), "u25", POINT)
    with pytest.raises(SymbolicStop, match="a tensor"):
        differentiate(parse_expression("sum(x1 * [1, 2])"), "f", POINT)


def test_deeper_chains_are_skipped_with_a_word() -> None:
    trace = trace_expression(LECTURE, POINT, {}, 0, "float64", ("reverse",))
    comparison = compare(trace, LECTURE, depth=12, budget=math.inf)
    assert len(comparison.swell) == 6  # depth 7 writes out 8,744 operations: past MAX_TREE
    assert "deeper chains skipped" in render(comparison)


def render(comparison, width: int = 120) -> str:
    out = io.StringIO()
    Console(file=out, width=width, color_system=None).print(methods_report(comparison, width))
    return out.getvalue()


@pytest.mark.parametrize("width", [80, 120])
def test_methods_view_snapshot(lecture, width: int) -> None:
    text = render(lecture, width)
    assert max(len(line) for line in text.splitlines()) <= width
    path = SNAPSHOTS / f"methods_lecture_{width}.txt"
    if os.environ.get("GRADVIZ_UPDATE_SNAPSHOTS"):
        path.write_text(text, encoding="utf-8")
    assert text == path.read_text(encoding="utf-8"), f"{path.name} changed (GRADVIZ_UPDATE_SNAPSHOTS=1 to accept)"


def test_error_curve_svg(lecture) -> None:
    svg = error_curve_svg(*lecture.sweeps["x1"], "∂f/∂x1")
    root = ET.fromstring(svg)
    ns = "{http://www.w3.org/2000/svg}"
    assert len(root.findall(f"{ns}polyline")) == 2 and len(root.findall(f"{ns}circle")) == 30
    text = " ".join(t.text or "" for t in root.iter(f"{ns}text"))
    assert "best h = 1e-8" in text and "truncation ∝ h²" in text and "rounding ∝ ε/h" in text


@pytest.mark.parametrize("text, point", [(LECTURE, POINT), ("exp(x1/x2) * x2", POINT), ("x1**3 + x2", POINT)])
def test_best_h_labels_stay_inside_the_plot(text: str, point: dict) -> None:
    """A best h at the lowest decade had its label under the axis, over the tick labels."""
    from gradviz.methods.svg import BOTTOM, HEIGHT, LABEL_CHAR_WIDTH, LEFT, RIGHT, TOP, WIDTH

    report = compare(trace_expression(text, point, {}, 0, "float64", ("reverse",)), text, depth=4, budget=math.inf)
    for name, sweeps in report.sweeps.items():
        root = ET.fromstring(error_curve_svg(*sweeps, f"∂f/∂{name}"))
        labels = [t for t in root.iter("{http://www.w3.org/2000/svg}text") if (t.text or "").startswith("best h")]
        assert len(labels) == 2
        for label in labels:
            x, y = float(label.get("x")), float(label.get("y"))
            width = LABEL_CHAR_WIDTH * len(label.text)
            left = x - width if label.get("text-anchor") == "end" else x
            assert TOP + 10 <= y <= HEIGHT - BOTTOM - 4, (name, label.text, y)
            assert LEFT <= left and left + width <= WIDTH - RIGHT, (name, label.text, x)


def run_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "COLUMNS": "100"}
    return subprocess.run([sys.executable, "-m", "gradviz", "methods", *args], capture_output=True, text=True,
                          env=env, cwd=ROOT, timeout=120)


def test_cli_prints_the_table_and_writes_the_svg(tmp_path: Path) -> None:
    svg = tmp_path / "curve.svg"
    done = run_cli("@samples/lecture.expr", "--depth", "2", "--svg", str(svg))
    assert done.returncode == 0, done.stderr
    assert "forward differences" in done.stdout and "symbolic (SymPy)" in done.stdout and "3.47308190605" in done.stdout
    assert svg.read_text().startswith("<svg")


@pytest.mark.parametrize("args, message", [
    (("x1 + W", "--at", "W=[1,2]", "--at", "x1=1"), "W has shape 2"),
    (("@samples/lecture.expr", "--wrt", "x3"), "--wrt x3: no such input"),
    (("@samples/lecture.expr", "--svg", "a.pdf"), "written as .svg or .png"),
    (("@samples/lecture.expr", "--depth", "40"), "--depth must lie in 0..12"),
    (("samples/two_layer_mlp.py",), "methods takes an expression"),
])
def test_cli_errors_are_one_line_exit_2(args, message: str) -> None:
    done = run_cli(*args)
    assert done.returncode == 2 and message in done.stderr and len(done.stderr.strip().splitlines()) == 1


def run_main(*args: str) -> tuple[int, str, str]:
    """gradviz methods in-process: (exit code, stdout, stderr)."""
    import contextlib

    from gradviz.cli import main

    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(["methods", *args])
    return code, out.getvalue(), err.getvalue()


@pytest.mark.parametrize("text, at, where", [
    ("sqrt(x)", "x=0", "adjoint x̄"), ("x/y", "x=1,y=0", "f = x/y"), ("log(x)", "x=-1", "f = log(x)"),
    ("exp(x)", "x=800", "f = exp(x)"), ("x*y", "x=1e308,y=10", "f = x·y"), ("x", "x=nan", "value to become NaN/Inf is at x"),
])
def test_a_non_finite_f_or_gradient_is_a_finding_exit_1(text: str, at: str, where: str) -> None:
    code, out, err = run_main(text, "--at", at, "--depth", "0")
    assert code == 1 and not err, err
    assert "non-finite: the first" in out and where in out


def test_overflowing_steps_are_left_off_the_error_curve() -> None:
    # f and f' are finite at 709.5, but f(x + h) overflows for the larger steps h.
    code, out, err = run_main("exp(x)", "--at", "x=709.7", "--depth", "0")
    assert code == 0 and not err, err
    assert "relative error vs AD" in out and "1.65498402768e+308" in out


def test_symbolic_stops_where_the_derivative_is_not_real() -> None:
    with pytest.raises(SymbolicStop, match=r"∂f/∂x is not finite at this point"):
        differentiate(parse_expression("sqrt(x)"), "f", {"x": 0.0})
    with pytest.raises(SymbolicStop, match=r"∂f/∂x is not finite at this point"):
        differentiate(parse_expression("x/y"), "f", {"x": 1.0, "y": 0.0})


def test_a_long_closed_form_is_cut_to_a_few_lines_with_its_size() -> None:
    text = "; ".join(["u1 = sin(x)*exp(x)/x", "u2 = sin(u1)*exp(u1)/u1", "u3 = sin(u2)*exp(u2)/u2",
                      "f = sin(u3)*exp(u3)/u3"])
    trace = trace_expression(text, {"x": 0.5}, {}, 0, "float64", ("reverse",))
    comparison = compare(trace, text, depth=0)
    size = comparison.symbolic.sizes["x"]
    assert size > 1000 and len(str(comparison.symbolic.derivatives["x"])) > 2000
    report = render(comparison, 100)
    section = report[report.index("exact closed forms"):report.index("automatic differentiation")]
    assert len(section.strip().splitlines()) <= 1 + 2 * 4  # the title, then each form in at most 4 lines
    assert f" …   ({size:,} ops)" in section


def test_the_error_column_says_which_partial_it_shows(lecture) -> None:
    """One column for two partials shows the larger error: the caption names whose, per row."""
    text = " ".join(render(lecture, 120).split())
    named = []
    for index, method in enumerate(("forward", "central")):
        errors = {name: lecture.sweeps[name][index].best_error for name in lecture.point}
        worse = max(errors, key=errors.get)
        assert f"{max(errors.values()):.1e}" in text
        named.append(f"{method} ∂f/∂{worse}")
    assert ("error vs AD: the larger relative error of the 2 partials, here " + ", ".join(named)) in text


def test_wrapped_closed_forms_and_the_ad_line_keep_their_indent(lecture) -> None:
    """At 80 columns ∂f/∂x2's closed form and the AD line wrap; their second lines ran back to
    column 0 (`log(x2))*(-x1*exp…`, `this point: ∂f/∂x1 = …`) as if they were headings."""
    console = Console(file=io.StringIO(), width=80, color_system=None)
    console.print(methods_report(lecture, 80))
    lines = console.file.getvalue().splitlines()
    start = lines.index("symbolic differentiation (SymPy): exact closed forms")
    forms = lines[start + 1:lines.index("", start)]
    assert len(forms) > 3 and all(line.startswith("  ") for line in forms), forms  # 3 forms, some wrapped
    ad = lines[lines.index("automatic differentiation") + 1:]
    assert len([line for line in ad if line.strip()]) == 2 and all(line.startswith("  ") for line in ad if line.strip())


def test_piped_output_keeps_no_trailing_spaces() -> None:
    done = run_cli("@samples/lecture.expr", "--depth", "2")
    assert done.returncode == 0, done.stderr
    assert [line for line in done.stdout.splitlines() if line != line.rstrip()] == []


def test_the_side_by_side_table_keeps_every_number_whole_at_40_columns(lecture) -> None:
    """Piped at COLUMNS=40 rich narrowed the table until each derivative was `…` and the
    error `1.7e-08  …`: at a narrow width it is printed in parts of whole columns instead."""
    text = render(lecture, 40)
    table = text[:text.index("error vs AD: the larger")]
    assert "…" not in table, table
    for method, values in (("central differences", [s[1].estimates[s[1].best] for s in lecture.sweeps.values()]),
                           ("automatic (AD)", list(lecture.ad.values()))):
        assert method in table
        for value in values:
            assert f"{value:.12g}" in table, (method, value, table)
    assert text.count("error vs AD: the larger") == 1  # the caption under the last part only
    assert max(len(line) for line in text.splitlines()) <= 40
