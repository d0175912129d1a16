"""Early-warning rules (预警规则): from the signals of each loan or credit line on the active book, the severity
(high, medium, low or none) of every signal, as a policy document of kind `early_warning` (see
`policies/default_early_warning.json`) that the risk team edits, simulates on the current book and publishes
like any other policy (maker-checker).

The facts a rule reads, by input path:

- `dpd.now`, `dpd.before`       days past due today and at the last monthly scoring (a transition)
- `score.value`, `score.drop`   the monthly behaviour score and how far it fell since the month before
- `tax.sales_growth`            declared sales of the last 12 months over the previous 12, minus 1
- `merchant.flow_trend`         acquiring turnover of the last 90 days over the previous 90, minus 1
- `enforcement.cases_open`, `enforcement.dishonest`   court enforcement (a public record)
- `bureau.overdue_now`          accounts overdue at other lenders (only with the credit-report consent)
- `line.months_at_limit`        consecutive month-ends a credit line was drawn to 95% or more of its limit

A fact the bank does not hold is null and matches no threshold. One output per signal names its severity.
Evaluation over a whole book is columnar (`assess_book`); `assess_one` is the engine's reference.
"""

from __future__ import annotations

from decimal import Decimal
from importlib import resources
from typing import Any

import polars as pl
from pydantic import BaseModel, ConfigDict

from microlend.core.errors import ValidationError
from microlend.decisioning.columnar import ColumnarPolicy, columns_from_arrow
from microlend.decisioning.domain import engine_json, validate_facts
from microlend.decisioning.policy import CompiledPolicy, parse_policy, policy_hash, policy_name

KIND = "early_warning"
DEFAULT_EARLY_WARNING = "default_early_warning.json"
SEVERITIES = ("high", "medium", "low")
NONE = "none"
#: The signals, in the order a person reads them (each is one output of the policy).
SIGNALS: tuple[str, ...] = ("dpd_transition", "behaviour_score", "tax_sales_drop", "merchant_flow_drop",
                            "enforcement_case", "bureau_overdue", "limit_exhausted")
#: The facts each signal's rule reads (kept with an alert as its inputs).
SIGNAL_FACTS: dict[str, tuple[str, ...]] = {
    "dpd_transition": ("dpd.now", "dpd.before"),
    "behaviour_score": ("score.value", "score.drop"),
    "tax_sales_drop": ("tax.sales_growth",),
    "merchant_flow_drop": ("merchant.flow_trend",),
    "enforcement_case": ("enforcement.cases_open", "enforcement.dishonest"),
    "bureau_overdue": ("bureau.overdue_now",),
    "limit_exhausted": ("line.months_at_limit",),
}
FACTS: tuple[str, ...] = tuple(f for facts in SIGNAL_FACTS.values() for f in facts)
#: The dtype of each fact column of a book (`book_schema`): integers, ratios as floats (not money), a flag.
FACT_TYPES: dict[str, Any] = {
    "dpd.now": pl.Int32, "dpd.before": pl.Int32, "score.value": pl.Int32, "score.drop": pl.Int32,
    "tax.sales_growth": pl.Float64, "merchant.flow_trend": pl.Float64, "enforcement.cases_open": pl.Int32,
    "enforcement.dishonest": pl.Boolean, "bureau.overdue_now": pl.Int32, "line.months_at_limit": pl.Int32,
}
#: The columns of a book: who the subject is, then its facts.
BOOK_SCHEMA: dict[str, Any] = {"subject_kind": pl.Utf8, "subject_id": pl.Int64, "customer_id": pl.Int64,
                               **FACT_TYPES}

SIGNAL_LABELS: dict[str, tuple[str, str]] = {
    "dpd_transition": ("Days past due transition", "逾期天数迁移"),
    "behaviour_score": ("Behaviour score", "行为评分"),
    "tax_sales_drop": ("Declared tax sales drop", "纳税销售额下降"),
    "merchant_flow_drop": ("Merchant turnover drop", "收单流水下降"),
    "enforcement_case": ("Enforcement case", "被执行案件"),
    "bureau_overdue": ("Overdue at other lenders", "他行逾期"),
    "limit_exhausted": ("Limit drawn to the full for months", "额度长期用满"),
}


