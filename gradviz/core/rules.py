"""The op-rules table: one entry per primitive, the single source of truth for the math.

Each rule knows how to evaluate its op, its vector-Jacobian product per input (reverse
mode: the edge term v̄_j·∂v_j/∂v_i), its Jacobian-vector product per input (forward
mode), and its text forms: the definition (`exp({0})`) and one local-derivative formula
per input (`e^{{{0}}}`), where {0}, {1} are the input labels and {out} the node's own.
It also names what the expression parser calls the op (`names`, aliases included) and
which literal option it takes, and holds torch's own version of the op (`oracle`), a
function of the torch module so that core never imports torch; likewise its form on
scalar SymPy expressions (`sympy`, given the sympy module; `branch` names a condition that
stops SymPy), whether its output is one number (`scalar_out`), for a one-input elementwise
op its second derivative (`second`), and for a layer's activation its derivative in the
lecture's notation (`activation`). Every field is given where the entry is written: nothing
patches the table afterwards. The parser, the torch oracle (`gradviz.check`), the model
traces' formulas, `gradviz methods`, the memory budget and the layers view all read it.

Elementwise ops give their local derivatives once (`derivs`); vjp and jvp follow from
them. The others spell out vjp and jvp. Broadcasting is undone by the passes
(`unbroadcast`), so a vjp may return a gradient in the output's broadcast shape.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Mapping

import numpy as np

from gradviz.errors import MissingRuleError

Array = np.ndarray
Args = tuple[Array, ...]
Attrs = Mapping[str, Any]
# vjp(g, out, args, attrs) -> contribution to one input; jvp(t, out, args, attrs) likewise.
EdgeFn = Callable[[Array, Array, Args, Attrs], Array]


@dataclass(frozen=True)
class Rule:
    """How one primitive evaluates, differentiates and reads."""

    name: str
    arity: int
    evaluate: Callable[[Args, Attrs], Array]
    vjps: tuple[EdgeFn, ...]
    jvps: tuple[EdgeFn, ...]
    definition: str
    partials: tuple[str, ...]
    derivs: Callable[[Args, Array, Attrs], tuple[Array, ...]] | None = None
    # Non-elementwise ops: each input's share of the tangent, e.g. "{0}' @ {1}"; their
    # partials are then written as vector-Jacobian products in v̄ ("v̄ @ {1}ᵀ").
    tangent_forms: tuple[str, ...] = ()
    # What the expression parser calls it: `exp(x)`, `ln(x)`; none for operators (a + b).
    names: tuple[str, ...] = ()
    # The one literal option the parser takes, by keyword or after the tensors: sum(x, axis=0).
    option: str | None = None
    # Given the torch module, torch's version: called with the inputs and the node's attrs.
    oracle: Callable[[Any], Callable[..., Any]] | None = None
    # Given the sympy module, the op on scalar SymPy expressions (methods' closed form);
    # None where there is none (dropout: a random mask). Core never imports sympy.
    sympy: Callable[[Any], Callable[..., Any]] | None = None
    # A branch's condition (`x > 0`): on a symbol it has no truth value, and SymPy stops.
    branch: str | None = None
    # Whatever the inputs' shapes, the output is one number (a norm, a mean loss).
    scalar_out: bool = False
    # A one-input elementwise op's second derivative ∂²v/∂x² (args, out, attrs) -> array;
    # 0 where the first derivative is piecewise constant (relu, abs), as torch's double
    # backward takes it. None for ops of two inputs and the rest.
    second: Callable[[Args, Array, Attrs], Array] | None = None
    # As a layer's activation (the layers view): act'(z) in the lecture's notation, {out}
    # the layer's output and {0} its input z. None for ops that are no activation.
    activation: str | None = None

    @property
    def symbol(self) -> str:
        """How the definition writes the op's name: 'σ' for sigmoid; '' for an operator (a + b)."""
        name, paren, _ = self.definition.partition("(")
        return name if paren else ""

    @property
    def elementwise(self) -> bool:
        """True when the local Jacobian is diagonal, so ∂v_j/∂v_i is an array of numbers."""
        return self.derivs is not None


