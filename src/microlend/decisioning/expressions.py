"""Column expressions of the batch evaluator: the rule engine's expression language parsed to a small tree
and evaluated over numpy columns with null and error masks (see `columnar.py` for the semantics)."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from microlend.decisioning.cells import Cell

BoolArray = npt.NDArray[np.bool_]


class NotCompilable(Exception):
    """The policy uses something the batch evaluator does not interpret; evaluate it row by row."""


@dataclass
class V:
    """A column of values of one kind (num, bool, str, list, hits, null) with its null and error masks."""

    kind: str
    data: Any
    null: BoolArray
    err: BoolArray


@dataclass(frozen=True)
class Hits:
    """The rows a collect table matched: a row x rule matrix and each rule's output record."""

    matrix: BoolArray
    records: tuple[dict[str, Any], ...]


def object_column(n: int, value: Any) -> npt.NDArray[np.object_]:
    """An object array holding `value` n times (tuples stay tuples, not broadcast as sequences)."""
    arr = np.empty(n, dtype=object)
    arr.fill(value)
    return arr


# --- expressions ------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>\"[^\"]*\"|'[^']*')|(?P<name>[A-Za-z_$#][A-Za-z0-9_$#]*(?:\.[A-Za-z_][A-Za-z0-9_]*)*)"
    r"|(?P<op>\?\?|==|!=|<=|>=|&&|\|\||[<>+\-*/%?:()\[\],!]))"
)
_BINARY = {
    "??": 1,
    "or": 2,
    "||": 2,
    "and": 3,
    "&&": 3,
    "==": 4,
    "!=": 4,
    "<": 4,
    "<=": 4,
    ">": 4,
    ">=": 4,
    "+": 5,
    "-": 5,
    "*": 6,
    "/": 6,
    "%": 6,
}

Ast = tuple[Any, ...]


def _tokens(text: str) -> list[tuple[str, str]]:
    out, pos = [], 0
    text = text.strip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            raise NotCompilable(f"cannot read expression '{text}' at '{text[pos:]}'")
        kind = m.lastgroup or "op"
        value = m.group(kind)
        if kind == "name" and value in ("and", "or", "not", "true", "false", "null"):
            kind = "op" if value in ("and", "or", "not") else "lit"
        out.append((kind, value))
        pos = m.end()
        while pos < len(text) and text[pos].isspace():
            pos += 1
    return out


class _Parser:
    def __init__(self, text: str) -> None:
        self.text = text
        self.toks = _tokens(text)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.toks[self.i] if self.i < len(self.toks) else None

    def take(self, value: str | None = None) -> tuple[str, str]:
        tok = self.peek()
        if tok is None or (value is not None and tok[1] != value):
            raise NotCompilable(f"expression '{self.text}': expected {value or 'more'}")
        self.i += 1
        return tok

    def parse(self) -> Ast:
        node = self.ternary()
        if self.peek() is not None:
            raise NotCompilable(f"expression '{self.text}': unexpected '{self.peek()}'")
        return node

    def ternary(self) -> Ast:
        cond = self.binary(1)
        tok = self.peek()
        if tok is not None and tok == ("op", "?"):
            self.take("?")
            yes = self.ternary()
            self.take(":")
            no = self.ternary()
            return ("tern", cond, yes, no)
        return cond

    def binary(self, level: int) -> Ast:
        left = self.unary()
        while True:
            tok = self.peek()
            if tok is None or tok[0] != "op" or tok[1] not in _BINARY or _BINARY[tok[1]] < level:
                return left
            op = self.take()[1]
            right = self.binary(_BINARY[op] + 1)
            left = ("bin", {"||": "or", "&&": "and"}.get(op, op), left, right)

    def unary(self) -> Ast:
        tok = self.peek()
        if tok in (("op", "not"), ("op", "!")):
            self.take()
            return ("not", self.unary())
        if tok == ("op", "-"):
            self.take()
            return ("neg", self.unary())
        return self.primary()

    def primary(self) -> Ast:
        kind, value = self.take()
        if kind == "num":
            return ("num", float(value))
        if kind == "str":
            return ("str", value[1:-1])
        if kind == "lit":
            return ("bool", value == "true") if value != "null" else ("null",)
        if value == "(":
            inner = self.ternary()
            self.take(")")
            return inner
        if value == "[":
            items: list[Ast] = []
            while self.peek() != ("op", "]"):
                items.append(self.ternary())
                if self.peek() == ("op", ","):
                    self.take(",")
            self.take("]")
            return ("array", items)
        if kind == "name":
            if self.peek() == ("op", "("):
                self.take("(")
                args: list[Ast] = []
                while self.peek() != ("op", ")"):
                    args.append(self.ternary())
                    if self.peek() == ("op", ","):
                        self.take(",")
                self.take(")")
                return ("call", value, args)
            return ("path", value)
        raise NotCompilable(f"expression '{self.text}': unexpected '{value}'")


