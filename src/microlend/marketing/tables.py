"""Tables of marketing: segments, pre-approval runs and offers, campaigns with their control-group
assignments, the outbox, contact history, opt-outs, tracking events and visit tasks.

Customers are referred to by their id without a foreign key, so the same tables serve a bank whose
customers live in another system (an imported customer base) as well as origination's customers.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import BigInteger, Boolean, Date, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Amount, Base, JSONText, Rate, UTCDateTime


class SegmentRow(Base):
    """One version of a segment; a change of expression is a new version, old ones stay for the record."""

    __tablename__ = "marketing_segments"
    __table_args__ = (UniqueConstraint("tenant_id", "name", "version", name="uq_marketing_segments_name_version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    expression: Mapped[str] = mapped_column(Text)
    namespace: Mapped[dict[str, str]] = mapped_column(JSONText())
    description: Mapped[str] = mapped_column(String(500), default="")
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PreapprovalRunRow(Base):
    """A batch pre-approval (批量预授信) over a segment as of a date; `run_key` hashes its inputs, so the same
    inputs resume the same run instead of starting another."""

    __tablename__ = "marketing_preapproval_runs"
    __table_args__ = (UniqueConstraint("tenant_id", "run_key", name="uq_marketing_preapproval_runs_key"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    run_key: Mapped[str] = mapped_column(String(64))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_segments.id"), nullable=True)
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(20))  # running, completed
    policy_version: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONText())
    customers_total: Mapped[int] = mapped_column(Integer, default=0)
    customers_done: Mapped[int] = mapped_column(Integer, default=0)
    offers_count: Mapped[int] = mapped_column(Integer, default=0)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class OfferRow(Base):
    """A pre-approved offer (预授信额度) for one customer from one run."""

    __tablename__ = "marketing_offers"
    __table_args__ = (
        UniqueConstraint("run_id", "customer_id", name="uq_marketing_offers_run_customer"),
        Index("ix_marketing_offers_tenant_customer", "tenant_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    run_id: Mapped[int] = mapped_column(ForeignKey("marketing_preapproval_runs.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    limit: Mapped[Decimal] = mapped_column(Amount())
    annual_rate: Mapped[Decimal] = mapped_column(Rate())
    apr: Mapped[Decimal] = mapped_column(Rate())
    expires_on: Mapped[date] = mapped_column(Date)
    risk_grade: Mapped[str | None] = mapped_column(String(10), nullable=True)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    policy_version: Mapped[str] = mapped_column(String(100))
    model_version: Mapped[str] = mapped_column(String(100))


class CampaignRow(Base):
    """A campaign: who (a segment or a run's offers), how (channel, template, locale), and its rules."""

    __tablename__ = "marketing_campaigns"
    __table_args__ = (UniqueConstraint("tenant_id", "name", name="uq_marketing_campaigns_name"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(10))
    segment_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_segments.id"), nullable=True)
    run_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_preapproval_runs.id"), nullable=True)
    control_share_bp: Mapped[int] = mapped_column(Integer)
    cost_per_message: Mapped[Decimal] = mapped_column(Amount())
    attribution_days: Mapped[int] = mapped_column(Integer)
    cap_max_messages: Mapped[int] = mapped_column(Integer)
    cap_window_days: Mapped[int] = mapped_column(Integer)
    quiet_start: Mapped[str] = mapped_column(String(5))
    quiet_end: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(60))
    template: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # draft, approved, launched
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    launched_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # no message before
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # none after: suppressed
    approved_by: Mapped[str | None] = mapped_column(String(100), nullable=True)  # a second person (four eyes)
    approved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    department: Mapped[str] = mapped_column(String(60), default="", server_default="")
    product: Mapped[str] = mapped_column(String(60), default="", server_default="")
    budget: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)  # what its contacts may cost
    variants: Mapped[list[dict[str, Any]] | None] = mapped_column(JSONText(), nullable=True)  # A/B messages
    visit_due_days: Mapped[int | None] = mapped_column(Integer, nullable=True)  # a visit task's days to do it


