"""Tables of the risk module: the model registry (模型注册) and the record of which version scored what."""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, JSONText, Rate, UTCDateTime


class ModelVersionRow(Base):
    """One trained model of a tenant: its files (by content hash), its data, its figures and its status."""

    __tablename__ = "risk_model_versions"
    __table_args__ = (
        UniqueConstraint("tenant_id", "content_hash", name="uq_risk_model_versions_tenant_content"),
        UniqueConstraint("tenant_id", "name", "version", name="uq_risk_model_versions_tenant_name_version"),
        Index("ix_risk_model_versions_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(20))
    status: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64))
    dataset_hash: Mapped[str] = mapped_column(String(64))
    target: Mapped[str] = mapped_column(String(100))
    bad: Mapped[str] = mapped_column(String(100))
    features: Mapped[list[str]] = mapped_column(JSONText())
    parameters: Mapped[dict[str, Any]] = mapped_column(JSONText())
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONText())
    store_path: Mapped[str] = mapped_column(Text)
    trained_by: Mapped[int] = mapped_column(Integer)
    trained_by_name: Mapped[str] = mapped_column(String(100))
    approved_by: Mapped[int | None] = mapped_column(Integer, nullable=True)
    approved_by_name: Mapped[str | None] = mapped_column(String(100), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status_changed_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelScoreRow(Base):
    """Which model version scored which subject, with what result; challengers score in shadow."""

    __tablename__ = "risk_model_scores"
    __table_args__ = (
        Index("ix_risk_model_scores_subject", "tenant_id", "subject_type", "subject_id"),
        Index("ix_risk_model_scores_version", "model_version_id", "scored_at"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("risk_model_versions.id"))
    role: Mapped[str] = mapped_column(String(20))
    shadow: Mapped[bool] = mapped_column(Boolean, default=False)
    subject_type: Mapped[str] = mapped_column(String(40))
    subject_id: Mapped[str] = mapped_column(String(60))
    pd: Mapped[Decimal] = mapped_column(Rate())
    score: Mapped[Decimal] = mapped_column(Rate())
    reasons: Mapped[list[str]] = mapped_column(JSONText())
    scored_by: Mapped[int] = mapped_column(Integer)
    scored_at: Mapped[datetime] = mapped_column(UTCDateTime())


class RiskSettingsRow(Base):
    """A bank's model gates (模型准入标准): the thresholds a model must meet before it can be validated."""

    __tablename__ = "risk_settings"

    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), primary_key=True)
    gates: Mapped[dict[str, Any]] = mapped_column(JSONText())
    updated_by: Mapped[int] = mapped_column(Integer)
    updated_by_name: Mapped[str] = mapped_column(String(100))
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ModelSignoffRow(Base):
    """Who validated and who approved a model version, and when (one row per step and version)."""

    __tablename__ = "risk_model_signoffs"
    __table_args__ = (
        UniqueConstraint("model_version_id", "step", name="uq_risk_model_signoffs_version_step"),
        Index("ix_risk_model_signoffs_tenant_version", "tenant_id", "model_version_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("risk_model_versions.id"))
    step: Mapped[str] = mapped_column(String(20))
    user_id: Mapped[int] = mapped_column(Integer)
    username: Mapped[str] = mapped_column(String(100))
    at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str] = mapped_column(Text, default="")


class MonitoringRunRow(Base):
    """One monitoring run (模型监控) of a model version in use as of a business date: drift of its scores and
    characteristics, its performance on loans whose outcome is known, and the alerts raised."""

    __tablename__ = "risk_monitoring_runs"
    __table_args__ = (
        UniqueConstraint("tenant_id", "model_version_id", "as_of", name="uq_risk_monitoring_runs_version_day"),
        Index("ix_risk_monitoring_runs_tenant_as_of", "tenant_id", "as_of"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    model_version_id: Mapped[int] = mapped_column(ForeignKey("risk_model_versions.id"))
    as_of: Mapped[date] = mapped_column(Date)
    status: Mapped[str] = mapped_column(String(10))  # stable | watch | act
    cases: Mapped[int] = mapped_column(Integer)
    result: Mapped[dict[str, Any]] = mapped_column(JSONText())
    alerts: Mapped[list[dict[str, Any]]] = mapped_column(JSONText())
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PartnershipRow(Base):
    """A data partner the bank models jointly with (联合建模合作方): who, where, which key (by fingerprint, never
    the key), for what purpose, under which contract, from when to when, and whether it is active."""

    __tablename__ = "risk_partnerships"
    __table_args__ = (
        UniqueConstraint("tenant_id", "name", name="uq_risk_partnerships_tenant_name"),
        Index("ix_risk_partnerships_tenant_status", "tenant_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    name: Mapped[str] = mapped_column(String(100))
    endpoint_url: Mapped[str] = mapped_column(String(300))
    key_fingerprint: Mapped[str] = mapped_column(String(16))
    purpose: Mapped[str] = mapped_column(Text)
    contract_ref: Mapped[str] = mapped_column(String(100))
    valid_from: Mapped[date] = mapped_column(Date)
    valid_to: Mapped[date] = mapped_column(Date)
    #: the partner's features the partnership covers (names as the contract lists them)
    features: Mapped[list[str]] = mapped_column(JSONText(), default=list, server_default="[]")
    #: the lawful basis of the data use, e.g. the applicant's partner_scoring consent
    consent_basis: Mapped[str] = mapped_column(Text, default="", server_default="")
    status: Mapped[str] = mapped_column(String(12))  # active | suspended
    status_reason: Mapped[str] = mapped_column(Text, default="")
    created_by: Mapped[int] = mapped_column(Integer)
    created_by_name: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class TrainingRunRow(Base):
    """One joint training run with a data partner (联合训练任务): who started it under which partnership, how far it
    has come (phase, epoch, batches, updated as it goes), how it ended (the error when it failed), and what it
    produced: the shared-ID count, the joint model and its validation figures beside the bank-only model's."""

    __tablename__ = "risk_training_runs"
    __table_args__ = (Index("ix_risk_training_runs_tenant_partnership", "tenant_id", "partnership_id", "started_at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    partnership_id: Mapped[int] = mapped_column(ForeignKey("risk_partnerships.id"))
    started_by: Mapped[int] = mapped_column(Integer)
    started_by_name: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    status: Mapped[str] = mapped_column(String(12))  # running | succeeded | failed
    error: Mapped[str] = mapped_column(Text, default="")
    phase: Mapped[str] = mapped_column(String(12))  # psi | setup | epochs | finished
    epoch: Mapped[int] = mapped_column(Integer, default=0)
    epochs: Mapped[int] = mapped_column(Integer, default=0)
    batches_done: Mapped[int] = mapped_column(Integer, default=0)
    batches_total: Mapped[int] = mapped_column(Integer, default=0)
    shared_ids: Mapped[int | None] = mapped_column(Integer, nullable=True)
    #: the joint model's id (both sides know it) and, once registered, its version in the bank's registry
    model_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    model_version_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    settings: Mapped[dict[str, Any]] = mapped_column(JSONText())
    #: validation figures: each side's AUC and KS on the same fold, and each side's contribution
    result: Mapped[dict[str, Any]] = mapped_column(JSONText())
