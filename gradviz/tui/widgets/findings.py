"""The findings list: what model tracing flagged (NaN, vanishing gradients…), selectable."""

from __future__ import annotations

from textual.content import Content
from textual.message import Message
from textual.widgets import OptionList
from textual.widgets.option_list import Option

from gradviz.core.findings import find_issues


def load_findings(trace) -> list:
    """gradviz.core.findings.find_issues(trace), as a list."""
    return list(find_issues(trace))


class FindingsList(OptionList):
    """One line per finding; choosing one selects its node."""

    class Chosen(Message):
        """A finding was chosen: select `node`."""

        def __init__(self, node: int) -> None:
            super().__init__()
            self.node = node

    def __init__(self, trace, findings: list, *, id: str | None = None) -> None:
        self.nodes = [getattr(f, "node", None) for f in findings]
        options = []
        for f in findings:
            node = getattr(f, "node", None)
            label = trace.graph.nodes[node].label if isinstance(node, int) else str(node or "")
            # Content, not a str: Textual reads a str as markup and drops what looks like a tag ([a > 0]).
            options.append(Option(Content(f"{getattr(f, 'kind', '?')}: {label}: {getattr(f, 'message', f)}")))
        super().__init__(*options, id=id)

    def on_option_list_option_selected(self, event: OptionList.OptionSelected) -> None:
        event.stop()
        node = self.nodes[event.option_index]
        if isinstance(node, int):
            self.post_message(self.Chosen(node))
