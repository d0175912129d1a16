"""The outbox of messages (待发消息) and who may be contacted: dispatch due messages through a sender with
consent, opt-outs and the frequency cap checked again at send time; record and remove opt-outs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core import audit, metrics
from microlend.core.errors import DomainError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import LogSender, OutgoingMessage, Sender
from microlend.marketing.segments import check_channel
from microlend.marketing.service.common import bulk_insert, cap_of, quiet_of, update_outbox
from microlend.marketing.sources import IN_CHUNK, marketing_consent
from microlend.marketing.tables import CampaignRow, ContactRow, OptOutRow, OutboxRow, TrackingEventRow

#: Returns the ids among `customer_ids` that consent to marketing now (tenant given).
ConsentCheck = Callable[[UnitOfWork, Principal, Sequence[int]], set[int]]


def customers_table_consent(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> set[int]:
    """Default consent check: the customers' marketing_consent flag (营销授权), see `sources`."""
    return marketing_consent(uow, who, customer_ids)


# --- opt-outs ---------------------------------------------------------------------------------------------


def record_opt_out(uow: UnitOfWork, who: Principal, customer_id: int, channel: str, *, at: datetime) -> None:
    """The customer asked not to be contacted on `channel` (e.g. replied T to an SMS); idempotent."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    check_channel(channel)
    with uow:
        s = uow.session
        exists = s.execute(select(OptOutRow.id).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == customer_id,
            OptOutRow.channel == channel)).first()
        if exists is None:
            s.add(OptOutRow(tenant_id=who.tenant_id, customer_id=customer_id, channel=channel, opted_out_at=at))
            s.flush()
            audit.record(s, who, "marketing.opt_out", "customer", customer_id, after={"channel": channel})
        uow.commit()


def remove_opt_out(uow: UnitOfWork, who: Principal, customer_id: int, channel: str) -> None:
    who.require(Permission.MANAGE_CAMPAIGNS)
    with uow:
        s = uow.session
        row = s.execute(select(OptOutRow).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == customer_id,
            OptOutRow.channel == channel)).scalar_one_or_none()
        if row is not None:
            s.delete(row)
            audit.record(s, who, "marketing.opt_in", "customer", customer_id, before={"channel": channel})
        uow.commit()


# --- dispatch ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DispatchSummary:
    sent: int
    suppressed: dict[str, int]
    failed: int
    deferred: int = 0  # due, but now is in quiet hours: moved to the next allowed time


def outbox_waiting(uow: UnitOfWork, who: Principal) -> dict[int, int]:
    """Messages still scheduled in the outbox, per campaign."""
    who.require(Permission.VIEW_CAMPAIGNS)
    with uow:
        return {int(c): int(n) for c, n in uow.session.execute(
            select(OutboxRow.campaign_id, func.count()).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.status == "scheduled")
            .group_by(OutboxRow.campaign_id)).all()}


def dispatch_outbox(
    uow: UnitOfWork, who: Principal, *, now: datetime, sender: Sender | None = None,
    consent: ConsentCheck = customers_table_consent, batch_size: int = 5_000, limit: int | None = None,
) -> DispatchSummary:
    """Hand due messages to the sender in batches, each in its own transaction. Consent, opt-outs and the
    frequency cap are checked again now: a message that no longer may go is suppressed, with the reason."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    with metrics.timed_job(metrics.MARKETING_DISPATCH, expected=(DomainError,)):
        summary = _dispatch(uow, who, now, sender or LogSender(), consent, batch_size, limit)
    metrics.job_failed(metrics.MARKETING_DISPATCH, summary.failed)  # messages the sender did not accept
    return summary


def _dispatch(uow: UnitOfWork, who: Principal, now: datetime, sender: Sender, consent: ConsentCheck,
              batch_size: int, limit: int | None) -> DispatchSummary:
    sent = failed = deferred = 0
    suppressed: dict[str, int] = defaultdict(int)
    last_id = 0
    while limit is None or sent + failed + deferred + sum(suppressed.values()) < limit:
        with uow:
            s = uow.session
            due = s.execute(select(OutboxRow.id, OutboxRow.campaign_id, OutboxRow.customer_id, OutboxRow.channel,
                                   OutboxRow.locale, OutboxRow.body).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.status == "scheduled",
                OutboxRow.scheduled_at <= now, OutboxRow.id > last_id).order_by(OutboxRow.id).limit(batch_size)).all()
            if not due:
                break
            last_id = due[-1][0]
            outcome = _dispatch_batch(uow, who, due, now, sender, consent)
            audit.record(s, who, "outbox.dispatch", "marketing_outbox", f"{due[0][0]}-{last_id}", after={
                "sender": sender.name, "sent": outcome.sent, "failed": outcome.failed,
                "suppressed": outcome.suppressed, "deferred": outcome.deferred})
            sent += outcome.sent
            failed += outcome.failed
            deferred += outcome.deferred
            for k, v in outcome.suppressed.items():
                suppressed[k] += v
            uow.commit()
    return DispatchSummary(sent, dict(suppressed), failed, deferred)


