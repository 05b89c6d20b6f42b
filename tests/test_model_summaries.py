"""--keep summaries: a model trace that keeps statistics instead of tensors, and the capture's
sharing of memory (no value or adjoint held twice).

The summaries-only capture must report what the full capture reports: its statistics are
the full trace's statistics (same seed), its checks and findings the same, its JSON the
same but for the note saying what was dropped.
"""

from __future__ import annotations

import json
import math
import subprocess
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from gradviz.core.findings import element_facts, find_issues  # noqa: E402
from gradviz.core.stats import TensorStats  # noqa: E402
from gradviz.sources.model import trace_model, trace_spec  # noqa: E402
from gradviz.sources.model.summaries import DROPPED, Summary, is_summaries, summarise_trace  # noqa: E402
from gradviz.views.json_report import trace_to_json  # noqa: E402
from tests.model_specs import write_spec  # noqa: E402
from tests.model_zoo import ZOO, make  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
GPT2 = str(ROOT / "samples" / "big" / "gpt2_shaped.py")
SMALL_GPT2 = "2,32,4,8"
FIELDS = ("mean", "std", "min", "max", "norm", "zero_fraction")


def _same_stats(a: TensorStats | None, b: TensorStats | None, where: str) -> None:
    assert (a is None) == (b is None), where
    if a is None:
        return
    assert tuple(a.shape) == tuple(b.shape) and a.dtype == b.dtype, where
    assert (a.nan_count, a.inf_count) == (b.nan_count, b.inf_count), where
    for name in FIELDS:
        x, y = getattr(a, name), getattr(b, name)
        assert (math.isnan(x) and math.isnan(y)) or x == pytest.approx(y, rel=1e-6, abs=1e-12), f"{where} {name}"


def _both(name: str, level: str):
    model, loss, x, y = make(name)
    full = trace_model(model, loss, x, y, level=level, seed=0)
    model, loss, x, y = make(name)
    summaries = trace_model(model, loss, x, y, level=level, seed=0, keep="summaries")
    return full, summaries


def _compare(full, summaries) -> None:
    assert is_summaries(summaries) and not is_summaries(full)
    reference = summarise_trace(full)
    graph = full.graph
    assert [n.label for n in summaries.graph.nodes] == [n.label for n in graph.nodes]
    for node in graph.nodes:
        _same_stats(reference.values[node.id], summaries.values[node.id], f"value of {node.label}")
        _same_stats(reference.adjoints["loss"][node.id], summaries.adjoints["loss"][node.id], f"adjoint of {node.label}")
    assert set(summaries.contributions["loss"]) == set(full.contributions["loss"])
    for edge, term in summaries.contributions["loss"].items():
        _same_stats(reference.contributions["loss"][edge], term, f"term {edge}")
    sums, expected = summaries.adjoints["loss"].sums, reference.adjoints["loss"].sums
    for node_id, (total, difference) in sums.items():
        assert total == pytest.approx(expected[node_id][0], rel=1e-6)
        assert difference == pytest.approx(expected[node_id][1], rel=1e-6, abs=1e-12)
    assert {n for n, _ in sums.items()} <= set(expected)
    assert [(f.kind, f.node, f.message) for f in find_issues(summaries)] == \
        [(f.kind, f.node, f.message) for f in find_issues(full)]
    assert summaries.first_nonfinite() == full.first_nonfinite()
    assert summaries.pass_counts() == full.pass_counts()


@pytest.mark.parametrize("level", ["module", "aten"])
@pytest.mark.parametrize("name", sorted(ZOO))
def test_summaries_match_the_full_trace_on_the_zoo(name, level):
    full, summaries = _both(name, level)
    _compare(full, summaries)


@pytest.fixture(scope="module")
def gpt2_full():
    """The small GPT-2-shaped spec's full trace at each level (batch 4, seed 0), traced once
    for the tests that only read it (an aten-level trace takes seconds)."""
    with pytest.MonkeyPatch.context() as m:
        m.setenv("GRADVIZ_GPT2", SMALL_GPT2)
        return {level: trace_spec(GPT2, batch_size=4, seed=0, level=level) for level in ("module", "aten")}


