"""Tables of parties: customers (persons and micro-enterprises) and their consents (授权)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from sqlalchemy import Boolean, Date, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from microlend.core.db import Base, JSONText, UTCDateTime


class CustomerRow(Base):
    """A borrower: a person or a micro-enterprise. ID numbers and phones are encrypted at rest; a keyed
    blind index makes them unique per tenant without storing them in clear."""

    __tablename__ = "customers"
    __table_args__ = (
        UniqueConstraint("tenant_id", "id_number_index", name="uq_customers_tenant_id_number"),
        Index("ix_customers_tenant_name", "tenant_id", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # person | business
    name: Mapped[str] = mapped_column(String(200))
    id_number_enc: Mapped[str] = mapped_column(String(200))
    id_number_index: Mapped[str] = mapped_column(String(64))
    id_number_masked: Mapped[str] = mapped_column(String(40))
    phone_enc: Mapped[str] = mapped_column(String(200))
    phone_index: Mapped[str] = mapped_column(String(64), index=True)
    phone_masked: Mapped[str] = mapped_column(String(20))
    birth_date: Mapped[date | None] = mapped_column(Date, nullable=True)
    address: Mapped[str] = mapped_column(String(300), default="")
    industry: Mapped[str] = mapped_column(String(60), default="")
    branch: Mapped[str] = mapped_column(String(100), default="")
    officer_user_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    marketing_consent: Mapped[bool] = mapped_column(Boolean, default=False)
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    version: Mapped[int] = mapped_column(Integer, default=1)


class ConsentRow(Base):
    """A borrower's authorisation (授权) for a data query, with its scope and time; required before any
    external data (the credit report, 征信) is used."""

    __tablename__ = "consents"
    __table_args__ = (Index("ix_consents_customer", "tenant_id", "customer_id", "scope"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    scope: Mapped[str] = mapped_column(String(40))
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    granted_by: Mapped[str] = mapped_column(String(100))
    channel: Mapped[str] = mapped_column(String(20), default="api")  # self | assisted-otp (api: before evidence)
    application_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    # what the borrower agreed to and how we know it was them
    locale: Mapped[str] = mapped_column(String(10), default="")
    text_version: Mapped[str] = mapped_column(String(40), default="")
    text_hash: Mapped[str] = mapped_column(String(64), default="")
    evidence: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    revoked_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class OtpChallengeRow(Base):
    """A one-time code (短信验证码) sent to a customer's registered mobile for one purpose: giving a consent
    or signing a contract. Only a keyed hash of the code is kept; it expires, counts wrong tries and is used
    once."""

    __tablename__ = "otp_challenges"
    __table_args__ = (Index("ix_otp_challenges_purpose", "tenant_id", "customer_id", "purpose"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    purpose: Mapped[str] = mapped_column(String(80))  # consent:<scope> | contract:<contract number>
    context: Mapped[dict[str, Any]] = mapped_column(JSONText(), default=dict)  # locale, hash of what is agreed
    salt: Mapped[str] = mapped_column(String(32))
    code_hash: Mapped[str] = mapped_column(String(64))
    sent_to: Mapped[str] = mapped_column(String(20))  # the masked mobile
    sender: Mapped[str] = mapped_column(String(40))
    message_id: Mapped[str] = mapped_column(String(100), default="")
    requested_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PartyLinkRow(Base):
    """关联方: a business and its legal representative or owner, recorded by the bank; linked customers are one
    obligor group, counted as one for exposure."""

    __tablename__ = "party_links"
    __table_args__ = (
        UniqueConstraint("tenant_id", "business_id", "person_id", name="uq_party_links_pair"),
        Index("ix_party_links_person", "tenant_id", "person_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    business_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    person_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    role: Mapped[str] = mapped_column(String(30))  # legal_representative | owner
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    created_by: Mapped[str] = mapped_column(String(100))


class DeviceRow(Base):
    """A borrower's app on one device (设备推送令牌): the push token the app registered, encrypted at rest with a
    keyed blind index (one row per token and bank); active until the borrower unregisters it or the push
    gateway reports it invalid."""

    __tablename__ = "party_devices"
    __table_args__ = (
        UniqueConstraint("tenant_id", "token_index", name="uq_party_devices_token"),
        Index("ix_party_devices_customer", "tenant_id", "customer_id", "status"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    tenant_id: Mapped[int] = mapped_column(ForeignKey("tenants.id"))
    customer_id: Mapped[int] = mapped_column(ForeignKey("customers.id"))
    platform: Mapped[str] = mapped_column(String(10))  # ios | android | harmony
    token_enc: Mapped[str] = mapped_column(String(1000))
    token_index: Mapped[str] = mapped_column(String(64))
    token_masked: Mapped[str] = mapped_column(String(40))
    status: Mapped[str] = mapped_column(String(10))  # active | disabled
    registered_at: Mapped[datetime] = mapped_column(UTCDateTime())
    disabled_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    disabled_reason: Mapped[str | None] = mapped_column(String(40), nullable=True)
