"""`trace --format markdown|latex` is a handout: the table, the tangent chains and the adjoint
sums, every number equal to --json's, and the LaTeX compiled by pdflatex where it is installed."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from gradviz.cli import main
from gradviz.core.fmt import fmt_scalar

SAMPLES = Path(__file__).resolve().parent.parent / "samples"
LECTURE = [f"@{SAMPLES / 'lecture.expr'}"]
JACOBIAN = [f"@{SAMPLES / 'jacobian.expr'}"]
V1_MARKDOWN = "v̄1 = v̄2·e^{v1} + v̄3 + v̄5 = 0.8244 + 0.5000 + 2.1487 = 3.4731"
V1_LATEX = r"\bar v_{1} = \bar v_{2}\cdot e^{v_{1}} + \bar v_{3} + \bar v_{5} = 0.8244 + 0.5000 + 2.1487 = 3.4731"


def _run(capsys, *args: str) -> str:
    assert main(["trace", *args]) == 0
    return capsys.readouterr().out


def _sections(text: str, fmt: str) -> list[tuple[str, str, list[str]]]:
    """(kind, key, equations) read back from the handout, as a reader of the file would."""
    found: list[tuple[str, str, list[str]]] = []
    for line in text.splitlines():
        if fmt == "markdown":
            head = re.match(r"\*\*(Forward|Reverse) mode\*\*, (?:tangents v′ = ∂v/∂(\S+)|adjoints v̄ = ∂(\S+)/∂v)", line)
            item = line[2:] if line.startswith("- ") else None
        else:
            head = re.match(r"\\paragraph\{(Forward|Reverse) mode, (?:tangents \$v_i' = \\partial v_i/\\partial (\S+)\$"
                            r"|adjoints \$\\bar v_i = \\partial (\S+)/\\partial v_i\$)", line)
            item = re.match(r"\s*\\item \$(.*)\$", line)
            item = item.group(1) if item else None
        if head:
            found.append(("tangent" if head.group(1) == "Forward" else "adjoint", head.group(2) or head.group(3), []))
        elif item is not None and found:
            found[-1][2].append(item)
    return found


def _label(lhs: str, fmt: str) -> str:
    """The node an equation is about: v̄1 / \\bar v_{1} / v1' / v_{1}' → v1."""
    if fmt == "latex":
        lhs = re.sub(r"\\bar ", "", lhs).replace("'", "")
        return re.sub(r"_\{(\d+)\}", r"\1", lhs).strip()
    return lhs.replace("\u0304", "").replace("'", "").strip()


def _key(symbol: str, fmt: str) -> str:
    return re.sub(r"_\{(\d+)\}", r"\1", symbol) if fmt == "latex" else symbol


def _numbers(part: str) -> list[float]:
    """'−1.7365 − 2.1487' → [-1.7365, -2.1487]: a sum's terms with their signs."""
    text = part.strip().replace(" − ", " + −").replace(" - ", " + −")
    return [float(term.replace("−", "-")) for term in text.split(" + ")]


@pytest.mark.parametrize("fmt", ["markdown", "latex"])
@pytest.mark.parametrize("source", [LECTURE, JACOBIAN], ids=["lecture", "jacobian"])
def test_handout_equations_round_trip_every_number_against_json(capsys, fmt, source) -> None:
    data = json.loads(_run(capsys, *source, "--json"))
    text = _run(capsys, *source, "--format", fmt)
    if source is LECTURE:
        assert (V1_MARKDOWN if fmt == "markdown" else V1_LATEX) in text
    nodes = {n["label"]: n for n in data["nodes"]}
    ids = {n["id"]: n for n in data["nodes"]}
    sections = _sections(text, fmt)
    inputs = [k for k in data["nodes"][0]["tangents"] if not nodes[k].get("data")]
    assert [(kind, _key(key, fmt)) for kind, key, _ in sections] == \
        [("tangent", k) for k in inputs] + [("adjoint", o) for o in data["outputs"]]
    checked = 0
    for kind, key, lines in sections:
        key = _key(key, fmt)
        labels = []
        for line in lines:
            parts = line.split(" = ")
            node = nodes[_label(parts[0], fmt)]
            labels.append(node["label"])
            total = parts[-1].replace("(the seed)", "").strip().replace("−", "-")
            expected = node["tangents"][key] if kind == "tangent" else node["adjoints"][key]
            assert float(total) == float(fmt_scalar(expected)), (line, expected)
            checked += 1
            terms = [t for t in node["terms"].get(key, []) if t["value"] is not None] if kind == "adjoint" else []
            if len(terms) > 1:  # the sum written out: each edge's contribution, in order
                assert [fmt_scalar(v) for v in _numbers(parts[-2])] == [fmt_scalar(t["value"]) for t in terms], line
                checked += len(terms)
        if kind == "adjoint":  # the backward pass's order: from the output down, every differentiated node
            feeding, stack = set(), [nodes[key]["id"]]
            while stack:  # the output and everything that feeds it
                node_id = stack.pop()
                feeding.add(node_id)
                stack += [i for i in ids[node_id]["inputs"] if i not in feeding]
            expected_order = [n["label"] for n in reversed(data["nodes"])
                              if n["id"] in feeding and n["kind"] != "constant" and not n.get("data")]
            assert labels == expected_order
        else:
            assert labels == [n["label"] for n in data["nodes"] if n["kind"] == "op"]
    assert checked >= len(ids)


