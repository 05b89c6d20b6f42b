#!/usr/bin/env bash
# One-time set-up for a fresh machine: system tools, Python dependencies, gradviz itself.
# Safe to run again: each step is skipped when already satisfied.
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
# the browser the HTML stepper's tests drive (Playwright launches this one; it downloads none)
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v dot  >/dev/null 2>&1 || need_apt+=(graphviz)
command -v tmux >/dev/null 2>&1 || need_apt+=(tmux)
# pdflatex compiles the LaTeX handout in the tests: ~48 MB, about 30 s without recommends.
need_tex=()
command -v pdflatex >/dev/null 2>&1 || need_tex+=(texlive-latex-base texlive-latex-recommended)
if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_tex[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ]; then
        SUDO=""
    elif command -v sudo >/dev/null 2>&1; then
        SUDO="sudo"
    else
        if [ ${#need_apt[@]} -gt 0 ]; then
            echo "setup: ${need_apt[*]} missing; install them as root (apt-get install ${need_apt[*]})" >&2
            exit 1
        fi
        echo "setup: pdflatex missing (apt-get install ${need_tex[*]}): the LaTeX compile test will be skipped" >&2
        need_tex=()
    fi
    if [ ${#need_apt[@]} -gt 0 ] || [ ${#need_tex[@]} -gt 0 ]; then
        echo "setup: installing ${need_apt[*]} ${need_tex[*]} with apt-get" >&2
        $SUDO apt-get update -qq
    fi
    if [ ${#need_apt[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
    fi
    if [ ${#need_tex[@]} -gt 0 ]; then
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need_tex[@]}" >/dev/null
    fi
fi

PY=${PYTHON:-python3}
# torch is pinned to the exact version whose CPU wheel this machine kind carries;
# an unpinned torch would pull gigabytes of CUDA builds.
if ! "$PY" -c 'import gradviz, numpy, rich, textual, networkx, graphviz, torch, hypothesis, pytest_textual_snapshot, xdist, nbclient, nbformat, ipykernel, tensorboard, sympy, PIL, playwright, textual_serve, pyte' >/dev/null 2>&1 \
   || [ pyproject.toml -nt .setup-done ] || [ requirements-dev.txt -nt .setup-done ]; then
    "$PY" -m pip install -q -r requirements-dev.txt
    # gradviz with its `images` extra (Pillow: PNG and GIF files); every pin is already met above
    "$PY" -m pip install -q -e '.[images]'
    touch .setup-done
fi
