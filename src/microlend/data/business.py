"""Business features (小微企业特征): what tax, e-invoice, merchant-acquiring, registry, enforcement and bureau
data say about a small business, point in time, for a whole base (batch) or one applicant (online).

One function computes them: `business_features(tables, spine)` over Polars tables, one row per spine
`(subject, as_of)`. The online path `features_from_payloads(payloads, as_of)` turns the providers' JSON
payloads (`schema: "<kind>/1"`, parsed into plain dicts) into the same one-row tables and calls it, so a live
decision and a training set see exactly the same arithmetic.

Input tables (all optional; `subject` is the join key, any type as long as it matches the spine's; money is
int64 **cents**, exact). A source is *present* for a subject when its subject-level table has a row for it;
otherwise every feature of that source is null (never zero): a source that was not called, not consented,
unavailable or answered `found: false` says nothing.

| table                | columns                                                                        |
|----------------------|--------------------------------------------------------------------------------|
| `tax_grades`         | subject, grade (A/B/M/C/D or null) - presence of the tax source                |
| `tax_declarations`   | subject, period (date, first day of the month), sales, vat_paid               |
| `invoice_summary`    | subject, counterparties_12m, top_customer_amount - presence of e-invoice       |
| `invoice_months`     | subject, period, issued_count, issued_amount, received_count, received_amount, |
|                      | red_count, red_amount, cancelled_count                                         |
| `merchants`          | subject, merchant_since (date or null) - presence of merchant acquiring        |
| `merchant_days`      | subject, day (date), count, amount (daily; days without sales omitted)          |
| `registry`           | subject, registered_on (date), capital, status                                 |
| `registry_changes`   | subject, date, item (legal_representative, address, capital, scope)           |
| `enforcement`        | subject - presence of the enforcement source (a clean record has no cases)    |
| `enforcement_cases`  | subject, filed_on (date), amount, status (open/closed), dishonest (bool)       |
| `bureau`             | subject, report_date, credit_history_months, lenders_open, overdue_accounts_now,|
|                      | overdue_months_24m, max_overdue_level_24m, inquiries_3m, guarantee_amount,     |
|                      | bad_debt (bool)                                                                |

Point in time: monthly data counts only months before the as-of month (the as-of month is not over);
daily data and dated events only days before the as-of date; a bureau report dated after the as-of date is
ignored. "The last 12 months" are the 12 whole months before the as-of month, "the previous 12" the 12
before those; "the last 90 days" are `[as_of - 90, as_of)`, "the previous 90" `[as_of - 180, as_of - 90)`.
The e-invoice summary (counterparties, top customer) is a snapshot taken at the as-of date.

Money features come out as floats in yuan (for models) and, exactly, as int64 cents in a `<name>__cents`
column (`exact_money` turns a row's cents into `Decimal` yuan; the credit limit formula uses
`tax_sales_12m` this way). Rows come back in the spine's order.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

import polars as pl

from microlend.core.errors import ValidationError

#: Registry statuses of a business that is operating (存续 = subsisting, 在业 = in business).
ACTIVE_STATUSES = ("存续", "在业")
_CENT = Decimal("0.01")


@dataclass(frozen=True)
class BusinessFeature:
    """One feature of the business catalogue: where it comes from, its type and unit, what it means."""

    name: str
    source: str
    dtype: str
    unit: str
    description_en: str
    description_zh: str

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "version": 1,
            "group": self.source,
            "dtype": self.dtype,
            "unit": self.unit,
            "description_en": self.description_en,
            "description_zh": self.description_zh,
        }


def _f(name: str, source: str, dtype: str, unit: str, en: str, zh: str) -> BusinessFeature:
    return BusinessFeature(name, source, dtype, unit, en, zh)


#: The catalogue of small-business features (names fixed by the shared design), `own_*` included (computed
#: by `microlend.data.accounts` from the bank's own account data).
BUSINESS_FEATURES: tuple[BusinessFeature, ...] = (
    _f("tax_sales_12m", "tax", "float", "CNY", "Declared sales of the last 12 months", "近12个月申报销售额"),
    _f(
        "tax_sales_growth_yoy",
        "tax",
        "float",
        "ratio",
        "Sales of the last 12 months over the previous 12, minus 1 (empty when the previous 12 are zero)",
        "近12个月销售额同比增长率(上年同期为零时为空)",
    ),
    _f(
        "tax_sales_volatility",
        "tax",
        "float",
        "ratio",
        "Coefficient of variation of the 12 monthly sales (an undeclared month counts as zero)",
        "近12个月月度销售额变异系数(未申报月份按零计)",
    ),
    _f("tax_months_declared_24m", "tax", "int", "months", "Months declared in the last 24", "近24个月申报月数"),
    _f(
        "tax_zero_months_12m",
        "tax",
        "int",
        "months",
        "Months of the last 12 without declared sales (zero or not declared)",
        "近12个月零申报或未申报月数",
    ),
    _f("tax_grade", "tax", "category", "", "Tax credit grade (A, B, M, C, D)", "纳税信用等级"),
    _f(
        "inv_issued_12m",
        "einvoice",
        "float",
        "CNY",
        "Amount of invoices issued in the last 12 months",
        "近12个月开票金额",
    ),
    _f(
        "inv_counterparties_12m",
        "einvoice",
        "int",
        "count",
        "Distinct invoice counterparties, last 12 months",
        "近12个月开票交易对手数",
    ),
    _f(
        "inv_top_customer_share",
        "einvoice",
        "float",
        "ratio",
        "Share of the largest customer in the invoices issued in the last 12 months",
        "近12个月第一大客户开票占比",
    ),
    _f(
        "inv_red_ratio_12m",
        "einvoice",
        "float",
        "ratio",
        "Red (credit note) invoice amount over issued amount, last 12 months",
        "近12个月红字发票金额占开票金额比例",
    ),
    _f(
        "inv_sales_gap",
        "einvoice",
        "float",
        "ratio",
        "1 - declared sales / invoiced sales over 12 months, clipped to [-1, 1] (a shell invoices but declares "
        "nothing)",
        "1 - 申报销售额/开票金额(近12个月,截断至[-1,1];空壳企业开票但不申报)",
    ),
    _f(
        "mer_flow_3m",
        "merchant",
        "float",
        "CNY",
        "Card and QR acquiring turnover in the last 90 days",
        "近90天收单流水金额",
    ),
    _f(
        "mer_active_days_3m",
        "merchant",
        "int",
        "days",
        "Days with acquiring sales in the last 90 days",
        "近90天有收单交易的天数",
    ),
    _f(
        "mer_flow_trend",
        "merchant",
        "float",
        "ratio",
        "Turnover of the last 90 days over the previous 90, minus 1 (empty when the previous 90 are zero)",
        "近90天收单流水环比变化率(前90天为零时为空)",
    ),
    _f("business_age_months", "registry", "int", "months", "Whole months since registration", "成立月数"),
    _f(
        "reg_status_active",
        "registry",
        "int",
        "flag",
        "1 when the registry status is 存续 or 在业",
        "登记状态为存续或在业时为1",
    ),
    _f("reg_capital", "registry", "float", "CNY", "Registered capital", "注册资本"),
    _f("reg_changes_12m", "registry", "int", "count", "Registry changes in the last 12 months", "近12个月工商变更次数"),
    _f(
        "reg_legal_rep_changes_12m",
        "registry",
        "int",
        "count",
        "Changes of legal representative in the last 12 months",
        "近12个月法定代表人变更次数",
    ),
    _f("enf_cases_open", "enforcement", "int", "count", "Open enforcement cases", "未结执行案件数"),
    _f(
        "enf_dishonest",
        "enforcement",
        "int",
        "flag",
        "1 when an open case lists the subject as dishonest",
        "存在未结失信被执行记录时为1",
    ),
    _f(
        "enf_amount_open", "enforcement", "float", "CNY", "Amount of the open enforcement cases", "未结执行案件标的金额"
    ),
    _f("bur_history_months", "bureau", "int", "months", "Months of credit history", "信用历史月数"),
    _f("bur_lenders_open", "bureau", "int", "count", "Lenders with an open account", "未结清授信机构数"),
    _f("bur_overdue_now", "bureau", "int", "count", "Accounts overdue now", "当前逾期账户数"),
    _f("bur_overdue_months_24m", "bureau", "int", "months", "Months overdue in the last 24", "近24个月逾期月数"),
    _f(
        "bur_max_overdue_level_24m",
        "bureau",
        "int",
        "level",
        "Worst months-overdue level in the last 24 months (0-7)",
        "近24个月最高逾期期数(0-7)",
    ),
    _f("bur_inquiries_3m", "bureau", "int", "count", "Credit inquiries in the last 3 months", "近3个月征信查询次数"),
    _f("bur_guarantee_amount", "bureau", "float", "CNY", "Amount of guarantees given", "对外担保金额"),
    _f("bur_bad_debt", "bureau", "int", "flag", "1 when the report shows a bad debt", "存在呆账时为1"),
    _f(
        "own_avg_balance_3m",
        "accounts",
        "float",
        "CNY",
        "Mean total balance of the bank's own accounts at the ends of the 3 months before the as-of month",
        "本行账户近3个月月末余额均值",
    ),
    _f(
        "own_inflow_3m",
        "accounts",
        "float",
        "CNY",
        "Credits to the bank's own accounts, last 90 days",
        "本行账户近90天入账金额",
    ),
    _f(
        "own_turnover_credits_3m",
        "accounts",
        "float",
        "CNY",
        "Business turnover credits, last 90 days",
        "本行账户近90天经营流水入账金额",
    ),
    _f(
        "own_salary_credits_3m",
        "accounts",
        "float",
        "CNY",
        "Salary credits, last 90 days",
        "本行账户近90天代发工资入账金额",
    ),
    _f(
        "own_bounced_6m",
        "accounts",
        "int",
        "count",
        "Bounced payments in the last 180 days",
        "本行账户近180天退票/扣款失败次数",
    ),
    _f(
        "own_account_months",
        "accounts",
        "int",
        "months",
        "Months since the oldest own account was opened",
        "本行最早账户开立月数",
    ),
)

#: The features `business_features` computes (the catalogue without the bank's own account features).
FEATURE_NAMES: tuple[str, ...] = tuple(f.name for f in BUSINESS_FEATURES if f.source != "accounts")
#: Money features: also given exactly as int64 cents in `<name>__cents`.
MONEY_FEATURES: tuple[str, ...] = tuple(f.name for f in BUSINESS_FEATURES if f.unit == "CNY" and f.source != "accounts")

_DAYS = pl.Date
_SCHEMAS: dict[str, dict[str, Any]] = {
    "tax_grades": {"grade": pl.String},
    "tax_declarations": {"period": _DAYS, "sales": pl.Int64, "vat_paid": pl.Int64},
    "invoice_summary": {"counterparties_12m": pl.Int64, "top_customer_amount": pl.Int64},
    "invoice_months": {
        "period": _DAYS,
        "issued_count": pl.Int64,
        "issued_amount": pl.Int64,
        "received_count": pl.Int64,
        "received_amount": pl.Int64,
        "red_count": pl.Int64,
        "red_amount": pl.Int64,
        "cancelled_count": pl.Int64,
    },
    "merchants": {"merchant_since": _DAYS},
    "merchant_days": {"day": _DAYS, "count": pl.Int64, "amount": pl.Int64},
    "registry": {"registered_on": _DAYS, "capital": pl.Int64, "status": pl.String},
    "registry_changes": {"date": _DAYS, "item": pl.String},
    "enforcement": {},
    "enforcement_cases": {"filed_on": _DAYS, "amount": pl.Int64, "status": pl.String, "dishonest": pl.Boolean},
    "bureau": {
        "report_date": _DAYS,
        "credit_history_months": pl.Int64,
        "lenders_open": pl.Int64,
        "overdue_accounts_now": pl.Int64,
        "overdue_months_24m": pl.Int64,
        "max_overdue_level_24m": pl.Int64,
        "inquiries_3m": pl.Int64,
        "guarantee_amount": pl.Int64,
        "bad_debt": pl.Boolean,
    },
}
#: Input table names and their columns besides `subject` (documentation and checks).
TABLE_COLUMNS: dict[str, tuple[str, ...]] = {name: tuple(cols) for name, cols in _SCHEMAS.items()}


def _month_index(col: pl.Expr) -> pl.Expr:
    return col.dt.year().cast(pl.Int32) * 12 + col.dt.month().cast(pl.Int32)


def _check(tables: Mapping[str, pl.DataFrame | pl.LazyFrame]) -> dict[str, pl.LazyFrame]:
    out = {}
    for name, table in tables.items():
        if name not in _SCHEMAS:
            raise ValidationError(f"tables: unknown business table '{name}'", field="tables")
        lazy = table.lazy()
        have = lazy.collect_schema()
        missing = [c for c in ("subject", *_SCHEMAS[name]) if c not in have]
        if missing:
            raise ValidationError(f"tables: {name} lacks column(s) {', '.join(missing)}", field=name)
        out[name] = lazy.select("subject", *[pl.col(c).cast(t) for c, t in _SCHEMAS[name].items()])
    return out


def _safe_ratio(num: pl.Expr, den: pl.Expr) -> pl.Expr:
    """num / den, null when the denominator is zero or null."""
    return pl.when(den != 0).then(num.cast(pl.Float64) / den.cast(pl.Float64)).otherwise(None)


def _tax(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "tax_grades" not in t:
        return None
    present = t["tax_grades"].unique("subject", keep="first")
    base = spine.join(present, on="subject", how="inner")
    out = base.select("_row", pl.col("grade").alias("tax_grade"))
    if "tax_declarations" in t:
        decl = (
            spine.join(t["tax_declarations"], on="subject", how="inner")
            .with_columns(ago=pl.col("_month") - _month_index(pl.col("period")))
            .filter((pl.col("ago") >= 1) & (pl.col("ago") <= 24))
        )
        last = pl.col("ago") <= 12
        sales = pl.col("sales")
        agg = decl.group_by("_row").agg(
            s12=sales.filter(last).sum(),
            sq12=(sales.cast(pl.Float64) ** 2).filter(last).sum(),
            p12=sales.filter(~last).sum(),
            n_prev=sales.filter(~last).len(),
            n24=pl.col("ago").n_unique(),
            pos12=pl.col("ago").filter(last & (sales > 0)).n_unique(),
        )
        out = out.join(agg, on="_row", how="left")
    else:
        out = out.with_columns(
            s12=pl.lit(None, pl.Int64),
            sq12=pl.lit(None, pl.Float64),
            p12=pl.lit(None, pl.Int64),
            n_prev=pl.lit(None, pl.UInt32),
            n24=pl.lit(None, pl.UInt32),
            pos12=pl.lit(None, pl.UInt32),
        )
    s12 = pl.col("s12").fill_null(0)
    mean = s12.cast(pl.Float64) / 12.0
    var = (pl.col("sq12").fill_null(0.0) / 12.0 - mean**2).clip(lower_bound=0.0)
    return out.select(
        "_row",
        "tax_grade",
        tax_sales_12m__cents=s12,
        tax_sales_growth_yoy=pl.when(pl.col("n_prev").fill_null(0) > 0)
        .then(_safe_ratio(s12, pl.col("p12")) - 1.0)
        .otherwise(None),
        tax_sales_volatility=pl.when(s12 != 0).then(var.sqrt() / mean).otherwise(None),
        tax_months_declared_24m=pl.col("n24").fill_null(0).cast(pl.Int64),
        tax_zero_months_12m=(12 - pl.col("pos12").fill_null(0).cast(pl.Int64)),
    )


def _einvoice(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "invoice_summary" not in t:
        return None
    present = t["invoice_summary"].unique("subject", keep="first")
    out = spine.join(present, on="subject", how="inner").select("_row", "counterparties_12m", "top_customer_amount")
    if "invoice_months" in t:
        months = (
            spine.join(t["invoice_months"], on="subject", how="inner")
            .with_columns(ago=pl.col("_month") - _month_index(pl.col("period")))
            .filter((pl.col("ago") >= 1) & (pl.col("ago") <= 12))
            .group_by("_row")
            .agg(issued=pl.col("issued_amount").sum(), red=pl.col("red_amount").sum())
        )
        out = out.join(months, on="_row", how="left")
    else:
        out = out.with_columns(issued=pl.lit(None, pl.Int64), red=pl.lit(None, pl.Int64))
    issued = pl.col("issued").fill_null(0)
    return out.select(
        "_row",
        inv_issued_12m__cents=issued,
        inv_counterparties_12m=pl.col("counterparties_12m"),
        inv_top_customer_share=_safe_ratio(pl.col("top_customer_amount"), issued),
        inv_red_ratio_12m=_safe_ratio(pl.col("red").fill_null(0), issued),
    )


def _merchant(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "merchants" not in t:
        return None
    present = t["merchants"].unique("subject", keep="first")
    out = spine.join(present, on="subject", how="inner").select("_row")
    if "merchant_days" in t:
        days = (
            spine.join(t["merchant_days"], on="subject", how="inner")
            .with_columns(ago=(pl.col("as_of") - pl.col("day")).dt.total_days())
            .filter((pl.col("ago") >= 1) & (pl.col("ago") <= 180))
        )
        last = pl.col("ago") <= 90
        agg = days.group_by("_row").agg(
            f3=pl.col("amount").filter(last).sum(),
            fp=pl.col("amount").filter(~last).sum(),
            active=pl.col("day").filter(last & (pl.col("count") > 0)).n_unique(),
        )
        out = out.join(agg, on="_row", how="left")
    else:
        out = out.with_columns(f3=pl.lit(None, pl.Int64), fp=pl.lit(None, pl.Int64), active=pl.lit(None, pl.UInt32))
    f3 = pl.col("f3").fill_null(0)
    return out.select(
        "_row",
        mer_flow_3m__cents=f3,
        mer_active_days_3m=pl.col("active").fill_null(0).cast(pl.Int64),
        mer_flow_trend=_safe_ratio(f3, pl.col("fp").fill_null(0)) - 1.0,
    )


def _registry(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "registry" not in t:
        return None
    reg = spine.join(t["registry"].unique("subject", keep="first"), on="subject", how="inner")
    months = (
        pl.col("_month")
        - _month_index(pl.col("registered_on"))
        - (pl.col("as_of").dt.day() < pl.col("registered_on").dt.day()).cast(pl.Int32)
    )
    out = reg.select(
        "_row",
        business_age_months=months.clip(lower_bound=0).cast(pl.Int64),
        reg_status_active=pl.col("status").is_in(ACTIVE_STATUSES).cast(pl.Int64),
        reg_capital__cents=pl.col("capital"),
    )
    if "registry_changes" in t:
        changes = (
            spine.join(t["registry_changes"], on="subject", how="inner")
            .filter((pl.col("date") < pl.col("as_of")) & (pl.col("date") >= pl.col("as_of").dt.offset_by("-12mo")))
            .group_by("_row")
            .agg(
                reg_changes_12m=pl.len().cast(pl.Int64),
                reg_legal_rep_changes_12m=(pl.col("item") == "legal_representative").sum().cast(pl.Int64),
            )
        )
        out = out.join(changes, on="_row", how="left")
    else:
        out = out.with_columns(reg_changes_12m=pl.lit(None, pl.Int64), reg_legal_rep_changes_12m=pl.lit(None, pl.Int64))
    return out.with_columns(pl.col("reg_changes_12m", "reg_legal_rep_changes_12m").fill_null(0))


def _enforcement(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "enforcement" not in t:
        return None
    out = spine.join(t["enforcement"].unique("subject"), on="subject", how="inner").select("_row")
    if "enforcement_cases" in t:
        open_case = pl.col("status") == "open"
        cases = (
            spine.join(t["enforcement_cases"], on="subject", how="inner")
            .filter(pl.col("filed_on") < pl.col("as_of"))
            .group_by("_row")
            .agg(
                enf_cases_open=open_case.sum().cast(pl.Int64),
                enf_dishonest=(open_case & pl.col("dishonest").fill_null(False)).any().cast(pl.Int64),
                enf_amount_open__cents=pl.col("amount").filter(open_case).sum(),
            )
        )
        out = out.join(cases, on="_row", how="left")
    else:
        out = out.with_columns(
            enf_cases_open=pl.lit(None, pl.Int64),
            enf_dishonest=pl.lit(None, pl.Int64),
            enf_amount_open__cents=pl.lit(None, pl.Int64),
        )
    return out.with_columns(pl.col("enf_cases_open", "enf_dishonest", "enf_amount_open__cents").fill_null(0))


def _bureau(spine: pl.LazyFrame, t: dict[str, pl.LazyFrame]) -> pl.LazyFrame | None:
    if "bureau" not in t:
        return None
    reports = (
        spine.join(t["bureau"], on="subject", how="inner")
        .filter(pl.col("report_date").is_null() | (pl.col("report_date") <= pl.col("as_of")))
        .sort("report_date", nulls_last=False)
        .unique("_row", keep="last")
    )
    return reports.select(
        "_row",
        bur_history_months=pl.col("credit_history_months"),
        bur_lenders_open=pl.col("lenders_open"),
        bur_overdue_now=pl.col("overdue_accounts_now"),
        bur_overdue_months_24m=pl.col("overdue_months_24m"),
        bur_max_overdue_level_24m=pl.col("max_overdue_level_24m"),
        bur_inquiries_3m=pl.col("inquiries_3m"),
        bur_guarantee_amount__cents=pl.col("guarantee_amount"),
        bur_bad_debt=pl.col("bad_debt").cast(pl.Int64),
    )


_INT_FEATURES = {f.name for f in BUSINESS_FEATURES if f.dtype == "int"}


def _output_columns() -> list[pl.Expr]:
    cols: list[pl.Expr] = []
    for name in FEATURE_NAMES:
        if name in MONEY_FEATURES:
            cents = pl.col(f"{name}__cents")
            cols.append((cents.cast(pl.Float64) / 100.0).alias(name))
        elif name == "tax_grade":
            cols.append(pl.col(name).cast(pl.String))
        elif name in _INT_FEATURES:
            cols.append(pl.col(name).cast(pl.Int64))
        else:
            cols.append(pl.col(name).cast(pl.Float64))
    cols.extend(pl.col(f"{name}__cents").cast(pl.Int64) for name in MONEY_FEATURES)
    return cols


_IN_MEMORY_ROWS = 10_000


def business_features(tables: Mapping[str, pl.DataFrame | pl.LazyFrame], spine: pl.DataFrame) -> pl.DataFrame:
    """Every business feature for each `(subject, as_of)` row of the spine, in the spine's order.

    Columns: `subject`, `as_of`, the features of `FEATURE_NAMES` (floats for ratios and money in yuan, int64
    for counts and flags, text for `tax_grade`), then `<money feature>__cents` (int64, exact)."""
    for column in ("subject", "as_of"):
        if column not in spine.columns:
            raise ValidationError(f"spine: lacks column '{column}'", field="spine")
    checked = _check(tables)
    base = spine.lazy().select("subject", pl.col("as_of").cast(pl.Date)).with_row_index("_row")
    keyed = base.with_columns(_month=_month_index(pl.col("as_of")))
    parts = [
        part
        for part in (
            _tax(keyed, checked),
            _einvoice(keyed, checked),
            _merchant(keyed, checked),
            _registry(keyed, checked),
            _enforcement(keyed, checked),
            _bureau(keyed, checked),
        )
        if part is not None
    ]
    out = base
    for part in parts:
        out = out.join(part, on="_row", how="left")
    have = set(out.collect_schema())
    missing = []
    for name in FEATURE_NAMES:
        column = f"{name}__cents" if name in MONEY_FEATURES else name
        if column not in have:
            missing.append(pl.lit(None, pl.String if name == "tax_grade" else pl.Int64).alias(column))
    if missing:
        out = out.with_columns(missing)
    # The gap needs both tax and e-invoice: null unless both sources are present and something was invoiced.
    tax_present = pl.col("tax_sales_12m__cents").is_not_null()
    gap = (1.0 - _safe_ratio(pl.col("tax_sales_12m__cents"), pl.col("inv_issued_12m__cents"))).clip(-1.0, 1.0)
    out = out.with_columns(inv_sales_gap=pl.when(tax_present).then(gap).otherwise(None))
    # one applicant (or a few) in memory: the default engine's set-up costs ~40 ms on a plan of this size
    plan = out.sort("_row").select("subject", "as_of", *_output_columns())
    return plan.collect(engine="in-memory") if spine.height < _IN_MEMORY_ROWS else plan.collect()


def exact_money(row: Mapping[str, Any]) -> dict[str, Decimal | None]:
    """The money features of one output row as exact `Decimal` yuan (from the `__cents` columns)."""
    out: dict[str, Decimal | None] = {}
    for name in MONEY_FEATURES:
        cents = row.get(f"{name}__cents")
        out[name] = None if cents is None else (Decimal(int(cents)) / 100).quantize(_CENT)
    return out


# --- online: SPEC14 payloads into one-row tables -----------------------------------------------------------


def _cents(value: Any, where: str) -> int:
    """A money string ("123.45") as integer cents, exactly."""
    try:
        amount = Decimal(str(value))
    except (InvalidOperation, ValueError):
        raise ValidationError(f"{where}: '{value}' is not an amount", field=where) from None
    if not amount.is_finite() or amount != amount.quantize(_CENT):
        raise ValidationError(f"{where}: '{value}' is not an amount in cents", field=where)
    return int(amount * 100)


def _day(value: Any, where: str) -> date:
    try:
        return date.fromisoformat(str(value))
    except ValueError:
        raise ValidationError(f"{where}: '{value}' is not a date (YYYY-MM-DD)", field=where) from None


def _period(value: Any, where: str) -> date:
    try:
        year, month = str(value).split("-")
        return date(int(year), int(month), 1)
    except ValueError:
        raise ValidationError(f"{where}: '{value}' is not a period (YYYY-MM)", field=where) from None


def _frame(rows: list[dict[str, Any]], name: str) -> pl.DataFrame:
    schema = {"subject": pl.String, **_SCHEMAS[name]}
    return pl.DataFrame(rows, schema=schema, orient="row") if rows else pl.DataFrame(schema=schema)


def tables_from_payloads(payloads_by_kind: Mapping[str, Mapping[str, Any]], subject: str) -> dict[str, pl.DataFrame]:
    """The one-subject input tables of `business_features` from SPEC payloads (kind -> parsed JSON).

    A kind that is absent, or answered `found: false`, gives no tables: its features stay null."""
    tables: dict[str, pl.DataFrame] = {}
    found = {k: p for k, p in payloads_by_kind.items() if p and p.get("found") is True}
    if (tax := found.get("tax")) is not None:
        tables["tax_grades"] = _frame([{"subject": subject, "grade": tax.get("credit_grade")}], "tax_grades")
        rows = [
            {
                "subject": subject,
                "period": _period(d["period"], "tax.period"),
                "sales": _cents(d["sales"], "tax.sales"),
                "vat_paid": _cents(d.get("vat_paid", "0.00"), "tax.vat_paid"),
            }
            for d in tax.get("declarations") or []
        ]
        tables["tax_declarations"] = _frame(rows, "tax_declarations")
    if (inv := found.get("einvoice")) is not None:
        top = inv.get("top_customers_12m") or []
        top_amount = max((_cents(c["amount"], "einvoice.top_customers_12m") for c in top), default=0)
        tables["invoice_summary"] = _frame(
            [
                {
                    "subject": subject,
                    "counterparties_12m": inv.get("counterparties_12m"),
                    "top_customer_amount": top_amount,
                }
            ],
            "invoice_summary",
        )
        rows = [
            {
                "subject": subject,
                "period": _period(m["period"], "einvoice.period"),
                "issued_count": int(m.get("issued_count", 0)),
                "issued_amount": _cents(m.get("issued_amount", "0.00"), "einvoice.issued_amount"),
                "received_count": int(m.get("received_count", 0)),
                "received_amount": _cents(m.get("received_amount", "0.00"), "einvoice.received_amount"),
                "red_count": int(m.get("red_count", 0)),
                "red_amount": _cents(m.get("red_amount", "0.00"), "einvoice.red_amount"),
                "cancelled_count": int(m.get("cancelled_count", 0)),
            }
            for m in inv.get("months") or []
        ]
        tables["invoice_months"] = _frame(rows, "invoice_months")
    if (mer := found.get("merchant")) is not None:
        since = mer.get("merchant_since")
        tables["merchants"] = _frame(
            [{"subject": subject, "merchant_since": _day(since, "merchant.merchant_since") if since else None}],
            "merchants",
        )
        rows = [
            {
                "subject": subject,
                "day": _day(d["date"], "merchant.date"),
                "count": int(d.get("count", 0)),
                "amount": _cents(d["amount"], "merchant.amount"),
            }
            for d in mer.get("days") or []
        ]
        tables["merchant_days"] = _frame(rows, "merchant_days")
    if (reg := found.get("registry")) is not None:
        tables["registry"] = _frame(
            [
                {
                    "subject": subject,
                    "registered_on": _day(reg["registered_on"], "registry.registered_on"),
                    "capital": _cents(reg.get("capital", "0.00"), "registry.capital"),
                    "status": reg.get("status"),
                }
            ],
            "registry",
        )
        rows = [
            {"subject": subject, "date": _day(c["date"], "registry.changes.date"), "item": c.get("item")}
            for c in reg.get("changes") or []
        ]
        tables["registry_changes"] = _frame(rows, "registry_changes")
    if (enf := found.get("enforcement")) is not None:
        tables["enforcement"] = _frame([{"subject": subject}], "enforcement")
        rows = [
            {
                "subject": subject,
                "filed_on": _day(c["filed_on"], "enforcement.filed_on"),
                "amount": _cents(c.get("amount", "0.00"), "enforcement.amount"),
                "status": c.get("status"),
                "dishonest": bool(c.get("dishonest", False)),
            }
            for c in enf.get("cases") or []
        ]
        tables["enforcement_cases"] = _frame(rows, "enforcement_cases")
    if (bur := found.get("bureau")) is not None:
        report_date = bur.get("report_date")
        tables["bureau"] = _frame(
            [
                {
                    "subject": subject,
                    "report_date": _day(report_date, "bureau.report_date") if report_date else None,
                    "credit_history_months": bur.get("credit_history_months"),
                    "lenders_open": bur.get("lenders_open"),
                    "overdue_accounts_now": bur.get("overdue_accounts_now"),
                    "overdue_months_24m": bur.get("overdue_months_24m"),
                    "max_overdue_level_24m": bur.get("max_overdue_level_24m"),
                    "inquiries_3m": bur.get("inquiries_3m"),
                    "guarantee_amount": _cents(bur.get("guarantee_amount", "0.00"), "bureau.guarantee_amount"),
                    "bad_debt": bool(bur.get("bad_debt", False)),
                }
            ],
            "bureau",
        )
    return tables


def _online_row(payloads_by_kind: Mapping[str, Mapping[str, Any]], as_of: date) -> dict[str, Any]:
    subjects = {str(p.get("subject")) for p in payloads_by_kind.values() if p and p.get("subject")}
    if len(subjects) > 1:
        raise ValidationError("payloads: they are about different subjects", field="payloads")
    subject = subjects.pop() if subjects else ""
    spine = pl.DataFrame({"subject": [subject], "as_of": [as_of]}, schema={"subject": pl.String, "as_of": pl.Date})
    return business_features(tables_from_payloads(payloads_by_kind, subject), spine).row(0, named=True)


def features_from_payloads(
    payloads_by_kind: Mapping[str, Mapping[str, Any]], as_of: date
) -> dict[str, float | str | None]:
    """The business features of one subject from its providers' payloads (kind -> parsed JSON), as of a
    date: floats (money in yuan, counts and flags as whole numbers), `tax_grade` as text, None when unknown."""
    return online_features(payloads_by_kind, as_of)[0]


def online_features(
    payloads_by_kind: Mapping[str, Mapping[str, Any]], as_of: date
) -> tuple[dict[str, float | str | None], dict[str, Decimal | None]]:
    """`features_from_payloads` and `exact_money_from_payloads` of one subject from one computation."""
    row = _online_row(payloads_by_kind, as_of)
    values: dict[str, float | str | None] = {}
    for name in FEATURE_NAMES:
        value = row[name]
        values[name] = value if value is None or isinstance(value, str) else float(value)
    return values, exact_money(row)


def exact_money_from_payloads(
    payloads_by_kind: Mapping[str, Mapping[str, Any]], as_of: date
) -> dict[str, Decimal | None]:
    """The money features of one subject, exactly, as `Decimal` yuan (e.g. `tax_sales_12m` for a limit)."""
    return exact_money(_online_row(payloads_by_kind, as_of))
