"""Write-off (核销) and recoveries (已核销贷款收回), as plain rules over a loan (no I/O).

Eligibility: a loan may be written off when its five-category class is one the bank allows (default 可疑
doubtful and 损失 loss), or, whatever its class, for one of the bank's documented reasons (default: the
borrower's bankruptcy, death, a court ruling, fraud, the claim being time-barred) with at least one document.

Accounting of a write-off, approved by a second person:
- interest and penalty accrued but unpaid on the books: for a loan still accruing they are first handled as
  when a loan stops accruing, by the bank's non-accrual policy (``reverse``: Dr income / Cr receivable, the
  amount moved to the memo accounts 7101/7102); a non-accrual loan has nothing on the books unless the bank
  keeps accrued interest (``keep``), and what is kept is charged off with the principal;
- what is charged off (principal and the receivables still on the books) is taken from the loan-loss
  allowance (Dr 1304); what the allowance cannot cover goes to credit-impairment loss (Dr 6702);
  Cr 1301 principal, Cr 1302/1303 receivables;
- the loan stays on the off-balance register (账销案存): Dr 7201 written-off loans / Cr 7999 for what was
  charged off; its off-balance interest and penalty stay on 7101/7102.

A later payment on a written-off loan is a recovery. It reduces the register first (what was charged off:
Cr 1304, back to the allowance, which the next provisioning run releases through 6702), then the off-balance
interest (Cr 6011 interest income, cash basis) and the off-balance penalty (Cr 6012); each memo account is
reduced by what it recovered. A payment above what is still claimed is refused."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal

from microlend.core.errors import Conflict, ValidationError
from microlend.core.money import round_half_up
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.domain import Loan, money_text
from microlend.servicing.events import LoanWrittenOff
from microlend.servicing.ledger import Acct, JournalEntry, JournalLine, credit, debit
from microlend.servicing.nonaccrual import ACCRUING, WRITTEN_OFF

ZERO = Decimal(0)
DEFAULT_WRITE_OFF_CLASSES = frozenset({LoanClass.DOUBTFUL.value, LoanClass.LOSS.value})
#: documented reasons (核销认定依据) that make a loan eligible whatever its class
DEFAULT_WRITE_OFF_REASONS = frozenset({"bankruptcy", "death", "court_ruling", "fraud", "time_barred"})
MAX_CURE_MONTHS = 36
MAX_CURE_PERIODS = 24


@dataclass(frozen=True)
class BadLoanPolicy:
    """A bank's write-off eligibility and its cure rule for non-performing loans (upgrade only after the arrears
    are repaid and ``cure_months`` or ``cure_periods`` repayment periods of normal repayment, whichever ends
    later)."""

    writeoff_classes: frozenset[str] = DEFAULT_WRITE_OFF_CLASSES
    writeoff_reasons: frozenset[str] = DEFAULT_WRITE_OFF_REASONS
    cure_months: int = 6
    cure_periods: int = 2

    def __post_init__(self) -> None:
        classes = frozenset(self.writeoff_classes)
        known = {c.value for c in LoanClass}
        if not classes <= known:
            raise ValidationError(f"writeoff_classes: each one of {', '.join(sorted(known))}", field="writeoff_classes")
        reasons = frozenset(r.strip() for r in self.writeoff_reasons)
        if any(not r or len(r) > 40 for r in reasons):
            raise ValidationError("writeoff_reasons: reason codes of 1-40 characters", field="writeoff_reasons")
        if not 0 <= self.cure_months <= MAX_CURE_MONTHS:
            raise ValidationError(f"cure_months: between 0 and {MAX_CURE_MONTHS}", field="cure_months")
        if not 0 <= self.cure_periods <= MAX_CURE_PERIODS:
            raise ValidationError(f"cure_periods: between 0 and {MAX_CURE_PERIODS}", field="cure_periods")
        object.__setattr__(self, "writeoff_classes", classes)
        object.__setattr__(self, "writeoff_reasons", reasons)

    def facts(self) -> dict[str, object]:
        return {"writeoff_classes": sorted(self.writeoff_classes), "writeoff_reasons": sorted(self.writeoff_reasons),
                "cure_months": self.cure_months, "cure_periods": self.cure_periods}


DEFAULT_POLICY = BadLoanPolicy()


def check_eligible(policy: BadLoanPolicy, loan: Loan, reason_code: str, documents: Iterable[str]) -> None:
    """Refuse a write-off the bank's rules do not allow (409), naming what would make it eligible."""
    if loan.status != "active":
        raise Conflict(f"loan {loan.id} is {loan.status.replace('_', ' ')}: only an active loan is written off")
    if loan.loan_class in policy.writeoff_classes:
        return
    code = reason_code.strip()
    if code:
        if code not in policy.writeoff_reasons:
            raise ValidationError(
                f"reason_code: '{code}' is not one of the bank's write-off reasons "
                f"({', '.join(sorted(policy.writeoff_reasons))})", field="reason_code")
        if not [d for d in documents if d.strip()]:
            raise ValidationError(f"documents: a write-off for '{code}' needs its documents", field="documents")
        return
    allowed = ", ".join(sorted(policy.writeoff_classes)) or "none"
    raise Conflict(
        f"loan {loan.id} is classified {loan.loan_class} ({loan.days_past_due} days past due): a write-off needs "
        f"class {allowed}, or a documented reason_code ({', '.join(sorted(policy.writeoff_reasons))})"
    )


