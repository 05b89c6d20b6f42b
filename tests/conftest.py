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


# Under `make test`'s two workers (pytest-xdist, --dist loadgroup) each file is one group, so
# its module fixtures start once; the files that start several torch.distributed processes
# (torchrun, gloo ranks on localhost, a killed peer) are one group together, so two such
# jobs never run at once: one CI run under two workers saw an FSDP job abort and a dead-peer
# test time out while both ran side by side; each passed alone and on its own worker.
DISTRIBUTED_FILES = {"test_train_process.py", "test_watch.py", "test_train_fsdp.py", "test_stats_phases_fsdp.py",
                     "test_histograms_fsdp.py"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        name = item.path.name
        item.add_marker(pytest.mark.xdist_group("distributed" if name in DISTRIBUTED_FILES else name))
