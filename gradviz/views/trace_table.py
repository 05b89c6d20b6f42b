"""The trace table as text for handouts and spreadsheets: Markdown, LaTeX or CSV.

One row per non-constant node, as on the slides: node, definition, value, the tangent for
every input (forward mode), the adjoint of every output (reverse mode). Numbers are written
so that they read back exactly (Python's shortest round-trip form), or rounded to
`decimals` places for slides; small tensors as nested lists, bigger ones as shape and norm.
"""

from __future__ import annotations

import csv
import io
import json
import re

import numpy as np

from gradviz.core.fmt import fmt_scalar, fmt_value, to_json
from gradviz.core.steps import tangent_keys
from gradviz.core.trace import Trace

FORMATS = ("markdown", "latex", "csv")
MAX_LISTED = 64  # elements: a tensor up to this size is written out, bigger ones summarised


def number_text(value, decimals: int | None = None) -> str:
    """A value as the table writes it: exact by default, '' where there is none."""
    if value is None:
        return ""
    value = np.asarray(value)
    if value.size == 1:
        x = float(value.reshape(()))
        if decimals is not None:
            return fmt_scalar(x, decimals)
        return json.dumps(to_json(np.float64(x))).replace('"', "")
    if value.size > MAX_LISTED:
        return fmt_value(value)
    data = to_json(np.round(value.astype(np.float64), decimals) if decimals is not None else value.astype(np.float64))
    return json.dumps(data).replace('"', "")


def table_rows(trace: Trace, decimals: int | None = None) -> tuple[list[str], list[list[str]]]:
    """(header, rows) of the trace table, every tangent and adjoint column."""
    inputs, outputs = tangent_keys(trace), list(trace.adjoints)  # a target is data: no column of its own
    targets = trace.graph.target_ids
    header = ["node", "definition", "value"] + [f"∂·/∂{k}" for k in inputs] + [f"∂{trace.graph.shown_output(k)}/∂·" for k in outputs]
    rows = []
    for node in trace.graph.nodes:
        if node.op == "const":
            continue
        kind = "target (data)" if node.id in trace.graph.target_ids else node.kind
        row = [node.label, node.definition if not node.is_leaf else kind,
               number_text(trace.values[node.id], decimals)]
        if node.id in targets:
            row += ["data"] * (len(inputs) + len(outputs))
        else:
            row += [number_text(trace.tangents[k][node.id], decimals) for k in inputs]
            row += [number_text(trace.adjoints[k][node.id], decimals) for k in outputs]
        rows.append(row)
    return header, rows


def to_markdown(trace: Trace, decimals: int | None = None) -> str:
    """A GitHub/Pandoc pipe table; numbers right-aligned."""
    header, rows = table_rows(trace, decimals)

    def line(cells: list[str]) -> str:
        return "| " + " | ".join(cell.replace("|", "\\|") for cell in cells) + " |"

    rule = "| " + " | ".join("---" if i < 2 else "---:" for i in range(len(header))) + " |"
    return "\n".join([line(header), rule] + [line(row) for row in rows]) + "\n"


def to_csv(trace: Trace, decimals: int | None = None) -> str:
    """Comma-separated, one header row."""
    header, rows = table_rows(trace, decimals)
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(header)
    writer.writerows(rows)
    return out.getvalue()


_LATEX_SYMBOLS = {
    "·": r"\cdot ", "−": "-", "σ": r"\sigma", "ᵀ": r"^{\top}", "‖": r"\|",
    "∂": r"\partial ", "Σ": r"\sum ", "√": r"\sqrt ", "@": r"\,@\,", "→": r"\to ", "×": r"\times ",
    "%": r"\%", "#": r"\#", "&": r"\&", "_": r"\_", "…": r"\dots ", "⊙": r"\odot ", "⟨": r"\langle ",
    "⟩": r"\rangle ", "∇": r"\nabla ", "λ": r"\lambda ", "θ": r"\theta ", "η": r"\eta ", "δ": r"\delta ",
    "ε": r"\varepsilon ", "≈": r"\approx ", "∞": r"\infty ", "≤": r"\le ", "≥": r"\ge ", "—": "-", "′": "'",
}
_SUPERSCRIPTS = str.maketrans("⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺", "0123456789-+")
# a barred letter (v̄1), a run of superscripts (10⁻¹²), a name with its index (v12, fc2), or one character
_PLAIN_DIGITS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")  # c₂: a name assigned again (sources.expr)
_TOKEN = re.compile(r"([A-Za-z])\u0304(\d*)|([⁰¹²³⁴⁵⁶⁷⁸⁹⁻⁺]+)|([A-Za-z][A-Za-z_.]*?)([\d₀-₉]*)(?![A-Za-z_.\d₀-₉])"
                    r"|([A-Za-z_]\w*(?:\.\w+)+)|(.)", re.S)  # … a module path (fc1.weight), one character
