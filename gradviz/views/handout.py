"""`gradviz trace --format markdown|latex`: a handout with the slides' content, not only the table.

The trace table (views.trace_table), then forward mode's chain rule at each node for every
input (v_i' = …), then the reverse pass's adjoints as sums of edge contributions for every
output (v̄_i = Σ v̄_j·∂v_j/∂v_i), in the order each pass computes them. The equations are
core.explain's, the same strings the terminal and the stepper show; LaTeX rewrites them as
math (\\bar v_{1}, v_{1}', \\ln, e^{v_{1}}).
"""

from __future__ import annotations

import re

from gradviz.core.explain import adjoint_equation, tangent_equation
from gradviz.core.fmt import DECIMALS
from gradviz.core.steps import tangent_keys
from gradviz.core.trace import Trace
from gradviz.views.trace_table import latex_math, to_csv, to_latex, to_markdown


def tangent_lines(trace: Trace, wrt: str, decimals: int = DECIMALS) -> list[str]:
    """v_i' = … at each op node, for the forward-mode pass seeded at `wrt`."""
    return [tangent_equation(trace, wrt, node.id, decimals) for node in trace.graph.nodes if not node.is_leaf]


def adjoint_lines(trace: Trace, output: str, decimals: int = DECIMALS) -> list[str]:
    """v̄_i = … for every node the reverse pass of `output` reaches, from the output down."""
    graph = trace.graph
    skipped = graph.constant_ids | graph.target_ids  # nobody differentiates a constant or a target
    root = graph.outputs[output]
    reached = set(graph.ancestors(root)) | {root}  # the pass of `output` visits only what feeds it
    return [adjoint_equation(trace, output, node.id, decimals=decimals) for node in reversed(graph.nodes)
            if node.id in reached and node.id not in skipped]


def sections(trace: Trace, decimals: int | None = None) -> list[tuple[str, str, list[str]]]:
    """(kind, name, equations): one 'tangent' section per input, one 'adjoint' section per output
    (named as a person reads it: c₃ where c was assigned again); numbers to `decimals` places
    (the screen's four by default)."""
    places = DECIMALS if decimals is None else decimals
    found = [("tangent", wrt, tangent_lines(trace, wrt, places)) for wrt in tangent_keys(trace)]
    found += [("adjoint", trace.graph.shown_output(output), adjoint_lines(trace, output, places))
              for output in trace.adjoints]
    return [section for section in found if section[2]]


_MARKDOWN_SPECIALS = re.compile(r"([\\`*_<\[\]])")


def markdown_text(text: str) -> str:
    """Equation text with Markdown's own characters escaped, so it renders as written."""
    return _MARKDOWN_SPECIALS.sub(r"\\\1", text)


def to_markdown_handout(trace: Trace, decimals: int | None = None) -> str:
    """The table, then the tangent chains and the adjoint sums as Markdown lists."""
    parts = [to_markdown(trace, decimals)]
    for kind, key, lines in sections(trace, decimals):
        if kind == "tangent":
            title = f"**Forward mode**, tangents v′ = ∂v/∂{markdown_text(key)} (one pass per input)"
        else:
            title = (f"**Reverse mode**, adjoints v̄ = ∂{markdown_text(key)}/∂v as sums of edge contributions "
                     "(one pass per output)")
        parts.append("\n" + title + "\n\n" + "\n".join(f"- {markdown_text(line)}" for line in lines) + "\n")
    return "".join(parts)


def latex_equation(text: str) -> str:
    """One of explain's equations as LaTeX math: v̄1 → \\bar v_{1}, v1' → v_{1}', log → \\ln."""
    text = text.replace("(the seed)", "").replace("′", "'").rstrip()
    note = re.search(r" \(([^()]*does not reach[^()]*)\)$", text)
    if note:
        text = text[:note.start()]
    math = latex_math(text)
    return f"${math}$" + (f" ({note.group(1)})" if note else "")


def to_latex_handout(trace: Trace, decimals: int | None = None) -> str:
    """The booktabs table, then each pass's equations as itemized display math."""
    parts = [to_latex(trace, decimals)]
    for kind, key, lines in sections(trace, decimals):
        symbol = latex_math(key)
        if kind == "tangent":
            title = rf"Forward mode, tangents $v_i' = \partial v_i/\partial {symbol}$ (one pass per input)"
        else:
            title = (rf"Reverse mode, adjoints $\bar v_i = \partial {symbol}/\partial v_i$ as sums of edge "
                     "contributions (one pass per output)")
        items = "\n".join(rf"  \item {latex_equation(line)}" for line in lines)
        parts.append(f"\n\\paragraph{{{title}}}\n\\begin{{itemize}}\n{items}\n\\end{{itemize}}\n")
    return "".join(parts)


HANDOUT_WRITERS = {"markdown": to_markdown_handout, "latex": to_latex_handout, "csv": to_csv}
