"""One budget for every command that computes: the work, estimated before it starts.

Each command states its work as a product of factors, each with the option that sets it
(steps × paths × nodes of f for `descent`; epochs × updates for `batches`; frames × pixels
for `--gif`). Past the command's limit it is refused at once, in one line that names the
biggest factor and the option to lower, instead of running for hours or filling memory.
The limits are a few tens of seconds of work on the 2-core test machine (measured per
command where the limit is defined). ``trace`` keeps its own, finer estimate
(core/budget.py: bytes per node, multiply-adds per product, with --max-memory/--max-work).
"""

from __future__ import annotations

import math
import signal
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, Callable, Iterator, Sequence

from gradviz.errors import GradvizError


class WorkBudgetError(GradvizError):
    """A command would take far more work or memory than it is for; names what makes it big."""


@dataclass(frozen=True)
class Factor:
    """One factor of a command's work: what it counts, how many, and the option that sets it."""

    what: str
    count: float
    option: str


def check_work(doing: str, factors: Sequence[Factor], limit: float, unit: str) -> float:
    """The product of the factors; WorkBudgetError when it passes limit (checked before any work)."""
    total = math.prod(max(1.0, float(f.count)) for f in factors)
    if total > limit:
        biggest = max(factors, key=lambda f: f.count)
        product = " × ".join(f"{f.count:,.0f} {f.what}" for f in factors)
        raise WorkBudgetError(f"{doing} would take about {total:.1e} {unit} ({product}), over the limit of "
                              f"{limit:.0e}; the biggest factor is {biggest.count:,.0f} {biggest.what}: lower {biggest.option}")
    return total


class _OutOfTime(BaseException):
    """Raised by the alarm inside a time-bounded block (a BaseException: library code that
    catches Exception cannot swallow it)."""


@contextmanager
def time_bound(seconds: float, error: Callable[[], Exception]) -> Iterator[None]:
    """Stop the block after `seconds` with error() (work whose cost cannot be known before it
    runs, such as SymPy simplifying a derivative). Main thread only; elsewhere no bound."""
    if not 0 < seconds < 1e6 or not hasattr(signal, "setitimer") or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        raise _OutOfTime()

    previous_handler = signal.signal(signal.SIGALRM, alarm)
    previous_timer = signal.setitimer(signal.ITIMER_REAL, seconds)
    started = time.monotonic()
    try:
        yield
    except _OutOfTime:
        raise error() from None
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous_handler)
        if previous_timer[0] > 0:  # an outer bound (a spec's phase) keeps what is left of its time
            signal.setitimer(signal.ITIMER_REAL, max(1e-3, previous_timer[0] - (time.monotonic() - started)))