RULES: dict[str, Rule] = {}


def rule_for(op: str) -> Rule:
    """The rule of `op`; a missing rule fails loudly, naming the op."""
    try:
        return RULES[op]
    except KeyError:
        raise MissingRuleError(f"no derivative rule for op {op!r}") from None


def unbroadcast(grad: Array, shape: tuple[int, ...]) -> Array:
    """Sum `grad` over the axes broadcasting added or stretched, back to `shape`."""
    grad = np.asarray(grad)
    while grad.ndim > len(shape):
        grad = grad.sum(axis=0)
    for axis, size in enumerate(shape):
        if size == 1 and grad.shape[axis] != 1:
            grad = grad.sum(axis=axis, keepdims=True)
    return grad.reshape(shape)


# A scalar form (`sympy`) takes a branch as a program takes it, `x if x > 0 else 0`: on a
# symbol the condition has no truth value and bool() raises TypeError, where symbolic
# differentiation stops. On scalars the reductions, the transpose and matmul reduce to
# their argument or a product.
def _when(condition: Any, then: Any, other: Any) -> Any:
    return then if condition else other


def _elementwise(name: str, arity: int, evaluate, derivs, definition: str, partials: tuple[str, ...], *,
                 names: tuple[str, ...] = (), option: str | None = None, oracle=None, sympy=None,
                 branch: str | None = None, second=None, activation: str | None = None) -> None:
    def vjp(i: int) -> EdgeFn:
        return lambda g, out, args, attrs: g * derivs(args, out, attrs)[i]

    def jvp(i: int) -> EdgeFn:
        return lambda t, out, args, attrs: t * derivs(args, out, attrs)[i]

    RULES[name] = Rule(
        name, arity, evaluate,
        tuple(vjp(i) for i in range(arity)), tuple(jvp(i) for i in range(arity)),
        definition, partials, derivs, names=names, option=option, oracle=oracle, sympy=sympy, branch=branch,
        second=second, activation=activation,
    )


def _rule(name: str, arity: int, evaluate, vjps, jvps, definition: str, partials: tuple[str, ...],
          tangent_forms: tuple[str, ...], *, names: tuple[str, ...] = (), option: str | None = None,
          oracle=None, sympy=None, branch: str | None = None, scalar_out: bool = False) -> None:
    RULES[name] = Rule(name, arity, evaluate, tuple(vjps), tuple(jvps), definition, partials, None, tangent_forms,
                       names, option, oracle, sympy, branch, scalar_out)


def _one(x: Array) -> Array:
    return np.ones_like(x)


def _sigmoid(x: Array) -> Array:
    # Two branches keep exp() from overflowing for large |x|.
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e))


def _ties(a: Array, b: Array, wins: Array) -> Array:
    # Matches torch.maximum/minimum: a tie splits the gradient in half.
    return np.where(a == b, 0.5, np.where(wins, 1.0, 0.0)).astype(np.result_type(a, b))


# --- arithmetic -------------------------------------------------------------------------
_elementwise("add", 2, lambda a, k: a[0] + a[1], lambda a, o, k: (_one(o), _one(o)),
             "{0} + {1}", ("1", "1"), oracle=lambda torch: torch.add,
             sympy=lambda sp: lambda a, b: a + b)
_elementwise("sub", 2, lambda a, k: a[0] - a[1], lambda a, o, k: (_one(o), -_one(o)),
             "{0} − {1}", ("1", "−1"), oracle=lambda torch: torch.sub,
             sympy=lambda sp: lambda a, b: a - b)
_elementwise("mul", 2, lambda a, k: a[0] * a[1], lambda a, o, k: (a[1] * _one(o), a[0] * _one(o)),
             "{0}·{1}", ("{1}", "{0}"), oracle=lambda torch: torch.mul,
             sympy=lambda sp: lambda a, b: a * b)
