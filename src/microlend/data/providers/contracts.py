"""Data contracts of the provider payloads: pydantic for the nested JSON of an answer, pandera for its tables
(tax declarations, invoice months, merchant days, registry changes, enforcement cases), then the typed record.

A payload that breaks its contract raises `ProviderDataError` naming the kind, the field and, in a table, the
row: `tax: declarations[3].sales: an amount is a string with 2 decimals ('123.45'), got 12.5`. Nothing else
escapes `parse`."""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from datetime import date
from decimal import Decimal
from functools import cache
from typing import Annotated, Any, Literal, TypeVar

import pandas as pd
import pandera.pandas as pa
import pydantic
from pandera.errors import SchemaErrors
from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from microlend.core.errors import ValidationError
from microlend.data.providers.kinds import KINDS
from microlend.data.providers.records import (
    BureauReport,
    EInvoiceSummary,
    EnforcementCase,
    EnforcementRecord,
    InvoiceMonth,
    MerchantDay,
    MerchantFlows,
    ProviderRecord,
    RegistryChange,
    RegistryRecord,
    TaxDeclaration,
    TaxRecord,
    TopCustomer,
)

#: Money on the wire: a JSON string with 2 decimals; `SIGNED_MONEY` may carry a minus (refunds, credit notes).
MONEY = r"^\d{1,12}\.\d{2}$"
SIGNED_MONEY = r"^-?\d{1,12}\.\d{2}$"
PERIOD = r"^\d{4}-(0[1-9]|1[0-2])$"
ISO_DATE = r"^\d{4}-\d{2}-\d{2}$"
_MONEY_HINT = "an amount is a string with 2 decimals ('123.45')"
_MONEY_FIELDS = frozenset({"total_balance", "guarantee_amount", "capital"})


class ProviderDataError(ValidationError):
    """A provider's payload breaks its data contract (the gateway reports the kind as `data_error`)."""

    code = "provider_data_error"

    def __init__(self, kind: str, field: str, problem: str, *, row: int | None = None) -> None:
        where = field
        if row is not None:
            head, _, rest = field.partition(".")
            where = f"{head}[{row}]" + (f".{rest}" if rest else "")
        super().__init__(f"{kind}: {where}: {problem}", field=where)
        self.kind = kind
        self.row = row


# --- the nested JSON (pydantic, strict: no string for a number, no number for an amount) --------------------

Money = Annotated[str, StringConstraints(pattern=MONEY)]
Count = Annotated[int, Field(ge=0)]
Text = Annotated[str, StringConstraints(min_length=1, max_length=500)]
Rows = list[dict[str, Any]]


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="ignore", frozen=True)


class _Envelope(_Strict):
    subject: Text
    found: bool
    as_of: date
    provider: Text
    schema_: str = Field(alias="schema")


class _Bureau(_Strict):
    report_date: date
    credit_history_months: Count
    open_accounts: Count
    lenders_open: Count
    total_balance: Money
    overdue_accounts_now: Count
    overdue_months_24m: Annotated[int, Field(ge=0, le=24)]
    max_overdue_level_24m: Annotated[int, Field(ge=0, le=7)]
    inquiries_3m: Count
    inquiries_12m: Count
    guarantees_given: Count
    guarantee_amount: Money
    bad_debt: bool


class _Tax(_Strict):
    credit_grade: Literal["A", "B", "M", "C", "D"]
    declarations: Rows


class _EInvoice(_Strict):
    months: Rows
    counterparties_12m: Count
    top_customers_12m: Annotated[Rows, Field(max_length=5)]


class _Merchant(_Strict):
    merchant_since: date
    days: Rows


class _Registry(_Strict):
    name: Text
    registered_on: date
    capital: Money
    status: Literal["存续", "在业", "吊销", "注销"]
    legal_representative: Text
    industry_code: Annotated[str, StringConstraints(pattern=r"^[A-T]\d{4}$")]
    entity_type: Literal["个体工商户", "有限责任公司"]
    changes: Rows


class _Enforcement(_Strict):
    cases: Rows


