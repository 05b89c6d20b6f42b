"""Expressions → Graph: parsed with `ast` against a whitelist, never eval'd.

Identical subexpressions become one node (hash-consing), and op nodes are numbered
v1, v2, … in post-order, so the lecture's f(x1, x2) gets exactly its v1…v5. Names
assigned in a statement (`u = x1/x2`) label their node; names assigned and never used
later, and a trailing bare expression (named `f`), are the outputs.
"""

from __future__ import annotations

import ast
import math
import sys
from dataclasses import dataclass
from typing import Any, Mapping

import numpy as np

from gradviz.core.budget import check_memory
from gradviz.core.graph import Graph, Node, frozen_mapping
from gradviz.core.passes import run_passes
from gradviz.core.rules import RULES
from gradviz.core.trace import Trace
from gradviz.errors import ExpressionError
from gradviz.sources.bindings import bind_leaves

# What guards against abuse is the size of the graph (and the memory budget of its
# values), not the length of the text: 10,000 statements are a fine expression.
MAX_LENGTH = 10_000_000
MAX_NODES = 200_000
MAX_DEPTH = 3000  # a flat sum of n terms nests n deep in the ast, so this is generous
MAX_EXPONENT = 10_000

BINARY_OPS = {ast.Add: "add", ast.Sub: "sub", ast.Mult: "mul", ast.Div: "div", ast.Pow: "pow", ast.MatMult: "matmul"}
# name → (op, number of tensor arguments), from the rules' names (aliases like `ln` included)
FUNCTIONS = {name: (rule.name, rule.arity) for rule in RULES.values() for name in rule.names}
# Which functions take a literal option, by keyword and by position after the tensors.
OPTIONS = {name: rule.option for rule in RULES.values() for name in rule.names if rule.option}
UNSUPPORTED = {
    ast.Subscript: "subscripts (x[0]) are not supported", ast.Lambda: "lambdas are not supported",
    ast.ListComp: "comprehensions are not supported", ast.GeneratorExp: "comprehensions are not supported",
    ast.SetComp: "comprehensions are not supported", ast.DictComp: "comprehensions are not supported",
    ast.Compare: "comparisons are not supported", ast.BoolOp: "'and'/'or' are not supported",
    ast.IfExp: "conditional expressions are not supported", ast.Dict: "dicts are not supported",
    ast.Set: "sets are not supported", ast.JoinedStr: "strings are not supported",
    ast.Starred: "starred arguments are not supported", ast.NamedExpr: "':=' is not supported",
    ast.Await: "'await' is not supported", ast.Yield: "'yield' is not supported",
}


@dataclass
class _Proto:
    """A node being built: what it computes and what it will be called."""

    op: str
    inputs: tuple[int, ...]
    attrs: dict[str, Any]
    source: str
    name: str | None = None
    spelled: str | None = None  # the function's name as written, where an alias (ln for log)
    rebinds: str | None = None  # the name this node's label is a later value of (c₂ of c)


SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


