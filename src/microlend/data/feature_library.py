"""The standard micro-lending feature library (标准特征库): what a bank starts with on day one.

Repayment behaviour on existing loans, days past due history, credit line utilisation, tenure, recent
applications and declines, and age. Every join keeps only what was known at the end of `s.as_of`:
loans disbursed by then, installments that fell due before it (a payment after the as-of date counts as
unpaid), the newest credit line snapshot on or before it, applications submitted by the end of that day.
The SQL is the portable dialect of `microlend.batch.dialect`, so the library runs on every batch engine.
"""

from __future__ import annotations

from microlend.data.library import FeatureDefinition, FeatureGroup, FeatureLibrary

#: End of the as-of day as a UTC timestamp, for comparing event timestamps with a date.
_DAY_END = "ml_day_end(s.as_of)"

REPAYMENT = FeatureGroup(
    name="repayment",
    sources=("loans", "installments"),
    description="Installments of the customer's loans that fell due before the as-of date.",
    from_sql="""spine s
    LEFT JOIN loans l ON l.customer_id = s.customer_id AND l.disbursed_at <= s.as_of
    LEFT JOIN installments i ON i.loan_id = l.loan_id AND i.due_date < s.as_of""",
)
LOANS = FeatureGroup(
    name="loans",
    sources=("loans",),
    description="Loans disbursed on or before the as-of date.",
    from_sql="spine s LEFT JOIN loans l ON l.customer_id = s.customer_id AND l.disbursed_at <= s.as_of",
)
CREDIT_LINES = FeatureGroup(
    name="credit_lines",
    sources=("credit_lines",),
    description="The newest credit line snapshot on or before the as-of date.",
    from_sql="""spine s
    LEFT JOIN (
        SELECT w.customer_id, w.spine_as_of, w."limit", w.used FROM (
            SELECT s2.customer_id, s2.as_of AS spine_as_of, c."limit", c.used, c.as_of AS line_as_of,
                max(c.as_of) OVER (PARTITION BY s2.customer_id, s2.as_of) AS newest
            FROM spine s2 JOIN credit_lines c ON c.customer_id = s2.customer_id AND c.as_of <= s2.as_of
        ) w WHERE w.line_as_of = w.newest
    ) c ON c.customer_id = s.customer_id AND c.spine_as_of = s.as_of""",
)
APPLICATIONS = FeatureGroup(
    name="applications",
    sources=("applications",),
    description="Applications submitted in the 90 days ending with the as-of date.",
    from_sql=f"""spine s
    LEFT JOIN applications a ON a.customer_id = s.customer_id
        AND a.submitted_at < {_DAY_END}
        AND a.submitted_at >= {_DAY_END} - INTERVAL 90 DAY""",
)
PROFILE = FeatureGroup(
    name="profile",
    sources=("customers",),
    description="The customer record, if the customer was known by the end of the as-of date.",
    from_sql=f"spine s LEFT JOIN customers c ON c.customer_id = s.customer_id AND c.created_at < {_DAY_END}",
)

EXTERNAL = FeatureGroup(
    name="external",
    sources=("external_scores",),
    description="External source reports (credit bureau, tax, utilities) received by the end of the as-of date.",
    from_sql=f"""spine s
    LEFT JOIN external_scores x ON x.customer_id = s.customer_id AND x.observed_at < {_DAY_END}""",
)


def external_score(
    source: str, name: str, description_en: str, description_zh: str, version: int = 1
) -> FeatureDefinition:
    """The newest score from one external source received by the as-of date (empty when none)."""
    if not source.replace("_", "").isalnum():
        raise ValueError(f"external source name '{source}' must be letters, digits or '_'")
    return FeatureDefinition(
        name,
        version,
        "external",
        f"max_by(x.score, x.observed_at) FILTER (WHERE x.source = '{source}')",
        "float",
        description_en,
        description_zh,
    )


def _late_in(months: int) -> str:
    return (
        f"count(i.loan_id) FILTER (WHERE i.due_date > CAST(s.as_of - INTERVAL {months} MONTH AS DATE) "
        "AND (i.paid_date IS NULL OR i.paid_date > i.due_date))"
    )


#: Days an installment stayed unpaid past its due date, counted up to the as-of date at most.
_DAYS_LATE = "greatest(ml_day_diff(i.due_date, least(coalesce(i.paid_date, s.as_of), s.as_of)), 0)"

