"""催收绩效 (collections performance): per collector and month, the work done on collections cases, the promises
to pay and what became of them, the amount recovered and the cases closed; one set-based SQL statement per family
of figures, the same on SQLite and PostgreSQL.

Definitions (a collector is a staff user; days are UTC days of the recorded timestamps, business dates where the
record has one):
- cases worked: distinct cases on which the collector recorded a contact, a promise, a note or an escalation in
  the month (the total counts a case worked by two collectors once);
- contacts: contacts made (a contact refused by a conduct rule is not one), also by outcome;
- promises: promises to pay the collector recorded, by the month of the business date they were made, with what
  became of them: kept, broken, pending, or lapsed (the case closed before the promise's date without the
  amount); kept rate = kept / (kept + broken), none while nothing is decided;
- amount recovered: posted (not reversed) repayments on the loan of a case, with a value date from the day the
  case was assigned to the collector up to, not including, the day it was assigned to someone else or taken off
  them by a re-route to another team, and no later than the day the case closed. A repayment on the day of a
  reassignment counts for the new collector; each repayment counts once per case;
- cases closed / cured: cases closed in the month while assigned to the collector (by the close date), cured ones
  among them.
"""

from __future__ import annotations

import re
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import bindparam, text

from microlend.core.errors import ValidationError
from microlend.core.identity import Principal
from microlend.core.money import from_storage
from microlend.core.uow import UnitOfWork
from microlend.servicing.collection_rules import OUTCOMES
from microlend.servicing.portfolio import ensure_viewer, ratio
from microlend.servicing.portfolio_sql import MAX_MONTHS, _lit, month_end

#: The kinds of case actions that are a collector's work on the case.
WORK = ("contact", "promise", "note", "escalation")
_MONTH = re.compile(r"^(\d{4})-(\d{2})$")


def parse_month(value: str, name: str) -> tuple[int, int]:
    m = _MONTH.match(value.strip())
    if m is None or not 1 <= int(m.group(2)) <= 12 or int(m.group(1)) < 1900:
        raise ValidationError(f"{name}: '{value[:20]}' is not a month YYYY-MM", field=name)
    return int(m.group(1)), int(m.group(2))


@dataclass(frozen=True)
class Period:
    """Calendar months from `first` to `last` (both (year, month)), at most `MAX_MONTHS` of them."""

    first: tuple[int, int]
    last: tuple[int, int]

    def __post_init__(self) -> None:
        if self.last < self.first:
            raise ValidationError("to: not before from", field="to")
        if len(self.labels) > MAX_MONTHS:
            raise ValidationError(f"to: at most {MAX_MONTHS} months after from", field="to")

    @classmethod
    def of(cls, first: str, last: str) -> Period:
        return cls(parse_month(first, "from"), parse_month(last, "to"))

    @classmethod
    def ending(cls, on: date, months: int) -> Period:
        y, m = on.year, on.month - (months - 1)
        while m < 1:
            y, m = y - 1, m + 12
        return cls((y, m), (on.year, on.month))

    @property
    def starts(self) -> list[date]:
        (y, m), out = self.first, []
        while (y, m) <= self.last:
            out.append(date(y, m, 1))
            y, m = (y, m + 1) if m < 12 else (y + 1, 1)
        return out

    @property
    def ends(self) -> list[date]:
        return [month_end(s.year, s.month) for s in self.starts]

    @property
    def labels(self) -> list[str]:
        return [f"{s.year:04d}-{s.month:02d}" for s in self.starts]


def period_of(first: str, last: str, today: date, default_months: int = 6) -> Period:
    """The months asked for (either end may be left out: six months up to `to`, or up to this month)."""
    end = parse_month(last, "to") if last.strip() else (today.year, today.month)
    if first.strip():
        return Period(parse_month(first, "from"), end)
    return Period.ending(date(end[0], end[1], 1), default_months)


# ---------------------------------------------------------------------------------------------------- the SQL


def _day(column: str, dialect: str) -> str:
    """The UTC day of a timestamp column (SQLite keeps UTC timestamps as ISO text)."""
    return f"date({column})" if dialect == "sqlite" else f"CAST({column} AT TIME ZONE 'UTC' AS DATE)"


