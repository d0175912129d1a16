"""贷后组合分析的取数: the month-end states of a bank's loans, derived set-based from the installment history
(due dates, paid dates) in one SQL statement per figure. The same statements run on SQLite, PostgreSQL and
DuckDB (the benchmark), over tables shaped like `loans` and `loan_installments`.

States at a point in time E (a month end, or the as-of date for the running month):
- ``paid`` / ``written_off``: the loan closed on or before E (by repayment / by write-off);
- otherwise its bucket by days past due at E = E minus the oldest due date unpaid at E (an installment paid on
  its due date is on time; one paid after E was unpaid at E): M0 current, M1 1–30, M2 31–60, M3 61–90, M3+ over 90.

"Ever 30+" / "ever 90+" (vintages): on some day the loan was more than 30 / 90 days past due, or it was written
off (an installment due on D and unpaid on D + 31 made the loan 30+ on D + 31).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta

from microlend.core.errors import ValidationError

#: The buckets a loan can be in while open, best first, then the two closed states.
OPEN_STATES = ("M0", "M1", "M2", "M3", "M3+")
CLOSED_STATES = ("written_off", "paid")
STATES = OPEN_STATES + CLOSED_STATES
#: The longest window a page or an export may ask for (five years of monthly cohorts).
MAX_MONTHS = 60


def month_end(year: int, month: int) -> date:
    nxt = date(year + month // 12, month % 12 + 1, 1)
    return nxt - timedelta(days=1)


@dataclass(frozen=True)
class Window:
    """`months` calendar months ending with the month of `as_of`; each month's point in time is its last day,
    but the running month's is `as_of` itself (figures are never of days not yet lived)."""

    as_of: date
    months: int

    def __post_init__(self) -> None:
        if not 2 <= self.months <= MAX_MONTHS:
            raise ValidationError(f"months: between 2 and {MAX_MONTHS}", field="months")

    @property
    def starts(self) -> list[date]:
        y, m = self.as_of.year, self.as_of.month
        out = []
        for _ in range(self.months):
            out.append(date(y, m, 1))
            y, m = (y, m - 1) if m > 1 else (y - 1, 12)
        return out[::-1]

    @property
    def ends(self) -> list[date]:
        return [min(month_end(s.year, s.month), self.as_of) for s in self.starts]

    @property
    def labels(self) -> list[str]:
        return [f"{s.year:04d}-{s.month:02d}" for s in self.starts]


def _lit(d: date, dialect: str) -> str:
    """A date literal (values we make ourselves, never the caller's text): SQLite keeps dates as ISO text."""
    return f"'{d.isoformat()}'" if dialect == "sqlite" else f"DATE '{d.isoformat()}'"


def _plus(column: str, days: int, dialect: str) -> str:
    return f"date({column}, '+{days} day')" if dialect == "sqlite" else f"({column} + {days})"


def _months_table(w: Window, dialect: str) -> str:
    return " UNION ALL ".join(
        f"SELECT {i} AS idx, {_lit(s, dialect)} AS ms, {_lit(e, dialect)} AS me"
        for i, (s, e) in enumerate(zip(w.starts, w.ends, strict=True)))


def vintage_sql(w: Window, tenant_id: int, dialect: str) -> str:
    """Rows (cohort month index, month index of first 30+ or NULL, month index of first 90+ or NULL, loans):
    the loans disbursed in each month of the window by the month they first went 30+ / 90+ past due."""
    t = int(tenant_id)
    due31, due91 = _plus("d.due_date", 31, dialect), _plus("d.due_date", 91, dialect)
    unpaid = "COALESCE(d.paid_on, l.closed_on)"
    first, last = _lit(w.starts[0], dialect), _lit(w.as_of, dialect)
    # only installments that could have made a loan 30+ by the as-of date: due 31 days before it at least,
    # and not paid within 30 days of falling due; the loans are counted by their dates before the months join
    return f"""
WITH m AS ({_months_table(w, dialect)}),
d AS (
  SELECT i.loan_id AS loan_id, i.due_date AS due_date, i.paid_on AS paid_on
  FROM loan_installments i
  WHERE i.tenant_id = {t} AND i.due_date <= {_lit(w.as_of - timedelta(31), dialect)}
    AND (i.paid_on IS NULL OR i.paid_on > {_plus("i.due_date", 31, dialect)})
),
f AS (
  SELECT d.loan_id AS loan_id,
         MIN(CASE WHEN {unpaid} IS NULL OR {unpaid} > {due31} THEN {due31} END) AS f30,
         MIN(CASE WHEN {unpaid} IS NULL OR {unpaid} > {due91} THEN {due91} END) AS f90
  FROM d JOIN loans l ON l.id = d.loan_id
  WHERE l.tenant_id = {t} AND l.disbursed_on >= {first} AND l.disbursed_on <= {last}
  GROUP BY d.loan_id
),
b AS (
  SELECT l.disbursed_on AS disbursed_on,
         CASE WHEN l.status = 'written_off' AND (f.f30 IS NULL OR l.closed_on < f.f30) THEN l.closed_on
              ELSE f.f30 END AS b30,
         CASE WHEN l.status = 'written_off' AND (f.f90 IS NULL OR l.closed_on < f.f90) THEN l.closed_on
              ELSE f.f90 END AS b90,
         COUNT(*) AS n
  FROM loans l LEFT JOIN f ON f.loan_id = l.id
  WHERE l.tenant_id = {t} AND l.disbursed_on >= {first} AND l.disbursed_on <= {last}
  GROUP BY 1, 2, 3
)
SELECT c.idx AS cohort, m30.idx AS k30, m90.idx AS k90, SUM(b.n) AS loans
FROM b
JOIN m c ON b.disbursed_on BETWEEN c.ms AND c.me
LEFT JOIN m m30 ON b.b30 BETWEEN m30.ms AND m30.me
LEFT JOIN m m90 ON b.b90 BETWEEN m90.ms AND m90.me
GROUP BY c.idx, m30.idx, m90.idx
"""