class _Builder:
    """Walks the ast, creating nodes in post-order and sharing identical ones."""

    def __init__(self, text: str, seed: int):
        self.text = text
        self.lines = text.splitlines() or [""]
        # ast columns count UTF-8 bytes; slicing encoded lines keeps segment() O(length)
        # (ast.get_source_segment rescans the whole text per call: quadratic on big inputs).
        self.encoded = [line.encode() for line in self.lines]
        self.seed = seed
        self.protos: list[_Proto] = []
        self.keys: dict[tuple, int] = {}
        self.names: dict[str, int] = {}  # assigned names → proto index
        self.used_names: set[str] = set()
        self.consumed: set[str] = set()  # assigned names a later statement uses
        self.assignments: dict[str, int] = {}  # name → how many op nodes it has named (rebinding)
        self.dropouts = 0

    # -- errors ----------------------------------------------------------------------
    def fail(self, message: str, node: ast.AST | None = None) -> ExpressionError:
        if node is None or not hasattr(node, "lineno"):
            return ExpressionError(message)
        line = self.lines[node.lineno - 1] if node.lineno - 1 < len(self.lines) else ""
        return ExpressionError(f"{message} (line {node.lineno}, column {node.col_offset + 1})",
                               source=line, column=node.col_offset)

    # -- node creation ---------------------------------------------------------------
    def add(self, op: str, inputs: tuple[int, ...], attrs: dict[str, Any], source: str) -> int:
        key = (op, inputs, tuple(sorted((k, _hashable(v)) for k, v in attrs.items())))
        if key not in self.keys:
            self.keys[key] = len(self.protos)
            self.protos.append(_Proto(op, inputs, attrs, source))
        return self.keys[key]

    def segment(self, node: ast.AST) -> str:
        first, last = node.lineno - 1, node.end_lineno - 1
        if first == last:
            return self.encoded[first][node.col_offset:node.end_col_offset].decode()
        parts = [self.encoded[first][node.col_offset:], *self.encoded[first + 1:last],
                 self.encoded[last][:node.end_col_offset]]
        return b"\n".join(parts).decode()

    # -- statements ------------------------------------------------------------------
    def build(self, module: ast.Module) -> dict[str, int]:
        outputs: dict[str, int] = {}
        bare: list[int] = []
        for statement in module.body:
            if isinstance(statement, (ast.Assign, ast.AugAssign)):
                targets = statement.targets if isinstance(statement, ast.Assign) else [statement.target]
                if len(targets) != 1 or not isinstance(targets[0], ast.Name):
                    raise self.fail("only 'name = expression' assignments are supported", statement)
                name = targets[0].id
                if name in FUNCTIONS:
                    raise self.fail(f"'{name}' is a function name and cannot be assigned", statement)
                if name in self.used_names and name not in self.names:
                    raise self.fail(f"'{name}' is assigned after it is used as an input", statement)
                value = statement.value
                if isinstance(statement, ast.AugAssign):  # c += x is c = c + x, as in Python
                    load = ast.copy_location(ast.Name(id=name, ctx=ast.Load()), statement.target)
                    value = ast.copy_location(ast.BinOp(left=load, op=statement.op, right=value), statement)
                index = self.visit(value, 0)
                self.bind(name, index)
                outputs[name] = index
            elif isinstance(statement, ast.Expr) and isinstance(statement.value, ast.Name) \
                    and statement.value.id in self.names:  # a bare `y` is y's value, output as y, not a new f
                outputs[statement.value.id] = self.visit(statement.value, 0)
                self.consumed.discard(statement.value.id)
            elif isinstance(statement, ast.Expr):
                bare.append(self.visit(statement.value, 0))
            elif isinstance(statement, (ast.Import, ast.ImportFrom)):
                raise self.fail("imports are not allowed in expressions", statement)
            else:
                raise self.fail(f"'{type(statement).__name__.lower()}' statements are not supported", statement)
        final = {name: i for name, i in outputs.items() if name not in self.consumed}
        return self.name_outputs(final, bare)

    def bind(self, name: str, index: int) -> None:
        """`name = …`: the name now means this node; a new op node is labelled after it,
        the k-th value a name takes as name with subscript k (c, c₂, c₃…), as Python rebinds."""
        self.names[name] = index
        self.consumed.discard(name)
        proto = self.protos[index]
        if proto.name is None and proto.op not in ("input", "const"):
            # an input assigned again (x = x * 2) was its first value: the op is x₂, not a second x
            count = self.assignments.get(name, 1 if name in self.used_names else 0) + 1
            self.assignments[name] = count
            proto.name = name if count == 1 else f"{name}{str(count).translate(SUBSCRIPTS)}"
            if count > 1:
                proto.rebinds = name

    def name_outputs(self, assigned: dict[str, int], bare: list[int]) -> dict[str, int]:
        outputs = dict(assigned)
        for n, index in enumerate(bare):
            name = "f" if len(bare) == 1 else f"f{n + 1}"
            while name in outputs or name in self.names or name in self.used_names:
                name += "_"
            outputs[name] = index
            if self.protos[index].name is None and self.protos[index].op not in ("input", "const"):
                self.protos[index].name = name
        if not outputs:
            raise ExpressionError("the expression is empty")
        return outputs

    # -- expressions -----------------------------------------------------------------
    def visit(self, node: ast.AST, depth: int) -> int:
        if depth > MAX_DEPTH:
            raise self.fail(f"the expression is nested more than {MAX_DEPTH} levels deep", node)
        for kind, message in UNSUPPORTED.items():
            if isinstance(node, kind):
                raise self.fail(message, node)
        method = getattr(self, f"visit_{type(node).__name__}", None)
        if method is None:
            raise self.fail(f"'{self.segment(node)}' is not supported in expressions", node)
        return method(node, depth + 1)

    def visit_Constant(self, node: ast.Constant, depth: int) -> int:
        if isinstance(node.value, bool) or not isinstance(node.value, (int, float)):
            raise self.fail(f"only numbers are allowed as constants, not {node.value!r}", node)
        return self.constant(float(node.value), self.segment(node))

    def constant(self, value: float, text: str) -> int:
        return self.add("const", (), {"value": value}, text)

    def visit_List(self, node: ast.List, depth: int) -> int:
        try:
            value = np.asarray(ast.literal_eval(node), dtype=float)
        except (ValueError, TypeError, SyntaxError):
            raise self.fail("a list must be a rectangular nest of numbers", node) from None
        return self.add("const", (), {"value": value}, self.segment(node))

    def visit_Tuple(self, node: ast.Tuple, depth: int) -> int:
        raise self.fail("tuples are not supported (did you mean a list [...]?)", node)

    def visit_Name(self, node: ast.Name, depth: int) -> int:
        name = node.id
        if name in FUNCTIONS:
            raise self.fail(f"'{name}' is a function: call it as {name}(...)", node)
        if name in self.names:
            self.consumed.add(name)
            return self.names[name]
        self.used_names.add(name)
        return self.add("input", (), {"name": name}, name)

    def visit_BinOp(self, node: ast.BinOp, depth: int) -> int:
        op = BINARY_OPS.get(type(node.op))
        if op is None:
            raise self.fail(f"the operator '{type(node.op).__name__}' is not supported", node)
        if op == "pow":
            self.check_power(node)
        left = self.visit(node.left, depth)
        right = self.visit(node.right, depth)
        return self.add(op, (left, right), {}, self.segment(node))

    def check_power(self, node: ast.BinOp) -> None:
        # Only powers written with literal numbers are refused; NaN/Inf from inputs are shown.
        try:
            exponent = _constant_value(node.right)
            if exponent is not None and abs(exponent) > MAX_EXPONENT:
                raise self.fail(f"the power {self.segment(node)} is absurdly large (exponent above {MAX_EXPONENT})", node)
            _constant_value(node)
        except OverflowError:
            raise self.fail(f"the power {self.segment(node)} is absurdly large (it overflows)", node) from None

    def visit_UnaryOp(self, node: ast.UnaryOp, depth: int) -> int:
        if isinstance(node.op, ast.UAdd):
            return self.visit(node.operand, depth)
        if not isinstance(node.op, ast.USub):
            raise self.fail(f"the operator '{type(node.op).__name__}' is not supported", node)
        literal = _literal(node.operand)
        if literal is not None:
            return self.constant(-literal, self.segment(node))
        return self.add("neg", (self.visit(node.operand, depth),), {}, self.segment(node))

    def visit_Attribute(self, node: ast.Attribute, depth: int) -> int:
        if node.attr != "T":
            raise self.fail(f"attribute '.{node.attr}' is not supported (only .T, the transpose)", node)
        return self.add("transpose", (self.visit(node.value, depth),), {}, self.segment(node))

    def visit_Call(self, node: ast.Call, depth: int) -> int:
        func = node.func
        if (isinstance(func, ast.Attribute) and func.attr in FUNCTIONS and FUNCTIONS[func.attr][1] == 1
                and not node.args and not node.keywords):  # z.relu(), as micrograd writes it: relu(z)
            node = ast.copy_location(ast.Call(func=ast.copy_location(ast.Name(id=func.attr, ctx=ast.Load()), func),
                                              args=[func.value], keywords=[]), node)
        if not isinstance(node.func, ast.Name):
            raise self.fail("only calls of named functions like exp(x) are supported", node)
        fname = node.func.id
        if fname not in FUNCTIONS:
            known = ", ".join(sorted(FUNCTIONS))
            raise self.fail(f"unknown function '{fname}' (known: {known})", node.func)
        op, arity = FUNCTIONS[fname]
        option = OPTIONS.get(fname)
        args = list(node.args)
        options: dict[str, Any] = {}
        if option and len(args) == arity + 1:
            options[option] = args.pop()
        for keyword in node.keywords:
            if keyword.arg != option:
                raise self.fail(f"{fname}() takes no argument '{keyword.arg}'", keyword.value)
            options[option] = keyword.value
        if len(args) != arity:
            wanted = f"{arity} argument{'s' if arity > 1 else ''}" + (f" (and optionally {option})" if option else "")
            raise self.fail(f"{fname}() takes {wanted}, got {len(node.args) + len(node.keywords)}", node)
        attrs = {key: self.option_value(fname, key, value) for key, value in options.items()}
        if op == "dropout":
            attrs.setdefault("p", 0.5)
            attrs["seed"] = self.seed * 1_000_003 + self.dropouts
            self.dropouts += 1
        inputs = tuple(self.visit(arg, depth) for arg in args)
        index = self.add(op, inputs, attrs, self.segment(node))
        if fname != op and self.protos[index].spelled is None:
            self.protos[index].spelled = fname  # shown as written: ln stays ln
        return index

    def option_value(self, fname: str, key: str, node: ast.AST) -> Any:
        value = _literal(node)
        if value is None:
            raise self.fail(f"{fname}()'s {key} must be a number written in the expression", node)
        if key == "axis":
            if value != int(value):
                raise self.fail(f"{fname}()'s axis must be a whole number", node)
            return int(value)
        if not 0 <= value < 1:
            raise self.fail(f"dropout's p must be in [0, 1), got {value:g}", node)
        return value


