"""Decision-table cells read as structured tests, so lint can reason about them and batch work can
evaluate them over whole columns.

Understood forms (the common ones in credit tables): empty (any value), `null`, `< 18`, `>= 660`,
`[520..560)`, a number, a "string", `true`/`false`, and comma-separated lists of these (any may match).
Anything else is `None` from `parse_cell`: lint then stays silent about it and batch evaluation refuses.
"""

from __future__ import annotations

import itertools
import math
import re
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

_NUMBER = r"-?\d+(?:\.\d+)?"
_CMP = re.compile(rf"^(<=|>=|<|>|==)\s*({_NUMBER})$")
_INTERVAL = re.compile(rf"^([\[\(])\s*({_NUMBER})\s*\.\.\s*({_NUMBER})\s*([\]\)])$")
_NUM = re.compile(rf"^{_NUMBER}$")
_STRING = re.compile(r'^"([^"\\]*)"$|^\'([^\'\\]*)\'$')


@dataclass(frozen=True)
class Interval:
    """A numeric range; infinite ends are open."""

    lo: float
    hi: float
    lo_closed: bool
    hi_closed: bool

    def contains(self, other: Interval) -> bool:
        lo_ok = self.lo < other.lo or (self.lo == other.lo and (self.lo_closed or not other.lo_closed))
        hi_ok = self.hi > other.hi or (self.hi == other.hi and (self.hi_closed or not other.hi_closed))
        return lo_ok and hi_ok

    def text(self) -> str:
        lo = "-inf" if self.lo == -math.inf else _fmt(self.lo)
        hi = "inf" if self.hi == math.inf else _fmt(self.hi)
        return f"{'[' if self.lo_closed else '('}{lo}, {hi}{']' if self.hi_closed else ')'}"


def _fmt(x: float) -> str:
    return str(int(x)) if x == int(x) else repr(x)


@dataclass(frozen=True)
class Cell:
    """One cell: any value, or the union of null, some numeric intervals and some equal values."""

    any: bool = False
    null: bool = False
    intervals: tuple[Interval, ...] = ()
    values: tuple[str | bool, ...] = ()  # strings and booleans tested for equality

    def covers(self, other: Cell) -> bool:
        """Whether every value matching `other` also matches this cell."""
        if self.any:
            return True
        if other.any:
            return False
        if other.null and not self.null:
            return False
        if not all(_key(v) in {_key(w) for w in self.values} for v in other.values):
            return False
        return all(any(mine.contains(theirs) for mine in merge(self.intervals)) for theirs in other.intervals)


def _key(v: str | bool) -> tuple[str, str]:
    return (type(v).__name__, str(v))


def _split(text: str) -> list[str]:
    parts: list[str] = []
    current: list[str] = []
    depth, quote = 0, ""
    for ch in text:
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "[(":
            depth += 1
        elif ch in "])":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append("".join(current).strip())
            current = []
            continue
        current.append(ch)
    parts.append("".join(current).strip())
    return parts


def _number(text: str) -> float | None:
    try:
        return float(Decimal(text))
    except InvalidOperation:
        return None


def parse_cell(text: object) -> Cell | None:
    """A cell as a structured test, or None when it is an expression we do not interpret."""
    if text is None:
        return Cell(any=True)
    if not isinstance(text, str):
        return None
    text = text.strip()
    if text == "":
        return Cell(any=True)
    null = False
    intervals: list[Interval] = []
    values: list[str | bool] = []
    for atom in _split(text):
        if atom in ("null", "== null"):
            null = True
        elif atom in ("true", "false"):
            values.append(atom == "true")
        elif m := _CMP.match(atom):
            x = float(m.group(2))
            intervals.append(
                {
                    "<": Interval(-math.inf, x, False, False),
                    "<=": Interval(-math.inf, x, False, True),
                    ">": Interval(x, math.inf, False, False),
                    ">=": Interval(x, math.inf, True, False),
                    "==": Interval(x, x, True, True),
                }[m.group(1)]
            )
        elif m := _INTERVAL.match(atom):
            lo, hi = float(m.group(2)), float(m.group(3))
            intervals.append(Interval(lo, hi, m.group(1) == "[", m.group(4) == "]"))
        elif _NUM.match(atom):
            x = float(atom)
            intervals.append(Interval(x, x, True, True))
        elif m := _STRING.match(atom):
            values.append(m.group(1) if m.group(1) is not None else m.group(2))
        else:
            return None
    return Cell(null=null, intervals=tuple(intervals), values=tuple(values))


def merge(intervals: tuple[Interval, ...] | list[Interval]) -> list[Interval]:
    """Sorted union of intervals, touching ones joined (so [0..5) and [5..9] give [0, 9])."""
    out: list[Interval] = []
    for iv in sorted(intervals, key=lambda i: (i.lo, not i.lo_closed)):
        if out:
            last = out[-1]
            touches = iv.lo < last.hi or (iv.lo == last.hi and (iv.lo_closed or last.hi_closed))
            if touches:
                if iv.hi > last.hi or (iv.hi == last.hi and iv.hi_closed):
                    out[-1] = Interval(last.lo, iv.hi, last.lo_closed, iv.hi_closed)
                continue
        out.append(iv)
    return out


def holes(intervals: list[Interval]) -> list[Interval]:
    """The values between the lowest and highest covered value that no interval covers."""
    merged = merge(intervals)
    return [Interval(a.hi, b.lo, not a.hi_closed, not b.lo_closed) for a, b in itertools.pairwise(merged)]
