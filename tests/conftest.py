"""Shared fixtures: the lecture's worked example, traced once."""

from __future__ import annotations

import pytest

from gradviz.sources.expr import trace_expression

LECTURE = "(exp(x1/x2) + x1/x2) * (x1/x2 - log(x2))"
LECTURE_AT = {"x1": 0.5, "x2": 1.0}


@pytest.fixture(scope="session")
def lecture_trace():
    """The lecture's f(x1, x2) at (0.5, 1), all passes."""
    return trace_expression(LECTURE, at=LECTURE_AT)