class AssignmentRow(Base):
    """Which arm a targeted customer fell in (treatment or control 对照组), and why any was not contacted."""

    __tablename__ = "marketing_assignments"
    __table_args__ = (UniqueConstraint("campaign_id", "customer_id", name="uq_marketing_assignments_customer"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    arm: Mapped[str] = mapped_column(String(10))  # treatment, control
    segment_label: Mapped[str] = mapped_column(String(60), default="")
    excluded_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)
    offer_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    variant: Mapped[str | None] = mapped_column(String(20), nullable=True)  # the treated's message variant


class OutboxRow(Base):
    """A message waiting for, or past, its sender (发件箱)."""

    __tablename__ = "marketing_outbox"
    __table_args__ = (
        Index("ix_marketing_outbox_due", "tenant_id", "status", "scheduled_at"),
        Index("ix_marketing_outbox_campaign", "campaign_id", "customer_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(10))
    locale: Mapped[str] = mapped_column(String(10))
    body: Mapped[str] = mapped_column(Text)
    token: Mapped[str] = mapped_column(String(40), index=True)
    status: Mapped[str] = mapped_column(String(20))  # scheduled, sent, suppressed, failed
    suppressed_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)
    sender: Mapped[str | None] = mapped_column(String(40), nullable=True)
    scheduled_at: Mapped[datetime] = mapped_column(UTCDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")  # tries through the gateway
    gateway_id: Mapped[str | None] = mapped_column(String(64), nullable=True)
    delivery_status: Mapped[str | None] = mapped_column(String(20), nullable=True)  # from the receipt
    delivered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    last_error: Mapped[str | None] = mapped_column(String(200), nullable=True)


class ContactRow(Base):
    """Every contact made, across campaigns and channels: what frequency caps count."""

    __tablename__ = "marketing_contact_history"
    __table_args__ = (Index("ix_marketing_contact_history_customer", "tenant_id", "customer_id", "contacted_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    channel: Mapped[str] = mapped_column(String(10))
    contacted_at: Mapped[datetime] = mapped_column(UTCDateTime())


class OptOutRow(Base):
    """A customer's opt-out (退订) of one channel; it holds until the customer opts back in."""

    __tablename__ = "marketing_opt_outs"
    __table_args__ = (UniqueConstraint("tenant_id", "customer_id", "channel", name="uq_marketing_opt_outs_channel"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    channel: Mapped[str] = mapped_column(String(10))
    opted_out_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrackingEventRow(Base):
    """A step of the funnel: sent, opened, clicked, applied, approved, disbursed."""

    __tablename__ = "marketing_events"
    __table_args__ = (Index("ix_marketing_events_customer", "tenant_id", "customer_id", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    campaign_id: Mapped[int | None] = mapped_column(ForeignKey("marketing_campaigns.id"), nullable=True)
    kind: Mapped[str] = mapped_column(String(20))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    token: Mapped[str | None] = mapped_column(String(40), nullable=True)
    amount: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)


class VisitTaskRow(Base):
    """A visit (上门拜访) a loan officer makes for a campaign; it lands in the officer's workbench."""

    __tablename__ = "marketing_visit_tasks"
    __table_args__ = (Index("ix_marketing_visit_tasks_officer", "tenant_id", "officer_user_id", "status"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    officer_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # open, done, cancelled
    note: Mapped[str] = mapped_column(Text, default="")
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    closed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    outcome: Mapped[str | None] = mapped_column(String(30), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    #: why an open task was closed without a visit: opted_out, overdue, offer_expired, applied
    closed_reason: Mapped[str | None] = mapped_column(String(30), nullable=True)


class MeasurementSettingsRow(Base):
    """What a contact costs on each channel and what a disbursed loan earns (margin), for the campaign
    report's cost and ROI; one row per bank (defaults apply without one)."""

    __tablename__ = "marketing_measurement_settings"
    __table_args__ = (UniqueConstraint("tenant_id", name="uq_marketing_measurement_settings_tenant"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    sms_cost: Mapped[Decimal] = mapped_column(Amount())
    push_cost: Mapped[Decimal] = mapped_column(Amount())
    visit_cost: Mapped[Decimal] = mapped_column(Amount())
    margin_per_disbursed: Mapped[Decimal | None] = mapped_column(Amount(), nullable=True)
    min_control_per_stratum: Mapped[int] = mapped_column(Integer)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignMeasurementRow(Base):
    """A campaign's report frozen at its close: the figures (JSON), the Qini chart, and the uplift model
    trained once on the campaign's own customers (its coefficients as JSON, with their sha256)."""

    __tablename__ = "marketing_campaign_measurements"
    __table_args__ = (UniqueConstraint("tenant_id", "campaign_id", name="uq_marketing_campaign_measurements"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    stage: Mapped[str] = mapped_column(String(20))
    method: Mapped[str] = mapped_column(String(30))
    features: Mapped[list[str]] = mapped_column(JSONText())
    result: Mapped[dict[str, Any]] = mapped_column(JSONText())
    qini_chart: Mapped[str | None] = mapped_column(Text, nullable=True)
    artefact: Mapped[str | None] = mapped_column(Text, nullable=True)
    artefact_sha256: Mapped[str | None] = mapped_column(String(64), nullable=True)
    closed_by: Mapped[str] = mapped_column(String(100))
    closed_at: Mapped[datetime] = mapped_column(UTCDateTime())
class JourneyStepRow(Base):
    """A campaign's follow-up step (旅程步骤): after N days, to the previous step's customers meeting a
    condition, an SMS, a push or an officer's visit; waiting, done (with what it reached) or stopped."""

    __tablename__ = "marketing_journey_steps"
    __table_args__ = (UniqueConstraint("campaign_id", "position", name="uq_marketing_journey_steps_position"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    position: Mapped[int] = mapped_column(Integer)  # 1, 2, ...; 0 is the launch itself
    after_days: Mapped[int] = mapped_column(Integer)
    condition: Mapped[str] = mapped_column(String(30))
    action: Mapped[str] = mapped_column(String(10))
    template: Mapped[str | None] = mapped_column(Text, nullable=True)
    status: Mapped[str] = mapped_column(String(20))  # waiting, done, stopped
    stop_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    candidates: Mapped[int] = mapped_column(Integer, default=0)
    contacted: Mapped[int] = mapped_column(Integer, default=0)
    blocked: Mapped[dict[str, int] | None] = mapped_column(JSONText(), nullable=True)
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class JourneyContactRow(Base):
    """A customer a journey step reached (a message queued or a visit task made): the step's funnel."""

    __tablename__ = "marketing_journey_contacts"
    __table_args__ = (UniqueConstraint("step_id", "customer_id", name="uq_marketing_journey_contacts_customer"),
                      Index("ix_marketing_journey_contacts_campaign", "tenant_id", "campaign_id"))

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    step_id: Mapped[int] = mapped_column(ForeignKey("marketing_journey_steps.id"))
    customer_id: Mapped[int] = mapped_column(BigInteger)
    at: Mapped[datetime] = mapped_column(UTCDateTime())


class CampaignInterimRow(Base):
    """An open campaign's report as last computed (figures and charts as JSON) with the fingerprint of its
    inputs: served while the fingerprint still matches, recomputed when an event, send or receipt changed it
    (and by the worker every hour, so applications arriving from origination show within the hour)."""

    __tablename__ = "marketing_campaign_interim"
    __table_args__ = (UniqueConstraint("tenant_id", "campaign_id", name="uq_marketing_campaign_interim"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    campaign_id: Mapped[int] = mapped_column(ForeignKey("marketing_campaigns.id"))
    fingerprint: Mapped[str] = mapped_column(String(64))
    result: Mapped[dict[str, Any]] = mapped_column(JSONText())
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ContactPolicyRow(Base):
    """A bank's contact policy (接触策略), over every campaign and channel: the cap of contacts per customer
    and period, the global holdout, quiet hours, the send throttle, the public host of links, and whether
    a launch needs a second person's approval."""

    __tablename__ = "marketing_contact_policies"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    cap_max_contacts: Mapped[int] = mapped_column(Integer)
    cap_window_days: Mapped[int] = mapped_column(Integer)
    holdout_share_bp: Mapped[int] = mapped_column(Integer)
    quiet_start: Mapped[str] = mapped_column(String(5))
    quiet_end: Mapped[str] = mapped_column(String(5))
    timezone: Mapped[str] = mapped_column(String(60))
    throttle_per_s: Mapped[int] = mapped_column(Integer)
    public_host: Mapped[str] = mapped_column(String(200))
    launch_approval: Mapped[bool] = mapped_column(Boolean)
    updated_by: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
