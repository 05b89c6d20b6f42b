"""One budget for every command that computes: the bombs are refused before the work, in
well under a second and 100 MB, naming the biggest factor and the option to lower; what
can be done in bounded memory (a map over many points or a big f) is done so, with the
same numbers as before.
"""

from __future__ import annotations

import contextlib
import io
import os
import random
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from gradviz.cli import main

ROOT = Path(__file__).resolve().parent.parent
MB = 2**20


def refused(argv: list[str]) -> tuple[int, str, float, int]:
    """main(argv) in-process: exit code, stderr, CPU seconds (the machine is shared: wall
    time measures the neighbours) and peak traced memory (bytes)."""
    err = io.StringIO()
    tracemalloc.start()
    started = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(err):
        code = main(argv)
    seconds = time.process_time() - started
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return code, err.getvalue(), seconds, peak


def big_sum(terms: int) -> str:
    """f(x, y) as one statement per term and a running sum: about 6 nodes per term."""
    rng = random.Random(0)
    lines = [f"u{i} = {rng.random():.3f}*sin(x*{rng.random():.3f} + y*{i})" for i in range(terms)]
    lines += ["s0 = u0"] + [f"s{i} = s{i - 1} + u{i}" for i in range(1, terms)]
    return "\n".join(lines + [f"f = s{terms - 1}"])


BOMBS = {  # argv, the factor the line must name, the option it must name
    "descent: 100k steps × 9 paths × a big f": (
        ["descent", big_sum(60), "--steps", "100000", "--lr", "0.1,0.01,0.001",
         "--from", "x=1,y=1", "--from", "x=2,y=2", "--from", "x=0,y=1"], "100,000 steps", "--steps"),
    "descent: a big f for many steps": (["descent", big_sum(250), "--steps", "1500"], "nodes of f", "EXPR"),
    "batches: 6e8 updates": (["batches", "--n", "100000", "--batch-sizes", "1,1,1,1,1,1", "--epochs", "1000"],
                             "updates per epoch", "--n"),
    "batches: many epochs of single points": (["batches", "--n", "100000", "--batch-sizes", "1", "--epochs", "30"],
                                              "updates per epoch", "--batch-sizes"),
}


@pytest.mark.parametrize("case", sorted(BOMBS))
def test_a_bomb_is_refused_before_the_work(case):
    argv, factor, option = BOMBS[case]
    code, err, seconds, peak = refused(argv)
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and lines[0].startswith("gradviz: error:"), err
    assert "over the limit" in lines[0] and factor in lines[0] and option in lines[0], lines[0]
    assert seconds < 1.0 and peak < 100 * MB, (seconds, peak)


def test_the_lecture_as_a_gif_at_scale_10_is_refused_after_one_frame(tmp_path):
    pytest.importorskip("PIL")
    code, err, seconds, peak = refused(["export", f"@{ROOT / 'samples' / 'lecture.expr'}", "--frames",
                                        str(tmp_path / "frames"), "--gif", str(tmp_path / "a.gif"), "--scale", "10"])
    assert code == 2 and "pixels a frame" in err and "lower --scale" in err, err
    assert not (tmp_path / "a.gif").exists()
    assert peak < 100 * MB, peak


def test_the_batches_map_over_many_points_is_the_same_loss_in_bounded_memory():
    from gradviz.descent.batches import loss, make_points

    points = make_points(50_000, 0)
    w, b = np.meshgrid(np.linspace(-3, 3, 90), np.linspace(-2, 4, 90))
    tracemalloc.start()
    grid = loss(points, w, b)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 100 * MB, peak  # all at once: 90·90·50,000 floats, 3.2 GB per temporary
    for r, c in [(0, 0), (45, 17), (89, 89), (3, 70)]:
        residual = w[r, c] * points.x + b[r, c] - points.y
        assert grid[r, c] == pytest.approx(np.mean(residual * residual), rel=1e-12)


def test_the_map_of_a_big_f_is_computed_in_bounded_memory_with_the_same_values():
    from gradviz.descent.objective import parse_objective

    objective = parse_objective(big_sum(1500))
    xs, ys = np.linspace(-2, 2, 90), np.linspace(-1, 3, 90)
    tracemalloc.start()
    grid = objective.grid(xs, ys)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 150 * MB, peak  # every node over every cell at once: ~450 MB
    for r, c in [(0, 0), (45, 17), (89, 89)]:
        assert grid[r, c] == pytest.approx(objective.value(np.array([xs[c], ys[r]])), rel=1e-12)


def test_methods_on_deep_nests_stops_symbolic_work_at_its_budget():
    from gradviz.methods.compare import compare
    from gradviz.sources.expr import trace_expression

    text = "sigmoid(sigmoid(sigmoid(sigmoid(sigmoid(sigmoid(sigmoid(x**x)))))))"
    trace = trace_expression(text, {"x": 0.5}, {}, 0, "float64", ("tangent", "reverse"))
    started = time.monotonic()
    comparison = compare(trace, text, budget=1.0)
    took = time.monotonic() - started
    assert took < 10, took  # unbounded: past 200 s
    assert len(comparison.swell) < 6  # the chain f∘f∘… stops where SymPy runs out of time
    if comparison.symbolic is None:  # a loaded machine: out of time already on f itself
        assert "stopped after 1 s" in comparison.stop
    else:
        assert comparison.symbolic.values["x"] == pytest.approx(comparison.ad["x"], rel=1e-9)


def test_unique_labels_are_the_first_free_ones_and_linear_in_time():
    from gradviz.sources.model.program import LabelSet, unique_label

    rng = random.Random(1)
    plain, fast = set(), LabelSet()
    for _ in range(3000):  # against the plain scan: the same label every time, adds and discards mixed
        if rng.random() < 0.2 and plain:
            label = rng.choice(sorted(plain))
            plain.discard(label)
            fast.discard(label)
        else:
            wanted = rng.choice(["mul", "add", "mul_1", "fc"])
            assert unique_label(wanted, fast) == unique_label(wanted, plain)
    assert fast == plain
    labels = LabelSet()
    started = time.monotonic()
    for _ in range(100_000):
        unique_label("mul", labels)
    assert time.monotonic() - started < 2.0  # the scan from mul_1 each time: ~5e9 steps


def test_a_huge_run_file_is_not_read_whole(tmp_path):
    from gradviz.rundir.files import read_json

    big = tmp_path / "config.json"
    with open(big, "wb") as handle:  # sparse: 3 GB on paper, nothing on disk
        handle.truncate(3 * 2**30)
    tracemalloc.start()
    started = time.monotonic()
    assert read_json(big) is None
    assert time.monotonic() - started < 1.0
    assert tracemalloc.get_traced_memory()[1] < 10 * MB
    tracemalloc.stop()
