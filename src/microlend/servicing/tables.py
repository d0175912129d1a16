"""Tables of the servicing module: products, loans and their installments, credit lines, repayments, the
ledger (accounts, immutable journal entries and lines), close-of-business runs and loan events.

Amounts use the exact ``Amount`` type (integer ten-thousandths). Installments also keep their dates as day
ordinals (``date.toordinal()``) so close of business can do date arithmetic in portable integer SQL."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    Date,
    ForeignKey,
    ForeignKeyConstraint,
    Index,
    Integer,
    SmallInteger,
    String,
    Text,
    UniqueConstraint,
    event,
    text,
)
from sqlalchemy.engine import Connection
from sqlalchemy.orm import Mapped, mapped_column
from sqlalchemy.schema import Table

from microlend.core.db import Amount, Base, JSONText, Rate, UTCDateTime

ZERO = Decimal(0)


class ProductRow(Base):
    __tablename__ = "servicing_products"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_servicing_products_tenant_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(40))
    name: Mapped[str] = mapped_column(String(200))
    name_zh: Mapped[str] = mapped_column(String(200), default="")
    method: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    min_amount: Mapped[Decimal] = mapped_column(Amount())
    max_amount: Mapped[Decimal] = mapped_column(Amount())
    min_term_months: Mapped[int] = mapped_column(Integer)
    max_term_months: Mapped[int] = mapped_column(Integer)
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    min_rate: Mapped[Decimal] = mapped_column(Rate())
    max_rate: Mapped[Decimal] = mapped_column(Rate())
    penalty_multiplier: Mapped[Decimal] = mapped_column(Rate())
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    upfront_fee_rate: Mapped[Decimal] = mapped_column(Rate())
    fee_mode: Mapped[str] = mapped_column(String(30))
    allocation_order: Mapped[list[str]] = mapped_column(JSONText())
    early_repayment_allowed: Mapped[bool] = mapped_column(Boolean, default=True)
    #: how far a repayment may exceed what is owed (held as credit)
    overpayment_tolerance: Mapped[Decimal] = mapped_column(Amount(), default=ZERO, server_default=text("0"))
    #: credit balances settle installments on their due date (溢缴款自动扣款)
    auto_apply_credit: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: 复利 penalty interest on overdue interest too, for loans disbursed under it
    compound_interest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: 固定还款日 every installment on this day of the month (1..28); None: the disbursement day
    repayment_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: revolving lines: the day of the month interest is settled (结息日) and the days after it it falls due
    settlement_day: Mapped[int] = mapped_column(Integer, default=20, server_default=text("20"))
    interest_due_days: Mapped[int] = mapped_column(Integer, default=1, server_default=text("1"))
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ServicingSettingsRow(Base):
    """A bank's servicing settings; a bank without a row has the defaults (rate cap 24 %)."""

    __tablename__ = "servicing_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    rate_cap: Mapped[Decimal] = mapped_column(Rate())
    #: 停止计息 a loan stops accruing to income when more than this many days past due ...
    nonaccrual_days: Mapped[int] = mapped_column(Integer, default=90, server_default=text("90"))
    #: ... or when classified non-performing (次级/可疑/损失)
    nonaccrual_on_npl: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    #: what happens to interest and penalty accrued but unpaid when a loan stops accruing: reverse | keep
    nonaccrual_policy: Mapped[str] = mapped_column(String(10), default="reverse", server_default="reverse")
    #: expected-credit-loss parameters (预期信用损失): probability of default per stage and loss given default
    pd_stage1: Mapped[Decimal] = mapped_column(Rate(), default=Decimal("0.02"), server_default="0.02")
    pd_stage2: Mapped[Decimal] = mapped_column(Rate(), default=Decimal("0.2"), server_default="0.2")
    pd_stage3: Mapped[Decimal] = mapped_column(Rate(), default=Decimal("1"), server_default="1")
    lgd: Mapped[Decimal] = mapped_column(Rate(), default=Decimal("0.45"), server_default="0.45")
    #: the batch engine the nightly close of business runs on (local | spark); empty: in the database
    cob_engine: Mapped[str] = mapped_column(String(10), default="", server_default="")
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoanBookingRow(Base):
    """A loan or credit line booked directly by operations (migration, corrections): pending until a second
    person approves it; only then does money move (``loan_id`` / ``credit_line_id``)."""

    __tablename__ = "loan_bookings"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_loan_bookings_tenant_key"),
        Index("ix_loan_bookings_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    kind: Mapped[str] = mapped_column(String(20))  # loan | credit_line
    product_code: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Amount())
    term_months: Mapped[int] = mapped_column(Integer)
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    application_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | approved | rejected
    booked_by_id: Mapped[int] = mapped_column(Integer)
    booked_by: Mapped[str] = mapped_column(String(100))
    booked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str] = mapped_column(Text, default="")
    loan_id: Mapped[int | None] = mapped_column(ForeignKey("loans.id"), nullable=True)
    credit_line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"), nullable=True)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    #: 固定还款日 the booked loan's repayment day (None: the product's, or the disbursement day)
    repayment_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class AccountRow(Base):
    """A tenant's general-ledger account (科目)."""

    __tablename__ = "ledger_accounts"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_ledger_accounts_tenant_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    code: Mapped[str] = mapped_column(String(10))
    name: Mapped[str] = mapped_column(String(100))
    name_zh: Mapped[str] = mapped_column(String(100))
    type: Mapped[str] = mapped_column(String(20))


