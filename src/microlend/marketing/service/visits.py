"""Officer visit tasks (走访任务) from visit campaigns: the workbench's list, the officer's cards with the
customer and the offer's figures, due dates (the campaign's visit days after its launch, overdue ones
flagged), the visit's outcome recorded by the officer and counted in the campaign's funnel, and the sweep
that closes the open tasks of customers who are no longer eligible.

Funnel: a visit where the officer met the customer (visited, not_interested, applied) is a response for the
campaign (recorded as "opened" through the campaign, like a tracked link); "applied" also records the
application; an unreachable customer, or a task closed by the sweep, is a visit not delivered.

The sweep (hourly, by the worker) closes an open task, with its reason, when the customer opted out of
visits ("opted_out"), is now overdue on a loan ("overdue"), the offer the campaign targeted expired
("offer_expired"), or the customer applied already since the task was created ("applied")."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.errors import Conflict, NotFound, ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.sources import (
    IN_CHUNK,
    applications_for_funnel,
    customer_contacts,
    customer_loan_status,
)
from microlend.marketing.tables import (
    AssignmentRow,
    CampaignRow,
    OfferRow,
    OptOutRow,
    TrackingEventRow,
    VisitTaskRow,
)

VISIT_OUTCOMES = ("visited", "not_interested", "unreachable", "applied")
#: the funnel events a recorded outcome adds for its campaign (at the outcome's instant)
OUTCOME_EVENTS: dict[str, tuple[str, ...]] = {
    "visited": ("opened",), "not_interested": ("opened",), "applied": ("opened", "applied"), "unreachable": ()}
#: why the sweep closed an open task, in the order they are checked
CLOSE_REASONS = ("opted_out", "overdue", "offer_expired", "applied")


@dataclass(frozen=True)
class VisitTask:
    id: int
    campaign_id: int
    campaign_name: str
    customer_id: int
    officer_user_id: int | None
    status: str
    created_at: datetime
    due_at: datetime | None = None
    outcome: str | None = None
    closed_reason: str | None = None

    def overdue(self, now: datetime) -> bool:
        """Still open after its due date."""
        return self.status == "open" and self.due_at is not None and self.due_at < now


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
        order = (func.coalesce(VisitTaskRow.due_at, VisitTaskRow.created_at), VisitTaskRow.id)
        return [VisitTask(t.id, t.campaign_id, name, t.customer_id, t.officer_user_id, t.status, t.created_at,
                          t.due_at, t.outcome, t.closed_reason)
                for t, name in uow.session.execute(q.order_by(*order)).all()]


def close_visit_task(uow: UnitOfWork, who: Principal, task_id: int, *, outcome: str, at: datetime,
                     note: str = "") -> None:
    """The officer records the visit's outcome (visited, not_interested, unreachable, applied); a meeting
    counts as the campaign's response in its funnel, an application as its application (`OUTCOME_EVENTS`)."""
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
        for kind in OUTCOME_EVENTS[outcome]:
            s.add(TrackingEventRow(tenant_id=who.tenant_id, customer_id=task.customer_id,
                                   campaign_id=task.campaign_id, kind=kind, at=at))
        audit.record(s, who, "visit_task.close", "visit_task", task_id,
                     after={"outcome": outcome, "funnel": list(OUTCOME_EVENTS[outcome])})
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
    overdue: bool = False


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


def _card(t: VisitTask, person: Any, offer: OfferRow | None, now: datetime | None) -> VisitCard:
    return VisitCard(
        t, person.name if person else f"#{t.customer_id}", person.phone_masked if person else "",
        (person.address or "") if person else "", (person.branch or "") if person else "",
        offer.limit if offer else None, offer.annual_rate if offer else None,
        offer.apr if offer else None, offer.expires_on if offer else None,
        overdue=now is not None and t.overdue(now))


def visit_cards(uow: UnitOfWork, who: Principal, *, status: str | None = "open",
                now: datetime | None = None) -> list[VisitCard]:
    """The caller's own visit tasks with customer and offer details (the officer's 走访任务 list), soonest due
    first, those past their due date at `now` flagged overdue. The customer comes from
    `sources.customer_contacts`; the offer is the one the campaign targeted, else the customer's latest
    unexpired pre-approved offer."""
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
            cards.append(_card(t, people.get(t.customer_id), offer, now))
    return cards


