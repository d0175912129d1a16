"""Segments (客群): named, versioned filters over customer features, written in the decision engine's
expression language (ZEN), e.g. ``age >= 25 and industry in ["retail", "farming"] and months_on_book > 6``.

A user's expression is parsed here, checked against a declared feature namespace (names with types) and a
small set of functions, and refused with a ValidationError naming the offending identifier before anything
evaluates it. The checked syntax tree is then compiled to a Polars expression for whole customer bases; it
follows zen-engine's semantics exactly, including how missing values behave, and `evaluate_row` runs the
same text through zen itself as the reference. A row is in the segment only when the expression gives
`true`; a row where zen raises an error (e.g. comparing a missing number) is not.

Exclusions (排除规则) that apply to every segment whatever its expression: no marketing consent, opted out
of the channel, currently overdue, contacted within the frequency-cap window.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

import polars as pl
import zen

from microlend.core.errors import ValidationError

FeatureType = Literal["number", "string", "boolean"]
#: Functions a segment may call: name -> (argument types, result type).
ALLOWED_FUNCTIONS: dict[str, tuple[tuple[FeatureType, ...], FeatureType]] = {
    "abs": (("number",), "number"),
    "floor": (("number",), "number"),
    "ceil": (("number",), "number"),
    "lower": (("string",), "string"),
    "upper": (("string",), "string"),
    "startsWith": (("string", "string"), "boolean"),
    "endsWith": (("string", "string"), "boolean"),
    "contains": (("string", "string"), "boolean"),
}
MAX_EXPRESSION_LENGTH = 2000
MAX_NESTING = 40

#: The fields of the marketing customer view (`customerview.customer_view`) a segment may name: exactly the
#: columns the view fills from the bank's data, so every field listed in the segment builder works. Recency is
#: written as "days since" fields (null when the event never happened; a comparison with null is false).
DEFAULT_NAMESPACE: dict[str, FeatureType] = {
    # who the customer is
    "age": "number",
    "industry": "string",
    "customer_kind": "string",
    "branch": "string",
    "months_on_book": "number",
    "has_officer": "boolean",
    "annual_turnover": "number",
    "years_in_business": "number",
    # products held; balances and flows of the customer's own accounts at the bank
    "has_deposit_account": "boolean",
    "deposit_balance_3m": "number",
    "inflow_3m": "number",
    "turnover_credits_3m": "number",
    "account_months": "number",
    "has_loan": "boolean",
    "has_credit_line": "boolean",
    # loans and their status
    "loans_count": "number",
    "active_loans_count": "number",
    "outstanding_principal": "number",
    "current_days_past_due": "number",
    "max_days_past_due_ever": "number",
    "days_since_last_loan": "number",
    "days_since_loan_closed": "number",
    # repayment behaviour
    "installments_due": "number",
    "on_time_repayment_rate": "number",
    "days_since_early_repayment": "number",
    # offers and applications, with dates
    "applications_count": "number",
    "applications_30d": "number",
    "days_since_last_application": "number",
    "has_open_offer": "boolean",
    "offer_limit": "number",
    "days_since_offer": "number",
    "applied_since_offer": "boolean",
}

# --- parsing ----------------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"\s*(?:(?P<num>\d+(?:\.\d+)?)|(?P<str>\"[^\"\\]*\"|'[^'\\]*')"
    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>\.\.|==|!=|<=|>=|[<>+\-*!()\[\],]))"
)
_KEYWORDS = {"and", "or", "not", "in", "true", "false", "null"}
_COMPARE = {"==", "!=", "<", "<=", ">", ">="}
_PRECEDENCE = {"or": 1, "and": 2, "==": 3, "!=": 3, "<": 3, "<=": 3, ">": 3, ">=": 3, "in": 3, "not in": 3,
               "+": 4, "-": 4, "*": 5}


@dataclass(frozen=True)
class Node:
    """A checked syntax-tree node: its kind, type, children and literal payload."""

    kind: str  # lit, name, call, unary, binary, in_list, in_range
    type: FeatureType | Literal["null"]
    op: str = ""
    value: Any = None
    args: tuple[Node, ...] = ()


def _tokens(text: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    while pos < len(text):
        if text[pos:].strip() == "":
            break
        m = _TOKEN.match(text, pos)
        if m is None or m.end() == pos:
            bad = text[pos:].strip()[:20]
            raise ValidationError(f"expression: cannot read '{bad}'", field="expression")
        kind = m.lastgroup or "op"
        value = m.group(kind)
        if kind == "name" and value in _KEYWORDS:
            kind = "kw"
        out.append((kind, value))
        pos = m.end()
    return out


class _Parser:
    def __init__(self, text: str, namespace: Mapping[str, FeatureType]) -> None:
        self.text = text
        self.ns = namespace
        self.toks = _tokens(text)
        self.i = 0
        self.depth = 0

    def _deeper(self) -> None:
        self.depth += 1
        if self.depth > MAX_NESTING:
            raise ValidationError(f"expression: nested more than {MAX_NESTING} levels deep", field="expression")

    def _peek(self, ahead: int = 0) -> tuple[str, str] | None:
        j = self.i + ahead
        return self.toks[j] if j < len(self.toks) else None

    def _take(self, value: str | None = None) -> tuple[str, str]:
        tok = self._peek()
        if tok is None:
            raise ValidationError(f"expression: ends early{f', expected {value!r}' if value else ''}",
                                  field="expression")
        if value is not None and tok[1] != value:
            raise ValidationError(f"expression: expected {value!r}, found {tok[1]!r}", field="expression")
        self.i += 1
        return tok

    def parse(self) -> Node:
        if not self.toks:
            raise ValidationError("expression: is empty", field="expression")
        node = self._binary(1)
        if self._peek() is not None:
            raise ValidationError(f"expression: unexpected {self._peek()[1]!r}", field="expression")  # type: ignore[index]
        return node

    def _operator(self) -> str | None:
        tok = self._peek()
        if tok is None:
            return None
        if tok == ("kw", "not") and self._peek(1) == ("kw", "in"):
            return "not in"
        if tok[0] in ("op", "kw") and tok[1] in _PRECEDENCE:
            return tok[1]
        return None

    def _binary(self, level: int) -> Node:
        left = self._unary()
        while True:
            op = self._operator()
            if op is None or _PRECEDENCE[op] < level:
                return left
            self.i += 2 if op == "not in" else 1
            if op in ("in", "not in"):
                left = self._membership(op, left)
                continue
            # comparisons do not chain in ZEN (a boolean is not ordered): parse the right side one level up
            right = self._binary(_PRECEDENCE[op] + 1)
            left = _typed_binary(op, left, right)

    def _membership(self, op: str, left: Node) -> Node:
        opener = self._take()[1]
        if opener not in ("[", "("):
            raise ValidationError(f"expression: '{op}' needs a list [..] or a range [a..b]", field="expression")
        items: list[Node] = []
        while self._peek() not in (("op", "]"), ("op", ")")):
            items.append(self._literal())
            if self._peek() == ("op", ".."):
                self._take("..")
                if len(items) != 1:
                    raise ValidationError("expression: a range is written [low..high]", field="expression")
                high = self._literal()
                close = self._take()[1]
                if close not in ("]", ")"):
                    raise ValidationError("expression: a range ends with ']' or ')'", field="expression")
                low = items[0]
                for bound in (low, high):
                    if bound.type != "number" or left.type != "number":
                        raise ValidationError("expression: a range [a..b] holds numbers and is tested on a number",
                                              field="expression")
                return Node("in_range", "boolean", op,
                            (float(low.value), float(high.value), opener == "[", close == "]"), (left,))
            if self._peek() == ("op", ","):
                self._take(",")
        close = self._take()[1]
        if opener != "[" or close != "]":
            raise ValidationError("expression: a list is written [a, b, ...]", field="expression")
        for item in items:
            if item.type not in (left.type, "null"):
                raise ValidationError(
                    f"expression: the list holds a {item.type} but is tested on a {left.type}", field="expression")
        return Node("in_list", "boolean", op, tuple(x.value for x in items), (left,))

    def _literal(self) -> Node:
        negative = False
        if self._peek() == ("op", "-"):
            self._take("-")
            negative = True
        node = self._primary()
        if node.kind != "lit" or (negative and node.type != "number"):
            raise ValidationError("expression: lists and ranges hold literal values only", field="expression")
        return Node("lit", "number", value=-node.value) if negative else node

    def _unary(self) -> Node:
        self._deeper()
        try:
            return self._unary_inner()
        finally:
            self.depth -= 1

    def _unary_inner(self) -> Node:
        tok = self._peek()
        if tok in (("kw", "not"), ("op", "!")):
            self._take()
            operand = self._unary()
            if operand.type != "boolean":
                raise ValidationError(f"expression: 'not' applies to a condition, not to a {operand.type} "
                                      "(write 'not (a > b)')", field="expression")
            return Node("unary", "boolean", "not", args=(operand,))
        if tok == ("op", "-"):
            self._take()
            operand = self._unary()
            if operand.type != "number":
                raise ValidationError("expression: '-' applies to a number", field="expression")
            if operand.kind == "lit":
                return Node("lit", "number", value=-operand.value)
            return Node("unary", "number", "neg", args=(operand,))
        return self._primary()

    def _primary(self) -> Node:
        kind, value = self._take()
        if kind == "num":
            return Node("lit", "number", value=float(value))
        if kind == "str":
            return Node("lit", "string", value=value[1:-1])
        if kind == "kw" and value in ("true", "false"):
            return Node("lit", "boolean", value=value == "true")
        if kind == "kw" and value == "null":
            return Node("lit", "null", value=None)
        if value == "(":
            self._deeper()
            inner = self._binary(1)
            self.depth -= 1
            self._take(")")
            return inner
        if kind == "name":
            if self._peek() == ("op", "("):
                return self._call(value)
            if value not in self.ns:
                raise ValidationError(
                    f"{value}: not a field of the marketing customer view, so a segment cannot use it "
                    f"(fields: {', '.join(sorted(self.ns))})",
                    field=value)
            return Node("name", self.ns[value], value=value)
        raise ValidationError(f"expression: unexpected {value!r}", field="expression")

    def _call(self, name: str) -> Node:
        if name not in ALLOWED_FUNCTIONS:
            raise ValidationError(
                f"{name}: not an allowed function (allowed: {', '.join(sorted(ALLOWED_FUNCTIONS))})", field=name)
        self._take("(")
        args: list[Node] = []
        while self._peek() != ("op", ")"):
            args.append(self._binary(1))
            if self._peek() == ("op", ","):
                self._take(",")
            elif self._peek() != ("op", ")"):
                raise ValidationError(f"{name}: arguments are separated by ','", field=name)
        self._take(")")
        wanted, result = ALLOWED_FUNCTIONS[name]
        if len(args) != len(wanted):
            raise ValidationError(f"{name}: takes {len(wanted)} argument(s), got {len(args)}", field=name)
        for arg, want in zip(args, wanted, strict=True):
            if arg.type != want:
                raise ValidationError(f"{name}: expects a {want} argument, got a {arg.type}", field=name)
        if name in ("startsWith", "endsWith", "contains") and args[1].kind != "lit":
            raise ValidationError(f"{name}: the second argument must be a literal text", field=name)
        return Node("call", result, name, args=tuple(args))


def _typed_binary(op: str, left: Node, right: Node) -> Node:
    if op in ("and", "or"):
        if left.type != "boolean" or right.type != "boolean":
            raise ValidationError(f"expression: '{op}' joins conditions, got {left.type} and {right.type}",
                                  field="expression")
        return Node("binary", "boolean", op, args=(left, right))
    if op in ("==", "!="):
        types = {left.type, right.type} - {"null"}
        if len(types) > 1:
            raise ValidationError(f"expression: '{op}' compares a {left.type} with a {right.type}",
                                  field="expression")
        return Node("binary", "boolean", op, args=(left, right))
    if op in _COMPARE:
        if left.type != "number" or right.type != "number":
            raise ValidationError(f"expression: '{op}' compares numbers, got {left.type} and {right.type}",
                                  field="expression")
        return Node("binary", "boolean", op, args=(left, right))
    if left.type != "number" or right.type != "number":
        raise ValidationError(f"expression: '{op}' works on numbers, got {left.type} and {right.type}",
                              field="expression")
    return Node("binary", "number", op, args=(left, right))


def parse_segment_expression(text: str, namespace: Mapping[str, FeatureType] | None = None) -> Node:
    """Parse and check a segment expression; refuse unknown identifiers and functions, and non-conditions."""
    if not isinstance(text, str) or not text.strip():
        raise ValidationError("expression: give a condition, e.g. age >= 25", field="expression")
    if len(text) > MAX_EXPRESSION_LENGTH:
        raise ValidationError(f"expression: longer than {MAX_EXPRESSION_LENGTH} characters", field="expression")
    ns = DEFAULT_NAMESPACE if namespace is None else namespace
    node = _Parser(text, ns).parse()
    if node.type != "boolean":
        raise ValidationError(f"expression: must be a condition (true or false), this gives a {node.type}",
                              field="expression")
    problem = zen.validate_expression(text)
    if problem is not None:  # our grammar is a subset of ZEN's: this only fires on a parser disagreement
        raise ValidationError(f"expression: the rule engine refuses it: {problem}", field="expression")
    return node


def identifiers(node: Node) -> set[str]:
    """Feature names an expression reads."""
    found = {str(node.value)} if node.kind == "name" else set()
    for arg in node.args:
        found |= identifiers(arg)
    return found


# --- compiling to Polars ----------------------------------------------------------------------------------

_FALSE = pl.lit(False)


def _compile(node: Node) -> tuple[pl.Expr, pl.Expr]:
    """(value, error) Polars expressions: `error` marks rows where zen would raise."""
    if node.kind == "lit":
        dtype = {"number": pl.Float64, "string": pl.String, "boolean": pl.Boolean}.get(node.type, pl.Null)
        return pl.lit(node.value, dtype=dtype), _FALSE
    if node.kind == "name":
        col = pl.col(str(node.value))
        return (col.cast(pl.Float64) if node.type == "number" else col), _FALSE
    if node.kind == "unary":
        v, e = _compile(node.args[0])
        return (~v if node.op == "not" else -v), e | v.is_null()
    if node.kind == "call":
        parts = [_compile(a) for a in node.args]
        v, e = parts[0]
        err = e | v.is_null()
        name = node.op
        if name == "abs":
            return v.abs(), err
        if name == "floor":
            return v.floor(), err
        if name == "ceil":
            return v.ceil(), err
        if name == "lower":
            return v.str.to_lowercase(), err
        if name == "upper":
            return v.str.to_uppercase(), err
        needle = str(node.args[1].value)
        if name == "startsWith":
            return v.str.starts_with(needle), err
        if name == "endsWith":
            return v.str.ends_with(needle), err
        return v.str.contains(needle, literal=True), err
    if node.kind == "in_list":
        v, e = _compile(node.args[0])
        values = [x for x in node.value if x is not None]
        has_null = len(values) != len(node.value)
        member = v.is_in(pl.lit(values, dtype=pl.List(_value_dtype(node.args[0])))) if values else _FALSE
        member = pl.when(v.is_null()).then(pl.lit(has_null)).otherwise(member)
        return (~member if node.op == "not in" else member), e
    if node.kind == "in_range":
        v, e = _compile(node.args[0])
        low, high, low_closed, high_closed = node.value
        above = v >= low if low_closed else v > low
        below = v <= high if high_closed else v < high
        member = above & below
        return (~member if node.op == "not in" else member), e | v.is_null()
    left_v, left_e = _compile(node.args[0])
    right_v, right_e = _compile(node.args[1])
    op = node.op
    if op == "and":
        err = left_e | left_v.is_null() | (left_v & right_e)
        return pl.when(left_v).then(right_v).otherwise(_FALSE), err
    if op == "or":
        err = left_e | left_v.is_null() | (~left_v & right_e)
        return pl.when(left_v).then(pl.lit(True)).otherwise(right_v), err
    if op == "==":
        return left_v.eq_missing(right_v), left_e | right_e
    if op == "!=":
        return left_v.ne_missing(right_v), left_e | right_e
    err = left_e | right_e | left_v.is_null() | right_v.is_null()
    ops = {"<": left_v < right_v, "<=": left_v <= right_v, ">": left_v > right_v, ">=": left_v >= right_v,
           "+": left_v + right_v, "-": left_v - right_v, "*": left_v * right_v}
    return ops[op], err


def _value_dtype(node: Node) -> pl.DataType:
    return {"number": pl.Float64(), "string": pl.String(), "boolean": pl.Boolean()}.get(node.type, pl.Null())


def to_polars(node: Node) -> pl.Expr:
    """A boolean Polars expression: true exactly where zen would evaluate the expression to true."""
    value, err = _compile(node)
    return (value.fill_null(False) & ~err.fill_null(True)).alias("in_segment")


def evaluate_row(text: str, row: Mapping[str, Any]) -> bool:
    """The reference: zen-engine evaluates the expression on one customer's features."""
    context = {k: (v.item() if hasattr(v, "item") else v) for k, v in row.items()}
    try:
        result = zen.evaluate_expression(text, context)
    except RuntimeError:
        return False
    return result is True