def test_latex_handout_uses_the_slides_symbols(capsys) -> None:
    text = _run(capsys, *LECTURE, "--format", "latex")
    assert r"v_{4} = \ln(x_{2})" in text and r"\mathrm{log}" not in text
    assert r"$v_i' = \partial v_i/\partial x_{1}$" in text and r"$\bar v_i = \partial f/\partial v_i$" in text
    assert r"v_{2}' = e^{v_{1}}\cdot v_{1}' = 1.6487" in text
    assert "∂" not in text and "·" not in text  # every symbol became a command


def _latex_document(body: str) -> str:
    return ("\\documentclass{article}\n\\usepackage[T1]{fontenc}\n\\usepackage{booktabs}\n"
            "\\begin{document}\n" + body + "\\end{document}\n")


LATEX_SOURCES = [LECTURE, JACOBIAN, [f"@{SAMPLES / 'two_layer_network.expr'}"], [f"@{SAMPLES / 'regularized.expr'}"],
                 [f"@{SAMPLES / 'backprop.expr'}"], [str(SAMPLES / "two_layer_mlp.py"), "--batch-size", "2"]]
LATEX_IDS = ["lecture", "jacobian", "network", "regularized", "backprop", "model"]


@pytest.mark.parametrize("source", LATEX_SOURCES, ids=LATEX_IDS)
def test_latex_handout_is_well_formed(capsys, source) -> None:
    """A parser's check everywhere: balanced braces and math, only ASCII, known commands."""
    text = _run(capsys, *source, "--format", "latex")
    assert text.isascii(), [c for c in text if not c.isascii()]
    assert text.count("{") == text.count("}")
    for line in text.splitlines():
        assert len(re.findall(r"(?<!\\)\$", line)) % 2 == 0, line
    known = {"begin", "end", "toprule", "midrule", "bottomrule", "paragraph", "item", "mathrm", "bar", "partial",
             "cdot", "sigma", "top", "sum", "sqrt", "to", "times", "dots", "odot", "langle", "rangle", "nabla",
             "lambda", "theta", "eta", "delta", "varepsilon", "approx", "infty", "le", "ge", "exp", "ln", "sin",
             "cos", "tanh", "max", "min", "_", "|", "%", "#", "&", ",",
             # a table wider or taller than the page is shared out (views.latex_table)
             "noindent", "medskip", "parbox", "linewidth", "raggedright", "allowbreak"}
    assert set(re.findall(r"\\([A-Za-z]+|.)", text)) - known - {"\\"} == set()


# Wide: ten inputs (ten tangent columns of 17-digit numbers) and two outputs; tall: 8×8
# tensors written out as nested lists of 64 exact numbers.
WIDE = ["f = sin(a*b) + cos(c*d) + exp(e/g) + h*k*m*n; q = a*b*c", "--at",
        "a=0.1,b=0.2,c=0.3,d=0.4,e=0.5,g=0.7,h=0.11,k=0.13,m=0.17,n=0.19"]
TALL = ["y = tanh(W @ x + b); L = sum(y * y)", "--shape", "W=8x8,x=8x8,b=8"]


@pytest.mark.skipif(shutil.which("pdflatex") is None,
                    reason="pdflatex is not installed (scripts/setup.sh installs texlive-latex-base)")
@pytest.mark.parametrize("source", LATEX_SOURCES + [WIDE, TALL], ids=LATEX_IDS + ["wide", "tall"])
def test_latex_handout_compiles_with_pdflatex_and_fits_the_page(capsys, tmp_path: Path, source) -> None:
    """pdflatex sets every table and equation within the text block: no box wider than the
    line (the lecture's one table ran 180 pt past it, off an A4 page) nor taller than the page."""
    (tmp_path / "handout.tex").write_text(_latex_document(_run(capsys, *source, "--format", "latex")))
    done = subprocess.run(["pdflatex", "-halt-on-error", "-interaction=nonstopmode", "-no-shell-escape", "handout.tex"],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stdout[-2000:]
    assert (tmp_path / "handout.pdf").stat().st_size > 1000
    log = (tmp_path / "handout.log").read_text(errors="replace")
    assert re.findall(r"Overfull \\[hv]box \([\d.]+pt too \w+\)", log) == []


def test_decimals_round_the_equations_as_the_table(capsys) -> None:
    text = _run(capsys, *LECTURE, "--format", "markdown", "--decimals", "2")
    assert "| v1 | v1 = x1/x2 | 0.50 | 1.00 | -0.50 | 3.47 |" in text
    assert "v̄1 = v̄2·e^{v1} + v̄3 + v̄5 = 0.82 + 0.50 + 2.15 = 3.47" in text