_BODIES: dict[str, type[_Strict]] = {
    "bureau": _Bureau,
    "tax": _Tax,
    "einvoice": _EInvoice,
    "merchant": _Merchant,
    "registry": _Registry,
    "enforcement": _Enforcement,
}


# --- the tables (pandera) ----------------------------------------------------------------------------------


def _text(pattern: str, hint: str) -> pa.Column:
    return pa.Column(str, pa.Check.str_matches(pattern, error=hint))


def _count() -> pa.Column:
    return pa.Column(int, pa.Check.ge(0, error="a count is a whole number, 0 or more"))


def _money(signed: bool = False) -> pa.Column:
    return _text(SIGNED_MONEY if signed else MONEY, _MONEY_HINT)


@cache
def _tables() -> dict[tuple[str, str], pa.DataFrameSchema]:
    period = _text(PERIOD, "a month is 'YYYY-MM'")
    day = _text(ISO_DATE, "a date is 'YYYY-MM-DD'")
    return {
        ("tax", "declarations"): pa.DataFrameSchema(
            {"period": period, "sales": _money(), "vat_paid": _money(signed=True)}, unique=["period"]
        ),
        ("einvoice", "months"): pa.DataFrameSchema(
            {
                "period": period,
                "issued_count": _count(),
                "issued_amount": _money(),
                "received_count": _count(),
                "received_amount": _money(),
                "red_count": _count(),
                "red_amount": _money(signed=True),
                "cancelled_count": _count(),
            },
            unique=["period"],
        ),
        ("einvoice", "top_customers_12m"): pa.DataFrameSchema(
            {
                "counterparty": _text(r"^[0-9a-f]{64}$", "a counterparty is the sha256 hex of its USCC"),
                "amount": _money(),
            },
            unique=["counterparty"],
        ),
        ("merchant", "days"): pa.DataFrameSchema({"date": day, "count": _count(), "amount": _money()}, unique=["date"]),
        ("registry", "changes"): pa.DataFrameSchema(
            {
                "date": day,
                "item": pa.Column(
                    str,
                    pa.Check.isin(
                        ["legal_representative", "address", "capital", "scope"],
                        error="a change is one of legal_representative, address, capital, scope",
                    ),
                ),
            }
        ),
        ("enforcement", "cases"): pa.DataFrameSchema(
            {
                "case_no": _text(r"^.{1,100}$", "a case number is 1 to 100 characters"),
                "filed_on": day,
                "amount": _money(),
                "status": pa.Column(str, pa.Check.isin(["open", "closed"], error="a status is open or closed")),
                "dishonest": pa.Column(bool),
            },
            unique=["case_no"],
        ),
    }


#: A column's rule as plain Python: the exact type its values have, then what the value must satisfy.
_Rule = tuple[type, Callable[[Any], bool]]


def _rule(column: pa.Column) -> _Rule | None:
    """What pandera checks of a column (its dtype, its one check), as a test of one value; None for a column
    this shortcut does not know (the table then goes through pandera alone)."""
    dtype = str(column.dtype)
    kind: type = str if dtype.startswith("str") else int if dtype == "int64" else bool if dtype == "bool" else type
    if kind is type or column.nullable or not column.required or column.unique or column.coerce or column.regex:
        return None
    if not column.checks:
        return (kind, lambda value: True)
    if len(column.checks) > 1:
        return None
    check = column.checks[0]
    if check.name == "str_matches" and kind is str:
        # ASCII digits and a whole-string match: never looser than the vectorised match pandera runs
        pattern = re.compile(check.statistics["pattern"], re.ASCII)
        return (kind, lambda value: pattern.fullmatch(value) is not None)
    if check.name == "greater_than_or_equal_to" and kind is int:
        low = check.statistics["min_value"]
        return (kind, lambda value: low <= value < 2**63)
    if check.name == "isin" and kind is str:
        allowed = frozenset(check.statistics["allowed_values"])
        return (kind, lambda value: value in allowed)
    return None


