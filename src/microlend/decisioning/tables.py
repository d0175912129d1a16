"""Tables of the decision engine: policy versions (immutable content, identified by hash), each tenant's
champion/challenger setup, and every decision with everything needed to replay it."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint, event, inspect
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, Rate, UTCDateTime

POLICY_STATUSES = ("draft", "submitted", "published", "retired")
#: where a version may run: draft (being written), test (lint clean and golden tests pass: evaluated on request,
#: never on a live decision), production (published by a second person; stays so once retired)
ENVIRONMENTS = ("draft", "test", "production")


class PolicyVersionRow(Base):
    """One version of a credit policy. Its content and hash never change once written."""

    __tablename__ = "policy_versions"
    __table_args__ = (UniqueConstraint("tenant_id", "content_hash", name="uq_policy_versions_tenant_hash"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    content_hash: Mapped[str] = mapped_column(String(64))
    content: Mapped[dict[str, Any]] = mapped_column(JSONText())
    status: Mapped[str] = mapped_column(String(20))
    author: Mapped[str] = mapped_column(String(100))
    author_user_id: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    submitted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    publisher: Mapped[str | None] = mapped_column(String(100), nullable=True)
    publisher_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    published_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    note: Mapped[str] = mapped_column(String(500), default="")
    environment: Mapped[str] = mapped_column(String(20), default="draft", server_default="draft")


@event.listens_for(PolicyVersionRow, "before_update")
def _content_is_immutable(_mapper: Any, _connection: Any, target: PolicyVersionRow) -> None:
    state = inspect(target)
    for name in ("content", "content_hash", "tenant_id", "author", "author_user_id"):
        if state.attrs[name].history.has_changes():
            raise ValueError(f"policy version {target.content_hash[:12]}: {name} cannot change once written")


class DecisionSetupRow(Base):
    """A tenant's policies in force: the champion, optionally a challenger on a share of customers (in basis
    points of 10,000), and optionally a shadow (evaluated and stored beside every decision, never acted on).
    A set-up written before the shadow had its own slot may hold its shadow in the challenger's slot
    (`challenger_shadow`); it is read as the shadow until a new shadow or challenger is published."""

    __tablename__ = "decision_setups"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    champion_hash: Mapped[str] = mapped_column(String(64))
    challenger_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    challenger_share_bp: Mapped[int] = mapped_column(Integer, default=0)
    challenger_shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # when the running challenger (or shadow) began: its report compares decisions made since then
    challenger_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # a shadow version beside the champion and any split challenger: decides every application, never acts
    shadow_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shadow_started_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PolicySubmissionRow(Base):
    """The evidence a version was submitted with: the maker's note, lint warnings, golden test results and a
    simulation against the champion on the bank's own recent decisions (or a stated fallback)."""

    __tablename__ = "policy_submissions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    policy_version_id: Mapped[int] = mapped_column(ForeignKey("policy_versions.id"), index=True)
    submitted_by: Mapped[str] = mapped_column(String(100))
    submitted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(String(500), default="")
    champion_hash: Mapped[str | None] = mapped_column(String(64), nullable=True)
    warnings: Mapped[list[str]] = mapped_column(JSONText())
    golden: Mapped[list[dict[str, Any]]] = mapped_column(JSONText())
    simulation: Mapped[dict[str, Any]] = mapped_column(JSONText())


