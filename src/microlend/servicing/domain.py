"""The Loan aggregate: a disbursed loan, its installments and the rules of paying it (plain Python, no I/O).

Every money event returns what it allocated and the balanced journal entry to post; the loan records its
events (``loan.events``, published after commit) and its history (``loan.history``, the loan's event log)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

from microlend.core.errors import Conflict, ValidationError
from microlend.core.events import DomainEvent
from microlend.core.money import round_half_up
from microlend.servicing.allocation import (
    AllocatedPart,
    Allocation,
    AllocationTarget,
    Component,
    Due,
    allocate,
    parse_order,
)
from microlend.servicing.delinquency import penalty_for_day
from microlend.servicing.events import LoanDisbursed, LoanRepaid
from microlend.servicing.fees import fee_amortisation
from microlend.servicing.ledger import Acct, JournalEntry, JournalLine, credit, debit
from microlend.servicing.nonaccrual import NON_ACCRUAL, WRITTEN_OFF
from microlend.servicing.products import Product
from microlend.servicing.schedules import (
    FeeMode,
    PrepaymentMode,
    RepaymentMethod,
    Schedule,
    accrued_interest,
    reamortise,
)

ZERO = Decimal(0)
SETTLED = ("paid", "written_off")
RATE_SCALE = 10**8  # stored rates × 10^8 are exact integers
NEW = 0  # the id of a loan not stored yet
#: how collections on a non-accrual loan are allocated: principal first, then interest (income on cash
#: basis), then fees and penalty
NON_ACCRUAL_ORDER: tuple[AllocationTarget, ...] = (
    AllocationTarget.OVERDUE_PRINCIPAL,
    AllocationTarget.CURRENT_PRINCIPAL,
    AllocationTarget.OVERDUE_INTEREST,
    AllocationTarget.CURRENT_INTEREST,
    AllocationTarget.FEE,
    AllocationTarget.PENALTY,
)


def money_text(value: Decimal) -> str:
    """An amount as stored in allocation records and events: rounded half up to cents."""
    return str(round_half_up(value))


@dataclass
class Installment:
    """One period of the schedule (期供) with what has been paid and accrued on it."""

    number: int
    period_start: date
    due_date: date
    principal: Decimal
    interest: Decimal
    fee: Decimal = ZERO
    principal_paid: Decimal = ZERO
    interest_paid: Decimal = ZERO
    fee_paid: Decimal = ZERO
    interest_accrued: Decimal = ZERO
    status: str = "pending"  # pending | overdue | paid | written_off
    paid_on: date | None = None
    id: int | None = None  # the stored row, None until saved
    #: the upfront fee this period recognises by the effective-interest method, and how much of it has been
    fee_amortisation: Decimal = ZERO
    fee_amortised: Decimal = ZERO

    @property
    def is_paid(self) -> bool:
        return (self.principal_paid == self.principal and self.interest_paid == self.interest
                and self.fee_paid == self.fee)

    @property
    def owed(self) -> Decimal:
        return self.principal - self.principal_paid + self.interest - self.interest_paid + self.fee - self.fee_paid


@dataclass(frozen=True)
class HistoryEntry:
    """One line of a loan's event log (what the ``loan_events`` table keeps)."""

    business_date: date
    kind: str
    data: dict[str, Any] | None = None


@dataclass(frozen=True)
class Posting:
    """What one payment did: its allocation, the stored allocation record and the journal entry to post."""

    kind: str
    amount: Decimal
    allocation: Allocation
    record: dict[str, Any]
    entry: JournalEntry

    @property
    def credit(self) -> Decimal:
        return self.allocation.credit


@dataclass(frozen=True)
class ProductTerms:
    """A bank's stored product: its id, whether it is still offered, and its terms."""

    id: int
    tenant_id: int
    active: bool
    product: Product


@dataclass(frozen=True)
class CreditLine:
    """A revolving limit (循环额度); each drawdown is a loan of method ``revolving`` linked to it."""

    id: int
    tenant_id: int
    product_id: int
    customer_id: int | None
    limit: Decimal
    annual_rate: Decimal
    opened_on: date
    expires_on: date
    status: str

    def check_drawdown(self, amount: Decimal, on: date, drawn: Decimal) -> None:
        """Refuse a drawdown on a line closed or expired on ``on``, or above what is left of its limit."""
        if self.status != "open" or on >= self.expires_on:
            raise Conflict(f"credit line {self.id} is not open for drawdowns")
        available = self.limit - drawn
        if amount > available:
            raise ValidationError(f"amount: exceeds the available limit {money_text(available)}", field="amount")


def exact_rate(rate: Decimal) -> Decimal:
    """A rate as stored (× 10^8 an exact integer); more decimal places are refused."""
    scaled = rate * RATE_SCALE
    if scaled != scaled.to_integral_value():
        raise ValidationError("annual_rate: at most 8 decimal places", field="annual_rate")
    return rate


