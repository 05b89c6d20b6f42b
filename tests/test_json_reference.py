"""--json's fast path (per-array facts kept on the trace, one-number shortcuts, column-wise
assembly, statistics on several threads) says exactly what the straightforward code says:
the reference below is --json as it was written before it was made fast, compared as text,
so every float must match to the last bit."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest

from gradviz.core.explain import bar
from gradviz.core.findings import CHECKS, EXPLODING, SUM_RTOL, VANISHING, Finding
from gradviz.core.fmt import fmt_scalar
from gradviz.core.masks import masked_by_design
from gradviz.core.stats import ArrayFacts, l2_norm, tensor_stats
from gradviz.sources.expr import trace_expression
from gradviz.views.json_report import SCHEMA_VERSION, _model_fields, trace_to_json
from tests.model_specs import write_spec

ROOT = Path(__file__).parent.parent


# --- the reference: plain numpy, one array and one node at a time -----------------------

def ref_stats(value):
    value = np.asarray(value)
    flat = value.ravel()
    if flat.dtype.kind == "f" and flat.size:
        squares = float(np.sqrt(np.einsum("i,i->", flat, flat, dtype=np.float64))) ** 2
        if np.isfinite(squares):
            n = flat.size
            mean = float(np.add.reduce(flat, dtype=np.float64)) / n
            variance = max(squares / n - mean * mean, 0.0)
            if flat.min() == flat.max():  # a constant
                variance = 0.0
            elif variance <= 1e-6 * mean * mean:  # cancellation: numpy's two passes
                variance = float(np.var(flat, dtype=np.float64))
            return (list(value.shape), str(value.dtype), mean, float(np.sqrt(variance)),
                    float(flat.min()), float(flat.max()), float(np.sqrt(squares)),
                    1.0 - np.count_nonzero(flat) / n, 0, 0, 0)
    flat = flat.astype(np.float64, copy=False)
    finite = flat[np.isfinite(flat)]
    nan, inf, posinf = int(np.isnan(flat).sum()), int(np.isinf(flat).sum()), int(np.isposinf(flat).sum())
    if finite.size == 0:
        return (list(value.shape), str(value.dtype), *[float("nan")] * 5, 0.0, nan, inf, posinf)
    return (list(value.shape), str(value.dtype), float(finite.mean()), float(finite.std()), float(finite.min()),
            float(finite.max()), float(np.sqrt(np.dot(finite, finite))),
            float((flat == 0).mean()) if flat.size else 0.0, nan, inf, posinf)


def ref_to_json(value):
    if value is None:
        return None
    value = np.asarray(value)
    if np.all(np.isfinite(value)):
        return value.tolist()
    if value.ndim == 0:
        x = float(value)
        return "nan" if np.isnan(x) else ("inf" if x > 0 else "-inf") if np.isinf(x) else x
    return [ref_to_json(v) for v in value]


def ref_summary(value):
    if value is None:
        return None
    shape, dtype, mean, std, low, high, norm, zeros, nan, inf, _ = ref_stats(value)
    return {"shape": shape, "dtype": dtype, "mean": ref_to_json(np.float64(mean)), "std": ref_to_json(np.float64(std)),
            "min": ref_to_json(np.float64(low)), "max": ref_to_json(np.float64(high)),
            "norm": ref_to_json(np.float64(norm)), "zero_fraction": zeros, "nan": nan, "inf": inf}


def ref_edge_terms(trace, output, node_id):
    contributions = trace.contributions.get(output, {})
    return [((child, position), contributions.get((child, position)))
            for child in trace.graph.users(node_id)
            for position, source in enumerate(trace.graph.nodes[child].inputs) if source == node_id]


def ref_first_nonfinite(trace):
    intended = None
    for node in trace.graph.nodes:
        if not np.all(np.isfinite(trace.values[node.id])):
            if intended is None:
                intended = masked_by_design(trace.graph, trace.values)
            if node.id not in intended:
                return ("value", node.id)
    for adjoints in trace.adjoints.values():
        for node in reversed(trace.graph.nodes):
            a = adjoints[node.id]
            if a is not None and not np.all(np.isfinite(a)):
                return ("adjoint", node.id)
    return None


def ref_sum_mismatches(trace):
    found = []
    for output, adjoints in trace.adjoints.items():
        for node in trace.graph.nodes:
            adjoint = adjoints[node.id]
            if adjoint is None or node.id == trace.graph.outputs[output] or not trace.graph.users(node.id):
                continue
            terms = [np.asarray(v) for _, v in ref_edge_terms(trace, output, node.id) if v is not None]
            if not np.all(np.isfinite(adjoint)) or not all(np.all(np.isfinite(t)) for t in terms):
                continue
            if not terms:
                if np.any(adjoint != 0):
                    found.append(Finding("adjoint-sum", node.id, f"no edge contributions were captured for {bar(node.label, output)}"))
                continue
            total = sum(terms[1:], terms[0].astype(np.float64))
            scale = max(float(np.max(np.abs(t))) if t.size else 0.0 for t in terms)
            difference = float(np.max(np.abs(total - adjoint))) if total.size else 0.0
            if difference > SUM_RTOL * max(scale, float(np.max(np.abs(adjoint), initial=0.0))) + 1e-30:
                found.append(Finding("adjoint-sum", node.id, f"the {len(terms)} edge contributions differ from "
                                                             f"{bar(node.label, output)} by up to {fmt_scalar(difference, 3)}"))
    return found


def ref_gradient_scale(trace):
    found = []
    graph = trace.graph
    for output, adjoints in trace.adjoints.items():
        oid = graph.outputs[output]
        out_node = graph.nodes[oid]
        refs = [l2_norm(adjoints[i]) for i in out_node.inputs if adjoints[i] is not None and np.all(np.isfinite(adjoints[i]))]
        reference = max(refs, default=0.0)
        if out_node.is_leaf or reference == 0 or not np.isfinite(reference):
            continue
        reached = graph.ancestors(oid) - {oid}
        ratio = {i: l2_norm(adjoints[i]) / reference for i in reached
                 if adjoints[i] is not None and np.issubdtype(np.asarray(adjoints[i]).dtype, np.floating)
                 and np.all(np.isfinite(adjoints[i]))}
        vanishing = {i for i, r in ratio.items() if r < VANISHING}
        for i in sorted(vanishing):
            users = [u for u in graph.users(i) if u in reached or u == oid]
            if any(u not in vanishing for u in users):
                before = len(graph.ancestors(i) & vanishing) - 1
                more = f"; {before} node{'s' if before != 1 else ''} before it vanish too" if before else ""
                found.append(Finding("vanishing", i, f"‖{bar(graph.nodes[i].label, output)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                     f"‖∂{output}/∂output‖{more}"))
        for i in sorted(i for i, r in ratio.items() if r > EXPLODING):
            found.append(Finding("exploding", i, f"‖{bar(graph.nodes[i].label, output)}‖ is {fmt_scalar(ratio[i], 2)} × "
                                                 f"‖∂{output}/∂output‖"))
    return found


REFERENCE_CHECKS = {"edge sums": ref_sum_mismatches, "gradient scale": ref_gradient_scale}


def ref_trace_to_json(trace, source):
    model = trace.info.get("source") == "model"
    tensor = ref_summary if model else ref_to_json
    graph = trace.graph
    nodes = []
    data_ids = graph.target_ids  # a loss's target: no tangent pass, adjoint, terms or gradient (as the table)
    data_labels = {graph.nodes[i].label for i in data_ids}
    for node in graph.nodes:
        is_data = node.id in data_ids
        entry = {"id": node.id, "label": node.label, "op": node.op, "kind": node.kind,
                 "data": node.id in graph.target_ids, "inputs": list(node.inputs), "definition": node.definition,
                 "shape": list(trace.values[node.id].shape), "value": tensor(trace.values[node.id]),
                 "tangents": {wrt: tensor(t[node.id]) for wrt, t in trace.tangents.items() if wrt not in data_labels},
                 "adjoints": {out: None if is_data else tensor(a[node.id]) for out, a in trace.adjoints.items()},
                 "terms": {out: [] if is_data else [{"child": child, "position": position, "value": tensor(value)}
                                 for (child, position), value in ref_edge_terms(trace, out, node.id) if value is not None]
                           for out in trace.adjoints}}
        if model:
            entry.update(_model_fields(trace, node.id, False))
        nodes.append(entry)
    first = ref_first_nonfinite(trace)
    # Each finding check on its own, in CHECKS' order: the reference ones for the checks the
    # fast path rewrote, the plain ones for the rest.
    findings = [f for check in CHECKS for f in REFERENCE_CHECKS.get(check.name, check.find)(trace)]
    data = {"schema": SCHEMA_VERSION, "source": source,
            "inputs": {graph.nodes[i].label: tensor(trace.values[i]) for i in graph.input_ids},
            "outputs": list(graph.outputs), "output_nodes": dict(graph.outputs), "nodes": nodes,
            "gradients": {out: {graph.nodes[i].label: None if i in data_ids else tensor(trace.adjoints[out][i])
                                for i in graph.input_ids} for out in trace.adjoints},
            "passes": trace.pass_counts(),
            "first_nonfinite": None if first is None else {"kind": first[0], "node": first[1], "label": graph.nodes[first[1]].label},
            "findings": [{"kind": f.kind, "node": f.node, "label": graph.nodes[f.node].label, "message": f.message}
                         for f in findings]}
    if model:
        data["model"] = {key: value for key, value in trace.info.items() if key != "source"}
    return data


def test_every_reference_check_is_one_of_CHECKS():
    """A renamed check would otherwise silently be compared with itself."""
    assert set(REFERENCE_CHECKS) <= {check.name for check in CHECKS}


def same_json(make_trace, source="t"):
    """The fast JSON of a fresh trace, as text, equals the reference's of another fresh one."""
    fast = json.dumps(trace_to_json(make_trace(), source))
    reference = json.dumps(ref_trace_to_json(make_trace(), source))
    assert fast == reference


