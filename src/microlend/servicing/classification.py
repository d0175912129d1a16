"""Five-category classification rules (五级分类, 《商业银行金融资产风险分类办法》 2023) beyond days past due.

- Downgrades by days past due, as ``delinquency.classify``: any overdue → 关注; over 90 → 次级; over 270 → 可疑;
  over 360 → 损失.
- Judgement downgrades: an officer with the authority may downgrade a loan with a reason; that class is a
  floor the close of business never improves on.
- Upgrades of a non-performing loan (次级/可疑/损失): only once all arrears are repaid (it is then "cured" on
  that date) and after a period of normal repayment: the bank's ``cure_months`` (default 6) or
  ``cure_periods`` repayment periods (default 2), whichever ends later. Falling overdue again restarts it.
  Until then it keeps its class, even when days past due alone would give a better one.
- 关注 (special mention) from days past due returns to 正常 once the arrears are repaid (the 2023 rules'
  normal definition: paid in full and on time); a 关注 given by judgement stays until the judgement is lifted.
- Restructured loans (重组): at least 次级 during an observation period starting on the first due date of the
  new terms, at least two repayment periods and at least one year (``restructure_observation_end``); the
  restructuring use case calls ``mark_restructured``.

Every change is a ``LoanClassChanged`` event carrying its reason: it joins the loan's timeline, is audited and is
published through the event outbox."""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from dataclasses import dataclass, replace
from datetime import date

from sqlalchemy import select, text
from sqlalchemy.orm import Session

from microlend.core.errors import ValidationError
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.events import LoanClassChanged
from microlend.servicing.repository import in_work_rows
from microlend.servicing.tables import InstallmentRow, LoanClassStateRow
from microlend.servicing.writeoff import DEFAULT_POLICY, BadLoanPolicy

RANK = {c.value: i for i, c in enumerate(LoanClass)}
_NPL = tuple(c.value for c in LoanClass if c.non_performing)


def rank(loan_class: str) -> int:
    try:
        return RANK[loan_class]
    except KeyError:
        raise ValidationError(f"loan_class: one of {', '.join(RANK)}", field="loan_class") from None


def add_months(day: date, months: int) -> date:
    """The same day ``months`` later (the month's last day when it is shorter)."""
    month = day.month - 1 + months
    year, month = day.year + month // 12, month % 12 + 1
    return date(year, month, min(day.day, calendar.monthrange(year, month)[1]))


def cure_observation_end(cured_on: date, due_dates: Sequence[date], policy: BadLoanPolicy = DEFAULT_POLICY) -> date:
    """The first day a non-performing loan whose arrears were repaid on ``cured_on`` may be upgraded: after
    ``cure_months`` months and after its next ``cure_periods`` due dates, whichever is later (``due_dates``:
    the loan's due dates, any order; with fewer left, the last one)."""
    by_months = add_months(cured_on, policy.cure_months)
    later = sorted(d for d in due_dates if d > cured_on)
    by_periods = cured_on
    if policy.cure_periods and later:
        by_periods = later[min(policy.cure_periods, len(later)) - 1]
    return max(by_months, by_periods)


def restructure_observation_end(first_due: date, due_dates: Sequence[date]) -> date:
    """重组观察期 starts on the first due date under the new terms, covers at least two repayment periods and
    lasts at least one year."""
    later = sorted(d for d in due_dates if d >= first_due)
    two_periods = later[1] if len(later) > 1 else (later[0] if later else first_due)
    return max(add_months(first_due, 12), two_periods)


@dataclass(frozen=True)
class ClassState:
    judged_class: str | None = None
    judged_reason: str = ""
    cured_on: date | None = None
    observe_until: date | None = None
    restructured_until: date | None = None


@dataclass(frozen=True)
class Decision:
    loan_class: str
    reason: str
    state: ClassState


def decide(current: str, by_dpd: str, dpd: int, on: date, state: ClassState,
           observation_end: date | None = None) -> Decision:
    """The class a loan takes at the close of ``on``: ``current`` its class, ``by_dpd`` the class its days past
    due give, ``observation_end`` when a cure starting today would end (needed only when it cures today)."""
    target, reason = by_dpd, f"{dpd} days past due"
    if state.judged_class and rank(state.judged_class) > rank(target):
        target, reason = state.judged_class, f"judgement: {state.judged_reason}"
    if state.restructured_until and on < state.restructured_until and rank(target) < rank(LoanClass.SUBSTANDARD):
        target = LoanClass.SUBSTANDARD.value
        reason = f"restructured: observation until {state.restructured_until.isoformat()}"
    if current in _NPL and rank(target) < rank(current):
        if dpd > 0:  # arrears not repaid: no upgrade, and any cure restarts
            return Decision(current, "", replace(state, cured_on=None, observe_until=None))
        if state.cured_on is None or state.observe_until is None:
            end = observation_end or on
            return Decision(current, "", replace(state, cured_on=on, observe_until=end))
        if on < state.observe_until:
            return Decision(current, "", state)
        reason = (f"arrears repaid on {state.cured_on.isoformat()}, normal repayment observed until "
                  f"{state.observe_until.isoformat()}")
        return Decision(target, reason, replace(state, cured_on=None, observe_until=None))
    if dpd > 0 and state.cured_on is not None:
        state = replace(state, cured_on=None, observe_until=None)
    return Decision(target, reason, state)


def bank_policy(session: Session, tenant_id: int) -> BadLoanPolicy:
    from microlend.servicing.tables import BadLoanSettingsRow

    row = session.get(BadLoanSettingsRow, tenant_id)
    if row is None:
        return DEFAULT_POLICY
    return BadLoanPolicy(frozenset(row.writeoff_classes), frozenset(row.writeoff_reasons), row.cure_months,
                         row.cure_periods)