@dataclass
class Loan:
    """A disbursed loan. Amounts are Decimal; the business date is always passed in. A new loan (``Loan.disburse``,
    ``Loan.draw_down``) has the id ``NEW`` until its repository stores it."""

    id: int
    tenant_id: int
    product_id: int
    customer_id: int | None
    credit_line_id: int | None
    method: str
    currency: str
    principal: Decimal
    annual_rate: Decimal
    term_months: int
    upfront_fee: Decimal
    fee_mode: str
    allocation_order: tuple[str, ...]
    disbursed_on: date
    maturity_date: date
    installments: list[Installment]
    status: str = "active"  # active | closed | written_off
    days_past_due: int = 0
    bucket: str = "M0"
    loan_class: str = "normal"
    penalty_accrued: Decimal = ZERO
    penalty_paid: Decimal = ZERO
    credit_balance: Decimal = ZERO
    accrual_status: str = "accruing"  # accruing | non-accrual (停止计息)
    interest_suspended: Decimal = ZERO  # owed but off-balance (表外), income only when collected
    penalty_suspended: Decimal = ZERO
    closed_on: date | None = None
    application_id: int | None = None
    grace_days: int = 0
    penalty_rate: Decimal = ZERO
    compound_interest: bool = True  # 复利: penalty on overdue interest as well
    disbursement_key: str | None = None
    request_hash: str = ""  # the disbursement request's digest, for an idempotent replay
    events: list[DomainEvent] = field(default_factory=list)
    history: list[HistoryEntry] = field(default_factory=list)

    # ------------------------------------------------------------------ disbursement

    @classmethod
    def disburse(
        cls, terms: ProductTerms, schedule: Schedule, *, customer_id: int | None = None,
        application_id: int | None = None, key: str | None = None, digest: str = "",
    ) -> Loan:
        """放款 a new loan on its contract schedule under a product, disbursed on the schedule's start date."""
        loan = cls._new(terms, schedule.principal, schedule.annual_rate, schedule.start_date, schedule.maturity_date,
                        [Installment(i.number, i.period_start, i.due_date, i.principal, i.interest, i.fee)
                         for i in schedule.installments])
        loan.term_months, loan.upfront_fee = schedule.term_months, schedule.upfront_fee
        if loan.upfront_fee and loan.fee_mode == FeeMode.DEDUCT:
            loan.spread_fee(loan.installments, loan.upfront_fee)
        loan.customer_id, loan.application_id = customer_id, application_id
        loan.disbursement_key, loan.request_hash = key, digest
        return loan

    @classmethod
    def draw_down(
        cls, line: CreditLine, terms: ProductTerms, amount: Decimal, on: date, *, key: str | None = None,
        digest: str = "",
    ) -> Loan:
        """用信 a revolving loan on a line: one open installment until the line expires, interest added daily."""
        loan = cls._new(terms, amount, line.annual_rate, on, line.expires_on,
                        [Installment(1, on, line.expires_on, amount, ZERO, ZERO)])
        loan.customer_id, loan.credit_line_id = line.customer_id, line.id
        loan.disbursement_key, loan.request_hash = key, digest
        return loan

    @classmethod
    def _new(
        cls, terms: ProductTerms, principal: Decimal, rate: Decimal, on: date, maturity: date,
        installments: list[Installment],
    ) -> Loan:
        p = terms.product
        return cls(
            NEW, terms.tenant_id, terms.id, None, None, p.method.value, p.currency, principal, exact_rate(rate), 0,
            ZERO, p.fee_mode.value, tuple(t.value for t in p.allocation_order), on, maturity, installments,
            grace_days=p.grace_days, penalty_rate=exact_rate(rate * p.penalty_multiplier),
            compound_interest=p.compound_interest,
        )

    def stored_as(self, loan_id: int) -> None:
        """A new loan got its id: it records its disbursement (its event carries the id)."""
        if self.id != NEW:
            raise Conflict(f"loan {self.id} is already stored")
        self.id = loan_id
        self.record(self.disbursed_on, "LoanDisbursed", {"principal": money_text(self.principal)})
        self.events.append(LoanDisbursed(self.tenant_id, loan_id, self.disbursed_on, money_text(self.principal)))

    def spread_fee(self, installments: list[Installment], fee: Decimal) -> None:
        """Set each installment's share of a deferred ``fee`` by the effective-interest method."""
        amounts = fee_amortisation(fee, [(i.principal, i.interest) for i in installments], self.currency)
        for inst, amount in zip(installments, amounts, strict=True):
            inst.fee_amortisation, inst.fee_amortised = amount, ZERO

    @property
    def deferred_fee(self) -> Decimal:
        """The upfront fee not yet recognised as income (未实现手续费收益)."""
        return sum((i.fee_amortisation - i.fee_amortised for i in self.installments), ZERO)

    def release_deferred_fee(self) -> list[dict[str, str | int]]:
        """Recognise every installment's remaining deferred fee now (payoff, write-off); what each released."""
        released: list[dict[str, str | int]] = []
        for inst in self.installments:
            rest = inst.fee_amortisation - inst.fee_amortised
            if rest:
                released.append({"installment": inst.number, "amount": money_text(rest)})
                inst.fee_amortised = inst.fee_amortisation
        return released

    def _carry_amortised(self, total: Decimal) -> None:
        """After a schedule is brought back, keep ``total`` of the fee amortised (what the ledger recognised),
        filling installments in order up to their share."""
        left = total
        for inst in self.installments:
            inst.fee_amortised = min(max(left, ZERO), inst.fee_amortisation)
            left -= inst.fee_amortised

    def disbursement_entry(self) -> JournalEntry:
        """The disbursement's journal entry: principal out in cash, less an upfront fee deducted from it; the fee
        is deferred (recognised over the loan's life by the effective-interest method)."""
        fee = self.upfront_fee
        cash_out = self.principal - fee if fee and self.fee_mode == FeeMode.DEDUCT else self.principal
        lines = [debit(Acct.LOAN_PRINCIPAL, self.principal, self.id), credit(Acct.CASH, cash_out, self.id)]
        if cash_out != self.principal:
            account = Acct.DEFERRED_FEE if self.deferred_fee else Acct.FEE_INCOME
            lines.append(credit(account, self.principal - cash_out, self.id))
        return JournalEntry("disbursement", tuple(lines), f"loan {self.id} disbursed", self.currency, self.id)

    # ------------------------------------------------------------------ what is owed

    @property
    def penalty_due(self) -> Decimal:
        return self.penalty_accrued - self.penalty_paid

    @property
    def outstanding_principal(self) -> Decimal:
        return sum((i.principal - i.principal_paid for i in self.installments), ZERO)

    @property
    def interest_receivable(self) -> Decimal:
        return sum((i.interest_accrued - i.interest_paid for i in self.installments), ZERO)

    def order(self) -> tuple[AllocationTarget, ...]:
        """The product's allocation order; a non-accrual loan's collections go to principal first."""
        if self.accrual_status == NON_ACCRUAL:
            return NON_ACCRUAL_ORDER
        return parse_order(self.allocation_order)

    @property
    def accrual_state(self) -> str:
        """accruing | non-accrual | written-off, as shown to staff."""
        return WRITTEN_OFF if self.status == "written_off" else self.accrual_status

    def current_dues(self, on: date, *, everything: bool = False) -> list[Due]:
        """What a payment on ``on`` may settle: penalty, every overdue installment and the current one
        (with ``everything``, every unpaid installment: a payoff)."""
        dues: list[Due] = []
        if self.penalty_due > 0:
            dues.append(Due(0, Component.PENALTY, self.penalty_due, True))
        installments = self.installments
        if self.method == RepaymentMethod.REVOLVING:
            # 随借随还: the settled interest installments (按月结息) first, by due date; everything is payable
            everything = True
            installments = sorted(installments, key=lambda i: (i.due_date, i.number))
        for inst in installments:
            if inst.status in SETTLED:
                continue
            overdue = inst.due_date < on
            for component, owed in (
                (Component.FEE, inst.fee - inst.fee_paid),
                (Component.INTEREST, inst.interest - inst.interest_paid),
                (Component.PRINCIPAL, inst.principal - inst.principal_paid),
            ):
                if owed > 0:
                    dues.append(Due(inst.number, component, owed, overdue))
            if not overdue and not everything:
                break  # the current installment; later ones are not due yet
        return dues

    def owed_in_full(self, on: date) -> Decimal:
        """The payoff: everything still owed on the schedule and in penalty, less the credit already held."""
        owed = sum((d.amount for d in self.current_dues(on, everything=True)), ZERO)
        return max(owed - self.credit_balance, ZERO)

    def check_payment(self, amount: Decimal, on: date, tolerance: Decimal) -> None:
        """Refuse a payment above the payoff plus the product's overpayment tolerance, naming the payoff."""
        payoff = self.owed_in_full(on)
        if amount > payoff + tolerance:
            allowed = f" plus the product's tolerance {money_text(tolerance)}" if tolerance else ""
            raise ValidationError(
                f"amount: {money_text(amount)} is above the payoff amount {money_text(payoff)}{allowed} "
                f"of loan {self.id}",
                field="amount",
            )

    def require_active(self) -> None:
        if self.status != "active":
            raise Conflict(f"loan {self.id} is {self.status.replace('_', ' ')}: it takes no repayments")

    def record(self, on: date, kind: str, data: dict[str, Any] | None = None) -> None:
        self.history.append(HistoryEntry(on, kind, data))

    # ------------------------------------------------------------------ repayments

    def repay(self, amount: Decimal, on: date) -> Posting:
        """还款 allocate a payment in the product's order; an overpayment is held as credit."""
        self.require_active()
        return self.replay(amount, on, dues_on=on, kind="repayment")

    def replay(self, amount: Decimal, on: date, *, dues_on: date, kind: str) -> Posting:
        """A payment allocated against what was due on ``dues_on`` and posted on ``on`` (a replay after a
        reversal keeps each payment's own value date)."""
        alloc = allocate(amount, self.current_dues(dues_on), self.order())
        return self._post(amount, on, kind, alloc)

    def apply_credit_balance(self, on: date) -> Posting:
        """Use the borrower's credit balance (溢缴款) to settle what is due now, in the product's order."""
        self.require_active()
        if self.credit_balance <= 0:
            raise Conflict(f"loan {self.id} has no credit balance")
        dues = self.current_dues(on)
        owed = sum((d.amount for d in dues), ZERO)
        if owed <= 0:
            raise Conflict(f"loan {self.id}: nothing is due to apply the credit balance to")
        amount = min(self.credit_balance, owed)
        alloc = allocate(amount, dues, self.order())
        self.credit_balance -= amount
        return self._post(amount, on, "credit.applied", alloc, source=Acct.BORROWER_CREDIT)

    def unapply(self, record: dict[str, Any], on: date) -> JournalEntry | None:
        """Take back a posted payment (its stored allocation record): the reverse of ``repay``. An early
        repayment brings back the schedule it replaced; interest accrued since on the replaced schedule is
        taken back by the entry returned (close of business accrues the schedule brought back to date)."""
        accrued_now = sum((i.interest_accrued for i in self.installments), ZERO)
        by_number = {i.number: i for i in self.installments}
        for r in record.get("recognised", []):
            by_number[int(r["installment"])].interest_accrued -= Decimal(r["amount"])
        for r in record.get("fee_released", []):
            by_number[int(r["installment"])].fee_amortised -= Decimal(r["amount"])
        fee_amortised = sum((i.fee_amortised for i in self.installments), ZERO)
        if record.get("closed"):
            self.status, self.closed_on = "active", None
        suspense = record.get("suspended") or {}
        self.interest_suspended -= Decimal(suspense.get("interest", "0"))
        self.penalty_suspended -= Decimal(suspense.get("penalty", "0"))
        self._apply(_allocation_from_record(record), on, sign=-1)
        if "schedule_before" not in record:
            return None
        # an early repayment: the schedule as it stood before it
        recognised = sum((Decimal(r["amount"]) for r in record.get("recognised", [])), ZERO)
        accrued_since = accrued_now - recognised - Decimal(record.get("recognised_now", "0")) - sum(
            (Decimal(s["interest_accrued"]) for s in record["schedule_before"]), ZERO
        )
        self._restore_schedule(record["schedule_before"], record["maturity_before"])
        self._carry_amortised(fee_amortised)  # fee amortised since on the new schedule stays recognised
        if accrued_since == 0:
            return None
        lid = self.id
        if self.accrual_status == NON_ACCRUAL:
            self.interest_suspended -= accrued_since
            lines = (_signed_line(Acct.OFF_BALANCE_CONTRA, accrued_since, lid),
                     _signed_line(Acct.OFF_BALANCE_INTEREST, -accrued_since, lid))
        else:
            lines = (_signed_line(Acct.INTEREST_INCOME, accrued_since, lid),
                     _signed_line(Acct.INTEREST_RECEIVABLE, -accrued_since, lid))
        return JournalEntry("interest.reversal", lines, f"interest accrued on loan {lid}'s replaced schedule",
                            self.currency, lid)

    def _schedule_snapshot(self) -> list[dict[str, Any]]:
        """The installments as they stand, for an early repayment's record (so it can be reversed)."""
        return [
            {
                "id": i.id, "number": i.number, "period_start": i.period_start.isoformat(),
                "due_date": i.due_date.isoformat(), "principal": str(i.principal), "interest": str(i.interest),
                "fee": str(i.fee), "principal_paid": str(i.principal_paid), "interest_paid": str(i.interest_paid),
                "fee_paid": str(i.fee_paid), "interest_accrued": str(i.interest_accrued), "status": i.status,
                "paid_on": i.paid_on.isoformat() if i.paid_on else None,
                "fee_amortisation": str(i.fee_amortisation), "fee_amortised": str(i.fee_amortised),
            }
            for i in self.installments
        ]

    def _restore_schedule(self, snapshot: list[dict[str, Any]], maturity: str) -> None:
        kept = {i.id for i in self.installments}
        self.installments = [
            Installment(
                int(s["number"]), date.fromisoformat(s["period_start"]), date.fromisoformat(s["due_date"]),
                Decimal(s["principal"]), Decimal(s["interest"]), Decimal(s["fee"]), Decimal(s["principal_paid"]),
                Decimal(s["interest_paid"]), Decimal(s["fee_paid"]), Decimal(s["interest_accrued"]), s["status"],
                date.fromisoformat(s["paid_on"]) if s["paid_on"] else None,
                s["id"] if s["id"] in kept else None,  # installments a re-amortisation replaced come back anew
                Decimal(s.get("fee_amortisation", "0")), Decimal(s.get("fee_amortised", "0")),
            )
            for s in snapshot
        ]
        self.maturity_date = date.fromisoformat(maturity)

    def penalty_owed_over(self, closed: list[date], later: list[tuple[date, dict[str, Any]]]) -> Decimal:
        """The penalty close of business would have charged on the ``closed`` dates had the loan stood as it
        does now, payments ``later`` (value date, allocation record) arriving on their own dates: each date's
        base is what was past due and unpaid at its close (principal, and interest under compound interest 复利),
        with the grace period charged back on the day it is exceeded."""
        total = ZERO
        for day in closed:
            unpaid = {i.number: [i.principal - i.principal_paid, i.interest - i.interest_paid, i.fee - i.fee_paid]
                      for i in self.installments if i.status != "written_off"}
            for value_date, record in later:
                if value_date > day:  # not yet paid at that date's close
                    for part in record.get("parts", []):
                        k = int(part["installment"])
                        if k in unpaid:
                            slot = {"principal": 0, "interest": 1, "fee": 2}.get(part["component"])
                            if slot is not None:
                                unpaid[k][slot] += Decimal(part["amount"])
            late = [
                i for i in self.installments if i.number in unpaid and i.due_date < day and sum(unpaid[i.number]) > 0
            ]
            if late:
                base = sum((unpaid[i.number][0] + (unpaid[i.number][1] if self.compound_interest else ZERO)
                            for i in late), ZERO)
                dpd = (day - min(i.due_date for i in late)).days
                total += penalty_for_day(base, self.penalty_rate, Decimal(1), dpd, self.grace_days, self.currency)
        return total

    def adjust_penalty(self, difference: Decimal, on: date, reason: str) -> JournalEntry | None:
        """Charge (or take back) penalty found by a recomputation; a non-accrual loan's goes off-balance."""
        if difference == 0:
            return None
        self.penalty_accrued += difference
        lid = self.id
        if self.accrual_status == NON_ACCRUAL:
            self.penalty_suspended += difference
            lines = (_signed_line(Acct.OFF_BALANCE_PENALTY, difference, lid),
                     _signed_line(Acct.OFF_BALANCE_CONTRA, -difference, lid))
        else:
            lines = (_signed_line(Acct.PENALTY_RECEIVABLE, difference, lid),
                     _signed_line(Acct.PENALTY_INCOME, -difference, lid))
        self.record(on, "PenaltyRecomputed", {"difference": money_text(difference), "reason": reason})
        return JournalEntry("penalty.recomputed", lines, f"penalty of loan {lid} recomputed: {reason}",
                            self.currency, lid)

    def _post(
        self,
        amount: Decimal,
        on: date,
        kind: str,
        alloc: Allocation,
        *,
        prepaid: Decimal = ZERO,
        recognised_extra: Decimal = ZERO,
        source: str = Acct.CASH,
    ) -> Posting:
        totals = self._apply(alloc, on)
        totals[Component.PRINCIPAL] += prepaid  # principal the re-amortised schedule no longer owes
        recognised = self._settle(on)
        recognised_total = recognised_extra + sum((Decimal(str(r["amount"])) for r in recognised), ZERO)
        lines = self._repayment_lines(amount, totals, alloc.credit, recognised_total, source)
        suspense: dict[str, str] = {}
        if self.accrual_status == NON_ACCRUAL:
            lines, suspense = self._cash_basis(totals, recognised_total, amount, alloc.credit, source)
        released = self.release_deferred_fee() if recognised else []
        if released:  # paid off: what is left of the deferred fee is income now
            fee_left = sum((Decimal(str(r["amount"])) for r in released), ZERO)
            lines += (debit(Acct.DEFERRED_FEE, fee_left, self.id), credit(Acct.INTEREST_INCOME, fee_left, self.id))
        entry = JournalEntry(kind, lines, f"{kind} on loan {self.id}", self.currency, self.id)
        if recognised:
            self.record(on, "LoanRepaid")
            self.events.append(LoanRepaid(self.tenant_id, self.id, on))
        record = _allocation_record(alloc, recognised)
        if released:
            record["fee_released"] = released
        if suspense:
            record["suspended"] = suspense
        return Posting(kind, amount, alloc, record, entry)

    def _cash_basis(
        self, totals: dict[str, Decimal], recognised: Decimal, amount: Decimal, credit_part: Decimal, source: str
    ) -> tuple[tuple[JournalLine, ...], dict[str, str]]:
        """A collection on a non-accrual loan: interest and penalty still on the balance sheet (kept when it
        stopped accruing) are settled first; what is paid of the off-balance amounts is income on cash basis
        (收付实现制) and leaves the memo accounts. Interest falling due only now is off-balance as well."""
        lid = self.id
        interest_before = self.interest_suspended + recognised
        paid_i = totals[Component.INTEREST]
        on_books_i = max(self.interest_receivable + paid_i - interest_before, ZERO)
        cash_i = min(paid_i - min(paid_i, on_books_i), interest_before)
        paid_p = totals[Component.PENALTY]
        on_books_p = max(self.penalty_due + paid_p - self.penalty_suspended, ZERO)
        cash_p = min(paid_p - min(paid_p, on_books_p), self.penalty_suspended)
        memo_i = recognised - cash_i  # net change of the off-balance interest
        lines = (
            debit(source, amount, lid),
            credit(Acct.PENALTY_RECEIVABLE, paid_p - cash_p, lid),
            credit(Acct.PENALTY_INCOME, cash_p, lid),
            credit(Acct.FEE_INCOME, totals[Component.FEE], lid),
            credit(Acct.INTEREST_RECEIVABLE, paid_i - cash_i, lid),
            credit(Acct.INTEREST_INCOME, cash_i, lid),
            credit(Acct.LOAN_PRINCIPAL, totals[Component.PRINCIPAL], lid),
            credit(Acct.BORROWER_CREDIT, credit_part, lid),
            _signed_line(Acct.OFF_BALANCE_INTEREST, memo_i, lid),
            _signed_line(Acct.OFF_BALANCE_PENALTY, -cash_p, lid),
            _signed_line(Acct.OFF_BALANCE_CONTRA, cash_p - memo_i, lid),
        )
        self.interest_suspended += memo_i
        self.penalty_suspended -= cash_p
        return lines, {"interest": money_text(memo_i), "penalty": money_text(-cash_p)}

    def _apply(self, alloc: Allocation, on: date, sign: int = 1) -> dict[str, Decimal]:
        """Add (or with sign -1 take back) allocated parts on the sub-ledger; returns totals per component."""
        by_number = {i.number: i for i in self.installments}
        totals = {c.value: ZERO for c in Component}
        for part in alloc.parts:
            amount = part.amount * sign
            totals[part.component.value] += part.amount
            if part.component == Component.PENALTY:
                self.penalty_paid += amount
                continue
            inst = by_number[part.installment]
            if part.component == Component.PRINCIPAL:
                inst.principal_paid += amount
            elif part.component == Component.INTEREST:
                inst.interest_paid += amount
            else:
                inst.fee_paid += amount
        for inst in self.installments:
            if inst.status == "written_off":
                continue
            if inst.is_paid:
                if inst.status != "paid":
                    inst.status, inst.paid_on = "paid", on
            elif inst.status == "paid":
                inst.status, inst.paid_on = "pending", None  # close of business marks it overdue again if late
        self.credit_balance += alloc.credit * sign
        return totals

    def _settle(self, on: date) -> list[dict[str, str | int]]:
        """Close a loan with nothing left to pay: interest paid ahead of its accrual is recognised now."""
        if self.penalty_accrued != self.penalty_paid or not all(i.is_paid for i in self.installments):
            return []
        recognised: list[dict[str, str | int]] = []
        for inst in self.installments:
            if inst.interest_accrued < inst.interest:
                unrecognised = inst.interest - inst.interest_accrued
                recognised.append({"installment": inst.number, "amount": money_text(unrecognised)})
                inst.interest_accrued = inst.interest
        self.status, self.closed_on, self.days_past_due, self.bucket = "closed", on, 0, "M0"
        return recognised or [{"installment": 0, "amount": "0.00"}]

    def _repayment_lines(
        self, amount: Decimal, totals: dict[str, Decimal], credit_part: Decimal, recognised: Decimal, source: str
    ) -> tuple[JournalLine, ...]:
        lid = self.id
        return (
            debit(source, amount, lid),
            credit(Acct.PENALTY_RECEIVABLE, totals[Component.PENALTY], lid),
            credit(Acct.FEE_INCOME, totals[Component.FEE], lid),
            credit(Acct.INTEREST_RECEIVABLE, totals[Component.INTEREST], lid),
            credit(Acct.LOAN_PRINCIPAL, totals[Component.PRINCIPAL], lid),
            credit(Acct.BORROWER_CREDIT, credit_part, lid),
            debit(Acct.INTEREST_RECEIVABLE, recognised, lid),
            credit(Acct.INTEREST_INCOME, recognised, lid),
        )

    # ------------------------------------------------------------------ early repayment

    def pay_off(self, on: date) -> Posting:
        """提前还款 (full) pay off everything today, interest only to date."""
        self.require_active()
        before, maturity = self._schedule_snapshot(), self.maturity_date.isoformat()
        value, recognised_now, extra = self._prepare_payoff(on)
        if value <= 0:
            raise Conflict(f"loan {self.id}: nothing is owed")
        alloc = allocate(value, self.current_dues(on, everything=True), self.order())
        posting = self._post(value, on, "repayment.early_full", alloc, recognised_extra=recognised_now)
        posting.record.update(extra, schedule_before=before, maturity_before=maturity)
        self.record(on, "EarlyRepayment", {"kind": "early_full", "amount": money_text(value)})
        return posting

    def prepay(self, value: Decimal, on: date, mode: PrepaymentMode) -> Posting:
        """提前还款 (partial) on any date: what is due (or overdue) first, the rest repays principal and the
        schedule after the current period is re-amortised (``mode``: a shorter term or a lower installment)."""
        self.require_active()
        before, maturity = self._schedule_snapshot(), self.maturity_date.isoformat()
        alloc, prepaid, extra = self._prepare_partial(on, value, mode)
        posting = self._post(value, on, "repayment.early_partial", alloc, prepaid=prepaid)
        posting.record.update(extra, schedule_before=before, maturity_before=maturity)
        self.record(on, "EarlyRepayment", {"kind": "early_partial", "amount": money_text(value)})
        return posting

    def _prepare_payoff(self, on: date) -> tuple[Decimal, Decimal, dict[str, Any]]:
        """Cut the schedule to today: the current period's interest becomes what has accrued up to yesterday,
        later periods lose their interest, and all remaining principal becomes due now."""
        recognised_now = ZERO
        current_found = False
        revolving = self.method == RepaymentMethod.REVOLVING
        rescheduled: list[dict[str, Any]] = []
        for inst in self.installments:
            if inst.status in SETTLED or inst.due_date < on:
                continue
            before = inst.interest
            if not current_found and not revolving:
                to_date = accrued_interest(inst.interest, inst.period_start, inst.due_date, on - timedelta(days=1))
                new_interest = max(to_date, inst.interest_paid, inst.interest_accrued)
                current_found = True
            elif revolving:
                new_interest = inst.interest
            else:
                new_interest = max(inst.interest_paid, inst.interest_accrued)
            recognised_now += max(new_interest - inst.interest_accrued, ZERO)
            inst.interest = new_interest
            inst.interest_accrued = max(inst.interest_accrued, new_interest)
            inst.due_date = on
            inst.period_start = min(inst.period_start, on)
            rescheduled.append({"installment": inst.number, "interest_before": money_text(before)})
        owed = self.penalty_due + sum((i.owed for i in self.installments if i.status not in SETTLED), ZERO)
        return owed, recognised_now, {"recognised_now": money_text(recognised_now), "rescheduled": rescheduled}

    def _prepare_partial(
        self, on: date, value: Decimal, mode: PrepaymentMode
    ) -> tuple[Allocation, Decimal, dict[str, Any]]:
        """Partial prepayment on a due date: settle everything due today, then re-amortise the rest."""
        if self.method == RepaymentMethod.REVOLVING:
            raise ValidationError("amount: a revolving drawdown is repaid with an ordinary repayment", field="amount")
        today = next((i for i in self.installments if i.due_date == on), None)
        if today is None:
            return self._prepare_partial_within_period(on, value, mode)
        dues = self.current_dues(on)
        owed_today = sum((d.amount for d in dues), ZERO)
        later = [i for i in self.installments if i.number > today.number]
        outstanding_after = sum((i.principal - i.principal_paid for i in later), ZERO)
        prepaid = value - owed_today
        if prepaid <= 0:
            raise ValidationError(f"amount: must exceed what is due today ({money_text(owed_today)})", field="amount")
        if prepaid >= outstanding_after:
            raise ValidationError("amount: covers the whole loan; use a full early repayment", field="amount")
        if any(i.interest_accrued or i.principal_paid or i.interest_paid or i.fee_paid for i in later):
            raise Conflict(f"loan {self.id}: later installments already accrued or were paid")
        alloc = allocate(owed_today, dues, self.order()) if owed_today > 0 else Allocation((), ZERO)
        old = [
            {
                "installment": i.number,
                "due_date": i.due_date.isoformat(),
                "principal": money_text(i.principal),
                "interest": money_text(i.interest),
            }
            for i in later
        ]
        new = self._reamortised_after(today, later, outstanding_after - prepaid, mode)
        self._respread_fee(later, new)
        self.installments = [i for i in self.installments if i.number <= today.number] + new
        self.maturity_date = new[-1].due_date if new else today.due_date
        return alloc, prepaid, {"prepaid_principal": money_text(prepaid), "mode": mode.value, "replaced_schedule": old}

    def _reamortised_after(
        self, anchor: Installment, later: list[Installment], principal: Decimal, mode: PrepaymentMode
    ) -> list[Installment]:
        """The installments after `anchor`, re-amortised on `principal` from its due date (shorter term or
        lower instalment, as `mode` says)."""
        rows = reamortise(
            principal,
            self.annual_rate,
            self.method,
            [i.due_date for i in later],
            anchor.due_date,
            mode,
            first_number=anchor.number + 1,
            current_payment=later[0].principal + later[0].interest,
            current_principal_part=later[0].principal,
            currency=self.currency,
        )
        return [Installment(r.number, r.period_start, r.due_date, r.principal, r.interest, r.fee) for r in rows]

    def _respread_fee(self, replaced: list[Installment], new: list[Installment]) -> None:
        """A partial prepayment re-amortises the schedule: the deferred fee the replaced installments were to
        recognise is spread over the new ones by the effective interest rate of their own cash flows (the
        periods up to the prepayment keep their shares; nothing is caught up)."""
        left = sum((i.fee_amortisation - i.fee_amortised for i in replaced), ZERO)
        if new:
            self.spread_fee(new, left)

    def _prepare_partial_within_period(
        self, on: date, value: Decimal, mode: PrepaymentMode
    ) -> tuple[Allocation, Decimal, dict[str, Any]]:
        """Partial prepayment between due dates: what is overdue (and penalty) is settled first; the rest
        repays principal today. The current installment stays as it is (its interest accrues day by day as
        scheduled); the installments after it are re-amortised on the lower balance from its due date, and
        the interest the prepaid principal no longer earns over the rest of the current period is taken off
        the next installment's interest."""
        current = next((i for i in self.installments if i.due_date > on and i.status not in SETTLED), None)
        if current is None:
            raise ValidationError("value_date: no period is left to prepay into", field="value_date")
        dues = [d for d in self.current_dues(on) if d.overdue or d.component == Component.PENALTY]
        owed_now = sum((d.amount for d in dues), ZERO)
        later = [i for i in self.installments if i.number > current.number]
        outstanding_after = sum((i.principal - i.principal_paid for i in later), ZERO)
        prepaid = value - owed_now
        if prepaid <= 0:
            raise ValidationError(f"amount: must exceed what is overdue ({money_text(owed_now)})", field="amount")
        if prepaid >= outstanding_after:
            raise ValidationError(
                "amount: covers all the principal after the current installment; use a full early repayment",
                field="amount",
            )
        if any(i.interest_accrued or i.principal_paid or i.interest_paid or i.fee_paid for i in later):
            raise Conflict(f"loan {self.id}: later installments already accrued or were paid")
        alloc = allocate(owed_now, dues, self.order()) if owed_now > 0 else Allocation((), ZERO)
        period_days = (current.due_date - current.period_start).days
        rest = (current.due_date - on).days
        saving = round_half_up(prepaid * self.annual_rate / 12 * rest / period_days, self.currency)
        new = self._reamortised_after(current, later, outstanding_after - prepaid, mode)
        left = saving
        for inst in new:  # the saving off the next installment's interest (and the one after, if it is larger)
            off = min(left, inst.interest)
            inst.interest -= off
            left -= off
        self._respread_fee(later, new)
        self.installments = [i for i in self.installments if i.number <= current.number] + new
        self.maturity_date = new[-1].due_date if new else current.due_date
        return alloc, prepaid, {
            "prepaid_principal": money_text(prepaid),
            "mode": mode.value,
            "current_installment": current.number,
            "interest_saved": money_text(saving - left),
            "new_installments": len(new),
        }