def _literal(node: ast.AST) -> float | None:
    """The number a node spells out literally (`2`, `-0.5`), or None."""
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float)) and not isinstance(node.value, bool):
        return float(node.value)
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, ast.USub):
        inner = _literal(node.operand)
        return None if inner is None else -inner
    return None


def _constant_value(node: ast.AST, depth: int = 0) -> float | None:
    """The value of a subtree made only of literal numbers and + - * / **, or None.

    Raises OverflowError for results too large for a float (9**9**9)."""
    literal = _literal(node)
    if literal is not None or depth > MAX_DEPTH or not isinstance(node, ast.BinOp):
        return literal
    left, right = _constant_value(node.left, depth + 1), _constant_value(node.right, depth + 1)
    if left is None or right is None:
        return None
    try:
        if isinstance(node.op, ast.Pow):
            if abs(right) > MAX_EXPONENT and abs(left) > 1:
                raise OverflowError
            return math.pow(left, right)
        operations = {ast.Add: lambda: left + right, ast.Sub: lambda: left - right,
                      ast.Mult: lambda: left * right, ast.Div: lambda: left / right}
        compute = operations.get(type(node.op))
        return None if compute is None else compute()
    except (ValueError, ZeroDivisionError):
        return None


def _hashable(value: Any) -> Any:
    return (value.shape, value.tobytes()) if isinstance(value, np.ndarray) else value


