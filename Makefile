# The two commands the README starts with. Each does the whole set-up first
# (scripts/setup.sh: graphviz, tmux, pinned Python packages, gradviz), so each works
# on a fresh machine, and again and again (set-up skips what is already there).
PYTHON ?= python3

.PHONY: setup demo test bench

setup:
	bash scripts/setup.sh

demo: setup
	$(PYTHON) -m gradviz trace @samples/lecture.expr

test: setup
	$(PYTHON) -m pytest -q

bench: setup
	$(PYTHON) benchmarks/bench_trace_cold.py