_elementwise("div", 2, lambda a, k: a[0] / a[1],
             lambda a, o, k: (_one(o) / a[1], -a[0] / a[1] ** 2),
             "{0}/{1}", ("1/{1}", "−{0}/{1}²"), oracle=lambda torch: torch.div,
             sympy=lambda sp: lambda a, b: a / b)
def _pow_derivs(a: Args, o: Array, k: Attrs) -> tuple[Array, Array]:
    # As torch: x**0 has derivative 0 even at x = 0, and the exponent's partial
    # x**y·ln x is taken as 0 where x = 0 and y >= 0.
    base, exponent = a
    d_base = np.where(exponent == 0, 0.0, exponent * base ** (exponent - 1))
    d_exponent = np.where((base == 0) & (exponent >= 0), 0.0, o * np.log(base))
    return d_base, d_exponent


_elementwise("pow", 2, lambda a, k: a[0] ** a[1], _pow_derivs,
             "{0}^{1}", ("{1}·{0}^({1}−1)", "{0}^{1}·ln {0}"), oracle=lambda torch: torch.pow,
             sympy=lambda sp: lambda a, b: a ** b)
_elementwise("neg", 1, lambda a, k: -a[0], lambda a, o, k: (-_one(o),), "−{0}", ("−1",),
             oracle=lambda torch: torch.neg, sympy=lambda sp: lambda a: -a, second=lambda a, o, k: np.zeros_like(o))

# --- elementary functions ---------------------------------------------------------------
_elementwise("exp", 1, lambda a, k: np.exp(a[0]), lambda a, o, k: (o,), "exp({0})", ("e^{{{0}}}",),
             names=("exp",), oracle=lambda torch: torch.exp, sympy=lambda sp: sp.exp, second=lambda a, o, k: o)
_elementwise("log", 1, lambda a, k: np.log(a[0]), lambda a, o, k: (1 / a[0],), "log({0})", ("1/{0}",),
             names=("log", "ln"), oracle=lambda torch: torch.log, sympy=lambda sp: sp.log,
             second=lambda a, o, k: -1 / (a[0] * a[0]))
_elementwise("sqrt", 1, lambda a, k: np.sqrt(a[0]), lambda a, o, k: (0.5 / o,), "sqrt({0})",
             ("1/(2·√{0})",), names=("sqrt",), oracle=lambda torch: torch.sqrt, sympy=lambda sp: sp.sqrt,
             second=lambda a, o, k: -0.25 / (o * a[0]))
_elementwise("abs", 1, lambda a, k: np.abs(a[0]), lambda a, o, k: (np.sign(a[0]),), "abs({0})",
             ("sign({0})",), names=("abs",), oracle=lambda torch: torch.abs,
             sympy=lambda sp: lambda a: _when(a >= 0, a, -a), branch="x ≥ 0", second=lambda a, o, k: np.zeros_like(o))
_elementwise("sin", 1, lambda a, k: np.sin(a[0]), lambda a, o, k: (np.cos(a[0]),), "sin({0})",
             ("cos({0})",), names=("sin",), oracle=lambda torch: torch.sin, sympy=lambda sp: sp.sin,
             second=lambda a, o, k: -o)
_elementwise("cos", 1, lambda a, k: np.cos(a[0]), lambda a, o, k: (-np.sin(a[0]),), "cos({0})",
             ("−sin({0})",), names=("cos",), oracle=lambda torch: torch.cos, sympy=lambda sp: sp.cos,
             second=lambda a, o, k: -o)
_elementwise("tanh", 1, lambda a, k: np.tanh(a[0]), lambda a, o, k: (1 - o * o,), "tanh({0})",
             ("1 − {out}²",), names=("tanh",), oracle=lambda torch: torch.tanh, sympy=lambda sp: sp.tanh,
             second=lambda a, o, k: -2 * o * (1 - o * o), activation="1 − {out}²")