def parse_expression(text: str) -> Ast:
    return _Parser(text).parse()


# --- evaluation -------------------------------------------------------------------------------------------


class Batch:
    """The context of one batch: field path -> column."""

    def __init__(self, n: int, columns: dict[str, V]) -> None:
        self.n = n
        self.columns = columns

    def false(self) -> BoolArray:
        return np.zeros(self.n, dtype=bool)

    def const(self, kind: str, value: Any) -> V:
        if kind == "num":
            return V("num", np.full(self.n, value, dtype=float), self.false(), self.false())
        if kind == "bool":
            return V("bool", np.full(self.n, value, dtype=bool), self.false(), self.false())
        if kind == "null":
            return V("null", None, np.ones(self.n, dtype=bool), self.false())
        return V(kind, object_column(self.n, value), self.false(), self.false())

    def get(self, path: str) -> V:
        col = self.columns.get(path)
        return col if col is not None else self.const("null", None)


def evaluate(b: Batch, node: Ast) -> V:
    tag = node[0]
    if tag == "num":
        return b.const("num", node[1])
    if tag == "str":
        return b.const("str", node[1])
    if tag == "bool":
        return b.const("bool", node[1])
    if tag == "null":
        return b.const("null", None)
    if tag == "path":
        return b.get(node[1])
    if tag == "array":
        if not all(item[0] in ("str", "num", "bool") for item in node[1]):
            raise NotCompilable("array literals of computed values are supported only inside min/max")
        return b.const("list", tuple(item[1] for item in node[1]))
    if tag == "not":
        x = evaluate(b, node[1])
        if x.kind not in ("bool", "null"):
            raise NotCompilable("'not' of a non-boolean")
        data = ~x.data if x.kind == "bool" else b.false()
        return V("bool", data & ~x.null, b.false(), x.err | x.null)
    if tag == "neg":
        x = _num(b, evaluate(b, node[1]))
        return V("num", -x.data, x.null, x.err | x.null)
    if tag == "tern":
        return _ternary(b, node)
    if tag == "bin":
        return _binary(b, node[1], node[2], node[3])
    if tag == "call":
        return _call(b, node[1], node[2])
    raise NotCompilable(f"cannot evaluate {tag}")


def _num(b: Batch, x: V) -> V:
    if x.kind == "num":
        return x
    if x.kind == "null":
        return V("num", np.zeros(b.n), x.null, x.err)
    raise NotCompilable(f"arithmetic on a {x.kind} value")


def _ternary(b: Batch, node: Ast) -> V:
    c = evaluate(b, node[1])
    if c.kind not in ("bool", "null"):
        raise NotCompilable("a condition that is not boolean")
    cond = (c.data if c.kind == "bool" else b.false()) & ~c.null
    yes, no = evaluate(b, node[2]), evaluate(b, node[3])
    err = c.err | c.null | (cond & yes.err) | (~cond & ~c.null & no.err)
    return select(b, cond, yes, no, err)