# --- segments and exclusions ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Segment:
    """A named, versioned selection of customers; `expression` is ZEN text checked on construction."""

    name: str
    version: int
    expression: str
    namespace: Mapping[str, FeatureType] = field(default_factory=lambda: dict(DEFAULT_NAMESPACE))
    description: str = ""

    def __post_init__(self) -> None:
        if not re.fullmatch(r"\w[\w.\- ]{0,99}", self.name or ""):
            raise ValidationError("name: 1-100 letters (any script), digits, spaces, '.', '_' or '-'", field="name")
        if self.version < 1:
            raise ValidationError("version: starts at 1", field="version")
        self.checked()

    def checked(self) -> Node:
        return parse_segment_expression(self.expression, self.namespace)

    def filter_expr(self) -> pl.Expr:
        return to_polars(self.checked())

    def select(self, customers: pl.DataFrame) -> pl.DataFrame:
        """The customers the expression selects (before exclusions)."""
        needed = identifiers(self.checked())
        missing = sorted(needed - set(customers.columns))
        if missing:
            raise ValidationError(f"{missing[0]}: the customer data has no such column", field=missing[0])
        return customers.filter(self.filter_expr())


class Channel:
    """Marketing channels (渠道): SMS, app push, and visit tasks for loan officers (客户经理上门)."""

    SMS = "sms"
    PUSH = "push"
    VISIT = "visit"
    ALL = ("sms", "push", "visit")