_elementwise("sigmoid", 1, lambda a, k: _sigmoid(a[0]), lambda a, o, k: (o * (1 - o),),
             "σ({0})", ("{out}·(1 − {out})",), names=("sigmoid",), oracle=lambda torch: torch.sigmoid,
             sympy=lambda sp: lambda a: 1 / (1 + sp.exp(-a)), second=lambda a, o, k: o * (1 - o) * (1 - 2 * o),
             activation="{out}(1 − {out})")
_elementwise("relu", 1, lambda a, k: np.maximum(a[0], 0),
             lambda a, o, k: ((a[0] > 0).astype(o.dtype),), "relu({0})", ("[{0} > 0]",),
             names=("relu",), oracle=lambda torch: torch.relu, sympy=lambda sp: lambda a: _when(a > 0, a, sp.Integer(0)),
             branch="x > 0", second=lambda a, o, k: np.zeros_like(o), activation="[{0} > 0]")
_elementwise("softplus", 1, lambda a, k: np.logaddexp(0, a[0]), lambda a, o, k: (_sigmoid(a[0]),),
             "softplus({0})", ("σ({0})",), names=("softplus",),
             oracle=lambda torch: lambda x: torch.nn.functional.softplus(x, threshold=1e9),
             sympy=lambda sp: lambda a: sp.log(1 + sp.exp(a)),
             second=lambda a, o, k: _sigmoid(a[0]) * (1 - _sigmoid(a[0])), activation="σ({0})")
_elementwise("maximum", 2, lambda a, k: np.maximum(a[0], a[1]),
             lambda a, o, k: (_ties(a[0], a[1], a[0] > a[1]), _ties(a[0], a[1], a[1] > a[0])),
             "max({0}, {1})", ("[{0} ≥ {1}]", "[{1} ≥ {0}]"), names=("max",),
             oracle=lambda torch: torch.maximum, sympy=lambda sp: lambda a, b: _when(a >= b, a, b), branch="a ≥ b")
_elementwise("minimum", 2, lambda a, k: np.minimum(a[0], a[1]),
             lambda a, o, k: (_ties(a[0], a[1], a[0] < a[1]), _ties(a[0], a[1], a[1] < a[0])),
             "min({0}, {1})", ("[{0} ≤ {1}]", "[{1} ≤ {0}]"), names=("min",),
             oracle=lambda torch: torch.minimum, sympy=lambda sp: lambda a, b: _when(a <= b, a, b), branch="a ≤ b")


def dropout_mask(shape: tuple[int, ...], p: float, seed: int) -> Array:
    """The keep-mask a dropout node draws: True where the unit is kept (probability 1−p)."""
    return np.random.default_rng(seed).random(shape) >= p


def _dropout_scale(args: Args, attrs: Attrs) -> Array:
    x = args[0]
    return dropout_mask(x.shape, attrs["p"], attrs["seed"]).astype(x.dtype) / (1 - attrs["p"])


def _torch_dropout(torch: Any, x: Any, p: float, seed: int) -> Any:
    # torch draws its own masks: the oracle applies gradviz's seeded mask the torch way.
    mask = torch.as_tensor(dropout_mask(tuple(x.shape), p, seed))
    return torch.where(mask, x / (1 - p), torch.zeros_like(x))


# The lecture's dropout: x'_i = 0 with probability p, else x_i/(1−p).
_elementwise("dropout", 1, lambda a, k: a[0] * _dropout_scale(a, k),
             lambda a, o, k: (_dropout_scale(a, k),), "dropout({0}, p={p})", ("mask/(1−{p})",),
             names=("dropout",), option="p", oracle=lambda torch: lambda x, p, seed: _torch_dropout(torch, x, p, seed),
             second=lambda a, o, k: np.zeros_like(o))