def select(b: Batch, cond: BoolArray, yes: V, no: V, err: BoolArray) -> V:
    kinds = {yes.kind, no.kind} - {"null"}
    if len(kinds) > 1:
        raise NotCompilable(f"a choice between {' and '.join(sorted(kinds))} values")
    kind = kinds.pop() if kinds else "null"
    null = np.where(cond, yes.null, no.null)
    if kind == "null":
        return V("null", None, null, err)
    fill: Any = {"num": 0.0, "bool": False}.get(kind)
    y = yes.data if yes.kind != "null" else np.full(b.n, fill, dtype=object if fill is None else type(fill))
    n = no.data if no.kind != "null" else np.full(b.n, fill, dtype=object if fill is None else type(fill))
    return V(kind, np.where(cond, y, n), null, err)


def _binary(b: Batch, op: str, left: Ast, right: Ast) -> V:
    x = evaluate(b, left)
    if op == "??":
        y = evaluate(b, right)
        err = x.err | (x.null & y.err)
        if x.kind == "null":
            return V(y.kind, y.data, y.null, err)
        return select(b, ~x.null, x, y, err)
    if op in ("and", "or"):
        y = evaluate(b, right)
        for v in (x, y):
            if v.kind not in ("bool", "null"):
                raise NotCompilable(f"'{op}' of a non-boolean")
        xd = x.data if x.kind == "bool" else b.false()
        yd = y.data if y.kind == "bool" else b.false()
        decided = (~xd if op == "and" else xd) & ~x.null  # the right side is not evaluated
        err = x.err | x.null | (~decided & (y.err | y.null))
        data = (xd & yd) if op == "and" else (xd | yd)
        return V("bool", data & ~err, b.false(), err)
    y = evaluate(b, right)
    if op in ("==", "!="):
        eq = _equal(b, x, y)
        return V("bool", eq if op == "==" else ~eq, b.false(), x.err | y.err)
    xn, yn = _num(b, x), _num(b, y)
    err = x.err | y.err | x.null | y.null
    with np.errstate(divide="ignore", invalid="ignore"):
        if op in ("<", "<=", ">", ">="):
            fn: Callable[[Any, Any], Any] = {
                "<": np.less,
                "<=": np.less_equal,
                ">": np.greater,
                ">=": np.greater_equal,
            }[op]
            return V("bool", fn(xn.data, yn.data) & ~err, b.false(), err)
        if op == "/":
            err = err | (yn.data == 0)
        data = {"+": np.add, "-": np.subtract, "*": np.multiply, "/": np.divide, "%": np.fmod}[op](xn.data, yn.data)
    return V("num", np.where(err, 0.0, data), b.false(), err)


def _equal(b: Batch, x: V, y: V) -> BoolArray:
    both_null = x.null & y.null
    if x.kind == "null" or y.kind == "null" or x.kind != y.kind:
        return both_null
    if x.kind in ("list", "hits"):
        raise NotCompilable("comparing lists")
    same: BoolArray = np.asarray(x.data == y.data, dtype=bool)
    return both_null | (same & ~x.null & ~y.null)


