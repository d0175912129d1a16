"""Pre-approval run use cases (批量预授信) the marketer's pages read: the runs with their progress, and a
run's offers. The run itself is `marketing.preapproval.run_preapproval` (set-based, restartable)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, select

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
                               r.customers_total, r.customers_done, r.offers_count, r.started_at, r.finished_at)
                for r, name, version in rows]


def offer_count(uow: UnitOfWork, who: Principal, run_id: int) -> int:
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return int(uow.session.execute(select(func.count()).select_from(OfferRow).where(
            and_(OfferRow.run_id == run_id, OfferRow.tenant_id == who.tenant_id))).scalar() or 0)
