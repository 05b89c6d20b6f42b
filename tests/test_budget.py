"""The expression path's memory budget: shapes known before evaluation, refusals named."""

from __future__ import annotations

import tracemalloc

import pytest

from gradviz.cli import main
from gradviz.core.budget import estimate, format_bytes, infer_shapes, parse_bytes
from gradviz.errors import MemoryBudgetError
from gradviz.sources.expr import parse_expression, trace_expression

SHAPE_CASES = [
    ("a + b", {"a": (3, 1), "b": (1, 4)}, (3, 4)),
    ("a @ b", {"a": (2, 3), "b": (3, 5)}, (2, 5)),
    ("a @ v", {"a": (2, 3), "v": (3,)}, (2,)),
    ("v @ a", {"a": (3, 2), "v": (3,)}, (2,)),
    ("v @ v", {"v": (3,)}, ()),
    ("a @ b", {"a": (4, 2, 3), "b": (3, 5)}, (4, 2, 5)),
    ("a.T", {"a": (2, 3, 4)}, (4, 3, 2)),
    ("sum(a, 1)", {"a": (2, 3, 4)}, (2, 4)),
    ("mean(a, -1)", {"a": (2, 3, 4)}, (2, 3)),
    ("sum(a)", {"a": (2, 3)}, ()),
    ("mse(a, b)", {"a": (2, 3), "b": (3,)}, ()),
    ("max(a, [1, 2, 3])", {"a": (2, 1)}, (2, 3)),
    ("dropout(a, 0.5) * b", {"a": (2, 1), "b": (5,)}, (2, 5)),
]


@pytest.mark.parametrize("text, shapes, expected", SHAPE_CASES, ids=[c[0] for c in SHAPE_CASES])
def test_inferred_shapes_equal_the_evaluated_ones(text, shapes, expected):
    graph = parse_expression(text)
    inferred = infer_shapes(graph, shapes)
    trace = trace_expression(text, {}, shapes)
    assert inferred[graph.outputs["f"]] == expected
    assert all(s == v.shape for s, v in zip(inferred, trace.values))


def test_a_mismatch_is_left_to_evaluation_which_names_both_shapes(capsys):
    graph = parse_expression("exp(a @ b)")
    shapes = infer_shapes(graph, {"a": (2, 3), "b": (2, 3)})
    assert shapes[-1] is None and shapes[-2] is None
    assert main(["trace", "exp(a @ b)", "--shape", "a=2x3,b=2x3"]) == 2
    assert "shapes do not fit" in capsys.readouterr().err


MEASURED = [
    ("sum(exp(a + b))", {"a": (400, 1), "b": (1, 400)}),
    ("max(a, b) * a", {"a": (400, 1), "b": (1, 400)}),
    ("a.T @ a", {"a": (1500, 200)}),
    ("norm(relu(a @ b))", {"a": (200, 150), "b": (150, 300)}),
    ("sum(a + b + c)", {"a": (50, 1, 1), "b": (1, 50, 1), "c": (1, 1, 50)}),
    ("bce(sigmoid(a), b)", {"a": (500, 1), "b": (1, 500)}),
    ("mean(sigmoid(W @ x + b), 0)", {"W": (600, 600), "x": (600, 1), "b": (600, 1)}),
]


@pytest.mark.parametrize("text, shapes", MEASURED, ids=[m[0] for m in MEASURED])
def test_the_estimate_bounds_what_numpy_really_allocates(text, shapes):
    """numpy reports its allocations to tracemalloc: the estimate is above the peak, and
    not wildly (within 3×), so the limit means what it says."""
    predicted = estimate(parse_expression(text), shapes, 8).total_bytes
    tracemalloc.start()
    try:
        trace = trace_expression(text, {}, shapes, max_memory=10**12)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert trace.values
    assert peak <= predicted <= 3 * peak, (format_bytes(peak), format_bytes(predicted))