def parse_expression(text: str, seed: int = 0) -> Graph:
    """Parse expression text (one or more statements) into a Graph."""
    if len(text) > MAX_LENGTH:
        raise ExpressionError(f"the expression is {len(text)} characters long; the limit is {MAX_LENGTH}")
    # One statement per line: 'u = x1/x2; f = exp(u)*u' reads like two lines.
    text = "\n".join(part.strip() for line in text.splitlines() for part in line.split(";") if part.strip())
    try:
        module = ast.parse(text, mode="exec")
    except SyntaxError as exc:
        line = (exc.text or "").rstrip("\n")
        column = (exc.offset or 1) - 1
        raise ExpressionError(f"syntax error: {exc.msg} (line {exc.lineno}, column {column + 1})",
                              source=line, column=column) from None
    except (RecursionError, MemoryError):
        raise ExpressionError("the expression is nested too deeply to parse") from None
    builder = _Builder(text, seed)
    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 3 * MAX_DEPTH + 1000))  # two frames per level, plus headroom
    try:
        outputs = builder.build(module)
    except RecursionError:
        raise ExpressionError("the expression is nested too deeply to parse") from None
    finally:
        sys.setrecursionlimit(limit)
    return _assemble(builder.protos, outputs)


def _assemble(protos: list[_Proto], outputs: dict[str, int]) -> Graph:
    """Order leaves first (inputs, then constants), then ops in post-order; label and describe."""
    if len(protos) > MAX_NODES:
        raise ExpressionError(f"the expression has {len(protos):,} nodes; the limit is {MAX_NODES:,}")
    order = ([i for i, p in enumerate(protos) if p.op == "input"]
             + [i for i, p in enumerate(protos) if p.op == "const"]
             + [i for i, p in enumerate(protos) if p.op not in ("input", "const")])
    new_id = {old: new for new, old in enumerate(order)}
    taken = {p.name for p in protos if p.name} | {p.attrs["name"] for p in protos if p.op == "input"}
    labels: dict[int, str] = {}
    counter = 0
    for old in order:
        p = protos[old]
        if p.op == "input":
            labels[old] = p.attrs["name"]
        elif p.op == "const":
            labels[old] = p.source
        elif p.name:
            labels[old] = p.name
        else:
            counter += 1
            while f"v{counter}" in taken:
                counter += 1
            labels[old] = f"v{counter}"
    nodes = []
    for old in order:
        p = protos[old]
        in_labels = [labels[i] for i in p.inputs]
        meta = {"source": p.source}
        if p.rebinds:
            meta["rebinds"] = p.rebinds
        if p.op not in ("input", "const"):
            meta.update(describe(p.op, labels[old], in_labels, p.attrs, [protos[i] for i in p.inputs], p.spelled))
        nodes.append(Node(new_id[old], p.op, tuple(new_id[i] for i in p.inputs), labels[old],
                          frozen_mapping(p.attrs), frozen_mapping(meta)))
    graph = Graph(tuple(nodes), {name: new_id[i] for name, i in outputs.items()})
    graph.validate()
    return graph