def test_summaries_norms_equal_the_full_norms_on_the_gpt2_shaped_spec(monkeypatch, gpt2_full):
    monkeypatch.setenv("GRADVIZ_GPT2", SMALL_GPT2)
    for level in ("module", "aten"):
        full = gpt2_full[level]
        summaries = trace_spec(GPT2, batch_size=4, seed=0, level=level, keep="summaries")
        _compare(full, summaries)
        adjoints = full.adjoints["loss"]
        for node in full.graph.nodes:  # the norm over the finite elements (a mask's -inf is counted apart)
            value = np.asarray(full.values[node.id], dtype=np.float64)
            norm = float(np.linalg.norm(value[np.isfinite(value)]))
            assert summaries.values[node.id].norm == pytest.approx(norm, rel=1e-6)
            if adjoints[node.id] is not None:
                norm = float(np.linalg.norm(np.asarray(adjoints[node.id], dtype=np.float64)))
                assert summaries.adjoints["loss"][node.id].norm == pytest.approx(norm, rel=1e-6, abs=1e-30)


def test_summaries_json_is_the_full_json_but_for_the_note(monkeypatch, gpt2_full):
    monkeypatch.setenv("GRADVIZ_GPT2", SMALL_GPT2)
    full = trace_to_json(gpt2_full["module"], "gpt2")
    summaries = trace_to_json(trace_spec(GPT2, batch_size=4, seed=0, keep="summaries"), "gpt2")
    assert summaries["model"].pop("keep") == "summaries"
    assert summaries["model"]["notes"].pop() == DROPPED
    assert _close(json.loads(json.dumps(summaries)), json.loads(json.dumps(full)))


def _close(a, b) -> bool:
    """Nested JSON equal, floats to 1e-6 relative."""
    if isinstance(a, dict):
        assert a.keys() == b.keys()
        return all(_close(a[k], b[k]) for k in a)
    if isinstance(a, list):
        assert len(a) == len(b)
        return all(_close(x, y) for x, y in zip(a, b))
    if isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-6, abs=1e-12)
        return True
    assert a == b
    return True


def test_a_summaries_trace_holds_no_tensor():
    _, summaries = _both("tied_lm", "module")
    held = [*summaries.values, *summaries.adjoints["loss"], *summaries.contributions["loss"].values()]
    assert all(item is None or isinstance(item, Summary) for item in held)
    assert all(d.get("mask") is None for d in summaries.aux.values())


@pytest.mark.parametrize("spec, kind", [("saturated", "saturated"), ("dead_relu", "dead-relu")])
def test_saturated_and_dead_units_are_measured_while_the_tensors_exist(tmp_path, spec, kind):
    """What a check needs from a value's elements (beyond statistics) is measured by the
    check's own `measure` as the value is made, kept as a few numbers, and judged later
    exactly as on the full trace."""
    path = write_spec(tmp_path, spec)
    full = trace_spec(path, batch_size=16)
    summaries = trace_spec(path, batch_size=16, keep="summaries")
    found = [(f.kind, f.node, f.message) for f in find_issues(summaries)]
    assert kind in {k for k, _, _ in found}
    assert found == [(f.kind, f.node, f.message) for f in find_issues(full)]
    kept = summaries.values.measured
    assert kept, "no activation was measured"
    for node_id, facts in kept.items():
        node = full.graph.nodes[node_id]
        assert facts == element_facts(node.op, np.asarray(full.values[node_id])), node.label
        assert all(not isinstance(fact, np.ndarray) for fact in facts.values())  # a few numbers, no tensor


def test_dropout_keep_rate_survives_as_a_number():
    full, summaries = _both("gru", "module")
    full_json, summaries_json = trace_to_json(full), trace_to_json(summaries)
    rates = [n["dropout"]["keep_rate"] for n in full_json["nodes"] if "dropout" in n]
    assert rates and rates == [n["dropout"]["keep_rate"] for n in summaries_json["nodes"] if "dropout" in n]


# -- the full capture holds each value once -----------------------------------------------

def test_split_pieces_share_memory_with_their_input(gpt2_full):
    """q, k, v are views of qkv's value, and their adjoints views of qkv's gradient; a
    piece's share of qkv is made from the piece's adjoint (no extra backward pass)."""
    from gradviz.sources.model.capture import EmbeddedShare

    trace = gpt2_full["module"]
    graph, adjoints = trace.graph, trace.adjoints["loss"]
    qkv = graph.find("blocks.0.attn.qkv")
    pieces = [n for n in graph.nodes if n.op == "getitem" and n.inputs == (qkv.id,)]
    assert len(pieces) == 3
    for piece in pieces:
        assert np.shares_memory(trace.values[piece.id], trace.values[qkv.id])
        assert np.shares_memory(adjoints[piece.id], adjoints[qkv.id])
        assert isinstance(trace.contributions["loss"]._terms[(piece.id, 0)], EmbeddedShare)
    terms = sum(np.asarray(trace.contributions["loss"][(p.id, 0)], dtype=np.float64) for p in pieces)
    np.testing.assert_array_equal(terms, adjoints[qkv.id])