@cache
def _plain_rules() -> dict[tuple[str, str], tuple[dict[str, _Rule], tuple[str, ...]] | None]:
    out: dict[tuple[str, str], tuple[dict[str, _Rule], tuple[str, ...]] | None] = {}
    for key, schema in _tables().items():
        rules = {name: _rule(column) for name, column in schema.columns.items()}
        known = {name: rule for name, rule in rules.items() if rule is not None}
        out[key] = (known, tuple(schema.unique or ())) if len(known) == len(rules) and not schema.strict else None
    return out


def _keeps_contract(kind: str, name: str, rows: Rows) -> bool:
    """True when every row has exactly the table's columns, each value of the column's exact type passing its
    check, and the unique columns repeat nowhere: what pandera would pass, decided row by row in plain Python
    (a provider's answer of 180 merchant days in a fraction of a millisecond instead of tens). False says only
    that pandera must look (it then finds and words the failure)."""
    plain = _plain_rules()[(kind, name)]
    if plain is None:
        return False
    rules, unique = plain
    columns = rules.keys()
    seen: set[tuple[Any, ...]] = set()
    for row in rows:
        if row.keys() != columns:
            return False
        for column, (kind_of, ok) in rules.items():
            value = row[column]
            if type(value) is not kind_of or not ok(value):
                return False
        if unique:
            key = tuple(row[c] for c in unique)
            if key in seen:
                return False
            seen.add(key)
    return True


def _check_table(kind: str, name: str, rows: Rows) -> list[dict[str, Any]]:
    """The rows of a table that keeps its contract (all checks at once; the first failing row is reported)."""
    if not rows:
        return []
    if _keeps_contract(kind, name, rows):
        return [dict(row) for row in rows]
    schema = _tables()[(kind, name)]
    frame = pd.DataFrame.from_records(rows)
    try:
        schema.validate(frame, lazy=True)
    except SchemaErrors as exc:
        raise _first_failure(kind, name, exc) from None
    records: list[dict[str, Any]] = frame.to_dict("records")
    return records


def _first_failure(kind: str, name: str, exc: SchemaErrors) -> ProviderDataError:
    cases = exc.failure_cases
    rows = cases[cases["index"].notna()] if "index" in cases else cases.iloc[0:0]
    if len(rows):
        first = rows.sort_values("index", kind="stable").iloc[0]
        column = str(first["column"]) if first["column"] is not None else ""
        check = str(first["check"])
        if check.startswith("dtype(") or check.startswith("not_nullable"):
            check = "wrong type or missing"
        if "uniqueness" in check:
            check = "appears twice"
        case = first["failure_case"]
        case = case.item() if hasattr(case, "item") else case  # a numpy scalar shown as the plain value
        return ProviderDataError(
            kind, f"{name}.{column}" if column else name, f"{check}, got {case!r}", row=int(first["index"])
        )
    first = cases.iloc[0]
    check, case = str(first["check"]), first["failure_case"]
    if check == "column_in_dataframe":
        return ProviderDataError(kind, f"{name}.{case}", "missing")
    if "uniqueness" in check:
        return ProviderDataError(kind, name, f"a row appears twice ({case})")
    return ProviderDataError(kind, name, f"{check}: {case!r}")


# --- from checked payload to record -------------------------------------------------------------------------

_R = TypeVar("_R")


def _rows(kind: str, name: str, rows: Rows, make: Callable[[dict[str, Any]], _R]) -> tuple[_R, ...]:
    return tuple(make(r) for r in _check_table(kind, name, rows))


def _month(text: str) -> date:
    return date(int(text[:4]), int(text[5:7]), 1)


def _day(kind: str, field: str, text: str, row: int) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise ProviderDataError(kind, field, f"{text!r} is not a date", row=row) from None


def _not_after(kind: str, field: str, values: Sequence[date], limit: date, what: str) -> None:
    for i, value in enumerate(values):
        if value > limit:
            raise ProviderDataError(kind, field, f"{value.isoformat()} is after {what} {limit.isoformat()}", row=i)