def describe(op: str, label: str, in_labels: list[str], attrs: Mapping[str, Any], inputs: list[_Proto],
             spelled: str | None = None) -> dict[str, Any]:
    """The definition and local-derivative formulas of one node, from its rule's templates;
    a function written under an alias keeps its name (`ln(x2)`, not `log(x2)`)."""
    rule = RULES[op]
    shown = [f"({x})" if x.startswith("-") else x for x in in_labels]
    fields = {k: f"{v:g}" if isinstance(v, float) else v for k, v in attrs.items() if k != "seed"}
    definition = rule.definition.format(*shown, out=label, **fields)
    if spelled and definition.startswith(f"{op}("):
        definition = spelled + definition[len(op):]
    partials = [p.format(*shown, out=label, **fields) for p in rule.partials]
    tangent_terms = tuple(t.format(*shown, out=label, **fields) for t in rule.tangent_forms)
    if op == "pow" and inputs[1].op == "const" and np.ndim(inputs[1].attrs["value"]) == 0:
        c = float(inputs[1].attrs["value"])
        definition = f"{shown[0]}{_superscript(c)}" if _superscript(c) else definition
        partials[0] = _power_partial(c, shown[0])
    if "axis" in attrs:
        definition = definition[:-1] + f", axis={attrs['axis']})"
    described = {"definition": f"{label} = {definition}", "partials": tuple(partials)}
    if tangent_terms:
        described["tangent_terms"] = tangent_terms
    return described


def _superscript(c: float) -> str:
    table = {2.0: "²", 3.0: "³"}
    return table.get(c, "")


def _power_partial(c: float, x: str) -> str:
    if c == 2:
        return f"2·{x}"
    if c == 1:
        return "1"
    return f"{c:g}·{x}^{c - 1:g}"


def trace_expression(
    text: str,
    at: Mapping[str, Any] | None = None,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    seed: int = 0,
    dtype: str = "float64",
    modes: tuple[str, ...] = ("tangent", "reverse"),
    max_memory: int | None = None,
    max_work: int | None = None,
) -> Trace:
    """Parse, bind the inputs, and run the passes: the whole expression path in one call.

    A trace that would need more than `max_memory` bytes (default: a share of the
    machine's memory), or more than `max_work` multiply-adds in matrix products, is
    refused before any value is computed."""
    graph = parse_expression(text, seed)
    input_names = [n.label for n in graph.nodes if n.op == "input"]
    at, shapes = at or {}, shapes or {}
    if all(name in at or name in shapes for name in input_names):  # else bind_leaves names what is missing
        # checked before drawing the --shape values: drawing big inputs alone takes seconds
        leaf_shapes = {name: np.shape(at[name]) if name in at else tuple(shapes[name]) for name in input_names}
        check_memory(graph, leaf_shapes, dtype, modes, max_memory, max_work)
    leaves = bind_leaves(input_names, at, shapes, seed, dtype)
    return run_passes(graph, leaves, dtype, modes)
