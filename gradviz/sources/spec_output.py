"""Model outputs that are not one tensor: a tuple, list, dict or dataclass.

The spec's ``OUTPUT`` (an index or a name) says which element is the output; without it
the first tensor is taken, and :func:`output_note` says so for the report.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from gradviz.errors import SpecError


def output_note(model: Any) -> str | None:
    """What gradviz chose when the model's forward returns a tuple, dict or dataclass."""
    return getattr(type(model), "_gradviz_output_note", None)


def select_output(model: Any, path: Path, choice: int | str | None) -> Any:
    """The model, its forward changed to return one tensor where it returns a tuple, dict or
    dataclass: the element OUTPUT names, or the first tensor (recorded for output_note).

    The class is swapped for a subclass rather than the model wrapped in a new module, so
    module paths (fc1, encoder.0 …) stay as the spec wrote them, for fx and for the report."""
    from torch import Tensor

    cls = type(model)
    if getattr(cls, "_gradviz_selects_output", False):
        return model

    def forward(self: Any, *args: Any, **kwargs: Any) -> Any:
        result = cls.forward(self, *args, **kwargs)
        if isinstance(result, Tensor):  # the usual case, at the cost of one check per training step
            return result
        return _pick_output(result, path, choice, type(self))

    selected = type(cls.__name__, (cls,), {"forward": forward, "__module__": cls.__module__,
                                           "__qualname__": cls.__qualname__, "_gradviz_selects_output": True})
    model.__class__ = selected
    return model


def _pick_output(result: Any, path: Path, choice: int | str | None, cls: type) -> Any:
    import dataclasses

    import torch
    from torch.fx import Proxy

    def tensor_like(value: Any) -> bool:
        return isinstance(value, (torch.Tensor, Proxy))

    if tensor_like(result):
        return result
    if isinstance(result, (tuple, list)):
        kind, items = type(result).__name__, list(enumerate(result))
    elif isinstance(result, dict):
        kind, items = "dict", list(result.items())
    elif dataclasses.is_dataclass(result) and not isinstance(result, type):
        kind, items = "dataclass", [(f.name, getattr(result, f.name)) for f in dataclasses.fields(result)]
    else:
        raise SpecError(f"{path}: the model's forward returned a {type(result).__name__}; "
                        "it must return a tensor, or a tuple, dict or dataclass holding one")
    if choice is not None:
        chosen = [(key, value) for key, value in items if key == choice]
        if not chosen or not tensor_like(chosen[0][1]):
            keys = ", ".join(repr(key) for key, _ in items) or "none"
            raise SpecError(f"{path}: OUTPUT = {choice!r}, but the model's forward returned a {kind} "
                            f"whose elements are {keys}, and that one is not a tensor")
        key, value = chosen[0]
        how = f"OUTPUT = {key!r} names {key!r}"
    else:
        tensors = [(key, value) for key, value in items if tensor_like(value)]
        if not tensors:
            raise SpecError(f"{path}: the model's forward returned a {kind} with no tensor in it")
        key, value = tensors[0]
        name = f"element {key}" if isinstance(key, int) else repr(key)
        how = f"gradviz takes its first tensor, {name}, as the output (set OUTPUT in the spec to choose another)"
    cls._gradviz_output_note = f"the model's forward returns a {kind}; {how}"
    return value