# --- the traces --------------------------------------------------------------------------

HUB = "\n".join(f"s{i} = tanh({f's{i - 1}' if i else 'x1'} * x1 + x2)" for i in range(40))
EXPRESSIONS = {
    "lecture": ("(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", {"x1": 0.5, "x2": 1.0}),
    "nan and -inf": ("log(W)", {"W": [[1, 0], [-1, 2]]}),
    "inf adjoint": ("sqrt(x1) * x2 + x1", {"x1": 0.0, "x2": 2.0}),
    "tensors": ("tanh(W) * W + exp(W)", {"W": [[0.5, -1e-9], [2.0, 300.0]]}),
    "vanishing": ("exp(-x1*x1*1000) * x2", {"x1": 3.0, "x2": 2.0}),
    "saturated": ("sigmoid(x1*x2) + tanh(x1) + relu(x2 - 10)", {"x1": 30.0, "x2": 2.0}),
    "hub": (HUB, {"x1": 0.3, "x2": 0.2}),
    "target": ("L = bce(sigmoid(W @ x), y); M = sum(W)", {"W": [[0.5, -1.0], [2.0, 0.1]], "x": [1.0, 2.0],
                                                          "y": [1.0, 0.0]}),
}


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("name", list(EXPRESSIONS))
def test_expression_json_is_the_reference_json(name, dtype):
    text, at = EXPRESSIONS[name]
    same_json(lambda: trace_expression(text, at, dtype=dtype))