BOMBS = [
    (["a + b", "--shape", "a=100000x1", "--shape", "b=1x100000"], "f = a + b, shape 100000×100000"),
    (["sum(exp(a + b))", "--shape", "a=8000x1,b=1x8000"], "v1 = a + b, shape 8000×8000"),
    (["sum(exp(a + b))", "--shape", "a=20000x1,b=1x20000"], "v1 = a + b, shape 20000×20000"),
    (["sum(a + b + c)", "--shape", "a=1000x1x1,b=1x1000x1,c=1x1x1000"], "shape 1000×1000×1000"),
    (["a * b", "--shape", "a=20000x1,b=1x20000"], "f = a·b"),
    (["max(a, b)", "--shape", "a=20000x1,b=1x20000"], "f = max(a, b)"),
    (["a @ a.T", "--shape", "a=30000x2"], "shape 30000×30000"),
    (["mse(a, b)", "--shape", "a=30000x1,b=1x30000"], "f = mse(a, b)"),
]


@pytest.mark.parametrize("argv, where", BOMBS, ids=[b[0][0] + " " + b[0][-1] for b in BOMBS])
def test_memory_bombs_are_refused_before_evaluation_naming_the_node(capsys, argv, where):
    tracemalloc.start()
    try:
        code = main(["trace", *argv, "--max-memory", "1G"])
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1, err
    assert "over the memory limit of 1.0 GB (--max-memory)" in err and where in err
    assert peak < 100 * 2**20  # refused from shapes: only the inputs were drawn


def test_max_memory_moves_the_line_both_ways(capsys):
    argv = ["trace", "sum(a + b)", "--shape", "a=300x1,b=1x300"]
    assert main([*argv, "--max-memory", "64M"]) == 0
    assert main([*argv, "--max-memory", "1M"]) == 2
    assert "over the memory limit of 1.0 MB" in capsys.readouterr().err
    with pytest.raises(MemoryBudgetError):
        trace_expression("sum(a + b)", {}, {"a": (300, 1), "b": (1, 300)}, max_memory=2**20)


def test_bad_max_memory_values_are_usage_errors(capsys):
    for bad in ("lots", "-1G", "0", "nan"):
        with pytest.raises(SystemExit) as exit_info:
            main(["trace", "x", "--at", "x=1", "--max-memory", bad])
        assert exit_info.value.code == 2
    assert "is not a size like 2G" in capsys.readouterr().err


def test_parse_bytes_reads_the_usual_spellings():
    assert parse_bytes("2G") == 2 * 2**30
    assert parse_bytes("1.5GB") == int(1.5 * 2**30)
    assert parse_bytes("500m") == 500 * 2**20
    assert parse_bytes("64KiB") == 64 * 1024
    assert parse_bytes("4096") == 4096


def test_numpy_memory_error_anywhere_is_one_line(capsys, monkeypatch):
    import gradviz.core.passes as passes

    def boom(*args, **kwargs):
        raise MemoryError("Unable to allocate 7.28 TiB for an array with shape (1000000, 1000000)")

    monkeypatch.setattr(passes, "forward_values", boom)
    assert main(["trace", "x * 2", "--at", "x=1"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("gradviz: error: out of memory") and len(err.strip().splitlines()) == 1


def test_an_axis_out_of_range_is_refused_by_the_shape_pass(capsys):
    # found by the fuzz test: numpy sums a scalar over axis 0, and its gradient then fails
    assert main(["trace", "sum(x, 0)", "--at", "x=1"]) == 2
    assert main(["trace", "mean(W, -3)", "--shape", "W=2x3"]) == 2
    err = capsys.readouterr().err.splitlines()
    assert err == ["gradviz: error: axis 0 is out of range at f = sum(x, axis=0): x has shape scalar (0 dimensions)",
                   "gradviz: error: axis -3 is out of range at f = mean(W, axis=-3): W has shape 2×3 (2 dimensions)"]


def test_big_matrix_products_are_refused_by_their_work(capsys):
    argv = ["trace", "a @ b", "--shape", "a=3000x3000,b=3000x3000"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.strip() == ("gradviz: error: the trace would take about 1.4e+11 multiply-adds, over the limit of "
                           "2.0e+10 (--max-work; a few seconds' work); the biggest product is f = a @ b, "
                           "3000×3000 @ 3000×3000")
    # forward 1 + tangent passes 2 + reverse 2 products per output: 5·n³ for n = 40
    found = estimate(parse_expression("a @ b"), {"a": (40, 40), "b": (40, 40)}, 8)
    assert found.work == 5 * 40**3
    assert main(["trace", "sum(a @ b)", "--shape", "a=40x40,b=40x40", "--max-work", "1e5"]) == 2
    assert main(["trace", "sum(a @ b)", "--shape", "a=40x40,b=40x40", "--max-work", "1e6"]) == 0
