"""gradviz: see automatic differentiation move, node by node, in the terminal.

From Python: ``gradviz.trace(...)`` (an expression, an nn.Module, a function, a spec or
script) and ``gradviz.watch(model, optimizer, run_dir=...)`` (monitor any training
loop). Both are imported on first use, so ``import gradviz`` loads neither torch,
textual nor graphviz.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["trace", "watch", "Traced", "Run", "__version__"]

if TYPE_CHECKING:
    from gradviz.api import Traced, trace
    from gradviz.watch import Run, watch

_LAZY = {"trace": "gradviz.api", "Traced": "gradviz.api", "watch": "gradviz.watch", "Run": "gradviz.watch"}


def __getattr__(name: str) -> Any:
    """Import the public API on first use (PEP 562)."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradviz' has no attribute {name!r}")
    import importlib

    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