STANDARD_FEATURES: tuple[FeatureDefinition, ...] = (
    FeatureDefinition(
        "installments_due",
        1,
        "repayment",
        "count(i.loan_id)",
        "int",
        "Installments that fell due before the as-of date, on all loans.",
        "截至观察日已到期的期供数",
        default="0",
    ),
    FeatureDefinition(
        "on_time_repayment_rate",
        1,
        "repayment",
        "avg(CASE WHEN i.loan_id IS NULL THEN NULL "
        "WHEN i.paid_date IS NOT NULL AND i.paid_date <= i.due_date THEN CAST(1 AS DOUBLE) ELSE CAST(0 AS DOUBLE) END)",
        "float",
        "Share of installments due before the as-of date that were paid by their due date; empty without history.",
        "按时还款率（已到期期供中按期还清的比例）",
    ),
    FeatureDefinition(
        "late_installments_3m",
        1,
        "repayment",
        _late_in(3),
        "int",
        "Installments due in the 3 months before the as-of date that were paid late or are unpaid.",
        "近3个月逾期期数",
        default="0",
    ),
    FeatureDefinition(
        "late_installments_6m",
        1,
        "repayment",
        _late_in(6),
        "int",
        "Installments due in the 6 months before the as-of date that were paid late or are unpaid.",
        "近6个月逾期期数",
        default="0",
    ),
    FeatureDefinition(
        "late_installments_12m",
        1,
        "repayment",
        _late_in(12),
        "int",
        "Installments due in the 12 months before the as-of date that were paid late or are unpaid.",
        "近12个月逾期期数",
        default="0",
    ),
    FeatureDefinition(
        "max_days_past_due_ever",
        1,
        "repayment",
        f"max({_DAYS_LATE})",
        "int",
        "Worst days past due reached on any installment up to the as-of date.",
        "历史最大逾期天数",
        default="0",
    ),
    FeatureDefinition(
        "max_days_past_due_12m",
        1,
        "repayment",
        f"max({_DAYS_LATE}) FILTER (WHERE i.due_date > CAST(s.as_of - INTERVAL 12 MONTH AS DATE))",
        "int",
        "Worst days past due on installments due in the 12 months before the as-of date.",
        "近12个月最大逾期天数",
        default="0",
    ),
    FeatureDefinition(
        "current_days_past_due",
        1,
        "repayment",
        "max(ml_day_diff(i.due_date, s.as_of)) FILTER (WHERE i.paid_date IS NULL OR i.paid_date > s.as_of)",
        "int",
        "Days since the oldest installment still unpaid on the as-of date fell due (0 when current).",
        "当前逾期天数",
        default="0",
    ),
    FeatureDefinition(
        "loans_count",
        1,
        "loans",
        "count(l.loan_id)",
        "int",
        "Loans disbursed to the customer on or before the as-of date.",
        "历史借款笔数",
        default="0",
    ),
    FeatureDefinition(
        "active_loans_count",
        1,
        "loans",
        "count(l.loan_id) FILTER (WHERE l.closed_at IS NULL OR l.closed_at > s.as_of)",
        "int",
        "Loans disbursed and not yet closed on the as-of date.",
        "在贷笔数",
        default="0",
    ),
    FeatureDefinition(
        "credit_line_utilisation",
        1,
        "credit_lines",
        'CAST(sum(c.used) AS DOUBLE) / nullif(CAST(sum(c."limit") AS DOUBLE), 0)',
        "float",
        "Drawn share of all granted limits on the newest snapshot before the as-of date; empty without a line.",
        "授信额度使用率",
    ),
    FeatureDefinition(
        "applications_90d",
        1,
        "applications",
        "count(a.customer_id)",
        "int",
        "Applications submitted in the 90 days ending with the as-of date.",
        "近90天申请次数",
        default="0",
    ),
    FeatureDefinition(
        "declines_90d",
        1,
        "applications",
        "count(a.customer_id) FILTER (WHERE a.outcome = 'declined')",
        "int",
        "Applications declined among those submitted in the 90 days ending with the as-of date.",
        "近90天被拒次数",
        default="0",
    ),
    FeatureDefinition(
        "tenure_months",
        1,
        "profile",
        "max(ml_month_diff(CAST(c.created_at AS DATE), s.as_of))",
        "int",
        "Full months from the day the customer became known to the as-of date.",
        "客户关系月数",
    ),
    FeatureDefinition(
        "age_years",
        1,
        "profile",
        "max(ml_year_diff(c.birth_date, s.as_of))",
        "int",
        "Age in full years on the as-of date.",
        "年龄（周岁）",
    ),
    external_score(
        "bureau",
        "bureau_score",
        "Newest credit bureau score received by the as-of date; empty without a report.",
        "最新征信评分",
    ),
)


def standard_library() -> FeatureLibrary:
    """A fresh copy of the standard library, for a bank to extend with its own features."""
    library = FeatureLibrary()
    for group in (REPAYMENT, LOANS, CREDIT_LINES, APPLICATIONS, PROFILE, EXTERNAL):
        library.add_group(group)
    for definition in STANDARD_FEATURES:
        library.add(definition)
    return library


STANDARD_LIBRARY = standard_library()