@pytest.mark.parametrize("name", ["lecture", "tensors", "hub"])
def test_mismatched_edge_sums_are_found_as_the_reference_finds_them(name):
    text, at = EXPRESSIONS[name]

    def perturbed():
        trace = trace_expression(text, at)
        contributions = {out: dict(terms) for out, terms in trace.contributions.items()}
        for terms in contributions.values():
            for edge in list(terms)[::3]:
                terms[edge] = np.asarray(terms[edge]) * 1.001 + 1e-3
        return replace(trace, contributions=contributions)

    assert any(f["kind"] == "adjoint-sum" for f in trace_to_json(perturbed())["findings"])
    same_json(perturbed)


@pytest.mark.parametrize("level", ["module", "aten"])
@pytest.mark.parametrize("dtype", [None, "float64"])
def test_model_json_is_the_reference_json(level, dtype):
    from gradviz.sources.model import trace_spec

    same_json(lambda: trace_spec(ROOT / "samples" / "two_layer_mlp.py", batch_size=8, level=level, dtype=dtype))


def test_model_with_nan_json_is_the_reference_json(tmp_path):
    from gradviz.sources.model import trace_spec

    path = write_spec(tmp_path, "nan_log")
    same_json(lambda: trace_spec(path, batch_size=8))


@pytest.mark.parametrize("level", ["module", "aten"])
def test_masked_attention_json_is_the_reference_json(level, monkeypatch):
    """A causal mask (intended -inf), transposed weights (strided arrays: one C-order copy)
    and aten views (the same memory as their input: shared statistics)."""
    from gradviz.sources.model import trace_spec

    monkeypatch.setenv("GRADVIZ_GPT2", "2,32,4,16")
    make = lambda: trace_spec(ROOT / "samples" / "big" / "gpt2_shaped.py", batch_size=2, level=level)  # noqa: E731
    trace = make()
    if level == "aten":
        assert any(not np.asarray(v).flags.c_contiguous for v in trace.values)
    same_json(make)


# --- the per-array facts on their own ----------------------------------------------------