# --- the sweep: open tasks of customers no longer eligible ------------------------------------------------


def _chunks(ids: Sequence[int]) -> list[list[int]]:
    return [list(ids[i:i + IN_CHUNK]) for i in range(0, len(ids), IN_CHUNK)]


def ineligible_reasons(open_tasks: Sequence[tuple[int, int, datetime]], *, opted_out: set[int],
                       overdue_customers: set[int], expired: set[int], tracked_applied: set[int],
                       last_application: dict[int, datetime]) -> dict[int, str]:
    """Pure: each open task (id, customer, created) whose customer is no longer eligible, with the first
    reason that holds in `CLOSE_REASONS` order. `opted_out`, `expired`, `tracked_applied` hold task ids;
    `overdue_customers` customer ids; `last_application` each customer's latest application (counted
    only when it came after the task was created)."""
    reasons: dict[int, str] = {}
    for task_id, customer_id, created_at in open_tasks:
        applied = task_id in tracked_applied or (
            customer_id in last_application and last_application[customer_id] >= created_at)
        for reason, hit in (("opted_out", task_id in opted_out), ("overdue", customer_id in overdue_customers),
                            ("offer_expired", task_id in expired), ("applied", applied)):
            if hit:
                reasons[task_id] = reason
                break
    return reasons


def close_ineligible_visit_tasks(uow: UnitOfWork, who: Principal, *, now: datetime) -> dict[str, int]:
    """Close every open visit task of the bank whose customer is no longer eligible (`CLOSE_REASONS`), with
    the reason recorded; set-based (one query per reason, one update per reason). How many per reason."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    closed = dict.fromkeys(CLOSE_REASONS, 0)
    with uow:
        s = uow.session
        t = VisitTaskRow
        open_rows = s.connection().execute(select(t.id, t.customer_id, t.created_at).where(
            t.tenant_id == who.tenant_id, t.status == "open")).all()
        if not open_rows:
            return closed
        is_open = (t.tenant_id == who.tenant_id) & (t.status == "open")
        opted_out = set(s.execute(select(t.id).where(is_open, select(OptOutRow.id).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == t.customer_id,
            OptOutRow.channel == "visit").exists())).scalars())
        expired = set(s.execute(select(t.id).join(AssignmentRow, (AssignmentRow.campaign_id == t.campaign_id)
                                                  & (AssignmentRow.customer_id == t.customer_id))
                                .join(OfferRow, OfferRow.id == AssignmentRow.offer_id)
                                .where(is_open, AssignmentRow.tenant_id == who.tenant_id,
                                       OfferRow.expires_on < now.date())).scalars())
        tracked_applied = set(s.execute(select(t.id).where(is_open, select(TrackingEventRow.id).where(
            TrackingEventRow.tenant_id == who.tenant_id, TrackingEventRow.customer_id == t.customer_id,
            TrackingEventRow.kind == "applied", TrackingEventRow.at >= t.created_at,
            TrackingEventRow.at <= now).exists())).scalars())
    customers = sorted({int(c) for _, c, _ in open_rows})
    overdue_customers = {c for c, dpd in customer_loan_status(uow, who).items() if dpd > 0}
    since = min(r[2] for r in open_rows)
    last_application: dict[int, datetime] = {}
    for c, kind, at, _ in applications_for_funnel(uow, who, customers, since):
        if kind == "applied" and at <= now and (c not in last_application or at > last_application[c]):
            last_application[int(c)] = at
    reasons = ineligible_reasons([(int(i), int(c), at) for i, c, at in open_rows], opted_out=opted_out,
                                 overdue_customers=overdue_customers, expired=expired,
                                 tracked_applied=tracked_applied, last_application=last_application)
    if not reasons:
        return closed
    with uow:
        s = uow.session
        for reason in CLOSE_REASONS:
            ids = sorted(i for i, r in reasons.items() if r == reason)
            for chunk in _chunks(ids):
                s.execute(update(VisitTaskRow).where(
                    VisitTaskRow.tenant_id == who.tenant_id, VisitTaskRow.status == "open",
                    VisitTaskRow.id.in_(chunk)).values(status="cancelled", closed_reason=reason, closed_at=now))
            closed[reason] = len(ids)
        audit.record(s, who, "visit_task.sweep", "marketing_visit_tasks", sum(closed.values()), after=closed)
        uow.commit()
    return closed
