"""--json on large arrays: an expression's tensors over LIST_LIMIT elements are summaries
(shape, dtype, statistics) and, with --arrays FILE.npz, written whole to that side file,
which the JSON names and which reads back bit for bit. Small tensors stay lists."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradviz.cli import main
from gradviz.sources.expr import trace_expression
from gradviz.views.json_report import LIST_LIMIT


def _every_array(trace):
    """(where, array) for each value, tangent, adjoint and edge term of the trace."""
    for node in trace.graph.nodes:
        yield f"{node.label} value", trace.values[node.id], ("value",)
        for wrt, tangents in trace.tangents.items():
            yield f"{node.label} tangent {wrt}", tangents[node.id], ("tangents", wrt)
        for out, adjoints in trace.adjoints.items():
            yield f"{node.label} adjoint {out}", adjoints[node.id], ("adjoints", out)


def _entry(node: dict, path: tuple) -> object:
    for key in path:
        node = node[key]
    return node


@pytest.mark.parametrize("shapes", [("a=2000x1", "b=1x1000"), ("a=20x1", "b=1x10")])
def test_big_tensors_are_summaries_and_the_side_file_reads_back_bit_for_bit(tmp_path, capsys, shapes):
    side = tmp_path / "arrays.npz"
    argv = ["trace", "sum(a + b)", "--shape", shapes[0], "--shape", shapes[1], "--seed", "3", "--json"]
    assert main([*argv, "--arrays", str(side)]) == 0
    text = capsys.readouterr().out
    assert len(text) < 50_000  # 2M-element tensors as lists were 144 MB
    data = json.loads(text)
    assert data["arrays"] == str(side)
    stored = np.load(side)
    a, b = (tuple(int(n) for n in s.split("=")[1].split("x")) for s in shapes)
    trace = trace_expression("sum(a + b)", shapes={"a": a, "b": b}, seed=3)
    nodes = {n["label"]: n for n in data["nodes"]}
    checked = 0
    for where, array, path in _every_array(trace):
        entry = _entry(nodes[where.split()[0]], path)
        if np.size(array) <= LIST_LIMIT:
            assert not isinstance(entry, dict) or "array" not in entry, where
            continue
        assert entry["shape"] == list(array.shape) and entry["dtype"] == str(array.dtype), where
        assert entry["mean"] == pytest.approx(float(np.mean(array)), rel=1e-9, abs=1e-12), where
        assert entry["max"] == float(np.max(array)) and entry["min"] == float(np.min(array)), where
        assert entry["norm"] == pytest.approx(float(np.linalg.norm(array)), rel=1e-12), where
        back = stored[entry["array"]]
        assert back.dtype == array.dtype and back.shape == array.shape, where
        assert back.tobytes() == np.ascontiguousarray(array).tobytes(), where  # bit for bit
        checked += 1
    assert checked >= 4  # at least v1: its value, two tangents and adjoint
    v1 = nodes["v1"]
    for term in v1["terms"]["f"]:
        assert stored[term["value"]["array"]].tobytes() == np.ascontiguousarray(
            trace.contributions["f"][(term["child"], term["position"])]).tobytes()


def test_small_tensors_stay_lists(capsys):
    assert main(["trace", "sum(W * 2)", "--at", "W=[[1,2],[3,4]]", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    w = next(n for n in data["nodes"] if n["label"] == "W")
    assert w["value"] == [[1.0, 2.0], [3.0, 4.0]]
    assert "arrays" not in data


def test_full_still_lists_every_element(capsys):
    assert main(["trace", "sum(a)", "--shape", "a=11x11", "--json", "--full"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert np.asarray(data["nodes"][0]["value"]).shape == (11, 11)


def test_arrays_needs_json_and_an_npz_name(tmp_path, capsys):
    assert main(["trace", "sum(a)", "--shape", "a=3", "--arrays", str(tmp_path / "x.npz")]) == 2
    assert "give --json" in capsys.readouterr().err
    assert main(["trace", "sum(a)", "--shape", "a=3", "--json", "--arrays", str(tmp_path / "x.txt")]) == 2
    assert "must end in .npz" in capsys.readouterr().err
    assert main(["trace", "sum(a)", "--shape", "a=3", "--json", "--arrays", str(tmp_path / "no" / "x.npz")]) == 2
    assert "cannot write" in capsys.readouterr().err


@pytest.mark.parametrize("make", ["lecture", "nan", "model"])
def test_the_fast_writer_writes_what_json_writes(make):
    import io

    from gradviz.views.json_report import dump_json, trace_to_json

    if make == "lecture":
        trace = trace_expression("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", at={"x1": 0.5, "x2": 1.0})
    elif make == "nan":
        trace = trace_expression("log(W)", at={"W": [[1, 0], [-1, 2]]})
    else:
        pytest.importorskip("torch")
        from pathlib import Path

        from gradviz.sources.model import trace_spec

        trace = trace_spec(Path(__file__).parent.parent / "samples" / "two_layer_mlp.py", batch_size=4)
    report = trace_to_json(trace, "t")
    out = io.StringIO()
    dump_json(report, out)
    assert json.loads(out.getvalue()) == json.loads(json.dumps(report))
    assert out.getvalue().endswith("\n")