def _idx(day: str, p: Period, dialect: str) -> str:
    """The index in the period of the month of a date expression (SQLite keeps dates as ISO text): arithmetic on
    the year and month, so that a row finds its month without a join."""
    base = p.first[0] * 12 + p.first[1]
    if dialect == "sqlite":
        return f"(CAST(substr({day}, 1, 4) AS INTEGER) * 12 + CAST(substr({day}, 6, 2) AS INTEGER) - {base})"
    return f"(CAST(EXTRACT(YEAR FROM {day}) AS INTEGER) * 12 + CAST(EXTRACT(MONTH FROM {day}) AS INTEGER) - {base})"


def _within(day: str, p: Period, dialect: str) -> str:
    return f"{day} >= {_lit(p.starts[0], dialect)} AND {day} <= {_lit(p.ends[-1], dialect)}"


def activity_sql(p: Period, tenant_id: int, dialect: str) -> str:
    """Rows (collector or NULL, month index or NULL, cases worked, contacts, contacts by outcome in the order of
    `OUTCOMES`): per collector and month; then only the cases worked (distinct, so not a sum of the former) per
    collector over the period, per month for everyone, and for everyone over the period."""
    t = int(tenant_id)
    kinds = ", ".join(f"'{k}'" for k in WORK)
    per_outcome = "".join(f", SUM(CASE WHEN kind = 'contact' AND outcome = '{o}' THEN 1 ELSE 0 END)" for o in OUTCOMES)
    nothing = ", CAST(NULL AS INTEGER)" * (1 + len(OUTCOMES))
    null_actor, null_idx = "CAST(NULL AS VARCHAR(100))", "CAST(NULL AS INTEGER)"
    day = _day("x.at", dialect)
    return f"""
WITH a AS (
  SELECT x.actor AS actor, x.case_id AS case_id, x.kind AS kind, x.outcome AS outcome, {day} AS d
  FROM collection_actions x
  WHERE x.tenant_id = {t} AND x.kind IN ({kinds})
),
w AS (
  SELECT actor, {_idx("d", p, dialect)} AS idx, case_id, kind, outcome FROM a WHERE {_within("d", p, dialect)}
),
dc AS (SELECT DISTINCT actor, idx, case_id FROM w)
SELECT actor, idx, COUNT(DISTINCT case_id), SUM(CASE WHEN kind = 'contact' THEN 1 ELSE 0 END){per_outcome}
FROM w GROUP BY actor, idx
UNION ALL SELECT actor, {null_idx}, COUNT(DISTINCT case_id){nothing} FROM dc GROUP BY actor
UNION ALL SELECT {null_actor}, idx, COUNT(DISTINCT case_id){nothing} FROM dc GROUP BY idx
UNION ALL SELECT {null_actor}, {null_idx}, COUNT(DISTINCT case_id){nothing} FROM dc
"""


def promises_sql(p: Period, tenant_id: int, dialect: str) -> str:
    """Rows (collector, month index, made, kept, broken, pending, lapsed, promised amount, kept amount), the
    amounts as stored integers, by the business date each promise was made."""
    t = int(tenant_id)
    made = f"COALESCE(x.promised_on, {_day('x.at', dialect)})"

    def status(s: str) -> str:
        return f"SUM(CASE WHEN pr.promise_status = '{s}' THEN 1 ELSE 0 END)"

    return f"""
WITH pr AS (
  SELECT actor, promise_status, amount, {made} AS d FROM collection_actions x
  WHERE x.tenant_id = {t} AND x.kind = 'promise'
)
SELECT pr.actor, {_idx("pr.d", p, dialect)}, COUNT(*), {status('kept')}, {status('broken')}, {status('pending')},
       {status('closed')}, SUM(pr.amount), SUM(CASE WHEN pr.promise_status = 'kept' THEN pr.amount ELSE 0 END)
FROM pr WHERE {_within("pr.d", p, dialect)}
GROUP BY pr.actor, {_idx("pr.d", p, dialect)}
"""