def check_channel(channel: str) -> str:
    if channel not in Channel.ALL:
        raise ValidationError(f"channel: must be one of {', '.join(Channel.ALL)}, got '{channel}'", field="channel")
    return channel


@dataclass(frozen=True)
class FrequencyCap:
    """At most `max_messages` contacts per customer in any `window_days`, across all campaigns."""

    max_messages: int = 2
    window_days: int = 7

    def __post_init__(self) -> None:
        if self.max_messages < 1 or self.window_days < 1:
            raise ValidationError("frequency_cap: needs at least 1 message in at least 1 day", field="frequency_cap")

    def window_start(self, at: datetime) -> datetime:
        """Contacts at or after this instant count against the cap at `at`."""
        return at - timedelta(days=self.window_days)


EXCLUSION_REASONS = ("no_consent", "opted_out", "overdue", "frequency_cap")


def exclusion_reasons(
    *, consent: bool | None, opted_out_channels: Sequence[str], channel: str, days_past_due: float | None,
    contacts: Sequence[datetime], at: datetime, cap: FrequencyCap,
) -> list[str]:
    """Why one customer may not be contacted on `channel` at `at` (the per-customer reference rule)."""
    reasons = []
    if consent is not True:
        reasons.append("no_consent")
    if channel in opted_out_channels:
        reasons.append("opted_out")
    if days_past_due is not None and days_past_due > 0:
        reasons.append("overdue")
    start = cap.window_start(at)
    if sum(1 for c in contacts if start <= c <= at) >= cap.max_messages:
        reasons.append("frequency_cap")
    return reasons


