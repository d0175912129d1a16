"""Extension (展期) and restructuring (重组) of a loan, as plain rules over the Loan aggregate (no I/O).

On the date it takes effect (the business date of the approval):
- what is due today or overdue stays as it was (arrears), unless the arrears are capitalised;
- the running period is cut at today: its interest becomes what has accrued up to yesterday (any part not yet on
  the books is recognised now) and it falls due today (interest is settled to the day the new terms begin, 展期前
  结清利息); its unpaid principal and all later principal go to the new schedule;
- with ``capitalise_arrears`` (欠息转本) the arrears join the new principal: overdue principal, the interest
  receivable on the books and the penalty receivable (Dr 1301 loan principal / Cr 1302 interest receivable, Cr 1303
  penalty receivable, per-loan lines); fees still owed stay owed. A non-accrual loan's interest (or any amount held
  off-balance) is off the books and is never capitalised (that would book income the bank has not received): such
  a request is refused;
- the new schedule has ``term_months`` installments under the loan's method, at the new rate when one is given,
  from today on the loan's repayment day-of-month (a broken first period, see ``schedules``) when it is one every
  month has, otherwise on today's day-of-month.

An extension must move the maturity later, and by at most what 《贷款通则》 allows (article 12): the original term
for a loan of up to a year, half of it up to five years, three years beyond.

Which loans count as restructured (《商业银行金融资产风险分类办法》 2023: a restructured asset is one whose contract
was adjusted because the debtor is in financial difficulty): a ``restructure`` always does; an ``extension`` does
when the borrower shows difficulty when it is approved (days past due, a class below normal) or its arrears are
capitalised; an extension granted to a performing borrower (a longer business cycle, say) is not a restructuring
and leaves the class alone. A restructured loan is at least substandard until its observation period ends
(``classification.restructure_observation_end``)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from enum import StrEnum
from typing import Any

from microlend.core.errors import Conflict, ValidationError
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.domain import SETTLED, Installment, Loan, exact_rate, money_text
from microlend.servicing.ledger import Acct, JournalEntry, JournalLine, credit, debit
from microlend.servicing.nonaccrual import NON_ACCRUAL
from microlend.servicing.schedules import (
    MAX_REPAYMENT_DAY,
    MAX_TERM_MONTHS,
    RepaymentMethod,
    accrued_interest,
    build_schedule,
)

ZERO = Decimal(0)


class RestructureKind(StrEnum):
    EXTENSION = "extension"  # 展期
    RESTRUCTURE = "restructure"  # 重组


@dataclass(frozen=True)
class RestructureTerms:
    """What an officer asks for: the kind, the new schedule's installments, a new rate (None: the loan's) and
    whether the arrears are capitalised."""

    kind: RestructureKind
    term_months: int
    annual_rate: Decimal | None = None
    capitalise_arrears: bool = False

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", RestructureKind(self.kind))
        except ValueError:
            raise ValidationError("kind: extension or restructure", field="kind") from None
        if isinstance(self.term_months, bool) or not isinstance(self.term_months, int) or not (
            1 <= self.term_months <= MAX_TERM_MONTHS
        ):
            raise ValidationError(f"term_months: between 1 and {MAX_TERM_MONTHS}", field="term_months")
        rate = self.annual_rate
        if rate is not None:
            if not isinstance(rate, Decimal) or not rate.is_finite() or not (0 <= rate < 1):
                raise ValidationError("annual_rate: a yearly rate between 0 and 1 (0.12 means 12%)",
                                      field="annual_rate")
            if rate != rate.quantize(Decimal("0.000001")):
                raise ValidationError("annual_rate: at most 6 decimal places", field="annual_rate")


def extension_limit_months(original_term_months: int) -> int:
    """《贷款通则》 article 12: a short-term loan (up to a year) is extended by at most its original term, a
    medium-term one (up to five years) by half of it, a long-term one by three years at most."""
    if original_term_months <= 12:
        return original_term_months
    if original_term_months <= 60:
        return original_term_months // 2
    return 36


def months_later(before: date, after: date) -> int:
    """Whole months from ``before`` to ``after``, a part month counted as one."""
    months = (after.year - before.year) * 12 + after.month - before.month
    return months + (1 if after.day > before.day else 0)


def check_restructurable(loan: Loan, terms: RestructureTerms) -> None:
    """Refuse a request no approval could carry out (409 with the reason)."""
    if loan.status != "active":
        raise Conflict(f"loan {loan.id} is {loan.status.replace('_', ' ')}: only an active loan is extended or "
                       "restructured")
    if loan.method == RepaymentMethod.REVOLVING:
        raise Conflict(f"loan {loan.id} is a revolving drawdown: it is repaid freely, not rescheduled")
    if terms.capitalise_arrears and (
        loan.accrual_status == NON_ACCRUAL or loan.interest_suspended or loan.penalty_suspended
    ):
        raise Conflict(f"loan {loan.id} is non-accrual: its interest is off the books and cannot be capitalised; "
                       "restructure it without capitalising the arrears")


def counts_as_restructured(kind: RestructureKind, loan: Loan, capitalise_arrears: bool) -> bool:
    """The classification rule (see the module docstring): a restructuring always, an extension when the borrower
    shows difficulty (days past due, class below normal) or its arrears are capitalised."""
    if kind == RestructureKind.RESTRUCTURE:
        return True
    return loan.days_past_due > 0 or loan.loan_class != LoanClass.NORMAL.value or capitalise_arrears


@dataclass(frozen=True)
class Restructured:
    """What an approved extension or restructuring did to a loan."""

    principal: Decimal  # of the new schedule
    moved_principal: Decimal  # principal not yet due that the new schedule takes over
    capitalised_principal: Decimal
    capitalised_interest: Decimal
    capitalised_penalty: Decimal
    recognised_interest: Decimal  # interest to date brought onto the books (or the memo account) today
    maturity_before: date
    maturity_after: date
    first_due: date
    due_dates: tuple[date, ...]
    entry: JournalEntry | None
    schedule_before: list[dict[str, Any]]

    @property
    def capitalised(self) -> Decimal:
        return self.capitalised_principal + self.capitalised_interest + self.capitalised_penalty

    def facts(self) -> dict[str, Any]:
        return {
            "principal": money_text(self.principal), "moved_principal": money_text(self.moved_principal),
            "capitalised_principal": money_text(self.capitalised_principal),
            "capitalised_interest": money_text(self.capitalised_interest),
            "capitalised_penalty": money_text(self.capitalised_penalty),
            "recognised_interest": money_text(self.recognised_interest),
            "maturity_before": self.maturity_before.isoformat(), "maturity_after": self.maturity_after.isoformat(),
            "first_due": self.first_due.isoformat(),
        }


def _snapshot(loan: Loan) -> list[dict[str, Any]]:
    return [
        {"number": i.number, "period_start": i.period_start.isoformat(), "due_date": i.due_date.isoformat(),
         "principal": money_text(i.principal), "interest": money_text(i.interest), "fee": money_text(i.fee),
         "principal_paid": money_text(i.principal_paid), "interest_paid": money_text(i.interest_paid),
         "status": i.status}
        for i in loan.installments
    ]


def _repayment_day(loan: Loan, later: list[Installment]) -> int | None:
    """The loan's day-of-month, kept when every month has it (and the method has monthly installments)."""
    if loan.method == RepaymentMethod.BULLET or not later:
        return None
    day = later[-1].due_date.day
    return day if day <= MAX_REPAYMENT_DAY else None