def _call(b: Batch, name: str, args: list[Ast]) -> V:
    if name in ("min", "max") and len(args) == 1 and args[0][0] == "array" and args[0][1]:
        items = [_num(b, evaluate(b, a)) for a in args[0][1]]
        err = np.logical_or.reduce([v.err | v.null for v in items])
        stacked = np.vstack([v.data for v in items])
        data = stacked.min(axis=0) if name == "min" else stacked.max(axis=0)
        return V("num", np.where(err, 0.0, data), b.false(), err)
    if name == "floor" and len(args) == 1:
        x = _num(b, evaluate(b, args[0]))
        err = x.err | x.null
        # the engine floors exact decimals: a float a hair below a whole number (0.3 * 500000 / 100) is that number
        nearest = np.round(x.data)
        close = np.abs(x.data - nearest) <= 1e-9 * np.maximum(1.0, np.abs(x.data))
        return V("num", np.where(err, 0.0, np.where(close, nearest, np.floor(x.data))), b.false(), err)
    if name == "len" and len(args) == 1:
        x = evaluate(b, args[0])
        if x.kind == "hits":
            return V("num", x.data.matrix.sum(axis=1).astype(float), b.false(), x.err)
        if x.kind in ("list", "str"):
            lengths = np.fromiter((len(v) if v is not None else 0 for v in x.data), dtype=float, count=b.n)
            return V("num", lengths, b.false(), x.err | x.null)
        if x.kind == "null":
            return V("num", np.zeros(b.n), b.false(), x.err | x.null)
        raise NotCompilable(f"len of a {x.kind} value")
    if name == "map" and len(args) == 2 and args[1][0] == "path" and str(args[1][1]).startswith("#."):
        x = evaluate(b, args[0])
        if x.kind != "hits":
            raise NotCompilable("map over something other than a collect table's rows")
        key = str(args[1][1])[2:]
        hits: Hits = x.data
        return V("list", map_hits(hits, key), b.false(), x.err)
    raise NotCompilable(f"function {name}() with these arguments")


def map_hits(hits: Hits, key: str) -> npt.NDArray[np.object_]:
    """Each row's matched rules' `key` values in rule order, as a tuple per row.

    Set-based: rows that matched the same rules share one pattern, so the tuple is built once per distinct
    pattern (a few dozen over a whole base) and handed to its rows by index, not once per row and hit."""
    n, width = hits.matrix.shape
    if width == 0:
        return object_column(n, ())
    values = [r.get(key) for r in hits.records]
    packed = np.packbits(hits.matrix, axis=1)  # one byte per eight rules, the first rule in the high bit
    nbytes = packed.shape[1]
    if nbytes <= 8:  # up to 64 rules: a pattern is one 64-bit key
        wide = np.zeros((n, 8), dtype=np.uint8)
        wide[:, :nbytes] = packed
        keys: Any = wide.view(np.uint64).reshape(-1)
    else:
        keys = np.ascontiguousarray(packed).view(np.dtype((np.void, nbytes))).reshape(-1)
    uniques, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
    bits = hits.matrix[first]
    per_pattern = np.empty(len(uniques), dtype=object)
    for p, row in enumerate(bits):
        per_pattern[p] = tuple(values[j] for j in np.flatnonzero(row).tolist())
    out: npt.NDArray[np.object_] = per_pattern[np.asarray(inverse).reshape(-1)]
    return out


def map_hits_by_row(hits: Hits, key: str) -> npt.NDArray[np.object_]:
    """The reference for `map_hits`: the same tuples built row by row, hit by hit."""
    values = [r.get(key) for r in hits.records]
    data = object_column(hits.matrix.shape[0], ())
    rows, rules = np.nonzero(hits.matrix)
    collected: dict[int, list[Any]] = {}
    for row, rule in zip(rows.tolist(), rules.tolist(), strict=True):
        collected.setdefault(row, []).append(values[rule])
    for row, items in collected.items():
        data[row] = tuple(items)
    return data


# --- decision tables --------------------------------------------------------------------------------------


def cell_mask(b: Batch, x: V, cell: Cell) -> BoolArray:
    if cell.any:
        return np.ones(b.n, dtype=bool)
    mask = x.null.copy() if cell.null else b.false()
    if cell.intervals and x.kind == "num":
        ok = ~x.null
        for iv in cell.intervals:
            lo = x.data >= iv.lo if iv.lo_closed else x.data > iv.lo
            hi = x.data <= iv.hi if iv.hi_closed else x.data < iv.hi
            mask |= ok & lo & hi
    for value in cell.values:
        if (isinstance(value, bool) and x.kind == "bool") or (isinstance(value, str) and x.kind == "str"):
            mask |= ~x.null & (x.data == value)
    return mask