def _bureau(env: _Envelope, body: _Bureau) -> BureauReport:
    if body.report_date > env.as_of:
        raise ProviderDataError("bureau", "report_date", f"{body.report_date} is after as_of {env.as_of}")
    return BureauReport(
        subject=env.subject,
        as_of=env.as_of,
        provider=env.provider,
        report_date=body.report_date,
        credit_history_months=body.credit_history_months,
        open_accounts=body.open_accounts,
        lenders_open=body.lenders_open,
        total_balance=Decimal(body.total_balance),
        overdue_accounts_now=body.overdue_accounts_now,
        overdue_months_24m=body.overdue_months_24m,
        max_overdue_level_24m=body.max_overdue_level_24m,
        inquiries_3m=body.inquiries_3m,
        inquiries_12m=body.inquiries_12m,
        guarantees_given=body.guarantees_given,
        guarantee_amount=Decimal(body.guarantee_amount),
        bad_debt=body.bad_debt,
    )


def _tax(env: _Envelope, body: _Tax) -> TaxRecord:
    declarations = _rows(
        "tax",
        "declarations",
        body.declarations,
        lambda r: TaxDeclaration(
            period=_month(r["period"]), sales=Decimal(r["sales"]), vat_paid=Decimal(r["vat_paid"])
        ),
    )
    month = env.as_of.replace(day=1)
    for i, d in enumerate(declarations):
        if d.period >= month:
            raise ProviderDataError(
                "tax", "declarations.period", f"{d.period:%Y-%m} is not before as_of's month {month:%Y-%m}", row=i
            )
    return TaxRecord(
        subject=env.subject,
        as_of=env.as_of,
        provider=env.provider,
        credit_grade=body.credit_grade,
        declarations=tuple(sorted(declarations, key=lambda d: d.period)),
    )


def _einvoice(env: _Envelope, body: _EInvoice) -> EInvoiceSummary:
    months = _rows(
        "einvoice",
        "months",
        body.months,
        lambda r: InvoiceMonth(
            period=_month(r["period"]),
            issued_count=int(r["issued_count"]),
            issued_amount=Decimal(r["issued_amount"]),
            received_count=int(r["received_count"]),
            received_amount=Decimal(r["received_amount"]),
            red_count=int(r["red_count"]),
            red_amount=Decimal(r["red_amount"]),
            cancelled_count=int(r["cancelled_count"]),
        ),
    )
    month = env.as_of.replace(day=1)
    for i, m in enumerate(months):
        if m.period >= month:
            raise ProviderDataError(
                "einvoice", "months.period", f"{m.period:%Y-%m} is not before as_of's month {month:%Y-%m}", row=i
            )
    top = _rows(
        "einvoice",
        "top_customers_12m",
        body.top_customers_12m,
        lambda r: TopCustomer(counterparty=str(r["counterparty"]), amount=Decimal(r["amount"])),
    )
    for i in range(1, len(top)):
        if top[i].amount > top[i - 1].amount:
            raise ProviderDataError("einvoice", "top_customers_12m.amount", "not in descending order", row=i)
    return EInvoiceSummary(
        subject=env.subject,
        as_of=env.as_of,
        provider=env.provider,
        months=tuple(sorted(months, key=lambda m: m.period)),
        counterparties_12m=body.counterparties_12m,
        top_customers_12m=top,
    )


def _merchant(env: _Envelope, body: _Merchant) -> MerchantFlows:
    raw = _check_table("merchant", "days", body.days)
    days = tuple(
        MerchantDay(
            date=_day("merchant", "days.date", r["date"], i), count=int(r["count"]), amount=Decimal(r["amount"])
        )
        for i, r in enumerate(raw)
    )
    _not_after("merchant", "days.date", [d.date for d in days], env.as_of, "as_of")
    return MerchantFlows(
        subject=env.subject,
        as_of=env.as_of,
        provider=env.provider,
        merchant_since=body.merchant_since,
        days=tuple(sorted(days, key=lambda d: d.date)),
    )