class CreditLineRow(Base):
    """A revolving limit (循环额度); each drawdown is a loan of method ``revolving`` linked to it."""

    __tablename__ = "credit_lines"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    product_id: Mapped[int] = mapped_column(ForeignKey("servicing_products.id"))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    limit: Mapped[Decimal] = mapped_column(Amount())
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    opened_on: Mapped[date] = mapped_column(Date)
    expires_on: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="open")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoanRow(Base):
    __tablename__ = "loans"
    __table_args__ = (
        UniqueConstraint("tenant_id", "disbursement_key", name="uq_loans_tenant_disbursement_key"),
        Index("ix_loans_tenant_status_method", "tenant_id", "status", "method"),
        # no index names days_past_due: close of business changes it for every overdue loan every night, and an
        # indexed column changed keeps a PostgreSQL update off its page (not HOT: every index of the loan written)
        Index("ix_loans_tenant_accrual", "tenant_id", "accrual_status"),
        Index("ix_loans_tenant_class", "tenant_id", "loan_class"),
        # close of business applies the credit balances of the few loans holding one
        Index(
            "ix_loans_tenant_credit",
            "tenant_id",
            sqlite_where=text("credit_balance > 0"),
            postgresql_where=text("credit_balance > 0"),
        ),
        CheckConstraint("penalty_accrued >= penalty_paid", name="penalty_not_overpaid"),
        CheckConstraint("credit_balance >= 0", name="credit_balance_not_negative"),
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    product_id: Mapped[int] = mapped_column(ForeignKey("servicing_products.id"))
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    credit_line_id: Mapped[int | None] = mapped_column(ForeignKey("credit_lines.id"), nullable=True, index=True)
    application_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    method: Mapped[str] = mapped_column(String(30))
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    principal: Mapped[Decimal] = mapped_column(Amount())
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    #: annual_rate and the penalty rate × 10^8, exact integers for set-based daily interest
    rate_e8: Mapped[int] = mapped_column(BigInteger)
    penalty_rate_e8: Mapped[int] = mapped_column(BigInteger)
    grace_days: Mapped[int] = mapped_column(Integer, default=0)
    #: 复利 penalty interest on overdue interest too (the product's setting when the loan was disbursed)
    compound_interest: Mapped[bool] = mapped_column(Boolean, default=True, server_default=text("true"))
    term_months: Mapped[int] = mapped_column(Integer)
    upfront_fee: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    fee_mode: Mapped[str] = mapped_column(String(30))
    allocation_order: Mapped[list[str]] = mapped_column(JSONText())
    disbursed_on: Mapped[date] = mapped_column(Date)
    maturity_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20), default="active")  # active | closed | written_off
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)
    bucket: Mapped[str] = mapped_column(String(10), default="M0")
    loan_class: Mapped[str] = mapped_column(String(20), default="normal")
    penalty_accrued: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    penalty_paid: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    credit_balance: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    #: accruing | non-accrual (停止计息: interest and penalty go to the off-balance memo accounts)
    accrual_status: Mapped[str] = mapped_column(String(20), default="accruing", server_default="accruing")
    #: interest and penalty owed but held off-balance (表外), recognised as income only when collected
    interest_suspended: Mapped[Decimal] = mapped_column(Amount(), default=ZERO, server_default=text("0"))
    penalty_suspended: Mapped[Decimal] = mapped_column(Amount(), default=ZERO, server_default=text("0"))
    closed_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    disbursement_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RevolvingBalanceRow(Base):
    """A revolving drawdown's daily-balance product (积数) since its last monthly settlement, in cent-days: close
    of business adds each day's outstanding principal and resets it to zero on the product's settlement day. A
    loan without a row has a product of zero. Kept apart from the loan's row: each night's update writes a narrow
    row on a page with room for its new version (no indexed column changes, a HOT update), not the wide loan row
    on nearly every page of the loans."""

    __tablename__ = "revolving_balances"
    __table_args__ = ({"postgresql_with": {"fillfactor": 50}},)

    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    balance_product: Mapped[int] = mapped_column(BigInteger, default=0, server_default=text("0"))


