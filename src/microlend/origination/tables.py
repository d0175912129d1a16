"""Tables of origination: credit applications (customers and their consents belong to `parties`)."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, Rate, UTCDateTime


class ApplicationRow(Base):
    """A credit application from submission to disbursement, with its decision, offer and review."""

    __tablename__ = "applications"
    __table_args__ = (
        Index("ix_applications_queue", "tenant_id", "status", "branch"),
        Index("ix_applications_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    product_code: Mapped[str] = mapped_column(String(40))
    amount: Mapped[Decimal] = mapped_column(Amount())
    term_months: Mapped[int] = mapped_column(Integer)
    purpose: Mapped[str] = mapped_column(String(200), default="")
    channel: Mapped[str] = mapped_column(String(20), default="api")  # api | borrower | officer | campaign
    campaign_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20))
    branch: Mapped[str] = mapped_column(String(100), default="")
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # the automated decision
    decision_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_outcome: Mapped[str | None] = mapped_column(String(10), nullable=True)
    decision_limit: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    decision_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    decision_reasons: Mapped[list[str]] = mapped_column(JSONText(), default=list)
    score: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    pd: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    model_version: Mapped[str] = mapped_column(String(100), default="")
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    decision_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)
    decision_cpu_ms: Mapped[int | None] = mapped_column(Integer, nullable=True)  # the deciding thread's CPU
    automatic: Mapped[bool] = mapped_column(Boolean, default=False)
    # the review of a referred application (four eyes)
    review_due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    recommended_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    recommendation: Mapped[str | None] = mapped_column(String(10), nullable=True)
    recommended_amount: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    recommended_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    review_notes: Mapped[str] = mapped_column(String(2000), default="")
    field_visit: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    approvals: Mapped[list[int]] = mapped_column(JSONText(), default=list)
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    # the offer and what came of it
    offer_amount: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    offer_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    offer_apr: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    offer_penalty_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    offer_expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    accepted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    loan_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    credit_line_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    disbursed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    version: Mapped[int] = mapped_column(Integer, default=1)


class LoanContractRow(Base):
    """A signed loan contract (借款合同): the exact document the borrower signed, its SHA-256, and how we know
    it was the borrower (their own session, or a one-time code texted to their registered mobile)."""

    __tablename__ = "loan_contracts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "application_id", name="uq_loan_contracts_application"),
        UniqueConstraint("tenant_id", "number", name="uq_loan_contracts_number"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    application_id: Mapped[int] = mapped_column(ForeignKey("applications.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    number: Mapped[str] = mapped_column(String(40))
    locale: Mapped[str] = mapped_column(String(10))
    document: Mapped[str] = mapped_column(Text())
    sha256: Mapped[str] = mapped_column(String(64))
    signed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(20))  # self | assisted-otp
    signed_by: Mapped[str] = mapped_column(String(100))  # the session's user: the borrower, or the officer assisting
    otp_challenge_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)


class CreditSettingsRow(Base):
    """The bank's lending limits (授信限额) read with every decision: the most one obligor group may owe and be
    offered, and the repayment-capacity ceilings. A bank without a row lends under `exposure.DEFAULTS`."""

    __tablename__ = "credit_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    borrower_exposure_cap: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    turnover_multiple: Mapped[Decimal] = mapped_column(Rate())
    debt_to_income_ceiling: Mapped[Decimal] = mapped_column(Rate())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))
    #: a tax-data loan (税贷) <= this share of the declared sales over 12 months
    tax_loan_fraction: Mapped[Decimal] = mapped_column(Rate(), default=Decimal("0.3"), server_default="0.3")


class UnitCostSettingsRow(Base):
    """What the bank takes an hour of CPU and of staff time to cost, and the minutes per action on a referred
    case, for its unit cost (单笔贷款运营成本). A bank without a row uses `unit_cost.DEFAULT_ASSUMPTIONS`."""

    __tablename__ = "unit_cost_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    cpu_hour_cost: Mapped[Decimal] = mapped_column(Amount())
    staff_hour_cost: Mapped[Decimal] = mapped_column(Amount())
    recommend_minutes: Mapped[int] = mapped_column(Integer)
    decide_minutes: Mapped[int] = mapped_column(Integer)
    field_visit_minutes: Mapped[int] = mapped_column(Integer)
    reference_per_loan: Mapped[Decimal] = mapped_column(Amount())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))


class DataRefreshSettingsRow(Base):
    """How the bank re-pulls its borrowers' external data for post-loan monitoring (贷后管理): every how many
    days a borrower's sources are asked again, and the most calls and cost one run may spend. A bank without
    a row uses `data_refresh.DEFAULT_SETTINGS`."""

    __tablename__ = "data_refresh_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    every_days: Mapped[int] = mapped_column(Integer)
    max_calls: Mapped[int] = mapped_column(Integer)
    max_cost: Mapped[Decimal] = mapped_column(Amount())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_by: Mapped[str] = mapped_column(String(100))


class ExposureLockRow(Base):
    """One row per borrower, locked (SELECT ... FOR UPDATE) while a decision reads and reserves the exposure of
    the borrower's obligor group, so two applications never use the same headroom."""

    __tablename__ = "exposure_locks"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    customer_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class EarlyWarningAlertRow(Base):
    """An early-warning alert (预警) on a loan or credit line of the active book: one signal, its severity under
    the rules in force (by content hash) and the facts it read; open until acted on or dismissed. `open_key`
    is set while the alert is open, so a subject has at most one open alert per signal."""

    __tablename__ = "early_warning_alerts"
    __table_args__ = (
        UniqueConstraint("tenant_id", "open_key", name="uq_early_warning_alerts_open_key"),
        Index("ix_early_warning_alerts_queue", "tenant_id", "status", "severity", "id"),
        Index("ix_early_warning_alerts_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    subject_kind: Mapped[str] = mapped_column(String(10))  # loan | line
    subject_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    signal: Mapped[str] = mapped_column(String(40))
    severity: Mapped[str] = mapped_column(String(10))  # high | medium | low
    rule_version: Mapped[str] = mapped_column(String(64))
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(20))  # open | acted | dismissed
    open_key: Mapped[str | None] = mapped_column(String(80), nullable=True)
    raised_on: Mapped[date] = mapped_column(Date)
    last_seen_on: Mapped[date] = mapped_column(Date)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class EarlyWarningActionRow(Base):
    """What a person did about an alert, with who, when and why, and what it led to (a limit change, a visit,
    a collections case)."""

    __tablename__ = "early_warning_actions"
    __table_args__ = (Index("ix_early_warning_actions_alert", "tenant_id", "alert_id", "id"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    alert_id: Mapped[int] = mapped_column(ForeignKey("early_warning_alerts.id"))
    action: Mapped[str] = mapped_column(String(20))  # freeze | reduce_limit | visit | collections_case | dismiss
    actor: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")
    result: Mapped[dict[str, Any]] = mapped_column(JSONText())


class VisitTaskRow(Base):
    """A visit (走访) an officer is asked to make to a customer, from an early-warning alert, a campaign or by
    hand; done with its outcome."""

    __tablename__ = "visit_tasks"
    __table_args__ = (
        Index("ix_visit_tasks_officer", "tenant_id", "status", "officer_user_id", "due_on"),
        Index("ix_visit_tasks_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    officer_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    customer_id: Mapped[int] = mapped_column(Integer)
    due_on: Mapped[date] = mapped_column(Date)
    reason: Mapped[str] = mapped_column(Text)
    source: Mapped[str] = mapped_column(String(20))  # early_warning | marketing | officer
    source_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # open | done | cancelled
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
