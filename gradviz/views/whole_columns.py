"""A table too wide for the width it is given, printed in parts of whole columns.

Rich fits a wide table by cutting its cells (`-3.88…`, `defin…`). `WholeColumns` prints it
whole where it fits; else as several tables, each repeating the first column (the row's
name) beside as many of the others as fit at their natural widths; a column that does not
fit beside the names is printed stacked: the row's name, then header and cell, wrapped at
words.
"""

from __future__ import annotations

import copy
import dataclasses

from rich.console import Console, ConsoleOptions, RenderResult
from rich.measure import Measurement
from rich.table import Table
from rich.text import Text

CONTINUED = " (continued)"
UNBOUNDED = 10_000  # cells: a width no column is narrowed to


class WholeColumns:
    """`table` as it is where its columns fit whole side by side, else in parts of whole columns."""

    def __init__(self, table: Table, keep: int = 1) -> None:
        self.table = table
        self.keep = keep  # the leading columns every part repeats: what names the row

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        for k, part in enumerate(self.parts(console, options)):
            if k:
                yield Text()
            yield part

    def __rich_measure__(self, console: Console, options: ConsoleOptions) -> Measurement:
        return Measurement.get(console, options, self.table)

    def parts(self, console: Console, options: ConsoleOptions) -> list[Table]:
        """The tables to print at `options.max_width`: the table itself where its columns fit
        at their natural widths, else its parts, each taking the columns that fit so."""
        if _fits(self.table, console, options):
            return [self.table]
        columns = list(range(len(self.table.columns)))
        names, rest = columns[:self.keep], columns[self.keep:]
        groups: list[list[int]] = []
        for column in rest:
            if groups and _fits(self._part(names + groups[-1] + [column], len(groups) - 1), console, options):
                groups[-1].append(column)
            else:
                groups.append([column])
        parts: list[Table] = []
        stacked: list[int] = []  # the columns of neighbouring groups that fit nowhere: one stacked table
        for group in groups:
            part = self._part(names + group, len(parts))
            if _fits(part, console, options):
                if stacked:
                    parts.append(self._stacked(stacked, len(parts)))
                    stacked = []
                    part = self._part(names + group, len(parts))
                parts.append(part)
            else:
                stacked += group
        if stacked:
            parts.append(self._stacked(stacked, len(parts)))
        for k, part in enumerate(parts):  # a caption speaks of the whole table: once, under its last part
            part.caption = self.table.caption if k == len(parts) - 1 else None
            part.caption_justify = self.table.caption_justify
        return parts

    def _part(self, columns: list[int], k: int) -> Table:
        """The table with only `columns`; the parts after the first say they continue it."""
        part = copy.copy(self.table)
        part.columns = [dataclasses.replace(self.table.columns[i], _index=j) for j, i in enumerate(columns)]
        if k and isinstance(part.title, (str, Text)) and part.title:
            part.title = part.title + CONTINUED
        return part

    def _stacked(self, group: list[int], k: int) -> Table:
        """The group's columns one under the other: per row its name, then each header and,
        indented below it, the cell."""
        table = self.table
        title = table.title if not k or not isinstance(table.title, (str, Text)) else table.title + CONTINUED
        stacked = Table(title=title, title_justify=table.title_justify, show_header=False, box=None,
                        pad_edge=False, show_edge=False)
        stacked.add_column()
        for row in range(table.row_count):
            stacked.add_row(Text(" ").join(_plain(table.columns[i]._cells[row]) for i in range(self.keep)))
            for i in group:
                stacked.add_row(Text("  ") + _plain(table.columns[i].header))
                stacked.add_row(Text("    ") + _plain(table.columns[i]._cells[row]))
        return stacked


def _fits(table: Table, console: Console, options: ConsoleOptions) -> bool:
    """Whether every column fits at its natural width (its widest cell). Rich narrows a table
    that does not by collapsing its widest column first, below its longest word if need be
    (a run's name as a header became `deep_mlp-2026120…`), so a table is printed only where
    rich need not narrow it; measured unbounded, as rich clamps a measure to the width given."""
    return Measurement.get(console, options.update_width(UNBOUNDED), table).maximum <= options.max_width


def _plain(cell: object) -> Text:
    return cell.copy() if isinstance(cell, Text) else Text(str(cell))