def exclusion_flags(
    customers: pl.DataFrame, *, channel: str, at: datetime, cap: FrequencyCap,
    opt_outs: pl.DataFrame | None = None, contacts: pl.DataFrame | None = None,
) -> pl.DataFrame:
    """Set-based exclusions: one boolean column per reason and `excluded`, for every customer.

    `customers` needs customer_id, marketing_consent and current_days_past_due; `opt_outs` holds
    (customer_id, channel) and `contacts` (customer_id, contacted_at) from the contact history."""
    check_channel(channel)
    for col in ("customer_id", "marketing_consent", "current_days_past_due"):
        if col not in customers.columns:
            raise ValidationError(f"{col}: the customer data has no such column", field=col)
    ids = customers.select("customer_id")
    if opt_outs is not None and opt_outs.height:
        out_ids = opt_outs.filter(pl.col("channel") == channel).select("customer_id").unique()
        opted = ids.join(out_ids.with_columns(pl.lit(True).alias("opted_out")), on="customer_id", how="left")
    else:
        opted = ids.with_columns(pl.lit(None, dtype=pl.Boolean).alias("opted_out"))
    if contacts is not None and contacts.height:
        start = cap.window_start(at)
        recent = (
            contacts.filter((pl.col("contacted_at") >= start) & (pl.col("contacted_at") <= at))
            .group_by("customer_id").len("recent_contacts")
        )
        counted = ids.join(recent, on="customer_id", how="left")
    else:
        counted = ids.with_columns(pl.lit(0, dtype=pl.UInt32).alias("recent_contacts"))
    frame = customers.select("customer_id", "marketing_consent", "current_days_past_due")
    frame = frame.with_columns(
        opted.get_column("opted_out").fill_null(False).alias("opted_out"),
        counted.get_column("recent_contacts").fill_null(0).alias("recent_contacts"),
    )
    return frame.select(
        "customer_id",
        (pl.col("marketing_consent") != True).fill_null(True).alias("no_consent"),  # noqa: E712
        pl.col("opted_out"),
        (pl.col("current_days_past_due").cast(pl.Float64) > 0).fill_null(False).alias("overdue"),
        (pl.col("recent_contacts") >= cap.max_messages).alias("frequency_cap"),
    ).with_columns(pl.any_horizontal(*EXCLUSION_REASONS).alias("excluded"))


@dataclass(frozen=True)
class SegmentCount:
    """A live count: selected by the expression, excluded per reason, and left to contact."""

    selected: int
    excluded: dict[str, int]
    eligible: int
    sample: list[dict[str, Any]]


def count_segment(
    segment: Segment, customers: pl.DataFrame, *, channel: str, at: datetime, cap: FrequencyCap | None = None,
    opt_outs: pl.DataFrame | None = None, contacts: pl.DataFrame | None = None, sample_size: int = 10,
) -> tuple[SegmentCount, pl.DataFrame]:
    """Count and preview a segment on a channel; returns the summary and the eligible customers."""
    cap = cap or FrequencyCap()
    selected = segment.select(customers)
    flags = exclusion_flags(selected, channel=channel, at=at, cap=cap, opt_outs=opt_outs, contacts=contacts)
    eligible = selected.filter(~flags.get_column("excluded"))
    excluded = {r: int(flags.get_column(r).sum()) for r in EXCLUSION_REASONS}
    sample = eligible.sort("customer_id").head(sample_size).to_dicts()
    return SegmentCount(selected.height, excluded, eligible.height, sample), eligible