def _bucket(d0: str, p: str) -> str:
    return (f"CASE WHEN {d0} IS NULL THEN 'M0' WHEN {d0} >= {p}30 THEN 'M1' WHEN {d0} >= {p}60 THEN 'M2' "
            f"WHEN {d0} >= {p}90 THEN 'M3' ELSE 'M3+' END")


def roll_sql(w: Window, tenant_id: int, dialect: str) -> str:
    """Rows (month index j >= 1, state at the end of month j-1, state at the end of month j, loans): every
    loan open at the end of a month, with where it stood a month later. Loans never late at a month end are
    counted by their dates (all alike), the others one by one with their oldest unpaid due dates."""
    t = int(tenant_id)
    points = " UNION ALL ".join(
        f"SELECT {i} AS idx, {_lit(e, dialect)} AS e" for i, e in enumerate(w.ends))
    pairs = " UNION ALL ".join(
        f"SELECT {j} AS idx, {_lit(w.ends[j - 1], dialect)} AS pe, {_lit(w.ends[j - 1] - timedelta(30), dialect)} "
        f"AS pe30, {_lit(w.ends[j - 1] - timedelta(60), dialect)} AS pe60, "
        f"{_lit(w.ends[j - 1] - timedelta(90), dialect)} AS pe90, {_lit(w.ends[j], dialect)} AS e, "
        f"{_lit(w.ends[j] - timedelta(30), dialect)} AS e30, {_lit(w.ends[j] - timedelta(60), dialect)} AS e60, "
        f"{_lit(w.ends[j] - timedelta(90), dialect)} AS e90"
        for j in range(1, len(w.ends)))
    return f"""
WITH p AS ({points}),
q AS ({pairs}),
o AS (
  SELECT i.loan_id AS loan_id, p.idx AS idx, MIN(i.due_date) AS d0
  FROM loan_installments i
  JOIN p ON i.due_date < p.e AND (i.paid_on IS NULL OR i.paid_on > p.e)
  WHERE i.tenant_id = {t} AND i.due_date < {_lit(w.as_of, dialect)}
    AND (i.paid_on IS NULL OR i.paid_on > i.due_date)
  GROUP BY i.loan_id, p.idx
),
lo AS (
  SELECT l.disbursed_on AS disbursed_on, l.closed_on AS closed_on, l.status AS status,
         CASE WHEN l.id IN (SELECT loan_id FROM o) THEN l.id END AS late_id, COUNT(*) AS n
  FROM loans l
  WHERE l.tenant_id = {t} AND l.disbursed_on <= {_lit(w.ends[-2], dialect)}
    AND (l.closed_on IS NULL OR l.closed_on > {_lit(w.ends[0], dialect)})
  GROUP BY 1, 2, 3, 4
),
r AS (
  SELECT q.idx AS idx,
         {_bucket("o1.d0", "q.pe")} AS s_from,
         CASE WHEN lo.closed_on IS NOT NULL AND lo.closed_on <= q.e
              THEN CASE WHEN lo.status = 'written_off' THEN 'written_off' ELSE 'paid' END
              ELSE {_bucket("o2.d0", "q.e")} END AS s_to,
         lo.n AS n
  FROM lo
  JOIN q ON lo.disbursed_on <= q.pe AND (lo.closed_on IS NULL OR lo.closed_on > q.pe)
  LEFT JOIN o o1 ON o1.loan_id = lo.late_id AND o1.idx = q.idx - 1
  LEFT JOIN o o2 ON o2.loan_id = lo.late_id AND o2.idx = q.idx
)
SELECT idx, s_from, s_to, SUM(n) AS loans FROM r GROUP BY idx, s_from, s_to
"""