def _signed_line(account: str, signed: Decimal, loan_id: int) -> JournalLine:
    """A line from a signed amount: positive debits, negative credits."""
    return debit(account, signed, loan_id) if signed >= 0 else credit(account, -signed, loan_id)


def _allocation_record(alloc: Allocation, recognised: list[dict[str, str | int]]) -> dict[str, Any]:
    return {
        "parts": [
            {"installment": p.installment, "component": p.component.value, "amount": money_text(p.amount)}
            for p in alloc.parts
        ],
        "credit": money_text(alloc.credit),
        "recognised": [r for r in recognised if r["installment"] != 0],
        "closed": bool(recognised),
    }


def _allocation_from_record(data: dict[str, Any]) -> Allocation:
    parts = tuple(
        AllocatedPart(int(p["installment"]), Component(p["component"]), Decimal(p["amount"])) for p in data["parts"]
    )
    return Allocation(parts, Decimal(data["credit"]))


@dataclass
class Repayment:
    """A stored payment on a loan (还款记录): what it was, how it was allocated and its journal entry."""

    loan_id: int
    kind: str  # repayment | credit_applied | early_full | early_partial
    amount: Decimal
    value_date: date
    allocation: dict[str, Any]
    credit: Decimal
    journal_entry_id: int
    created_by: str
    idempotency_key: str | None = None
    request_hash: str = ""
    status: str = "posted"  # posted | reversed
    reversal_entry_id: int | None = None
    id: int | None = None  # None until stored