# --- linear algebra ---------------------------------------------------------------------
def _as_matrices(a: Array, b: Array, g: Array) -> tuple[Array, Array, Array]:
    """Promote 1-D operands the way numpy's matmul does, and the gradient to match."""
    if a.ndim == 1:
        a, g = a[None, :], np.expand_dims(g, -2)
    if b.ndim == 1:
        b, g = b[:, None], np.expand_dims(g, -1)
    return a, b, g


def _matmul_vjp_a(g: Array, out: Array, args: Args, attrs: Attrs) -> Array:
    if args[0].ndim == 1 and args[1].ndim == 1:  # a dot product
        return g * args[1]
    a, b, g2 = _as_matrices(args[0], args[1], g)
    grad = g2 @ np.swapaxes(b, -1, -2)
    if args[0].ndim == 1:
        grad = grad[..., 0, :]
    return unbroadcast(grad, args[0].shape)


def _matmul_vjp_b(g: Array, out: Array, args: Args, attrs: Attrs) -> Array:
    if args[0].ndim == 1 and args[1].ndim == 1:
        return g * args[0]
    a, b, g2 = _as_matrices(args[0], args[1], g)
    grad = np.swapaxes(a, -1, -2) @ g2
    if args[1].ndim == 1:
        grad = grad[..., :, 0]
    return unbroadcast(grad, args[1].shape)


_rule("matmul", 2, lambda a, k: a[0] @ a[1], (_matmul_vjp_a, _matmul_vjp_b),
      (lambda t, o, a, k: t @ a[1], lambda t, o, a, k: a[0] @ t),
      "{0} @ {1}", ("v̄ @ {1}ᵀ", "{0}ᵀ @ v̄"), ("{0}' @ {1}", "{0} @ {1}'"), oracle=lambda torch: torch.matmul,
      sympy=lambda sp: lambda a, b: a * b)
_rule("transpose", 1, lambda a, k: a[0].T, (lambda g, o, a, k: g.T,), (lambda t, o, a, k: t.T,),
      "{0}ᵀ", ("v̄ᵀ",), ("{0}'ᵀ",), oracle=lambda torch: lambda x: x.permute(*reversed(range(x.dim()))),
      sympy=lambda sp: lambda a: a)


# --- reductions -------------------------------------------------------------------------
def _axis(attrs: Attrs) -> int | None:
    return attrs.get("axis")


def _spread(g: Array, x: Array, attrs: Attrs) -> Array:
    """Send a reduced gradient back over the reduced axis (or all axes)."""
    axis = _axis(attrs)
    if axis is not None:
        g = np.expand_dims(g, axis)
    return np.broadcast_to(g, x.shape)


def _torch_reduce(fn):
    return lambda x, axis=None: fn(x) if axis is None else fn(x, dim=axis)


def _count(x: Array, attrs: Attrs) -> int:
    axis = _axis(attrs)
    return x.size if axis is None else x.shape[axis]


_rule("sum", 1, lambda a, k: np.sum(a[0], axis=_axis(k)),
      (lambda g, o, a, k: _spread(g, a[0], k).copy(),),
      (lambda t, o, a, k: np.sum(t, axis=_axis(k)),),
      "sum({0})", ("v̄ spread over {0}",), ("sum({0}')",),
      names=("sum",), option="axis", oracle=lambda torch: _torch_reduce(torch.sum), sympy=lambda sp: lambda a: a)
_rule("mean", 1, lambda a, k: np.mean(a[0], axis=_axis(k)),
      (lambda g, o, a, k: _spread(g, a[0], k) / _count(a[0], k),),
      (lambda t, o, a, k: np.mean(t, axis=_axis(k)),),
      "mean({0})", ("v̄/n spread over {0}",), ("mean({0}')",),
      names=("mean",), option="axis", oracle=lambda torch: _torch_reduce(torch.mean), sympy=lambda sp: lambda a: a)


