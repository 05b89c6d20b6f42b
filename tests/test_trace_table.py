"""`gradviz trace --format markdown|latex|csv`: the slides' table, its numbers those of --json."""

from __future__ import annotations

import csv
import io
import json
import re

import pytest

from gradviz.cli import main
from gradviz.views.trace_table import latex_math

LECTURE = ["(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))", "--at", "x1=0.5,x2=1"]
# log of a pre-activation that goes negative: NaN in some elements, as the nan_hunt sample
TENSORS = ["h = log(x @ W + b); loss = mean(h * h)", "--at", "x=[[1,-2],[0.5,3]],W=[[0.1,0.2],[0.3,-0.4]],b=[0.5,0.1]"]


def _run(capsys, *args) -> str:
    assert main(["trace", *args]) in (0, 1)  # 1: a NaN was found, and the output is still written
    return capsys.readouterr().out


def _cells(text: str, fmt: str) -> list[list[str]]:
    """The table's rows (header first) as cell strings, read back from each format."""
    if fmt == "csv":
        return list(csv.reader(io.StringIO(text)))
    if fmt == "markdown":
        lines = [line for line in text.splitlines() if line.startswith("|") and "---" not in line]
        return [[c.strip() for c in re.split(r"(?<!\\)\|", line)[1:-1]] for line in lines]
    # A table wider or taller than the page is several tabulars, each led by the node column:
    # their columns are put back side by side and their rows one under the other.
    columns: dict[str, list[str]] = {}
    for table in re.findall(r"\\begin\{tabular\}.*?\\end\{tabular\}", text, re.S):
        rows = [line.removesuffix(r" \\") for line in table.splitlines() if line.endswith(r" \\")]
        cells = [[_latex_cell(c) for c in row.split(" & ")] for row in rows]
        for position, name in enumerate(cells[0]):
            columns.setdefault(name, []).extend(row[position] for row in cells[1:])
    count = len(columns["definition"])  # the node column is repeated in every table: its first rows
    assert all(len(cells) == count for name, cells in columns.items() if name != "node")
    return [list(columns)] + [[cells[row] for cells in columns.values()] for row in range(count)]


def _latex_cell(cell: str) -> str:
    """A cell's text, without the paragraph a wrapped column sets it in."""
    cell = cell.strip()
    wrapped = re.fullmatch(r"\\parbox\[t\]\{[\d.]+\\linewidth\}\{\\raggedright (.*)\}", cell, re.S)
    if wrapped:
        cell = wrapped.group(1).replace("\\allowbreak ", "")
    return cell.strip("$")


def _number(text: str):
    return json.loads(re.sub(r"-?inf|nan", lambda m: f'"{m.group(0)}"', text)) if text else None


def _same(a, b) -> bool:
    if isinstance(a, list):
        return isinstance(b, list) and len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b or (a in ("nan", "inf", "-inf") and a == b)


@pytest.mark.parametrize("fmt", ["markdown", "latex", "csv"])
@pytest.mark.parametrize("source", [LECTURE, TENSORS], ids=["lecture", "tensors"])
def test_table_round_trips_the_numbers_of_json(capsys, fmt, source):
    data = json.loads(_run(capsys, *source, "--json"))
    rows = _cells(_run(capsys, *source, "--format", fmt), fmt)
    header, body = rows[0], rows[1:]
    inputs, outputs = list(data["nodes"][0]["tangents"]), data["outputs"]
    assert len(header) == 3 + len(inputs) + len(outputs)  # every tangent column, side by side
    nodes = [n for n in data["nodes"] if n["kind"] != "constant"]
    assert len(body) == len(nodes)
    checked = 0
    for node, row in zip(nodes, body):
        numbers = [node["value"]] + [node["tangents"][k] for k in inputs] + [node["adjoints"][k] for k in outputs]
        for cell, expected in zip(row[2:], numbers):
            assert _same(_number(cell), expected), (node["label"], cell, expected)
            checked += 1
    assert checked == len(nodes) * (1 + len(inputs) + len(outputs))


def test_rounded_table_for_slides_and_bad_flags(capsys):
    out = _run(capsys, *LECTURE, "--format", "markdown", "--decimals", "4")
    assert "| v1 | v1 = x1/x2 | 0.5000 | 1.0000 | -0.5000 | 3.4731 |" in out
    assert main(["trace", *LECTURE, "--format", "csv", "--json"]) == 2
    assert main(["trace", *LECTURE, "--format", "csv", "--decimals", "99"]) == 2
    err = capsys.readouterr().err
    assert "choose one" in err and "--decimals 99" in err and "Traceback" not in err


def test_latex_writes_math():
    assert latex_math("v3 = v2·e^{v1}") == r"v_{3} = v_{2}\cdot e^{v_{1}}"
    assert latex_math("sigmoid_1 = σ(fc2)") == r"\mathrm{sigmoid}_{1} = \sigma(\mathrm{fc}_{2})"


def test_latex_writes_the_slides_indexed_names():
    """J_R (the regularised objective of the sample and the slide) is J with index R, not the word J_R."""
    assert latex_math("J_R = J + v3") == r"J_{R} = J + v_{3}"
    assert latex_math("J_R'") == r"J_{R}'"
    assert latex_math("θ_1² + λ_2") == r"\theta_{1}^{2} + \lambda_{2}"
    assert latex_math("W_out·x") == r"\mathrm{W\_out}\cdot x"  # a longer index stays one upright name


def test_a_target_is_data_in_the_table(capsys):
    out = _run(capsys, "loss = bce(sigmoid(x * w), y)", "--at", "x=2,w=0.5,y=1", "--format", "csv")
    rows = list(csv.reader(io.StringIO(out)))
    assert rows[0] == ["node", "definition", "value", "∂·/∂x", "∂·/∂w", "∂loss/∂·"]  # no ∂·/∂y column
    assert next(r for r in rows if r[0] == "y") == ["y", "target (data)", "1.0", "data", "data", "data"]