def _registry(env: _Envelope, body: _Registry) -> RegistryRecord:
    raw = _check_table("registry", "changes", body.changes)
    changes = tuple(
        RegistryChange(date=_day("registry", "changes.date", r["date"], i), item=str(r["item"]))
        for i, r in enumerate(raw)
    )
    _not_after("registry", "changes.date", [c.date for c in changes], env.as_of, "as_of")
    if body.registered_on > env.as_of:
        raise ProviderDataError("registry", "registered_on", f"{body.registered_on} is after as_of {env.as_of}")
    return RegistryRecord(
        subject=env.subject,
        as_of=env.as_of,
        provider=env.provider,
        name=body.name,
        registered_on=body.registered_on,
        capital=Decimal(body.capital),
        status=body.status,
        legal_representative=body.legal_representative,
        industry_code=body.industry_code,
        entity_type=body.entity_type,
        changes=tuple(sorted(changes, key=lambda c: c.date)),
    )


def _enforcement(env: _Envelope, body: _Enforcement) -> EnforcementRecord:
    raw = _check_table("enforcement", "cases", body.cases)
    cases = tuple(
        EnforcementCase(
            case_no=str(r["case_no"]),
            filed_on=_day("enforcement", "cases.filed_on", r["filed_on"], i),
            amount=Decimal(r["amount"]),
            status=str(r["status"]),
            dishonest=bool(r["dishonest"]),
        )
        for i, r in enumerate(raw)
    )
    _not_after("enforcement", "cases.filed_on", [c.filed_on for c in cases], env.as_of, "as_of")
    return EnforcementRecord(subject=env.subject, as_of=env.as_of, provider=env.provider, cases=cases)


_BUILD: dict[str, Callable[[_Envelope, Any], ProviderRecord]] = {
    "bureau": _bureau,
    "tax": _tax,
    "einvoice": _einvoice,
    "merchant": _merchant,
    "registry": _registry,
    "enforcement": _enforcement,
}


def _pydantic_error(kind: str, exc: pydantic.ValidationError) -> ProviderDataError:
    err = exc.errors(include_url=False)[0]
    loc = [str(p) for p in err["loc"] if p != "__root__"]
    field, row = ".".join(loc) or "payload", None
    if len(loc) >= 2 and loc[1].isdigit():
        field, row = ".".join([loc[0], *loc[2:]]) or loc[0], int(loc[1])
    got = err.get("input")
    shown = "" if isinstance(got, dict | list) else f", got {got!r}"
    money = loc[-1:] and loc[-1] in _MONEY_FIELDS and err["type"] in ("string_type", "string_pattern_mismatch")
    problem = _MONEY_HINT if money else err["msg"]
    if err["type"] == "missing":
        return ProviderDataError(kind, field, "missing", row=row)
    return ProviderDataError(kind, field, f"{problem}{shown}", row=row)


def parse(kind: str, payload: str | bytes, *, subject: str | None = None) -> ProviderRecord | None:
    """The record of a provider's JSON answer, or None when the provider does not know the subject
    (`"found": false`). `subject`, when given, must be the subject the answer is about."""
    if kind not in KINDS:
        raise ValidationError(f"kind: unknown provider kind '{kind}' (one of {', '.join(KINDS)})", field="kind")
    try:
        env = _Envelope.model_validate_json(payload)
    except pydantic.ValidationError as exc:
        if exc.errors()[0]["type"] == "json_invalid":
            raise ProviderDataError(kind, "payload", "not valid JSON") from None
        raise _pydantic_error(kind, exc) from None
    if env.schema_ != f"{kind}/1":
        raise ProviderDataError(kind, "schema", f"expected '{kind}/1', got {env.schema_!r}")
    if subject is not None and env.subject.strip().upper() != subject.strip().upper():
        raise ProviderDataError(kind, "subject", "the answer is about another subject")
    if not env.found:
        return None
    try:
        body = _BODIES[kind].model_validate_json(payload)
    except pydantic.ValidationError as exc:
        raise _pydantic_error(kind, exc) from None
    return _BUILD[kind](env, body)
