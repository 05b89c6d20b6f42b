# The two commands the README starts with. Each does the whole set-up first
# (scripts/setup.sh: graphviz, tmux, pinned Python packages, gradviz), so each works
# on a fresh machine, and again and again (set-up skips what is already there).
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m gradviz trace @samples/lecture.expr

# Two worker processes (pytest-xdist), each taking whole test files (their module fixtures
# run once; tests/conftest.py makes each file a group, and the files that start
# torch.distributed jobs one group, so two such jobs never overlap): much of the suite waits
# on trainer subprocesses, torchrun, a browser or a terminal, and the other worker fills
# that time. TEST_WORKERS=0 runs it in one process.
TEST_WORKERS ?= 2

test: setup
	$(PYTHON) -m pytest -q -n $(TEST_WORKERS) --dist loadgroup

bench: setup
	$(PYTHON) benchmarks/bench_trace_cold.py