def _state(row: LoanClassStateRow | None) -> ClassState:
    if row is None:
        return ClassState()
    return ClassState(
        row.judged_class, row.judged_reason or "", row.cured_on,
        None if row.observe_until_day is None else date.fromordinal(row.observe_until_day),
        None if row.restructure_until_day is None else date.fromordinal(row.restructure_until_day),
    )


def apply_class_rules(session: Session, tenant_id: int, on: date) -> dict[int, str]:
    """Close of business, after days past due and the class by them are in the scratch table (``cob_work``):
    bring in the loans whose class rests on more than today's days past due (non-normal or with a class state),
    apply judgement floors, restructuring and the cure rule to them. Returns the reason per loan whose class
    the rules decided (the others change, if at all, by days past due)."""
    p = {"t": tenant_id}
    insert = (
        "INSERT INTO cob_work (tenant_id, loan_id, days_past_due, bucket, loan_class, overdue_principal, penalty) "
        f"SELECT :t, l.id, 0, l.bucket, '{LoanClass.NORMAL.value}', 0, 0 FROM "
    )
    absent = "AND NOT EXISTS (SELECT 1 FROM cob_work w WHERE w.tenant_id = :t AND w.loan_id = l.id)"
    # loans current today that carry a class other than normal, and loans with a class state (few of each);
    # the classes are listed so the (tenant, class) index finds them without reading every loan
    others = ", ".join(f"'{c.value}'" for c in LoanClass if c is not LoanClass.NORMAL)
    session.execute(text(insert + f"loans l WHERE l.tenant_id = :t AND l.loan_class IN ({others}) "
                                  f"AND l.status = 'active' {absent}"), p)
    session.execute(text(insert + "loan_class_states s JOIN loans l ON l.id = s.loan_id WHERE s.tenant_id = :t "
                                  f"AND l.status = 'active' {absent}"), p)
    npl = ", ".join(f"'{c}'" for c in _NPL)
    rank_sql = "CASE {0} " + " ".join(f"WHEN '{c}' THEN {r}" for c, r in RANK.items()) + " END"
    rows = session.execute(
        text(
            "SELECT w.loan_id, l.loan_class, w.loan_class, w.days_past_due FROM cob_work w "
            "JOIN loans l ON l.id = w.loan_id WHERE w.tenant_id = :t AND ("
            f"(l.loan_class IN ({npl}) AND {rank_sql.format('w.loan_class')} < {rank_sql.format('l.loan_class')}) "
            "OR EXISTS (SELECT 1 FROM loan_class_states s WHERE s.loan_id = w.loan_id))"
            f"{in_work_rows(session, 'l.id')} ORDER BY w.loan_id"
        ),
        p,
    ).all()
    if not rows:
        return {}
    ids = [int(r[0]) for r in rows]
    states = {s.loan_id: s for s in session.execute(
        select(LoanClassStateRow).where(LoanClassStateRow.loan_id.in_(ids))).scalars()}
    policy = bank_policy(session, tenant_id)
    reasons: dict[int, str] = {}
    for loan_id, current, by_dpd, dpd in rows:
        loan_id, dpd = int(loan_id), int(dpd)
        row = states.get(loan_id)
        state = _state(row)
        end = None
        if current in _NPL and dpd == 0 and state.cured_on is None:
            dues = session.execute(select(InstallmentRow.due_date).where(
                InstallmentRow.loan_id == loan_id, InstallmentRow.status == "pending")).scalars().all()
            end = cure_observation_end(on, dues, policy)
        decision = decide(str(current), str(by_dpd), dpd, on, state, end)
        if decision.loan_class != by_dpd:
            session.execute(text("UPDATE cob_work SET loan_class = :c WHERE tenant_id = :t AND loan_id = :id"),
                            {"c": decision.loan_class, "t": tenant_id, "id": loan_id})
        if decision.reason:
            reasons[loan_id] = decision.reason
        if decision.state != state:
            if row is None:
                row = LoanClassStateRow(loan_id=loan_id, tenant_id=tenant_id, judged_reason="")
                session.add(row)
            row.cured_on = decision.state.cured_on
            row.observe_until_day = None if decision.state.observe_until is None else (
                decision.state.observe_until.toordinal())
    session.flush()
    return reasons


def class_changes(session: Session, tenant_id: int, on: date, reasons: dict[int, str]) -> list[LoanClassChanged]:
    """Loans whose class today differs from the one they carry (before the loans take today's state), each with
    its reason."""
    rows = session.execute(
        text(
            "SELECT w.loan_id, l.loan_class, w.loan_class, w.days_past_due FROM cob_work w "
            "JOIN loans l ON l.id = w.loan_id WHERE w.tenant_id = :t AND l.loan_class <> w.loan_class"
            f"{in_work_rows(session, 'l.id')} ORDER BY w.loan_id"
        ),
        {"t": tenant_id},
    ).all()
    return [
        LoanClassChanged(tenant_id, int(r[0]), on, str(r[1]), str(r[2]), int(r[3]),
                         reasons.get(int(r[0]), f"{int(r[3])} days past due"))
        for r in rows
    ]


def mark_restructured(session: Session, tenant_id: int, loan_id: int, first_due: date,
                      due_dates: Sequence[date]) -> date:
    """The classification hook of a restructuring (重组): the loan is at least substandard until its observation
    period ends (returned); the next close of business applies it."""
    row = session.get(LoanClassStateRow, loan_id)
    if row is None:
        row = LoanClassStateRow(loan_id=loan_id, tenant_id=tenant_id, judged_reason="")
        session.add(row)
    end = restructure_observation_end(first_due, due_dates)
    row.restructured_on, row.restructure_until_day = first_due, end.toordinal()
    session.flush()
    return end