@dataclass(frozen=True)
class WriteOff:
    """核销 what a write-off took off the books and how it was charged."""

    principal: Decimal
    interest: Decimal  # on-balance interest charged off with the principal (kept by a ``keep`` policy)
    penalty: Decimal
    moved_off_balance: Decimal  # accrued interest and penalty reversed from income to the memo accounts
    against_allowance: Decimal
    shortfall: Decimal  # charged to credit-impairment loss: the allowance was short
    entry: JournalEntry | None
    lines: tuple[JournalLine, ...] = field(default=(), repr=False)
    deferred_fee: Decimal = ZERO  # the fee not yet recognised, netted against the loss

    @property
    def charged(self) -> Decimal:
        return self.principal + self.interest + self.penalty


def write_off_loan(loan: Loan, on: date, reason: str, allowance: Decimal, *, reverse_accrued: bool) -> WriteOff:
    """Take an approved write-off's loan off the books against the allowance (``allowance``: the allowance
    account's balance now); the loan is written off and stays on the off-balance register."""
    if loan.status != "active":
        raise Conflict(f"loan {loan.id} is {loan.status.replace('_', ' ')}: only an active loan is written off")
    lid = loan.id
    lines: list[JournalLine] = []
    interest = loan.interest_receivable - loan.interest_suspended
    penalty = loan.penalty_due - loan.penalty_suspended
    moved = ZERO
    if loan.accrual_status == ACCRUING and reverse_accrued:
        move_i, move_p = max(interest, ZERO), max(penalty, ZERO)
        if move_i or move_p:
            lines += [
                debit(Acct.INTEREST_INCOME, move_i, lid), credit(Acct.INTEREST_RECEIVABLE, move_i, lid),
                debit(Acct.PENALTY_INCOME, move_p, lid), credit(Acct.PENALTY_RECEIVABLE, move_p, lid),
                debit(Acct.OFF_BALANCE_INTEREST, move_i, lid), debit(Acct.OFF_BALANCE_PENALTY, move_p, lid),
                credit(Acct.OFF_BALANCE_CONTRA, move_i + move_p, lid),
            ]
            loan.interest_suspended += move_i
            loan.penalty_suspended += move_p
            interest, penalty, moved = interest - move_i, penalty - move_p, move_i + move_p
    principal = loan.outstanding_principal
    charged = principal + interest + penalty
    if charged < 0:
        raise Conflict(f"loan {lid}: nothing is left on the books to write off")
    # the deferred fee not yet recognised is netted: the loan's carrying amount is its principal less that fee
    # (a fee beyond what is charged off is income)
    deferred = loan.deferred_fee
    loan.release_deferred_fee()
    carrying = max(charged - deferred, ZERO)
    used = min(carrying, max(allowance, ZERO))
    shortfall = carrying - used
    lines += [
        debit(Acct.DEFERRED_FEE, deferred, lid),
        credit(Acct.INTEREST_INCOME, deferred - (charged - carrying), lid),
        debit(Acct.LOAN_LOSS_ALLOWANCE, used, lid),
        debit(Acct.CREDIT_IMPAIRMENT_LOSS, shortfall, lid),
        credit(Acct.LOAN_PRINCIPAL, principal, lid),
        _signed(Acct.INTEREST_RECEIVABLE, -interest, lid),
        _signed(Acct.PENALTY_RECEIVABLE, -penalty, lid),
        debit(Acct.WRITTEN_OFF_REGISTER, charged, lid),
        credit(Acct.OFF_BALANCE_CONTRA, charged, lid),
    ]
    entry = (
        JournalEntry("write_off", tuple(lines), f"write-off of loan {lid}: {reason}"[:500], loan.currency, lid)
        if any(x.debit or x.credit for x in lines)
        else None
    )
    for inst in loan.installments:
        if inst.status != "paid" or inst.interest_accrued < inst.interest:
            inst.status = "written_off"
    loan.status, loan.closed_on, loan.accrual_status = "written_off", on, WRITTEN_OFF
    loan.record(on, "LoanWrittenOff", {"amount": money_text(charged), "reason": reason,
                                       "against_allowance": money_text(used), "shortfall": money_text(shortfall),
                                       "deferred_fee": money_text(deferred)})
    loan.events.append(LoanWrittenOff(loan.tenant_id, lid, on, money_text(charged)))
    return WriteOff(principal, interest, penalty, moved, used, shortfall, entry, tuple(lines), deferred)


