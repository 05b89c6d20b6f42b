"""The stepper's keys have one list, BINDINGS: the help rows and the intro are read from
it, and the README's key table must name exactly its keys."""

from __future__ import annotations

import re
from pathlib import Path

from textual.keys import format_key

from gradviz.tui.keys import key_rows, key_table, key_text
from gradviz.tui.screens.stepper import StepperScreen
from gradviz.tui.widgets.graph_pane import GraphPane

README = Path(__file__).resolve().parent.parent / "README.md"
BINDINGS = [*StepperScreen.BINDINGS, *GraphPane.BINDINGS]


def readme_key_table() -> list[tuple[str, str]]:
    """The rows of the key table in the README's stepper section."""
    section = README.read_text().split("## Step through it", 1)[1].split("\n## ", 1)[0]
    table = section.split("| key | does |", 1)[1].split("\n\n", 1)[0]
    rows = [line.strip("|").split("|") for line in table.splitlines() if line.startswith("| ") and "---" not in line]
    return [(keys.strip(), does.strip()) for keys, does in rows]


def test_every_key_is_documented_by_its_binding_or_a_twin():
    documented = {b.action for b in BINDINGS if b.tooltip}
    undocumented = [b.key for b in BINDINGS if not b.tooltip and b.action not in documented]
    assert undocumented == []


def test_readme_key_table_names_exactly_the_bound_keys():
    written = set()
    for keys, does in readme_key_table():  # a row may name a key in its text too (`esc`)
        written |= set(re.findall(r"`([^`]+)`", keys + does)) | set(re.findall(r"[←→]", keys))
    bound = {format_key(key.strip()) for b in BINDINGS for key in b.key.split(",")}
    # Each binding shows in the README by one of its keys (h for h,shift+left; + for plus,=).
    missing = [b.key for b in BINDINGS if not {format_key(k.strip()) for k in b.key.split(",")} & written]
    assert missing == []
    assert written - bound == set()


def test_help_rows_group_keys_by_what_they_do():
    rows = dict((what, keys) for keys, what in key_rows(BINDINGS))
    assert rows["first / last step"] == "home g / end G"
    assert rows["next / previous mode: values → tangents → adjoints"] == "m / M"
    assert rows[GraphPane.BINDINGS[0].tooltip] == "h / j / k / l"
    assert len(rows) == len({b.tooltip for b in BINDINGS if b.tooltip})
    assert key_text(StepperScreen.BINDINGS[0]) == "→"  # no key_display: the key, formatted


def test_the_docstring_and_table_list_every_key_group():
    table = key_table(key_rows(StepperScreen.BINDINGS))
    assert table.splitlines()[0].split() == ["←", "p", "/", "→", "n", "previous", "/", "next", "step",
                                             "(stepping", "back", "is", "exact)"]
    for keys, what in key_rows(StepperScreen.BINDINGS):
        assert f"{keys}" in StepperScreen.__doc__ and what in StepperScreen.__doc__
