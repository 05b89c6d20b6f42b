"""Standard output as the commands need it: open, writable, and able to carry the glyphs.

A closed stdout (`>&-`), a full disk (`> /dev/full`) and a terminal whose encoding is not
UTF-8 (`PYTHONIOENCODING=ascii`, a C locale) are each one line and a non-zero exit; text
that the encoding cannot carry is written with ASCII stand-ins (σ → sigma, v̄ → vbar,
━ → -) instead of failing.
"""

from __future__ import annotations

import codecs
import errno
import os
import re
import sys
import unicodedata

from gradviz.errors import OutputError

HANDLER = "gradviz-ascii"
PROBE = "━│·σv̄∂→"  # glyphs every report uses
# Output failures, as opposed to a file the command was asked to read.
OUTPUT_ERRNOS = {errno.ENOSPC, errno.EBADF, errno.EPIPE, errno.EIO, errno.EDQUOT, errno.EFBIG}
STAND_INS = {
    "\u0304": "bar", "·": "*", "−": "-", "–": "-", "—": "--", "…": "...", "×": "x", "÷": "/",
    "∂": "d", "√": "sqrt", "Σ": "sum", "∑": "sum", "‖": "||", "⟨": "<", "⟩": ">", "≥": ">=", "≤": "<=",
    "≈": "~", "→": "->", "←": "<-", "↑": "^", "↓": "v", "▼": "v", "▲": "^", "▶": ">", "◀": "<",
    "ᵀ": "^T", "²": "^2", "³": "^3", "∞": "inf", "✓": "ok", "✗": "x", "█": "#", "▓": "#", "▒": ":",
    "░": ".", "•": "*", "●": "o", "○": "o", "∇": "grad ", "θ": "theta", "η": "eta", "λ": "lambda",
    "σ": "sigma", "┼": "+", "⁻": "-", "¹": "^1",
    # The methods and layers views: proportional to, Hadamard product, cube root, two thirds
    # (NFKD would make ⅔ a bare "23").
    "∝": "~", "⊙": ".*", "∛": "cbrt ", "⅔": "(2/3)",
}


def _stand_in(char: str) -> str:
    if char in STAND_INS:
        return STAND_INS[char]
    name = unicodedata.name(char, "")
    if name.startswith(("BOX DRAWINGS", "HEAVY", "LIGHT")):
        if " AND " in name:  # corners, tees and crossings
            return "+"
        if "HORIZONTAL" in name:
            return "-"
        if "VERTICAL" in name:
            return "|"
        return "+"
    if name.startswith("GREEK"):
        return name.split()[-1].lower()
    plain = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
    return plain or "?"


def _ascii_errors(exc: UnicodeError) -> tuple[str, int]:
    """A codecs error handler: each character the encoding refused, as its ASCII stand-in."""
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    return "".join(_stand_in(c) for c in exc.object[exc.start:exc.end]), exc.end


codecs.register_error(HANDLER, _ascii_errors)


def _can_carry(stream: object) -> bool:
    encoding = getattr(stream, "encoding", None) or "ascii"
    try:
        PROBE.encode(encoding)
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def prepare_streams() -> None:
    """Refuse a closed stdout; make stdout and stderr fall back to ASCII stand-ins."""
    if sys.stdout is None:
        raise OutputError("standard output is closed; nothing could be shown (redirect it to a file instead)")
    for stream in (sys.stdout, sys.stderr):
        if stream is not None and not _can_carry(stream) and hasattr(stream, "reconfigure"):
            stream.reconfigure(errors=HANDLER)


def is_output_error(exc: OSError) -> bool:
    """Whether an OSError is standard output failing (a full disk, a closed descriptor)."""
    return exc.errno in OUTPUT_ERRNOS


def finish_output() -> None:
    """Flush stdout now, so a full disk is reported as an error instead of lost at exit."""
    if sys.stdout is not None:
        try:
            sys.stdout.flush()
        except OSError as exc:
            raise output_failed(exc) from None


def output_failed(exc: OSError) -> OutputError:
    """The one-line error for a failed write, after silencing stdout so the interpreter's
    own flush at exit does not fail again with a traceback-like 'Exception ignored'."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, AttributeError, ValueError):
        pass
    return OutputError(f"cannot write the output: {exc.strerror or exc}")


def terminal_problem() -> str | None:
    """Why a full-screen app cannot run here (stdin or stdout not a terminal), or None."""
    for name, stream in (("standard output", sys.stdout), ("standard input", sys.stdin)):
        try:
            if stream is None or not stream.isatty():
                return f"{name} is not a terminal"
        except (ValueError, OSError):
            return f"{name} is closed"
    return None


class TrimmedLines:
    """A text stream that drops the spaces at the end of each line written through it: rich
    pads a table's title and cells to the table's width, which a file or a pipe should not keep."""

    def __init__(self, stream) -> None:
        self.stream = stream
        self._spaces = ""  # spaces at the end of the last write: kept only if more of that line follows

    def write(self, text: str) -> int:
        text = self._spaces + text
        body = text.rstrip(" ")
        self._spaces = text[len(body):]
        self.stream.write(re.sub(r" +\n", "\n", body))
        return len(text)

    def __getattr__(self, name: str):
        return getattr(self.stream, name)  # flush, isatty, fileno, encoding: the stream's own


def printed_stdout():
    """Standard output for a report: as it is on a terminal; elsewhere (a pipe, a file) without
    trailing spaces."""
    try:
        terminal = sys.stdout.isatty()
    except (ValueError, OSError):
        terminal = False
    return sys.stdout if terminal else TrimmedLines(sys.stdout)


def unicode_ok() -> bool:
    """Whether stdout carries the box-drawing and maths glyphs (else ASCII stand-ins are used)."""
    return sys.stdout is not None and _can_carry(sys.stdout)