def restructure_loan(loan: Loan, terms: RestructureTerms, on: date) -> Restructured:
    """Replace the loan's remaining schedule on ``on`` (see the module docstring); the loan records the change.
    Returns what moved and the balanced entry to post (None when nothing moves between accounts)."""
    check_restructurable(loan, terms)
    rate = exact_rate(terms.annual_rate if terms.annual_rate is not None else loan.annual_rate)
    unpaid = [i for i in loan.installments if i.status not in SETTLED]
    running = [i for i in unpaid if i.due_date > on]
    current = running[0] if running and running[0].period_start < on else None
    later = [i for i in running if i is not current]
    if any(i.interest_accrued or i.principal_paid or i.interest_paid or i.fee_paid for i in later):
        raise Conflict(f"loan {loan.id}: installments not yet begun were already accrued or paid")
    before, maturity_before = _snapshot(loan), loan.maturity_date
    day = _repayment_day(loan, running)
    lid = loan.id
    lines: list[JournalLine] = []
    recognised = ZERO
    moved = sum((i.principal for i in later), ZERO)
    if current is not None:  # cut the running period at today: interest to date, due today
        to_date = accrued_interest(current.interest, current.period_start, current.due_date, on - timedelta(days=1),
                                   loan.currency)
        interest = max(to_date, current.interest_paid, current.interest_accrued)
        recognised += interest - current.interest_accrued
        current.interest = current.interest_accrued = interest
        moved += current.principal - current.principal_paid
        current.principal, current.due_date = current.principal_paid, on
    due_now = [i for i in unpaid if i.due_date <= on]
    cap_principal = cap_interest = cap_penalty = ZERO
    if terms.capitalise_arrears:
        for inst in due_now:  # interest fallen due but not yet accrued (no close of business since) is booked
            recognised += max(inst.interest - inst.interest_accrued, ZERO)
            inst.interest_accrued = max(inst.interest_accrued, inst.interest)
            cap_principal += inst.principal - inst.principal_paid
            cap_interest += inst.interest - inst.interest_paid
            inst.principal, inst.interest, inst.interest_accrued = inst.principal_paid, inst.interest_paid, (
                inst.interest_paid)
        cap_penalty = loan.penalty_due
        loan.penalty_accrued = loan.penalty_paid
    if recognised:
        if loan.accrual_status == NON_ACCRUAL:
            loan.interest_suspended += recognised
            lines += [debit(Acct.OFF_BALANCE_INTEREST, recognised, lid),
                      credit(Acct.OFF_BALANCE_CONTRA, recognised, lid)]
        else:
            lines += [debit(Acct.INTEREST_RECEIVABLE, recognised, lid), credit(Acct.INTEREST_INCOME, recognised, lid)]
    if cap_interest or cap_penalty:
        lines += [debit(Acct.LOAN_PRINCIPAL, cap_interest + cap_penalty, lid),
                  credit(Acct.INTEREST_RECEIVABLE, cap_interest, lid),
                  credit(Acct.PENALTY_RECEIVABLE, cap_penalty, lid)]
    principal = moved + cap_principal + cap_interest + cap_penalty
    if principal <= 0:
        raise Conflict(f"loan {lid}: no principal is left to reschedule; what is owed is due now")
    schedule = build_schedule(loan.method, principal, rate, terms.term_months, on, currency=loan.currency,
                              repayment_day=day)
    maturity_after = schedule.maturity_date
    if terms.kind == RestructureKind.EXTENSION:
        if maturity_after <= maturity_before:
            raise ValidationError(
                f"term_months: an extension must end after the current maturity {maturity_before.isoformat()} "
                f"(the new schedule would end {maturity_after.isoformat()})", field="term_months")
        limit = extension_limit_months(loan.term_months or terms.term_months)
        if months_later(maturity_before, maturity_after) > limit:
            raise ValidationError(
                f"term_months: an extension of a {loan.term_months}-month loan may add at most {limit} months "
                f"(《贷款通则》 article 12); this one ends {maturity_after.isoformat()}", field="term_months")
    for inst in [*due_now, *([current] if current else [])]:
        if inst.is_paid and inst.status != "paid":
            inst.status, inst.paid_on = "paid", on
    replaced = {id(i) for i in later}
    kept = [i for i in loan.installments if id(i) not in replaced]
    base = max((i.number for i in kept), default=0)
    new = [Installment(base + r.number, r.period_start, r.due_date, r.principal, r.interest, r.fee)
           for r in schedule.installments]
    # the deferred fee the replaced periods (and the rest of the cut one) were to recognise moves to the new
    # schedule, spread by the effective interest rate of its own cash flows, so it still reaches zero at maturity
    fee_left = sum((i.fee_amortisation - i.fee_amortised for i in later), ZERO)
    if current is not None:
        fee_left += current.fee_amortisation - current.fee_amortised
        current.fee_amortisation = current.fee_amortised
    if fee_left > 0:
        loan.spread_fee(new, fee_left)
    loan.installments = kept + new
    loan.maturity_date, loan.annual_rate = maturity_after, rate
    entry = JournalEntry("restructure", tuple(lines), f"{terms.kind.value} of loan {lid}", loan.currency, lid) if (
        any(x.debit or x.credit for x in lines)) else None
    done = Restructured(principal, moved, cap_principal, cap_interest, cap_penalty, recognised, maturity_before,
                        maturity_after, new[0].due_date, tuple(i.due_date for i in new), entry, before)
    loan.record(on, "LoanRestructured", {"kind": terms.kind.value, "annual_rate": str(rate),
                                         "term_months": terms.term_months, **done.facts()})
    return done