_FUNCTIONS = {"exp": r"\exp", "log": r"\ln", "ln": r"\ln", "sin": r"\sin", "cos": r"\cos", "tanh": r"\tanh",
              "max": r"\max", "min": r"\min"}


def latex_math(text: str) -> str:
    """A definition, header or equation as LaTeX math: v12 → v_{12}, v̄1 → \\bar v_{1}, log → \\ln,
    longer names upright, symbols as commands."""
    def token(match: re.Match) -> str:
        if match.group(1) is not None:
            return rf"\bar {match.group(1)}" + (f"_{{{match.group(2)}}}" if match.group(2) else "")
        if match.group(3) is not None:
            return f"^{{{match.group(3).translate(_SUPERSCRIPTS)}}}"
        if match.group(6) is not None:  # a module path, upright as one name
            return rf"\mathrm{{{match.group(6).replace('_', chr(92) + '_')}}}"
        if match.group(7) is not None:
            return _LATEX_SYMBOLS.get(match.group(7), match.group(7))
        word, digits = match.group(4), match.group(5).translate(_PLAIN_DIGITS)
        if digits and word.endswith("_") and len(word) > 1:  # sigmoid_1: the index is the subscript
            word = word[:-1]
        if word in _FUNCTIONS and not digits:
            return _FUNCTIONS[word]
        if not digits and re.fullmatch(r"[A-Za-z]_[A-Za-z0-9]", word):  # J_R: the slides' J with index R
            return f"{word[0]}_{{{word[2]}}}"
        if len(word) > 1:  # a name of several letters is upright; one letter is a variable
            word = rf"\mathrm{{{word.replace('_', chr(92) + '_')}}}"
        return word + (f"_{{{digits}}}" if digits else "")

    # a Greek name with an index (θ_1, λ_2): the symbol's command, then the index as a subscript
    return _GREEK_INDEX.sub(r"\1_{\2}", _TOKEN.sub(token, text))


_GREEK_INDEX = re.compile(r"(\\(?:lambda|theta|eta|delta|varepsilon|sigma)) \\_([A-Za-z0-9]+)")


def _latex_header(text: str) -> str:
    """∂·/∂x1 → v_i' = ∂v_i/∂x1 and ∂f/∂· → v̄_i = ∂f/∂v_i, as the slides name them."""
    if text.startswith("∂·/∂"):
        return rf"$v_i' = \partial v_i/\partial {latex_math(text[4:])}$"
    if text.endswith("/∂·"):
        return rf"$\bar v_i = \partial {latex_math(text[1:-3])}/\partial v_i$"
    return f"${latex_math(text)}$"


def _shown_header(text: str) -> str:
    """A header as _latex_header sets it, in plain text (what its width is estimated from)."""
    if text.startswith("∂·/∂"):
        return f"vi′ = ∂vi/∂{text[4:]}"
    if text.endswith("/∂·"):
        return f"v̄i = ∂{text[1:-3]}/∂vi"
    return text


def to_latex(trace: Trace, decimals: int | None = None) -> str:
    """Booktabs tabulars (\\usepackage{booktabs}); definitions and headers in math mode. A table
    wider or taller than the page is shared out over several, each led by the node column
    and its header (views.latex_table)."""
    from gradviz.views.latex_table import Column, share_columns, share_rows, wrapped_cell

    header, rows = table_rows(trace, decimals)
    columns = [Column(_shown_header(name), [row[i] for row in rows], "l" if i < 2 else "r")
               for i, name in enumerate(header)]
    position = {id(column): i for i, column in enumerate(columns)}

    def cell(text: str, column: int) -> str:
        if column >= 2:
            return f"${text.replace('‖', chr(92) + '|').replace('×', chr(92) + 'times ')}$" if text else ""
        return f"${latex_math(text)}$"

    def head(text: str, column: int) -> str:
        return _latex_header(text) if column >= 2 else text

    tables = []
    for part in share_columns(columns):
        spec = "".join("l" if j in part.wrapped else column.align for j, column in enumerate(part.columns))
        indices = [position[id(column)] for column in part.columns]

        def written(text: str, j: int) -> str:
            made = cell(text, indices[j])
            return wrapped_cell(made, part.wrapped[j]) if j in part.wrapped and made else made

        for run in share_rows(part):
            lines = [rf"\noindent\begin{{tabular}}{{{spec}}}", r"\toprule",
                     " & ".join(head(header[i], i) for i in indices) + r" \\", r"\midrule"]
            lines += [" & ".join(written(rows[r][i], j) for j, i in enumerate(indices)) + r" \\" for r in run]
            lines += [r"\bottomrule", r"\end{tabular}"]
            tables.append("\n".join(lines) + "\n")
    return "\n\\medskip\n".join(tables)


WRITERS = {"markdown": to_markdown, "latex": to_latex, "csv": to_csv}