def awkward_arrays():
    rng = np.random.default_rng(0)
    base = rng.standard_normal((64, 300)).astype(np.float32)
    zeros = np.array([[0.0, -0.0, 1.5], [-0.0, 0.0, -2.0]], dtype=np.float32)
    with_bad = base.copy()
    with_bad[3, 4], with_bad[5, 6] = np.nan, -np.inf
    return {
        "float32": base, "transposed": base.T, "reversed": base[::-1], "broadcast": np.broadcast_to(base[0], (50, 300)),
        "positive": np.abs(base) + 0.5, "negative": -np.abs(base) - 0.5, "signed zeros": zeros, "signed zeros transposed": zeros.T, "float16 overflowing sum": np.full(40000, 60000, np.float16),
        "float64 huge": np.array([1e200, -3e200, 2.0]), "nan and inf": with_bad, "all nan": np.full(5, np.nan),
        "empty": np.zeros((0, 3), np.float32), "ints": np.arange(12).reshape(3, 4), "bools": np.array([True, False]),
        "0-d": np.array(2.5, np.float32), "scalar": np.float64(-3.0), "0-d inf": np.array(np.inf),
    }


@pytest.mark.parametrize("name", list(awkward_arrays()))
def test_array_facts_are_the_plain_numpy_answers(name):
    value = awkward_arrays()[name]
    facts = ArrayFacts()
    with np.errstate(over="ignore"):
        check_facts(facts, value)


def check_facts(facts, value):
    for _ in range(2):  # computed, then remembered
        assert facts.finite(value) == bool(np.all(np.isfinite(value)))
        if np.asarray(value).dtype.kind == "f":
            norm = facts.norm(value)
            assert norm == l2_norm(value) or (np.isnan(norm) and np.isnan(l2_norm(value)))
        stats = facts.stats(value)
        assert json.dumps(list(stats.__dict__.values())) == json.dumps(list(tensor_stats(value).__dict__.values()))
        assert json.dumps([stats.shape, *list(stats.__dict__.values())[1:]]) == json.dumps(
            [tuple(np.shape(value)), *ref_stats(value)[1:]])
        plain = np.asarray(value)
        assert facts.size(value) == plain.size
        assert facts.is_float(value) == (plain.dtype.kind == "f")
        assert facts.any_nonzero(value) == bool(np.any(plain != 0))
        counts = facts.nonfinite_counts(value)
        if plain.dtype.kind != "f":
            assert counts is None
        else:
            assert (counts.nan, counts.posinf, counts.neginf, counts.size) == (
                np.isnan(plain).sum(), np.isposinf(plain).sum(), np.isneginf(plain).sum(), plain.size)
        if facts.finite(value):
            assert facts.abs_max(value) == (float(np.max(np.abs(plain))) if plain.size else 0.0)


@pytest.mark.parametrize("name", [name for name, value in awkward_arrays().items()
                                  if np.asarray(value).dtype.kind == "f" and np.size(value)])
def test_statistics_answer_as_their_tensor_does(name):
    """The one interface of full and summaries-only traces: a tensor's TensorStats answer
    every question ArrayFacts is asked (finite, norm, extent, stats, size, NaN/±Inf counts…)
    as the tensor itself does."""
    value = awkward_arrays()[name]
    facts = ArrayFacts()
    with np.errstate(over="ignore", invalid="ignore"):
        stats = tensor_stats(value)
        assert facts.stats(stats) is stats
        assert facts.finite(stats) == facts.finite(value)
        if facts.finite(value):
            assert facts.norm(stats) == facts.norm(value)
            assert facts.extent(stats) == facts.extent(value)
            assert facts.abs_max(stats) == facts.abs_max(value)
        # what the checks ask besides: so none of them asks which of the two it holds
        assert facts.size(stats) == facts.size(value)
        assert facts.is_float(stats) == facts.is_float(value)
        assert facts.any_nonzero(stats) == facts.any_nonzero(value)
        assert facts.nonfinite_counts(stats) == facts.nonfinite_counts(value)


def test_views_of_the_same_memory_share_statistics_but_not_shape():
    base = np.random.default_rng(1).standard_normal((6, 40)).astype(np.float32)
    facts = ArrayFacts()
    facts.stats(base)
    view = base.reshape(3, 80)
    assert facts.stats(view).shape == (3, 80)
    assert json.dumps(list(facts.stats(view).__dict__.values())[1:]) == json.dumps(ref_stats(view)[1:])


def test_statistics_made_on_several_threads_are_the_same():
    rng = np.random.default_rng(2)
    arrays = [rng.standard_normal((200, 150)).astype(np.float32) for _ in range(6)]
    arrays += [arrays[0].T, arrays[1][::2]]
    facts = ArrayFacts()
    facts.prefetch_stats(arrays, workers=3)
    for value in arrays:
        assert json.dumps(list(facts.stats(value).__dict__.values())[1:]) == json.dumps(ref_stats(value)[1:])
