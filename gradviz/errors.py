"""Every error gradviz shows a user: one base class, specific subclasses, one-line messages."""

from __future__ import annotations


class GradvizError(Exception):
    """A failure caused by the user's input; the CLI prints it as one line and exits 2.

    `source` and `column` (0-based), when given, let the CLI print the offending line
    with a caret under the bad column.
    """

    exit_code = 2

    def __init__(self, message: str, *, source: str | None = None, column: int | None = None):
        super().__init__(message)
        self.message = message
        self.source = source
        self.column = column

    def render(self) -> str:
        """The message, plus the source line and a caret where a column is known."""
        text = f"gradviz: error: {self.message}"
        if self.source is not None and self.column is not None:
            line = self.source.replace("\t", " ")
            text += f"\n  {line}\n  {' ' * max(0, min(self.column, len(line)))}^"
        return text


class ExpressionError(GradvizError):
    """The expression text is not valid gradviz: syntax, unknown names, unsupported forms."""


class BindingError(GradvizError):
    """A value or shape given with --at / --shape is malformed, missing or absurd."""


class ShapeError(GradvizError):
    """Two tensors do not fit together at a node."""


class MissingRuleError(GradvizError):
    """An op has no derivative rule; names the op (a bug in gradviz, not in the input)."""


class SpecError(GradvizError):
    """A model spec file is missing a name, fails on import, or returns the wrong thing."""


class ExportError(GradvizError):
    """An export cannot be written: no `dot`, bad path, unknown format, step out of range."""


class TrainingError(GradvizError):
    """A training run cannot start or must stop: bad device, bad settings, OOM, NaN."""


class MemoryBudgetError(GradvizError):
    """A trace would need more memory than --max-memory; names the node that makes it big."""


class OutputError(GradvizError):
    """The output cannot be written: standard output closed, the disk full, a pipe gone."""


class UsageError(GradvizError, ValueError):
    """A Python API call with an argument of the wrong kind (a ValueError too, for callers
    that catch those)."""


class NonFiniteError(TrainingError):
    """A training run's loss or gradient went NaN/Inf: exit status 1, a real finding."""

    exit_code = 1
