"""Pre-approval run use cases (批量预授信) the marketer's pages read: the runs with their progress, and a
run's offers. The run itself is `marketing.preapproval.run_preapproval` (set-based, restartable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import and_, func, select

from microlend.core.errors import NotFound
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.tables import OfferRow, PreapprovalRunRow, SegmentRow


@dataclass(frozen=True)
class PreapprovalRun:
    id: int
    segment: str | None
    as_of: Any
    status: str
    customers_total: int
    customers_done: int
    offers_count: int
    started_at: datetime
    finished_at: datetime | None
    model_version: str = ""
    policy_version: str = ""

    @property
    def progress(self) -> float:
        return 1.0 if self.status == "completed" or not self.customers_total else \
            self.customers_done / self.customers_total


def list_runs(uow: UnitOfWork, who: Principal) -> list[PreapprovalRun]:
    """Pre-approval runs, newest first, with their segment's label and progress."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        rows = uow.session.execute(
            select(PreapprovalRunRow, SegmentRow.name, SegmentRow.version)
            .outerjoin(SegmentRow, SegmentRow.id == PreapprovalRunRow.segment_id)
            .where(PreapprovalRunRow.tenant_id == who.tenant_id).order_by(PreapprovalRunRow.id.desc())).all()
        return [PreapprovalRun(r.id, None if name is None else f"{name} v{version}", r.as_of, r.status,
                               r.customers_total, r.customers_done, r.offers_count, r.started_at, r.finished_at,
                               r.model_version, r.policy_version)
                for r, name, version in rows]


def offer_count(uow: UnitOfWork, who: Principal, run_id: int) -> int:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(OfferRow).where(
            and_(OfferRow.run_id == run_id, OfferRow.tenant_id == who.tenant_id))).scalar() or 0)


@dataclass(frozen=True)
class Offer:
    """A pre-approved offer as it is listed: the customer, limit, rate, expiry and the run it came from."""

    customer_id: int
    limit: Decimal
    annual_rate: Decimal
    apr: Decimal
    expires_on: date
    risk_grade: str | None
    run_id: int

    def to_dict(self) -> dict[str, Any]:
        return {"customer_id": self.customer_id, "limit": str(self.limit), "annual_rate": str(self.annual_rate),
                "apr": str(self.apr), "expires_on": self.expires_on.isoformat(), "risk_grade": self.risk_grade,
                "run_id": self.run_id}


def list_offers(uow: UnitOfWork, who: Principal, run_id: int | None = None) -> list[Offer]:
    """A run's offers by customer id (the bank's latest completed run when none is named); NotFound for a run
    that is not this bank's."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        s = uow.session
        if run_id is None:
            run_id = s.execute(select(PreapprovalRunRow.id).where(
                PreapprovalRunRow.tenant_id == who.tenant_id, PreapprovalRunRow.status == "completed")
                .order_by(PreapprovalRunRow.id.desc()).limit(1)).scalar_one_or_none()
            if run_id is None:
                return []
        elif s.execute(select(PreapprovalRunRow.id).where(PreapprovalRunRow.tenant_id == who.tenant_id,
                                                          PreapprovalRunRow.id == run_id)).scalar_one_or_none() is None:
            raise NotFound(f"run {run_id} not found", field="run")
        rows = s.execute(select(OfferRow.customer_id, OfferRow.limit, OfferRow.annual_rate, OfferRow.apr,
                                OfferRow.expires_on, OfferRow.risk_grade, OfferRow.run_id).where(
            OfferRow.tenant_id == who.tenant_id, OfferRow.run_id == run_id).order_by(OfferRow.customer_id)).all()
        return [Offer(int(c), lim, rate, apr, exp, grade, int(r)) for c, lim, rate, apr, exp, grade, r in rows]


def real_customer_count(uow: UnitOfWork, who: Principal) -> int:
    """How many customers the bank has (synthetic benchmark data never goes into a bank that has any)."""
    from microlend.parties import queries as parties

    who.require(Permission.VIEW_CAMPAIGNS)
    return parties.customer_count(uow, who)
