"""Officer visit tasks (走访任务) from visit campaigns: the workbench's list, the officer's cards with the
customer and the offer's figures, and the visit's outcome recorded by the officer."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.sources import customer_contacts
from microlend.marketing.tables import AssignmentRow, CampaignRow, OfferRow, VisitTaskRow

VISIT_OUTCOMES = ("visited", "not_interested", "unreachable", "applied")


@dataclass(frozen=True)
class VisitTask:
    id: int
    campaign_id: int
    campaign_name: str
    customer_id: int
    officer_user_id: int | None
    status: str
    created_at: datetime


def visit_tasks(uow: UnitOfWork, who: Principal, *, officer_user_id: int | None = None,
                status: str | None = "open") -> list[VisitTask]:
    """Visit tasks for the workbench: an officer's own (default for a caller without campaign management)."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if not who.can(Permission.MANAGE_CAMPAIGNS):
        officer_user_id = who.user_id
    with uow:
        q = (select(VisitTaskRow, CampaignRow.name).join(CampaignRow, CampaignRow.id == VisitTaskRow.campaign_id)
             .where(VisitTaskRow.tenant_id == who.tenant_id))
        if officer_user_id is not None:
            q = q.where(VisitTaskRow.officer_user_id == officer_user_id)
        if status is not None:
            q = q.where(VisitTaskRow.status == status)
        return [VisitTask(t.id, t.campaign_id, name, t.customer_id, t.officer_user_id, t.status, t.created_at)
                for t, name in uow.session.execute(q.order_by(VisitTaskRow.id)).all()]


def close_visit_task(uow: UnitOfWork, who: Principal, task_id: int, *, outcome: str, at: datetime,
                     note: str = "") -> None:
    """The officer records the visit's outcome (visited, not_interested, unreachable, applied)."""
    who.require(Permission.VIEW_CAMPAIGNS)
    if outcome not in VISIT_OUTCOMES:
        raise ValidationError("outcome: visited, not_interested, unreachable or applied", field="outcome")
    with uow:
        s = uow.session
        task = s.get(VisitTaskRow, task_id)
        if task is None or task.tenant_id != who.tenant_id or (
                not who.can(Permission.MANAGE_CAMPAIGNS) and task.officer_user_id != who.user_id):
            raise NotFound(f"visit task {task_id} not found", field="task_id")
        if task.status != "open":
            raise Conflict(f"visit task {task_id} is already {task.status}", field="task_id")
        task.status, task.outcome, task.closed_at, task.note = "done", outcome, at, note
        audit.record(s, who, "visit_task.close", "visit_task", task_id, after={"outcome": outcome})
        uow.commit()


@dataclass(frozen=True)
class VisitCard:
    """What an officer needs at the door: the customer, the campaign and the offer's figures."""

    task: VisitTask
    customer_name: str
    phone_masked: str
    address: str
    branch: str
    offer_limit: Decimal | None
    offer_rate: Decimal | None
    offer_apr: Decimal | None
    offer_expires_on: Any


def _offers(s: Session, tenant_id: int, ids: Sequence[int]
            ) -> tuple[dict[tuple[int, int], int], dict[int, OfferRow], dict[int, OfferRow]]:
    """The offer each campaign targeted per (campaign, customer), every offer by id, and each customer's
    latest offer."""
    targeted = {(int(c), int(u)): int(o or 0) for c, u, o in s.execute(
        select(AssignmentRow.campaign_id, AssignmentRow.customer_id, AssignmentRow.offer_id).where(
            AssignmentRow.tenant_id == tenant_id, AssignmentRow.customer_id.in_(ids),
            AssignmentRow.offer_id.is_not(None))).all()}
    offers: dict[int, OfferRow] = {}
    latest: dict[int, OfferRow] = {}
    for o in s.execute(select(OfferRow).where(OfferRow.tenant_id == tenant_id,
                                              OfferRow.customer_id.in_(ids)).order_by(OfferRow.id)).scalars():
        offers[o.id] = o
        latest[int(o.customer_id)] = o
    return targeted, offers, latest


def _card(t: VisitTask, person: Any, offer: OfferRow | None) -> VisitCard:
    return VisitCard(
        t, person.name if person else f"#{t.customer_id}", person.phone_masked if person else "",
        (person.address or "") if person else "", (person.branch or "") if person else "",
        offer.limit if offer else None, offer.annual_rate if offer else None,
        offer.apr if offer else None, offer.expires_on if offer else None)


def visit_cards(uow: UnitOfWork, who: Principal, *, status: str | None = "open") -> list[VisitCard]:
    """The caller's own visit tasks with customer and offer details (the officer's 走访任务 list). The
    customer comes from `sources.customer_contacts`; the offer is the one the campaign targeted, else the
    customer's latest unexpired pre-approved offer."""
    who.require(Permission.VIEW_CAMPAIGNS)
    tasks = [t for t in visit_tasks(uow, who, officer_user_id=who.user_id, status=status)
             if t.officer_user_id == who.user_id]
    if not tasks:
        return []
    ids = sorted({t.customer_id for t in tasks})
    with uow:
        s = uow.session
        people = customer_contacts(uow, who, ids)
        targeted, offers, latest = _offers(s, who.tenant_id, ids)
        cards = []
        for t in tasks:
            offer_id = targeted.get((t.campaign_id, t.customer_id))
            offer = offers.get(offer_id) if offer_id is not None else latest.get(t.customer_id)
            if offer is not None and offer_id is None and offer.expires_on < t.created_at.date():
                offer = None
            cards.append(_card(t, people.get(t.customer_id), offer))
    return cards
