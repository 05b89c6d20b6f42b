"""The import graph of gradviz's own modules, every import counted (the lazy ones inside
functions too): no circle, and no arrow from a lower layer up to a higher one."""

from __future__ import annotations

import ast
from pathlib import Path

import networkx as nx

PACKAGE = Path(__file__).resolve().parent.parent / "gradviz"

# Bottom to top; a module may import its own layer and those below. The top layer holds
# the front ends: the command line and the Python API (the package root hands it out;
# `Traced.step` opens the stepper as `gradviz step` does).
LAYERS = (
    ("gradviz.errors", "gradviz.core", "gradviz.penalty", "gradviz.optimizers", "gradviz.streams",
     "gradviz.textfit", "gradviz.budgets", "gradviz.files", "gradviz.processes", "gradviz.step_stats"),
    ("gradviz.sources", "gradviz.check", "gradviz.methods", "gradviz.rundir.paths", "gradviz.rundir.files",
     "gradviz.rundir.jsonl", "gradviz.rundir.heartbeat", "gradviz.rundir.status", "gradviz.rundir.control",
     "gradviz.rundir", "gradviz.draw", "gradviz.views",
     "gradviz.descent", "gradviz.landscape", "gradviz.train", "gradviz.watch"),
    ("gradviz.monitor", "gradviz.tui"),
    ("gradviz", "gradviz.api", "gradviz.commands", "gradviz.cli", "gradviz.__main__"),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PACKAGE.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> nx.DiGraph:
    """module → each gradviz module it imports, anywhere in its file."""
    paths = {_module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph = nx.DiGraph()
    graph.add_nodes_from(paths)
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join(package.split(".")[:len(package.split(".")) - node.level + 1] + [base]).strip(".")
                targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
            else:
                continue
            graph.add_edges_from((name, t) for t in targets if t in paths and t != name)
    return graph


def layer_of(module: str) -> int:
    """The layer of the longest prefix naming the module (gradviz.core.rules: gradviz.core's)."""
    matches = [(len(prefix), i) for i, layer in enumerate(LAYERS)
               for prefix in layer if module == prefix or module.startswith(prefix + ".")]
    return max(matches)[1]


def test_no_circle():
    assert list(nx.simple_cycles(import_graph())) == []


def test_no_import_points_up():
    graph = import_graph()
    assert layer_of("gradviz.core.rules") == 0 and layer_of("gradviz.tui.app") == 2 and layer_of("gradviz") == 3
    up = [(a, b) for a, b in graph.edges if layer_of(b) > layer_of(a)]
    assert up == []