class _Facts(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class SubjectFacts(_Facts):
    kind: str = "line"  # line | loan


class DpdFacts(_Facts):
    now: int = 0
    before: int | None = None


class ScoreFacts(_Facts):
    value: int | None = None
    drop: int | None = None


class TaxFacts(_Facts):
    sales_growth: Decimal | None = None


class MerchantFacts(_Facts):
    flow_trend: Decimal | None = None


class EnforcementFacts(_Facts):
    cases_open: int | None = None
    dishonest: bool | None = None


class BureauFacts(_Facts):
    overdue_now: int | None = None


class LineUse(_Facts):
    months_at_limit: int | None = None


class EarlyWarningInput(_Facts):
    """One loan's or credit line's signals, as the rule engine reads them."""

    subject: SubjectFacts = SubjectFacts()
    dpd: DpdFacts = DpdFacts()
    score: ScoreFacts = ScoreFacts()
    tax: TaxFacts = TaxFacts()
    merchant: MerchantFacts = MerchantFacts()
    enforcement: EnforcementFacts = EnforcementFacts()
    bureau: BureauFacts = BureauFacts()
    line: LineUse = LineUse()

    @classmethod
    def from_canonical(cls, data: Any) -> EarlyWarningInput:
        return validate_facts(cls, data)


def default_early_warning() -> dict[str, Any]:
    text = resources.files("microlend.decisioning").joinpath("policies", DEFAULT_EARLY_WARNING).read_text("utf-8")
    return parse_policy(text, DEFAULT_EARLY_WARNING)


def _severity(value: Any, signal: str) -> str:
    if value is None:
        return NONE
    if value not in (*SEVERITIES, NONE):
        raise ValidationError(f"{signal}: the policy gave {value!r}, expected one of high, medium, low, none",
                              field=signal)
    return str(value)


def assess_one(compiled: CompiledPolicy, facts: EarlyWarningInput) -> dict[str, str]:
    """The severity of every signal of one subject with the rule engine (the reference of `assess_book`)."""
    result = compiled.evaluate_raw(engine_json(facts.model_dump(mode="python"))).get("result") or {}
    return {s: _severity(result.get(s), s) for s in SIGNALS}


def book_frame(rows: list[dict[str, Any]] | None = None) -> pl.DataFrame:
    """An empty book (or these rows) with the book's columns and types."""
    return pl.DataFrame(rows or [], schema=BOOK_SCHEMA)


def assess_book(doc: dict[str, Any], book: pl.DataFrame) -> pl.DataFrame:
    """Every subject of `book` (columns of `BOOK_SCHEMA`) with a column per signal holding its severity,
    columnar over the whole book; a row the engine would fail on raises every signal to `none` and is named
    in the column `engine_error`."""
    n = book.height
    if n == 0:
        return book.with_columns([pl.lit(NONE).alias(s) for s in SIGNALS] + [pl.lit(False).alias("engine_error")])
    policy = ColumnarPolicy(doc)
    kind = pl.col("subject_kind") if "subject_kind" in book.columns else pl.lit("line")
    facts = book.select([pl.col(f).cast(FACT_TYPES[f]) for f in FACTS] + [kind.alias("subject.kind")])
    cols = columns_from_arrow(facts.to_arrow(), only=set(policy.fields))
    values, err = policy.evaluate_outputs(cols, n, SIGNALS)
    out = {}
    for s in SIGNALS:
        v = values[s]
        if v.kind == "null":
            out[s] = pl.Series(s, [NONE] * n, dtype=pl.Utf8)
            continue
        if v.kind != "str":
            raise ValidationError(f"{s}: the policy must give a severity text", field=s)
        series = pl.Series(s, v.data, dtype=pl.Utf8).fill_null(NONE)
        bad = set(series.unique().to_list()) - {*SEVERITIES, NONE}
        if bad:
            raise ValidationError(f"{s}: the policy gave {sorted(bad)[0]!r}, expected one of high, medium, low, "
                                  "none", field=s)
        out[s] = series
    errors = pl.Series("engine_error", err, dtype=pl.Boolean)
    frame = pl.DataFrame(out).with_columns(
        [pl.when(errors).then(pl.lit(NONE)).otherwise(pl.col(s)).alias(s) for s in SIGNALS])
    return book.hstack(frame).with_columns(errors)


def raised(assessed: pl.DataFrame) -> pl.DataFrame:
    """One row per subject and signal whose severity is not `none` (long form): subject_kind, subject_id,
    customer_id, signal, severity."""
    keep = [c for c in ("subject_kind", "subject_id", "customer_id") if c in assessed.columns]
    long = assessed.select(*keep, *SIGNALS).unpivot(index=keep, on=list(SIGNALS), variable_name="signal",
                                                   value_name="severity")
    return long.filter(pl.col("severity") != NONE)


def count_by_signal(assessed: pl.DataFrame) -> dict[str, dict[str, int]]:
    """signal -> severity -> how many subjects (none left out), counted by the frame in one pass."""
    counts = assessed.select([(pl.col(s) == sev).sum().alias(f"{s}/{sev}") for s in SIGNALS for sev in SEVERITIES])
    row = counts.row(0, named=True) if assessed.height else {}
    return {s: {sev: int(row.get(f"{s}/{sev}") or 0) for sev in SEVERITIES} for s in SIGNALS}


def simulation(doc: dict[str, Any], baseline: dict[str, Any], book: pl.DataFrame | None) -> dict[str, Any]:
    """The evidence a version is submitted with: how many alerts of each signal and severity it raises on
    the current book, against the rules in force, and how many subjects change severity."""
    evidence: dict[str, Any] = {
        "kind": KIND,
        "champion": {"hash": policy_hash(baseline), "name": policy_name(baseline)},
        "candidate": {"hash": policy_hash(doc), "name": policy_name(doc)},
        "rows": 0 if book is None else book.height,
    }
    if book is None or book.height == 0:
        return {**evidence, "source": "none",
                "fallback": "the bank has no active loan or open credit line to simulate on; the golden tests "
                            "are the only evidence"}
    after, before = assess_book(doc, book), assess_book(baseline, book)
    evidence["candidate"]["alerts"] = count_by_signal(after)
    evidence["champion"]["alerts"] = count_by_signal(before)
    evidence["changed"] = {s: int((after.get_column(s) != before.get_column(s)).sum()) for s in SIGNALS}
    return {**evidence, "source": "current_book", "fallback": None}


def signal_label(signal: str, locale: str) -> str:
    en, zh = SIGNAL_LABELS.get(signal, (signal, signal))
    return zh if locale.startswith("zh") else en