def recovered_sql(p: Period, tenant_id: int, dialect: str) -> str:
    """Rows (collector, month index, repayments, amount as stored integers): the repayments on each case's loan
    while the case was assigned to the collector (see the module's definition). A case's assignments are its
    `assign` actions; a `reroute` action (to another team, which leaves the case unassigned) ends one too."""
    t = int(tenant_id)
    first, last = _lit(p.starts[0], dialect), _lit(p.ends[-1], dialect)
    return f"""
WITH e AS (
  SELECT x.case_id AS case_id, CASE WHEN x.kind = 'assign' THEN x.party END AS collector, x.at AS at,
         CASE WHEN x.kind = 'assign' THEN 0 ELSE 1 END AS src, x.id AS n
  FROM collection_actions x WHERE x.tenant_id = {t} AND x.kind IN ('assign', 'reroute')
),
s AS (
  SELECT e.case_id AS case_id, e.collector AS collector, {_day('e.at', dialect)} AS d_from,
         LEAD({_day('e.at', dialect)}) OVER (PARTITION BY e.case_id ORDER BY e.at, e.src, e.n) AS d_next
  FROM e
),
r AS (
  SELECT s.collector AS collector, y.value_date AS value_date, y.amount AS amount
  FROM s
  JOIN collection_cases c ON c.id = s.case_id AND c.tenant_id = {t}
  JOIN loan_repayments y ON y.loan_id = c.loan_id AND y.tenant_id = {t} AND y.status = 'posted'
  WHERE s.collector IS NOT NULL
    AND y.value_date >= s.d_from AND (s.d_next IS NULL OR y.value_date < s.d_next)
    AND (c.closed_on IS NULL OR y.value_date <= c.closed_on)
    AND y.value_date >= {first} AND y.value_date <= {last}
)
SELECT r.collector, {_idx("r.value_date", p, dialect)}, COUNT(*), SUM(r.amount)
FROM r GROUP BY r.collector, {_idx("r.value_date", p, dialect)}
"""


def closed_sql(p: Period, tenant_id: int, dialect: str) -> str:
    """Rows (collector, month index, cases closed, cured): cases closed while assigned, by the close date (a
    closed case keeps the assignee it had when it closed)."""
    t = int(tenant_id)
    return f"""
SELECT c.assignee, {_idx("c.closed_on", p, dialect)}, COUNT(*),
       SUM(CASE WHEN c.close_reason = 'cured' THEN 1 ELSE 0 END)
FROM collection_cases c
WHERE c.tenant_id = {t} AND c.status = 'closed' AND c.assignee IS NOT NULL AND {_within("c.closed_on", p, dialect)}
GROUP BY c.assignee, {_idx("c.closed_on", p, dialect)}
"""


# ---------------------------------------------------------------------------------------------------- figures