def test_split_shares_equal_torchs_own(monkeypatch, gpt2_full):
    """The share made from the piece's adjoint is bit for bit what an extra backward pass gives."""
    import gradviz.sources.model.capture as capture

    monkeypatch.setenv("GRADVIZ_GPT2", SMALL_GPT2)
    for level in ("module", "aten"):
        new = gpt2_full[level]
        with monkeypatch.context() as m:
            m.setattr(capture, "_view_pieces", lambda *a: {})
            old = trace_spec(GPT2, batch_size=4, seed=0, level=level)
        for edge in old.contributions["loss"]:
            np.testing.assert_array_equal(new.contributions["loss"][edge], old.contributions["loss"][edge])
        for i in range(len(old.values)):
            a, b = new.adjoints["loss"][i], old.adjoints["loss"][i]
            assert (a is None) == (b is None)
            if a is not None:
                np.testing.assert_array_equal(a, b)


# -- the command line ---------------------------------------------------------------------

@pytest.fixture
def gradviz(capsys, monkeypatch):
    """`gradviz COMMAND ...` run in this process (the CLI's own main: one torch import for all)."""
    from gradviz.cli import main

    monkeypatch.setenv("GRADVIZ_GPT2", SMALL_GPT2)
    monkeypatch.setenv("COLUMNS", "200")
    monkeypatch.chdir(ROOT)

    def run(*args: str) -> subprocess.CompletedProcess:
        capsys.readouterr()
        code = main(list(args))
        out, err = capsys.readouterr()
        return subprocess.CompletedProcess(["gradviz", *args], code, out, err)

    return run


def test_trace_keep_summaries_prints_the_report_and_says_what_was_dropped(gradviz):
    done = gradviz("trace", GPT2, "--batch-size", "4", "--keep", "summaries")
    assert done.returncode == 0, done.stderr
    assert "values and adjoints kept as summaries only" in done.stdout
    full = gradviz("trace", GPT2, "--batch-size", "4")
    kept = [line for line in done.stdout.splitlines() if "note:" not in line and "refuse such a trace" not in line]
    assert "\n".join(kept) == full.stdout.rstrip("\n") or kept == full.stdout.splitlines()
    data = json.loads(gradviz("trace", GPT2, "--batch-size", "4", "--keep", "summaries", "--json").stdout)
    assert data["model"]["keep"] == "summaries" and DROPPED in data["model"]["notes"]


@pytest.mark.parametrize("args", [
    ("trace", GPT2, "--keep", "summaries", "--show", "loss"),
    ("trace", GPT2, "--keep", "summaries", "--check"),
    ("trace", GPT2, "--keep", "summaries", "--format", "csv"),
    ("trace", GPT2, "--keep", "summaries", "--layers"),
    ("trace", GPT2, "--keep", "summaries", "--json", "--full"),
    ("trace", GPT2, "--keep", "summaries", "--graph"),
    ("export", GPT2, "--keep", "summaries", "-o", "/tmp/gradviz-never-written.svg"),
    ("trace", "x1 * x2", "--keep", "summaries"),
])
def test_commands_that_need_every_number_refuse_summaries_in_one_line(args, gradviz):
    done = gradviz(*args)
    assert done.returncode == 2, (done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "--keep summaries" in lines[0] and "Traceback" not in done.stderr


def test_a_sum_that_does_not_add_up_is_found_from_the_measured_gap_as_in_a_full_trace():
    # core.findings.sum_mismatches reads the gap a summaries-only trace measured while its
    # tensors existed: the same finding, the same words, as the full trace's own check.
    full = trace_model(*make("rescnn"), seed=0)  # a residual block: a value used twice
    summaries = summarise_trace(full)
    sums = summaries.adjoints["loss"].sums
    node_id = next(iter(sums))
    edge = next(e for e, _ in full.edge_terms("loss", node_id))
    bump = 10 * max(abs(float(x)) for x in np.ravel(full.adjoints["loss"][node_id])) + 1
    bumped_full = replace(full, contributions={"loss": {**full.contributions["loss"],
                                                        edge: full.contributions["loss"][edge] + bump}})
    bumped = summarise_trace(bumped_full)
    found = [(f.kind, f.node, f.message) for f in find_issues(bumped) if f.kind == "adjoint-sum"]
    assert found == [(f.kind, f.node, f.message) for f in find_issues(bumped_full) if f.kind == "adjoint-sum"]
    assert [node for _, node, _ in found] == [node_id]
    assert [f for f in find_issues(summaries) if f.kind == "adjoint-sum"] == []