def _contact_history(s: Session, tenant: int, customer_ids: list[int], since: datetime
                     ) -> tuple[set[tuple[int, str]], dict[int, list[datetime]]]:
    """These customers' opt-outs (customer, channel) and their contacts since `since`."""
    opted: set[tuple[int, str]] = set()
    contacts: dict[int, list[datetime]] = defaultdict(list)
    for start in range(0, len(customer_ids), IN_CHUNK):
        chunk = customer_ids[start:start + IN_CHUNK]
        opted.update((int(c), ch) for c, ch in s.execute(select(OptOutRow.customer_id, OptOutRow.channel).where(
            OptOutRow.tenant_id == tenant, OptOutRow.customer_id.in_(chunk))).all())
        for c, t in s.execute(select(ContactRow.customer_id, ContactRow.contacted_at).where(
                ContactRow.tenant_id == tenant, ContactRow.customer_id.in_(chunk),
                ContactRow.contacted_at >= since)).all():
            contacts[int(c)].append(t)
    return opted, contacts


def suppression_reason(customer: int, channel: str, *, consenting: set[int], opted: set[tuple[int, str]],
                       contacts: Sequence[datetime], window_start: datetime, now: datetime,
                       max_messages: int) -> str | None:
    """Why a due message may no longer go (no consent, opted out, frequency cap reached), or None."""
    if customer not in consenting:
        return "no_consent"
    if (customer, channel) in opted:
        return "opted_out"
    if sum(1 for t in contacts if window_start <= t <= now) >= max_messages:
        return "frequency_cap"
    return None


def _dispatch_batch(uow: UnitOfWork, who: Principal, due: Sequence[Any], now: datetime, sender: Sender,
                    consent: ConsentCheck) -> DispatchSummary:
    s, tenant = uow.session, who.tenant_id
    campaigns = {r.id: r for r in s.execute(select(CampaignRow).where(
        CampaignRow.id.in_({d[1] for d in due}))).scalars()}
    customer_ids = sorted({int(d[2]) for d in due})
    consenting = consent(uow, who, customer_ids)
    longest = max(c.cap_window_days for c in campaigns.values())
    opted, contacts = _contact_history(s, tenant, customer_ids, now - timedelta(days=longest))
    go: list[OutgoingMessage] = []
    updates: list[dict[str, Any]] = []
    suppressed: dict[str, int] = defaultdict(int)
    deferred = 0
    for mid, cid, customer, channel, locale, body in due:
        camp = campaigns[cid]
        allowed = quiet_of(camp).next_allowed(now, channel)
        if allowed > now:  # a backlog sent late must still not wake anyone up
            deferred += 1
            updates.append({"id": mid, "scheduled_at": allowed})
            continue
        cap = cap_of(camp)
        reason = suppression_reason(customer, channel, consenting=consenting, opted=opted,
                                    contacts=contacts[customer], window_start=cap.window_start(now), now=now,
                                    max_messages=cap.max_messages)
        if reason is not None:
            suppressed[reason] += 1
            updates.append({"id": mid, "status": "suppressed", "suppressed_reason": reason})
            continue
        contacts[customer].append(now)  # a second message to the same customer in this batch counts too
        go.append(OutgoingMessage(mid, cid, customer, channel, locale, body))
    delivered = _send(s, tenant, go, updates, sender, now)
    return DispatchSummary(len(delivered), dict(suppressed), len(go) - len(delivered), deferred)


def _send(s: Session, tenant: int, go: list[OutgoingMessage], updates: list[dict[str, Any]], sender: Sender,
          now: datetime) -> list[OutgoingMessage]:
    """Hand the messages to the sender, store every status change, and record the delivered as contacts."""
    accepted: set[int] = set()
    if go:
        with metrics.provider_call(f"sender:{sender.name}"):
            accepted = sender.send(go)
    for m in go:
        if m.message_id in accepted:
            updates.append({"id": m.message_id, "status": "sent", "sent_at": now, "sender": sender.name})
        else:
            updates.append({"id": m.message_id, "status": "failed", "sender": sender.name})
    if updates:
        update_outbox(s, updates)
    delivered = [m for m in go if m.message_id in accepted]
    if delivered:
        bulk_insert(s, ContactRow, [{"tenant_id": tenant, "customer_id": m.customer_id, "campaign_id": m.campaign_id,
                                     "channel": m.channel, "contacted_at": now} for m in delivered])
        bulk_insert(s, TrackingEventRow, [{"tenant_id": tenant, "customer_id": m.customer_id,
                                           "campaign_id": m.campaign_id, "kind": "sent", "at": now}
                                          for m in delivered])
    return delivered
