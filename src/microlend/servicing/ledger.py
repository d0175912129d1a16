"""The double-entry ledger (总账): chart of accounts and journal entries that cannot exist unbalanced."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from decimal import Decimal
from enum import StrEnum

from microlend.core.errors import ValidationError
from microlend.core.money import DEFAULT_CURRENCY, round_half_up

ZERO = Decimal(0)


class AccountType(StrEnum):
    ASSET = "asset"
    #: an asset's valuation allowance (减值准备), shown as a credit balance
    CONTRA_ASSET = "contra_asset"
    LIABILITY = "liability"
    INCOME = "income"
    EXPENSE = "expense"
    #: 表外 memo accounts: off the balance sheet, posted in balanced pairs against their contra account
    OFF_BALANCE = "off_balance"

    @property
    def debit_normal(self) -> bool:
        """Assets, expenses and memo receivables grow with debits; liabilities and income with credits."""
        return self in (AccountType.ASSET, AccountType.EXPENSE, AccountType.OFF_BALANCE)


@dataclass(frozen=True, slots=True)
class Account:
    code: str
    name: str
    name_zh: str
    type: AccountType


class Acct(StrEnum):
    """Account codes of the standard chart every tenant gets."""

    CASH = "1001"
    LOAN_PRINCIPAL = "1301"
    INTEREST_RECEIVABLE = "1302"
    PENALTY_RECEIVABLE = "1303"
    LOAN_LOSS_ALLOWANCE = "1304"
    DEFERRED_FEE = "1305"
    BORROWER_CREDIT = "2201"
    SUSPENSE = "2901"
    INTEREST_INCOME = "6011"
    PENALTY_INCOME = "6012"
    FEE_INCOME = "6021"
    WRITE_OFF_EXPENSE = "6701"
    CREDIT_IMPAIRMENT_LOSS = "6702"
    OFF_BALANCE_INTEREST = "7101"
    OFF_BALANCE_PENALTY = "7102"
    WRITTEN_OFF_REGISTER = "7201"
    OFF_BALANCE_CONTRA = "7999"


CHART_OF_ACCOUNTS: tuple[Account, ...] = (
    Account(Acct.CASH, "Cash and settlement", "现金及结算", AccountType.ASSET),
    Account(Acct.LOAN_PRINCIPAL, "Loan principal receivable", "贷款本金", AccountType.ASSET),
    Account(Acct.INTEREST_RECEIVABLE, "Interest receivable", "应收利息", AccountType.ASSET),
    Account(Acct.PENALTY_RECEIVABLE, "Penalty interest receivable", "应收罚息", AccountType.ASSET),
    Account(Acct.LOAN_LOSS_ALLOWANCE, "Loan-loss allowance", "贷款损失准备", AccountType.CONTRA_ASSET),
    Account(Acct.DEFERRED_FEE, "Deferred loan fees (unearned income)", "贷款利息调整（未实现手续费收益）",
            AccountType.CONTRA_ASSET),
    Account(Acct.BORROWER_CREDIT, "Borrower credit balance", "客户溢缴款", AccountType.LIABILITY),
    Account(Acct.SUSPENSE, "Suspense", "暂收暂付款", AccountType.LIABILITY),
    Account(Acct.INTEREST_INCOME, "Interest income", "利息收入", AccountType.INCOME),
    Account(Acct.PENALTY_INCOME, "Penalty interest income", "罚息收入", AccountType.INCOME),
    Account(Acct.FEE_INCOME, "Fee income", "手续费收入", AccountType.INCOME),
    Account(Acct.WRITE_OFF_EXPENSE, "Write-off expense", "核销损失", AccountType.EXPENSE),
    Account(Acct.CREDIT_IMPAIRMENT_LOSS, "Credit impairment loss", "信用减值损失", AccountType.EXPENSE),
    Account(Acct.OFF_BALANCE_INTEREST, "Off-balance interest receivable", "表外应收利息", AccountType.OFF_BALANCE),
    Account(Acct.OFF_BALANCE_PENALTY, "Off-balance penalty receivable", "表外应收罚息", AccountType.OFF_BALANCE),
    Account(Acct.WRITTEN_OFF_REGISTER, "Written-off loans (off-balance register)", "已核销贷款（账销案存）",
            AccountType.OFF_BALANCE),
    Account(Acct.OFF_BALANCE_CONTRA, "Off-balance contra", "表外科目对转", AccountType.OFF_BALANCE),
)
ACCOUNTS_BY_CODE: Mapping[str, Account] = {a.code: a for a in CHART_OF_ACCOUNTS}


@dataclass(frozen=True, slots=True)
class JournalLine:
    """One side of a posting: a positive amount debited or credited to one account."""

    account: str
    debit: Decimal = ZERO
    credit: Decimal = ZERO
    loan_id: int | None = None

    @property
    def signed(self) -> Decimal:
        """Debit positive, credit negative."""
        return self.debit - self.credit


def debit(account: str, amount: Decimal, loan_id: int | None = None) -> JournalLine:
    return JournalLine(account, amount, ZERO, loan_id)


def credit(account: str, amount: Decimal, loan_id: int | None = None) -> JournalLine:
    return JournalLine(account, ZERO, amount, loan_id)


class UnbalancedEntryError(ValidationError):
    """A journal entry whose debits and credits differ: it must never be posted."""


@dataclass(frozen=True)
class JournalEntry:
    """会计分录 an immutable posting: Σ debits = Σ credits, lines one-sided, non-negative, whole cents.

    Zero lines are dropped; an entry with nothing left is refused as well."""

    kind: str
    lines: tuple[JournalLine, ...]
    memo: str = ""
    currency: str = DEFAULT_CURRENCY
    loan_id: int | None = None
    reverses: int | None = None
    extra: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        kept = tuple(line for line in self.lines if line.debit != 0 or line.credit != 0)
        object.__setattr__(self, "lines", kept)
        if not kept:
            raise UnbalancedEntryError(f"journal entry '{self.kind}': has no non-zero lines")
        for line in kept:
            if line.account not in ACCOUNTS_BY_CODE:
                raise UnbalancedEntryError(f"journal entry '{self.kind}': unknown account '{line.account}'")
            for amount in (line.debit, line.credit):
                if not isinstance(amount, Decimal) or amount < 0:
                    raise UnbalancedEntryError(f"journal entry '{self.kind}': amounts must be non-negative Decimals")
                if round_half_up(amount, self.currency) != amount:
                    raise UnbalancedEntryError(f"journal entry '{self.kind}': {amount} is not a whole cent amount")
            if line.debit != 0 and line.credit != 0:
                raise UnbalancedEntryError(f"journal entry '{self.kind}': a line is either a debit or a credit")
        if self.total_debit != self.total_credit:
            raise UnbalancedEntryError(
                f"journal entry '{self.kind}': debits {self.total_debit} != credits {self.total_credit}"
            )

    @property
    def total_debit(self) -> Decimal:
        return sum((line.debit for line in self.lines), ZERO)

    @property
    def total_credit(self) -> Decimal:
        return sum((line.credit for line in self.lines), ZERO)

    def reversal(self, kind: str | None = None, memo: str = "", original_id: int | None = None) -> JournalEntry:
        """The entry that cancels this one: same lines with debit and credit swapped."""
        swapped = tuple(JournalLine(line.account, line.credit, line.debit, line.loan_id) for line in self.lines)
        return JournalEntry(
            kind or f"{self.kind}.reversal",
            swapped,
            memo or f"reversal of {self.kind}",
            self.currency,
            self.loan_id,
            original_id,
        )


def balances(entries: Iterable[JournalEntry]) -> dict[str, Decimal]:
    """Signed balance per account (debit positive) over entries, e.g. for a trial balance."""
    totals: dict[str, Decimal] = {}
    for entry in entries:
        for line in entry.lines:
            totals[line.account] = totals.get(line.account, ZERO) + line.signed
    return totals


def natural_balance(account: str, signed: Decimal) -> Decimal:
    """A signed balance shown on the account's normal side (income and liabilities as positives)."""
    return signed if ACCOUNTS_BY_CODE[account].type.debit_normal else -signed