@dataclass(frozen=True)
class Recovery:
    """What one payment on a written-off loan recovered: of the charged-off amount, off-balance interest and
    off-balance penalty; and its journal entry."""

    charged: Decimal
    interest: Decimal
    penalty: Decimal
    entry: JournalEntry

    @property
    def total(self) -> Decimal:
        return self.charged + self.interest + self.penalty


def still_claimed(charged_left: Decimal, loan: Loan) -> Decimal:
    """What the register still claims from the borrower: charged off and not recovered, plus off-balance
    interest and penalty."""
    return charged_left + loan.interest_suspended + loan.penalty_suspended


def recover(loan: Loan, amount: Decimal, on: date, charged_left: Decimal) -> Recovery:
    """已核销贷款收回 a payment on a written-off loan (``charged_left``: what was charged off and is not yet
    recovered): the register first (back to the allowance), then off-balance interest, then penalty."""
    if loan.status != "written_off":
        raise Conflict(f"loan {loan.id} is not written off: post an ordinary repayment")
    if amount <= 0 or round_half_up(amount, loan.currency) != amount:
        raise ValidationError("amount: a positive amount in whole cents", field="amount")
    claimed = still_claimed(charged_left, loan)
    if amount > claimed:
        raise ValidationError(
            f"amount: {money_text(amount)} is above what the written-off loan {loan.id} still owes "
            f"({money_text(claimed)})", field="amount")
    to_charged = min(amount, max(charged_left, ZERO))
    to_interest = min(amount - to_charged, loan.interest_suspended)
    to_penalty = amount - to_charged - to_interest
    lid = loan.id
    lines = (
        debit(Acct.CASH, amount, lid),
        credit(Acct.LOAN_LOSS_ALLOWANCE, to_charged, lid),
        credit(Acct.INTEREST_INCOME, to_interest, lid),
        credit(Acct.PENALTY_INCOME, to_penalty, lid),
        debit(Acct.OFF_BALANCE_CONTRA, amount, lid),
        credit(Acct.WRITTEN_OFF_REGISTER, to_charged, lid),
        credit(Acct.OFF_BALANCE_INTEREST, to_interest, lid),
        credit(Acct.OFF_BALANCE_PENALTY, to_penalty, lid),
    )
    loan.interest_suspended -= to_interest
    loan.penalty_suspended -= to_penalty
    loan.record(on, "LoanRecovered", {"amount": money_text(amount), "charged": money_text(to_charged),
                                      "interest": money_text(to_interest), "penalty": money_text(to_penalty)})
    entry = JournalEntry("recovery", lines, f"recovery on written-off loan {lid}", loan.currency, lid)
    return Recovery(to_charged, to_interest, to_penalty, entry)


def unrecover(loan: Loan, split: dict[str, str], on: date, repayment_id: int) -> tuple[Decimal, Decimal, Decimal]:
    """Take back a recovery (its stored split: ``charged``, ``interest``, ``penalty``): the off-balance interest
    and penalty it collected are owed again; returns the split so the caller restores the register (and posts
    the reversing entry, the recovery's own lines swapped)."""
    if loan.status != "written_off":
        raise Conflict(f"loan {loan.id} is not written off: the recovery cannot be reversed")
    charged, interest, penalty = (Decimal(split.get(k, "0")) for k in ("charged", "interest", "penalty"))
    loan.interest_suspended += interest
    loan.penalty_suspended += penalty
    loan.record(on, "RecoveryReversed", {"repayment_id": repayment_id, "charged": money_text(charged),
                                         "interest": money_text(interest), "penalty": money_text(penalty)})
    return charged, interest, penalty


def _signed(account: str, signed: Decimal, loan_id: int) -> JournalLine:
    return debit(account, signed, loan_id) if signed >= 0 else credit(account, -signed, loan_id)