class PolicyChangeRequestRow(Base):
    """A request to promote the running challenger or roll back to a retired version: made by one person,
    carried out only when a second person approves it."""

    __tablename__ = "policy_change_requests"
    __table_args__ = (Index("ix_policy_change_requests_tenant_status", "tenant_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    action: Mapped[str] = mapped_column(String(20))  # promote, rollback
    content_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # pending, approved, rejected
    note: Mapped[str] = mapped_column(String(500), default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    requested_by_user_id: Mapped[int] = mapped_column(Integer)
    requested_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class DecisionRow(Base):
    """One evaluation of a policy for one application: inputs, versions, trace, outputs, latency, arm."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index("ix_decisions_tenant_customer", "tenant_id", "customer_id"),
        Index("ix_decisions_tenant_created", "tenant_id", "created_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[str] = mapped_column(String(100))
    application_ref: Mapped[str | None] = mapped_column(String(100), nullable=True)
    arm: Mapped[str] = mapped_column(String(20))  # champion, challenger, shadow
    acted_on: Mapped[bool] = mapped_column(Boolean)
    shadow_of: Mapped[int | None] = mapped_column(ForeignKey("decisions.id"), nullable=True)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONText())
    model_versions: Mapped[dict[str, Any]] = mapped_column(JSONText())
    policy_hash: Mapped[str] = mapped_column(String(64), index=True)
    trace: Mapped[Any] = mapped_column(JSONText(), nullable=True)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONText())
    outcome: Mapped[str] = mapped_column(String(10))
    limit: Mapped[Decimal] = mapped_column(Amount())
    annual_rate: Mapped[Decimal | None] = mapped_column(Rate(), nullable=True)
    reasons: Mapped[list[str]] = mapped_column(JSONText())
    latency_us: Mapped[int] = mapped_column(Integer)
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class LimitChangeRow(Base):
    """A limit change proposed by the periodic review (额度复审) of a credit line: applied at once within
    policy, or pending until an approver decides (larger increases)."""

    __tablename__ = "limit_changes"
    __table_args__ = (Index("ix_limit_changes_tenant_status", "tenant_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    credit_line_id: Mapped[int] = mapped_column(Integer, index=True)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    action: Mapped[str] = mapped_column(String(20))  # increase, decrease, freeze
    outcome: Mapped[str] = mapped_column(String(10))  # approve (within policy) or refer
    current_limit: Mapped[Decimal] = mapped_column(Amount())
    proposed_limit: Mapped[Decimal] = mapped_column(Amount())
    reasons: Mapped[list[str]] = mapped_column(JSONText())
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONText())
    policy_hash: Mapped[str] = mapped_column(String(64))
    status: Mapped[str] = mapped_column(String(20))  # applied, pending, approved, rejected
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    decided_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    decided_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: the customer's officer on the limit desk: recommend (support | oppose) with a note, before an approver
    recommendation: Mapped[str | None] = mapped_column(String(20), nullable=True)
    recommended_by: Mapped[str | None] = mapped_column(String(100), nullable=True)
    recommended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    officer_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)
    decision_note: Mapped[str | None] = mapped_column(String(1000), nullable=True)


class BehaviourScoreRunRow(Base):
    """One run of the monthly behaviour score: the scorecard's version and definition (factors in order, their
    bins and points, the bands) once, for every compact score row of the run to be explained by."""

    __tablename__ = "behaviour_score_runs"
    __table_args__ = (Index("ix_behaviour_score_runs_tenant_month", "tenant_id", "month"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    month: Mapped[str] = mapped_column(String(7))
    as_of: Mapped[date] = mapped_column(Date)
    scorecard_version: Mapped[str] = mapped_column(String(20))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONText())
    scored: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class BehaviourScoreRow(Base):
    """The monthly behaviour score (行为评分) of one credit line or loan: the points of each factor of the
    scorecard with the values it saw, kept per month so the limit review and the desk show the same evidence.
    Kept compactly (`run_id` set): the score, band, days past due, and per factor of the run's definition its
    bin (`factor_bins`, one character each) and value (`factor_values`, comma-separated); rows kept before the
    runs have their version, date and JSON breakdown (`factors`) on the row."""

    __tablename__ = "behaviour_scores"
    __table_args__ = (
        UniqueConstraint("tenant_id", "subject_kind", "subject_id", "month", name="uq_behaviour_scores_subject_month"),
        Index("ix_behaviour_scores_tenant_month", "tenant_id", "month"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    #: the tenant (no foreign key: a month's rows of a whole book are written at once by the run, which stamps its
    #: own tenant, without a per-row check; the run's row keeps the tenant's key)
    tenant_id: Mapped[int] = mapped_column(Integer)
    subject_kind: Mapped[str] = mapped_column(String(10))  # line | loan
    subject_id: Mapped[int] = mapped_column(Integer)
    customer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    month: Mapped[str] = mapped_column(String(7))  # YYYY-MM of the business date it was computed on
    as_of: Mapped[date | None] = mapped_column(Date, nullable=True)
    score: Mapped[int] = mapped_column(Integer)
    band: Mapped[str] = mapped_column(String(2))
    factors: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONText(), nullable=True)
    scorecard_version: Mapped[str | None] = mapped_column(String(20), nullable=True)
    created_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    run_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    current_dpd: Mapped[int | None] = mapped_column(Integer, nullable=True)
    factor_bins: Mapped[str | None] = mapped_column(String(40), nullable=True)
    factor_values: Mapped[str | None] = mapped_column(String(200), nullable=True)


class LimitAuthorityRow(Base):
    """审批权限 of the limit desk: per role, the largest limit increase one person of that role may approve,
    and the increase the review may apply by itself (when its policy allows). No row: the desk's defaults."""

    __tablename__ = "limit_authority"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    role_limits: Mapped[dict[str, str]] = mapped_column(JSONText())
    automatic_limit: Mapped[Decimal] = mapped_column(Amount())
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ReasonCodeRow(Base):
    """A bank's reason code (原因码) with its texts for the borrower and for staff (zh-CN and English), whether
    the borrower may be told, and the parameters its texts take ([name, input field] pairs)."""

    __tablename__ = "reason_codes"
    __table_args__ = (UniqueConstraint("tenant_id", "code", name="uq_reason_codes_tenant_code"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    code: Mapped[str] = mapped_column(String(60))
    borrower_zh: Mapped[str] = mapped_column(String(500))
    borrower_en: Mapped[str] = mapped_column(String(500))
    staff_zh: Mapped[str] = mapped_column(String(500))
    staff_en: Mapped[str] = mapped_column(String(500))
    tellable: Mapped[bool] = mapped_column(Boolean)
    params: Mapped[list[list[str]]] = mapped_column(JSONText())
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