def _safe_div(x: Array, d: Array) -> Array:
    # The norm's gradient at 0 is taken as 0, as torch does.
    return np.where(d == 0, 0.0, x / np.where(d == 0, 1.0, d))


_rule("norm", 1, lambda a, k: np.sqrt(np.sum(a[0] * a[0])),
      (lambda g, o, a, k: g * _safe_div(a[0], o),),
      (lambda t, o, a, k: np.sum(t * _safe_div(a[0], o)),),
      "‖{0}‖", ("v̄·{0}/{out}",), ("⟨{0}, {0}'⟩/{out}",),
      names=("norm",), oracle=lambda torch: torch.linalg.vector_norm,
      sympy=lambda sp: lambda a: _when(a >= 0, a, -a), branch="x ≥ 0", scalar_out=True)


# --- losses (means over every element, as torch's default reduction) --------------------
BCE_LOG_FLOOR = -100.0  # torch clamps each log term of binary_cross_entropy at -100
# and divides by max(p·(1 − p), ε) in its derivative, ε the float32 nearest 1e-12 in every dtype
BCE_EPSILON = float(np.float32(1e-12))


def _bce(a: Args, k: Attrs) -> Array:
    """torch's binary_cross_entropy: each log clamped at −100, so p = 0 or 1 stays finite."""
    p, y = a[0], a[1]
    with np.errstate(divide="ignore"):
        log_p, log_q = np.maximum(np.log(p), BCE_LOG_FLOOR), np.maximum(np.log1p(-p), BCE_LOG_FLOOR)
    return np.mean((y - 1) * log_q - y * log_p)


def _bce_derivs(a: Args, o: Array, k: Attrs) -> tuple[Array, Array]:
    # As torch's autograd: ∂/∂p = (p − y)/max(p(1 − p), ε); ∂/∂y = −logit(p), not clamped.
    p, y = np.broadcast_arrays(a[0], a[1])
    n = p.size
    with np.errstate(divide="ignore"):
        return (p - y) / np.maximum(p * (1 - p), BCE_EPSILON) / n, -(np.log(p) - np.log1p(-p)) / n


def _mse_derivs(a: Args, o: Array, k: Attrs) -> tuple[Array, Array]:
    d = a[0] - a[1]
    return 2 * d / d.size, -2 * d / d.size


def _loss(name: str, evaluate, derivs, definition: str, partials: tuple[str, str], oracle, sympy) -> None:
    """A mean loss: vjp is g·(local derivative), jvp sums t·(local derivative).

    Its output is a scalar, so the partials read as plain factors of v̄."""
    _rule(name, 2, evaluate,
          (lambda g, o, a, k: g * derivs(a, o, k)[0], lambda g, o, a, k: g * derivs(a, o, k)[1]),
          (lambda t, o, a, k: np.sum(t * derivs(a, o, k)[0]), lambda t, o, a, k: np.sum(t * derivs(a, o, k)[1])),
          definition, partials, tuple(f"Σ {p}·{{{i}}}'" for i, p in enumerate(partials)),
          names=(name,), oracle=oracle, sympy=sympy, scalar_out=True)


_loss("bce", _bce, _bce_derivs,
      "bce({0}, {1})", ("({0} − {1})/max({0}·(1 − {0}), 10⁻¹²)/n", "−ln({0}/(1 − {0}))/n"),
      lambda torch: lambda p, y: torch.nn.functional.binary_cross_entropy(*torch.broadcast_tensors(p, y)),
      lambda sp: lambda p, y: -(y * sp.log(p) + (1 - y) * sp.log(1 - p)))
_loss("mse", lambda a, k: np.mean((a[0] - a[1]) ** 2), _mse_derivs,
      "mse({0}, {1})", ("2·({0} − {1})/n", "−2·({0} − {1})/n"),
      lambda torch: lambda a, b: torch.nn.functional.mse_loss(*torch.broadcast_tensors(a, b)),
      lambda sp: lambda a, b: (a - b) ** 2)

