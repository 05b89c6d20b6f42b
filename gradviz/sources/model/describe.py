"""How a model's nodes read: definitions (`fc1 = Linear(2→8)(x)`) and local-derivative formulas.

Only text: the numbers always come from the captured tensors. torch is not imported here.
"""

from __future__ import annotations

import functools
import inspect
import operator
import string
from typing import Any, Callable

from gradviz.core.graph import canonical_op
from gradviz.core.rules import RULES
from gradviz.sources.model.program import Ref

INFIX = {
    operator.add: "{0} + {1}", operator.sub: "{0} − {1}", operator.mul: "{0}·{1}",
    operator.truediv: "{0}/{1}", operator.matmul: "{0} @ {1}", operator.neg: "−{0}",
    operator.pow: "{0}^{1}", operator.getitem: "{0}[{1}]", operator.floordiv: "{0} // {1}",
}
# Names that read better as symbols, as the rules write them: sigmoid → σ.
SYMBOLS = {name: rule.symbol for name, rule in RULES.items() if rule.symbol not in ("", name)}
# torch's names for rules' ops where they differ (operator.truediv is the rules' div).
ALIASES = {"truediv": "div"}


def function_name(fn: Callable[..., Any]) -> str:
    """A function's short name: torch.sigmoid → 'sigmoid', aten.addmm.default → 'addmm'."""
    packet = getattr(fn, "overloadpacket", None)  # aten OpOverload
    if packet is not None:
        return packet.__name__
    return getattr(fn, "__name__", type(fn).__name__)


def module_summary(module: Any) -> str:
    """A module in a few characters: Linear(2→8), Conv2d(1→8, 3×3), LayerNorm(32), Dropout(p=0.1)."""
    name = type(module).__name__
    if hasattr(module, "in_features") and hasattr(module, "out_features"):
        return f"{name}({module.in_features}→{module.out_features})"
    if hasattr(module, "in_channels") and hasattr(module, "kernel_size"):
        kernel = "×".join(map(str, module.kernel_size))
        return f"{name}({module.in_channels}→{module.out_channels}, {kernel})"
    if hasattr(module, "normalized_shape"):
        return f"{name}({'×'.join(map(str, module.normalized_shape))})"
    if hasattr(module, "num_embeddings"):
        return f"{name}({module.num_embeddings}, {module.embedding_dim})"
    if hasattr(module, "p") and isinstance(module.p, float):
        return f"{name}(p={module.p:g})"
    if hasattr(module, "kernel_size"):
        return f"{name}({module.kernel_size})"
    extra = module.extra_repr() if hasattr(module, "extra_repr") else ""
    if extra and len(extra) <= 24:
        return f"{name}({extra})"
    return name


def arg_text(obj: Any, labels: Callable[[int], str]) -> str:
    """One argument as text; a Ref reads as the label (or inline text) of its step."""
    if type(obj) is Ref:
        return labels(obj.index)
    if isinstance(obj, bool) or obj is None:
        return str(obj)
    if isinstance(obj, float):
        return f"{obj:g}"
    if isinstance(obj, (tuple, list)):
        return "[" + ", ".join(arg_text(item, labels) for item in obj) + "]"
    if isinstance(obj, slice):
        parts = [arg_text(p, labels) if p is not None else "" for p in (obj.start, obj.stop)]
        return ":".join(parts) + (f":{arg_text(obj.step, labels)}" if obj.step is not None else "")
    if obj is Ellipsis:
        return "..."
    if isinstance(obj, dict):
        return "{" + ", ".join(f"{k}: {arg_text(v, labels)}" for k, v in obj.items()) + "}"
    text = str(obj)
    return text if len(text) <= 24 else type(obj).__name__


@functools.lru_cache(maxsize=256)
def _defaults(fn: Any) -> dict[str, Any]:
    try:
        parameters = inspect.signature(fn).parameters.values()
    except (TypeError, ValueError):
        return {}
    return {p.name: p.default for p in parameters if p.default is not inspect.Parameter.empty}


def without_defaults(fn: Any, kwargs: dict) -> dict:
    """Keyword arguments that differ from fn's defaults (fx spells out every one of them)."""
    try:
        defaults = _defaults(fn)
    except TypeError:  # unhashable callables have no cached signature
        return kwargs
    shown = {}
    for key, value in kwargs.items():
        default = defaults.get(key, inspect.Parameter.empty)
        if default is inspect.Parameter.empty or type(default) is not type(value) or default != value:
            shown[key] = value
    return shown


def call_text(name: str, args: tuple, kwargs: dict, labels: Callable[[int], str], fn: Any = None) -> str:
    """`name(a, b, k=v)`, or the operator's infix form (`a + b`, `x[0]`); default keywords left out."""
    if fn is not None:
        kwargs = without_defaults(fn, kwargs)
    if fn in INFIX and not kwargs:
        template = INFIX[fn]
        texts = [arg_text(a, labels) for a in args]
        if fn is operator.getitem and isinstance(args[1], tuple):
            texts[1] = ", ".join(arg_text(a, labels) for a in args[1])
        return template.format(*texts)
    parts = [arg_text(a, labels) for a in args] + [f"{k}={arg_text(v, labels)}" for k, v in kwargs.items()]
    shown = SYMBOLS.get(name, name)
    return f"{shown}({', '.join(parts)})"


def method_text(name: str, args: tuple, kwargs: dict, labels: Callable[[int], str]) -> str:
    """`x.transpose(1, 2)`: a tensor method call."""
    parts = [arg_text(a, labels) for a in args[1:]] + [f"{k}={arg_text(v, labels)}" for k, v in kwargs.items()]
    return f"{arg_text(args[0], labels)}.{name}({', '.join(parts)})"


class _Unknown(dict):
    """Format fields the caller does not know read as their names: mask/(1−{p}) → mask/(1−p)."""

    def __missing__(self, key: str) -> str:
        return key


def partial_formulas(op: str, out: str, inputs: list[str], **fields: str) -> tuple[str, ...] | None:
    """One ∂out/∂input formula per tensor input: the rules' own, for their elementwise ops."""
    name = canonical_op(op)
    rule = RULES.get(ALIASES.get(name, name))
    if rule is None or not rule.elementwise or len(rule.partials) != len(inputs):
        return None
    return tuple(string.Formatter().vformat(f, inputs, _Unknown(out=out, **fields)) for f in rule.partials)


def linear_partials(x: str, weight: str, bias: str | None) -> tuple[str, ...]:
    """y = x·Wᵀ + b, in the usual shorthand: x̄ = ȳ·W, W̄ = ȳᵀ·x, b̄ = Σ_batch ȳ."""
    return (weight, x) + (("1",) if bias else ())