class InstallmentRow(Base):
    """One schedule row with what has been paid and accrued on it (the loan sub-ledger)."""

    __tablename__ = "loan_installments"
    __table_args__ = (
        UniqueConstraint("loan_id", "number", name="uq_loan_installments_loan_number"),
        # close of business reads only rows still accruing, and touches rows that may fall overdue; on PostgreSQL
        # the accruing index is not partial, so a write of an accrual changes no indexed column (a HOT update)
        Index(
            "ix_loan_installments_accruing",
            "tenant_id",
            "start_day",
            sqlite_where=text("interest_accrued < interest"),
        ),
        Index(
            "ix_loan_installments_pending_due",
            "tenant_id",
            "due_day",
            sqlite_where=text("status = 'pending'"),
            postgresql_where=text("status = 'pending'"),
        ),
        Index(
            "ix_loan_installments_overdue",
            "tenant_id",
            "loan_id",
            sqlite_where=text("status = 'overdue'"),
            postgresql_where=text("status = 'overdue'"),
        ),
        # the behaviour score and the early-warning scan read every instalment's due day, paid date and principal
        # in loan order from the index alone; a close's nightly accrual writes name none of its columns
        Index("ix_loan_installments_behaviour", "tenant_id", "loan_id", "due_day", "paid_on", "principal"),
        # close of business amortises deferred fees over the few rows that still carry some
        Index(
            "ix_loan_installments_amortising",
            "tenant_id",
            "start_day",
            sqlite_where=text("fee_amortised < fee_amortisation"),
            postgresql_where=text("fee_amortised < fee_amortisation"),
        ),
        CheckConstraint("principal_paid >= 0 AND principal_paid <= principal", name="principal_paid_in_range"),
        CheckConstraint("interest_paid >= 0 AND interest_paid <= interest", name="interest_paid_in_range"),
        CheckConstraint("fee_paid >= 0 AND fee_paid <= fee", name="fee_paid_in_range"),
        CheckConstraint("interest_accrued >= 0 AND interest_accrued <= interest", name="accrued_in_range"),
        {"postgresql_with": {"fillfactor": 80}},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    #: a loan's rows are found by the unique (loan_id, number) index, which leads with the loan
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    number: Mapped[int] = mapped_column(Integer)
    period_start: Mapped[date] = mapped_column(Date)
    due_date: Mapped[date] = mapped_column(Date)
    start_day: Mapped[int] = mapped_column(Integer)
    due_day: Mapped[int] = mapped_column(Integer)
    principal: Mapped[Decimal] = mapped_column(Amount())
    interest: Mapped[Decimal] = mapped_column(Amount())
    fee: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    principal_paid: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    interest_paid: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    fee_paid: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    interest_accrued: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    #: the day (ordinal) ``interest_accrued`` holds through; later days' accrual is read by ``servicing.accrued``
    accrued_through: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|overdue|paid|written_off
    paid_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: the upfront fee this period recognises (effective-interest method) and what close of business has
    fee_amortisation: Mapped[Decimal] = mapped_column(Amount(), default=ZERO, server_default=text("0"))
    fee_amortised: Mapped[Decimal] = mapped_column(Amount(), default=ZERO, server_default=text("0"))


class RepaymentRow(Base):
    """A repayment as received; ``allocation`` says how it was split (replaced when later replayed)."""

    __tablename__ = "loan_repayments"
    __table_args__ = (
        UniqueConstraint("tenant_id", "idempotency_key", name="uq_loan_repayments_tenant_key"),
        Index("ix_loan_repayments_loan_seq", "loan_id", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"))
    kind: Mapped[str] = mapped_column(String(30))  # repayment | early_full | early_partial
    amount: Mapped[Decimal] = mapped_column(Amount())
    value_date: Mapped[date] = mapped_column(Date)
    idempotency_key: Mapped[str | None] = mapped_column(String(255), nullable=True)
    request_hash: Mapped[str] = mapped_column(String(64), default="")
    allocation: Mapped[Any] = mapped_column(JSONText())
    credit: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    status: Mapped[str] = mapped_column(String(20), default="posted")  # posted | reversed
    journal_entry_id: Mapped[int] = mapped_column(Integer)
    reversal_entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalEntryRow(Base):
    """An immutable balanced posting; corrections are new reversing entries, never edits or deletions."""

    __tablename__ = "journal_entries"
    __table_args__ = (
        CheckConstraint("total_debit = total_credit", name="balanced"),
        CheckConstraint("total_debit > 0", name="not_empty"),
        Index("ix_journal_entries_tenant_date", "tenant_id", "business_date"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    business_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(50))
    memo: Mapped[str] = mapped_column(Text, default="")
    loan_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    reverses_id: Mapped[int | None] = mapped_column(ForeignKey("journal_entries.id"), nullable=True)
    currency: Mapped[str] = mapped_column(String(3), default="CNY")
    total_debit: Mapped[Decimal] = mapped_column(Amount())
    total_credit: Mapped[Decimal] = mapped_column(Amount())
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JournalLineRow(Base):
    __tablename__ = "journal_lines"
    __table_args__ = (
        ForeignKeyConstraint(
            ["tenant_id", "account_code"],
            ["ledger_accounts.tenant_id", "ledger_accounts.code"],
            name="fk_journal_lines_account",
        ),
        CheckConstraint("debit >= 0 AND credit >= 0 AND (debit = 0 OR credit = 0)", name="one_sided"),
        Index("ix_journal_lines_tenant_account_entry", "tenant_id", "account_code", "entry_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    entry_id: Mapped[int] = mapped_column(ForeignKey("journal_entries.id"), index=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    account_code: Mapped[str] = mapped_column(String(10))
    loan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    debit: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    credit: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)


class LoanAccrualRow(Base):
    """分户账 the loan-level detail of close of business's postings: per business date, batch and loan, what one
    leg of a batch entry (interest, penalty, off-balance interest or penalty, fees recognised) moved from the
    credit account to the debit account for that loan. The batch's general-ledger entry (``entry_id``) carries
    one line per account with the leg's total; the rows of a batch add up to it exactly (``subledger``
    reconciles both per account, per day and per loan). Append-only like the journal; written set-based by the
    close of business without per-row foreign-key triggers: the batch's totals are computed from its own rows
    in the same transaction. ``leg`` numbers the legs of the entry."""

    __tablename__ = "loan_accruals"
    __table_args__ = (
        CheckConstraint("amount > 0", name="positive"),
        Index("ix_loan_accruals_loan", "loan_id", "business_date"),
        {"sqlite_with_rowid": False},
    )

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    leg: Mapped[int] = mapped_column(SmallInteger, primary_key=True, autoincrement=False)
    loan_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    tenant_id: Mapped[int] = mapped_column(Integer)
    business_date: Mapped[date] = mapped_column(Date)
    debit_account: Mapped[str] = mapped_column(String(10))
    credit_account: Mapped[str] = mapped_column(String(10))
    amount: Mapped[Decimal] = mapped_column(Amount())


class CobRunRow(Base):
    """One close of business (日终批处理) per tenant per business date, exactly once."""

    __tablename__ = "cob_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "business_date", name="uq_cob_runs_tenant_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    business_date: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # done (a run is one transaction: never half-done)
    loans_active: Mapped[int] = mapped_column(Integer, default=0)
    interest_accrued: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    penalty_accrued: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    newly_overdue: Mapped[int] = mapped_column(Integer, default=0)
    bucket_changes: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    cpu_ms: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))  # the closing thread's CPU
    #: a close on a batch engine: the last loan id when the date's close began (its partitions close the loans up to
    #: it; the date's closing transaction closes those paid out while the partitions ran)
    last_loan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class CobWorkRow(Base):
    """Scratch rows of one close-of-business transaction (per loan), emptied before it commits."""

    __tablename__ = "cob_work"

    tenant_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    days_past_due: Mapped[int] = mapped_column(Integer)
    bucket: Mapped[str] = mapped_column(String(10))
    loan_class: Mapped[str] = mapped_column(String(20))
    overdue_principal: Mapped[int] = mapped_column(BigInteger)  # raw storage units
    penalty: Mapped[int] = mapped_column(BigInteger)  # raw storage units


class ProvisionRunRow(Base):
    """A provisioning run (拨备计提): the expected credit loss of every active loan on a date, and the change
    posted to the loan-loss allowance."""

    __tablename__ = "provision_runs"
    __table_args__ = (Index("ix_provision_runs_tenant_date", "tenant_id", "as_of"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    as_of: Mapped[date] = mapped_column(Date)
    loans: Mapped[int] = mapped_column(Integer)
    total: Mapped[Decimal] = mapped_column(Amount())
    change: Mapped[Decimal] = mapped_column(Amount())  # signed: a release is negative
    parameters: Mapped[Any] = mapped_column(JSONText())
    journal_entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LoanProvisionRow(Base):
    """One loan's provision in a run: its stage, class, outstanding principal, exposure and expected loss."""

    __tablename__ = "loan_provisions"

    #: the run (no foreign key: a run's rows are written set-based in the run's own transaction, without a
    #: per-row check, and its totals are computed from them)
    run_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    loan_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    stage: Mapped[int] = mapped_column(Integer)
    loan_class: Mapped[str] = mapped_column(String(20))
    principal: Mapped[Decimal] = mapped_column(Amount())
    ead: Mapped[Decimal] = mapped_column(Amount())
    amount: Mapped[Decimal] = mapped_column(Amount())


class LoanEventRow(Base):
    """What happened to a loan, in order: disbursed, repaid, overdue, bucket changed, written off..."""

    __tablename__ = "loan_events"
    __table_args__ = (Index("ix_loan_events_tenant_date", "tenant_id", "business_date"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer)
    loan_id: Mapped[int] = mapped_column(Integer, index=True)
    business_date: Mapped[date] = mapped_column(Date)
    kind: Mapped[str] = mapped_column(String(40))
    data: Mapped[Any] = mapped_column(JSONText(), nullable=True)


class WriteOffRow(Base):
    """核销 a request to write a loan off (four eyes: requested by one person, decided by another) and, once
    approved, the loan's off-balance register (账销案存): what was charged off and what has been recovered."""

    __tablename__ = "write_offs"
    __table_args__ = (Index("ix_write_offs_tenant_status", "tenant_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | approved | rejected
    reason_code: Mapped[str] = mapped_column(String(40), default="")
    reason: Mapped[str] = mapped_column(Text)
    documents: Mapped[Any] = mapped_column(JSONText())
    loan_class: Mapped[str] = mapped_column(String(20))  # the loan's class when requested
    requested_by_id: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    written_off_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    principal: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    interest: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    penalty: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    #: what was charged off (principal and receivables still on the books) and how: allowance, then 6702
    charged: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    against_allowance: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    shortfall: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    #: recoveries (已核销贷款收回): of the charged-off amount (back to the allowance) and of the off-balance
    #: interest and penalty (income on cash basis)
    recovered_charged: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    recovered_interest: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    recovered_penalty: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    journal_entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class RestructureRow(Base):
    """展期/重组 a request to extend or restructure a loan (four eyes: requested by one person, decided by another)
    and, once approved, what it did: the new terms, what was capitalised, whether the loan counts as restructured
    (and until when it is observed), the schedule it replaced."""

    __tablename__ = "loan_restructures"
    __table_args__ = (Index("ix_loan_restructures_tenant_status", "tenant_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), index=True)
    kind: Mapped[str] = mapped_column(String(20))  # extension | restructure
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending | approved | rejected
    term_months: Mapped[int] = mapped_column(Integer)  # installments of the new schedule
    annual_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)  # None: the loan's rate
    capitalise_arrears: Mapped[bool] = mapped_column(Boolean, default=False)
    reason: Mapped[str] = mapped_column(Text)
    loan_class: Mapped[str] = mapped_column(String(20))  # the loan's class when requested
    days_past_due: Mapped[int] = mapped_column(Integer, default=0)  # ... and its days past due
    requested_by_id: Mapped[int] = mapped_column(Integer)
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_reason: Mapped[str] = mapped_column(Text, default="")
    effective_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: counts as a restructured loan (重组资产) for classification, observed until this day
    restructured: Mapped[bool] = mapped_column(Boolean, default=False)
    observe_until: Mapped[date | None] = mapped_column(Date, nullable=True)
    principal: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)  # of the new schedule
    capitalised: Mapped[Decimal] = mapped_column(Amount(), default=ZERO)
    maturity_before: Mapped[date | None] = mapped_column(Date, nullable=True)
    maturity_after: Mapped[date | None] = mapped_column(Date, nullable=True)
    outcome: Mapped[Any] = mapped_column(JSONText())  # the split, the schedule replaced
    journal_entry_id: Mapped[int | None] = mapped_column(Integer, nullable=True)


class LoanClassStateRow(Base):
    """五级分类 what a loan's class rests on besides days past due: an officer's judgement (a floor the close of
    business never improves on), the cure of a non-performing loan (arrears repaid on ``cured_on``; it may be
    upgraded from ``observe_until``) and restructuring (at least substandard until its observation ends)."""

    __tablename__ = "loan_class_states"

    loan_id: Mapped[int] = mapped_column(ForeignKey("loans.id"), primary_key=True)
    tenant_id: Mapped[int] = mapped_column(Integer, index=True)
    judged_class: Mapped[str | None] = mapped_column(String(20), nullable=True)
    judged_reason: Mapped[str] = mapped_column(Text, default="")
    judged_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    judged_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    cured_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    #: the day (ordinal) the observation after a cure or a restructuring ends
    observe_until_day: Mapped[int | None] = mapped_column(Integer, nullable=True)
    restructured_on: Mapped[date | None] = mapped_column(Date, nullable=True)
    restructure_until_day: Mapped[int | None] = mapped_column(Integer, nullable=True)


class BadLoanSettingsRow(Base):
    """A bank's rules for bad loans: which classes may be written off, which documented reasons make any loan
    eligible, and how long a cured non-performing loan is observed before it may be upgraded."""

    __tablename__ = "bad_loan_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    writeoff_classes: Mapped[Any] = mapped_column(JSONText())
    writeoff_reasons: Mapped[Any] = mapped_column(JSONText())
    cure_months: Mapped[int] = mapped_column(Integer, default=6)
    cure_periods: Mapped[int] = mapped_column(Integer, default=2)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


# ------------------------------------------------------------------------------------------ database guards

#: Statements that make the journal append-only and (on PostgreSQL) check every entry's lines at commit.
#: The migration that creates these tables runs the same statements (see ``ledger_guard_statements``).
_SQLITE_GUARDS = [
    """CREATE TRIGGER IF NOT EXISTS journal_entries_no_update BEFORE UPDATE ON journal_entries
       BEGIN SELECT RAISE(ABORT, 'journal entries are immutable: post a reversing entry'); END""",
    """CREATE TRIGGER IF NOT EXISTS journal_entries_no_delete BEFORE DELETE ON journal_entries
       BEGIN SELECT RAISE(ABORT, 'journal entries are immutable: post a reversing entry'); END""",
    """CREATE TRIGGER IF NOT EXISTS journal_lines_no_update BEFORE UPDATE ON journal_lines
       BEGIN SELECT RAISE(ABORT, 'journal lines are immutable: post a reversing entry'); END""",
    """CREATE TRIGGER IF NOT EXISTS journal_lines_no_delete BEFORE DELETE ON journal_lines
       BEGIN SELECT RAISE(ABORT, 'journal lines are immutable: post a reversing entry'); END""",
]
#: the loan-level sub-ledger of close of business is append-only as well (created with its table)
_SQLITE_SUBLEDGER_GUARDS = [
    """CREATE TRIGGER IF NOT EXISTS loan_accruals_no_update BEFORE UPDATE ON loan_accruals
       BEGIN SELECT RAISE(ABORT, 'sub-ledger rows are immutable: post a reversing entry'); END""",
    """CREATE TRIGGER IF NOT EXISTS loan_accruals_no_delete BEFORE DELETE ON loan_accruals
       BEGIN SELECT RAISE(ABORT, 'sub-ledger rows are immutable: post a reversing entry'); END""",
]
_PG_SUBLEDGER_GUARDS = [
    """CREATE OR REPLACE FUNCTION journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'journal rows are immutable: post a reversing entry'; END $$""",
    """CREATE OR REPLACE TRIGGER loan_accruals_immutable BEFORE UPDATE OR DELETE ON loan_accruals
       FOR EACH ROW EXECUTE FUNCTION journal_immutable()""",
]
_PG_GUARDS = [
    """CREATE OR REPLACE FUNCTION journal_immutable() RETURNS trigger LANGUAGE plpgsql AS $$
       BEGIN RAISE EXCEPTION 'journal rows are immutable: post a reversing entry'; END $$""",
    """CREATE OR REPLACE TRIGGER journal_entries_immutable BEFORE UPDATE OR DELETE ON journal_entries
       FOR EACH ROW EXECUTE FUNCTION journal_immutable()""",
    """CREATE OR REPLACE TRIGGER journal_lines_immutable BEFORE UPDATE OR DELETE ON journal_lines
       FOR EACH ROW EXECUTE FUNCTION journal_immutable()""",
    """CREATE OR REPLACE FUNCTION journal_entry_balanced() RETURNS trigger LANGUAGE plpgsql AS $$
       DECLARE d bigint; c bigint; td bigint; tc bigint;
       BEGIN
         SELECT COALESCE(SUM(debit), 0), COALESCE(SUM(credit), 0) INTO d, c
           FROM journal_lines WHERE entry_id = NEW.id;
         SELECT total_debit, total_credit INTO td, tc FROM journal_entries WHERE id = NEW.id;
         IF d <> c OR d <> td OR c <> tc THEN
           RAISE EXCEPTION USING MESSAGE = 'journal entry ' || NEW.id || ' is unbalanced: debits ' || d
             || ', credits ' || c;
         END IF;
         RETURN NULL;
       END $$""",
    """DROP TRIGGER IF EXISTS journal_entry_balanced ON journal_entries""",
    """CREATE CONSTRAINT TRIGGER journal_entry_balanced AFTER INSERT ON journal_entries
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION journal_entry_balanced()""",
]


def ledger_guard_statements(dialect: str) -> list[str]:
    """DDL for the journal guards on ``dialect`` ('sqlite' or 'postgresql')."""
    return list(_PG_GUARDS if dialect == "postgresql" else _SQLITE_GUARDS if dialect == "sqlite" else [])


def _install_guards(target: Table, connection: Connection, **_: Any) -> None:
    for statement in ledger_guard_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


def subledger_guard_statements(dialect: str) -> list[str]:
    """DDL making the loan-level sub-ledger append-only on ``dialect`` ('sqlite' or 'postgresql')."""
    if dialect == "postgresql":
        return list(_PG_SUBLEDGER_GUARDS)
    return list(_SQLITE_SUBLEDGER_GUARDS) if dialect == "sqlite" else []


def _install_subledger_guards(target: Table, connection: Connection, **_: Any) -> None:
    for statement in subledger_guard_statements(connection.dialect.name):
        connection.exec_driver_sql(statement)


event.listen(JournalLineRow.__table__, "after_create", _install_guards)
event.listen(LoanAccrualRow.__table__, "after_create", _install_subledger_guards)


class CobPartitionRow(Base):
    """One partition (a loan-id range) of a close of business run on a batch engine: ``pending`` when the date's
    run opens, ``claimed`` by a worker (``claimed_by``) until ``lease_until``, ``done`` in the transaction that
    applied it. Workers share a date's pending partitions and take over a claim whose lease expired; a partition
    done is never applied again. ``figures``: what the partition posted and counted (amounts in storage units)."""

    __tablename__ = "cob_partitions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "business_date", "first_loan_id", name="uq_cob_partitions_range"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    business_date: Mapped[date] = mapped_column(Date)
    first_loan_id: Mapped[int] = mapped_column(Integer)
    last_loan_id: Mapped[int] = mapped_column(Integer)
    engine: Mapped[str] = mapped_column(String(20))
    figures: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    #: when the row was recorded, then when the partition was applied
    finished_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(10), default="done", server_default="done")
    claimed_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    lease_until: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