@dataclass
class Figures:
    """One collector's (or everyone's) figures for one month (or the whole period)."""

    cases_worked: int = 0
    contacts: int = 0
    contacts_by_outcome: dict[str, int] = field(default_factory=lambda: dict.fromkeys(OUTCOMES, 0))
    promises_made: int = 0
    promises_kept: int = 0
    promises_broken: int = 0
    promises_pending: int = 0
    promises_lapsed: int = 0
    promised_amount: Decimal = Decimal("0.00")
    kept_amount: Decimal = Decimal("0.00")
    repayments: int = 0
    amount_recovered: Decimal = Decimal("0.00")
    cases_closed: int = 0
    cases_cured: int = 0

    @property
    def kept_rate(self) -> Decimal | None:
        """Kept / (kept + broken): the promises decided; pending and lapsed ones are left out."""
        return ratio(self.promises_kept, self.promises_kept + self.promises_broken)

    def add(self, other: Figures) -> None:
        """Adds everything but the cases worked (a case worked in two months, or by two collectors, is one)."""
        for name in ("contacts", "promises_made", "promises_kept", "promises_broken", "promises_pending",
                     "promises_lapsed", "promised_amount", "kept_amount", "repayments", "amount_recovered",
                     "cases_closed", "cases_cured"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        for o, n in other.contacts_by_outcome.items():
            self.contacts_by_outcome[o] = self.contacts_by_outcome.get(o, 0) + n


@dataclass(frozen=True)
class CollectorLine:
    username: str
    name: str
    months: tuple[Figures, ...]  # in the period's order
    total: Figures


@dataclass(frozen=True)
class CollectionsPerformance:
    months: tuple[str, ...]
    collectors: tuple[CollectorLine, ...]  # by name
    by_month: tuple[Figures, ...]  # everyone
    total: Figures


def _money(stored: Any) -> Decimal:
    return from_storage(int(stored or 0)).quantize(Decimal("0.01"))


Key = tuple[str | None, int | None]
Row = tuple[Any, ...]


def assemble(labels: list[str], names: dict[str, str], activity: list[Row],
             promises: list[Row], recovered: list[Row],
             closed: list[Row]) -> CollectionsPerformance:
    """The figures from the statements' rows: (collector, month index) cells; totals over months and collectors
    are sums, but for the cases worked, whose distinct counts come from the activity statement itself."""
    n = len(labels)
    cells: dict[Key, Figures] = defaultdict(Figures)
    worked: dict[Key, int] = {}
    for actor, idx, cases, contacts, *outcomes in activity:
        key = (None if actor is None else str(actor), None if idx is None else int(idx))
        worked[key] = int(cases)
        if actor is not None and idx is not None:
            f = cells[key]
            f.contacts = int(contacts or 0)
            f.contacts_by_outcome = {o: int(v or 0) for o, v in zip(OUTCOMES, outcomes, strict=True)}
    for actor, idx, made, kept, broken, pending, lapsed, amount, kept_amount in promises:
        f = cells[str(actor), int(idx)]
        f.promises_made, f.promises_kept, f.promises_broken = int(made), int(kept or 0), int(broken or 0)
        f.promises_pending, f.promises_lapsed = int(pending or 0), int(lapsed or 0)
        f.promised_amount, f.kept_amount = _money(amount), _money(kept_amount)
    for collector, idx, count, amount in recovered:
        f = cells[str(collector), int(idx)]
        f.repayments, f.amount_recovered = int(count), _money(amount)
    for collector, idx, count, cured in closed:
        f = cells[str(collector), int(idx)]
        f.cases_closed, f.cases_cured = int(count), int(cured or 0)
    people = sorted({c for c, _ in cells if c is not None}, key=lambda u: ((names.get(u) or u).casefold(), u))
    lines, by_month, total = [], [Figures() for _ in range(n)], Figures()
    for person in people:
        months = tuple(cells.get((person, i)) or Figures() for i in range(n))
        for i, f in enumerate(months):
            f.cases_worked = worked.get((person, i), 0)
            by_month[i].add(f)
        line_total = Figures()
        for f in months:
            line_total.add(f)
        line_total.cases_worked = worked.get((person, None), 0)
        total.add(line_total)
        lines.append(CollectorLine(person, names.get(person) or person, months, line_total))
    for i, f in enumerate(by_month):
        f.cases_worked = worked.get((None, i), 0)
    total.cases_worked = worked.get((None, None), 0)
    return CollectionsPerformance(tuple(labels), tuple(lines), tuple(by_month), total)


def collections_performance(uow: UnitOfWork, who: Principal, period: Period) -> CollectionsPerformance:
    """The bank's collections performance over the period's months, per collector, month by month."""
    ensure_viewer(who)
    with uow.read_only():
        s = uow.session
        dialect = s.get_bind().dialect.name
        t = who.tenant_id

        def rows(sql: str) -> list[Row]:
            return [tuple(r) for r in s.execute(text(sql)).all()]

        activity = rows(activity_sql(period, t, dialect))
        promises = rows(promises_sql(period, t, dialect))
        recovered = rows(recovered_sql(period, t, dialect))
        closed = rows(closed_sql(period, t, dialect))
        users = {str(r[0]) for part in (activity, promises, recovered, closed) for r in part if r[0] is not None}
        names: dict[str, str] = {}
        if users:
            found = s.execute(text("SELECT username, display_name FROM users WHERE tenant_id = :t"
                                   " AND username IN :u").bindparams(bindparam("u", expanding=True)),
                              {"t": t, "u": sorted(users)}).all()
            names = {str(u): str(d or "") for u, d in found}
    return assemble(period.labels, names, activity, promises, recovered, closed)
