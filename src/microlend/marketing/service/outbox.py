"""The outbox of messages (待发消息) and who may be contacted: dispatch due messages through a sender with
consent, opt-outs, the campaign's frequency cap and the bank's contact policy (its cap over every campaign
and channel, global holdout, other campaigns' control groups, quiet hours, the campaign's end) checked
again at send time; a message that may not go keeps the reason. A sender that reports per message (the
HTTP gateway) gets a message refused for a passing cause tried again later, waiting longer each time,
until `MAX_ATTEMPTS`; then it is failed. Record and remove opt-outs."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, select, update
from sqlalchemy.orm import Session

from microlend.core import audit, metrics
from microlend.core.delivery import MAX_ATTEMPTS, SendResult, retry_at
from microlend.core.errors import DomainError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing.campaigns import LogSender, OutgoingMessage, Sender
from microlend.marketing.contact_policy import ContactPolicy, contact_reason, earliest_send
from microlend.marketing.segments import check_channel
from microlend.marketing.service.common import (
    bulk_insert,
    cap_of,
    control_windows,
    policy_of,
    quiet_of,
    update_outbox,
)
from microlend.marketing.sources import IN_CHUNK, marketing_consent
from microlend.marketing.tables import CampaignRow, ContactRow, OptOutRow, OutboxRow, TrackingEventRow

#: Returns the ids among `customer_ids` that consent to marketing now (tenant given).
ConsentCheck = Callable[[UnitOfWork, Principal, Sequence[int]], set[int]]


def customers_table_consent(uow: UnitOfWork, who: Principal, customer_ids: Sequence[int]) -> set[int]:
    """Default consent check: the customers' marketing_consent flag (营销授权), see `sources`."""
    return marketing_consent(uow, who, customer_ids)


# --- opt-outs ---------------------------------------------------------------------------------------------


def record_opt_out(uow: UnitOfWork, who: Principal, customer_id: int, channel: str | Sequence[str], *,
                   at: datetime) -> None:
    """The customer asked not to be contacted on `channel` (or on each of several, e.g. every marketing
    channel after replying T to any message); idempotent."""
    who.require(Permission.MANAGE_CAMPAIGNS)
    channels = [channel] if isinstance(channel, str) else list(channel)
    for c in channels:
        check_channel(c)
    with uow:
        s = uow.session
        have = set(s.execute(select(OptOutRow.channel).where(
            OptOutRow.tenant_id == who.tenant_id, OptOutRow.customer_id == customer_id)).scalars())
        new = [c for c in channels if c not in have]
        for c in new:
            s.add(OptOutRow(tenant_id=who.tenant_id, customer_id=customer_id, channel=c, opted_out_at=at))
        if new:
            s.flush()
            audit.record(s, who, "marketing.opt_out", "customer", customer_id,
                         after={"channel": new[0] if len(new) == 1 else ",".join(new)})
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
    retrying: int = 0  # refused for a passing cause (the gateway busy or down): tried again later


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
    sent = failed = deferred = retrying = 0
    suppressed: dict[str, int] = defaultdict(int)
    last_id = 0
    while limit is None or sent + failed + deferred + retrying + sum(suppressed.values()) < limit:
        with uow:
            s = uow.session
            due = s.execute(select(OutboxRow.id, OutboxRow.campaign_id, OutboxRow.customer_id, OutboxRow.channel,
                                   OutboxRow.locale, OutboxRow.body, OutboxRow.attempts).where(
                OutboxRow.tenant_id == who.tenant_id, OutboxRow.status == "scheduled",
                OutboxRow.scheduled_at <= now, OutboxRow.id > last_id).order_by(OutboxRow.id).limit(batch_size)).all()
            if not due:
                break
            last_id = due[-1][0]
            outcome = _dispatch_batch(uow, who, due, now, sender, consent)
            audit.record(s, who, "outbox.dispatch", "marketing_outbox", f"{due[0][0]}-{last_id}", after={
                "sender": sender.name, "sent": outcome.sent, "failed": outcome.failed,
                "suppressed": outcome.suppressed, "deferred": outcome.deferred, "retrying": outcome.retrying})
            sent += outcome.sent
            failed += outcome.failed
            deferred += outcome.deferred
            retrying += outcome.retrying
            for k, v in outcome.suppressed.items():
                suppressed[k] += v
            uow.commit()
    return DispatchSummary(sent, dict(suppressed), failed, deferred, retrying)


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
    policy = policy_of(s, tenant)
    longest = max([c.cap_window_days for c in campaigns.values()] + [policy.cap_window_days])
    opted, contacts = _contact_history(s, tenant, customer_ids, now - timedelta(days=longest))
    windows = control_windows(s, tenant, customer_ids, now)
    go: list[OutgoingMessage] = []
    attempts: dict[int, int] = {}
    updates: list[dict[str, Any]] = []
    suppressed: dict[str, int] = defaultdict(int)
    deferred = 0
    for mid, cid, customer, channel, locale, body, tries in due:
        camp = campaigns[cid]
        reason = _reason(policy, tenant, camp, customer, channel, now, consenting, opted, contacts[customer],
                         windows.get(customer, []))
        if reason is not None:
            suppressed[reason] += 1
            updates.append({"id": mid, "status": "suppressed", "suppressed_reason": reason})
            continue
        allowed = earliest_send(now, channel, campaign_quiet=quiet_of(camp), policy=policy, starts_at=camp.starts_at)
        if allowed > now:  # a backlog sent late must still not wake anyone up, nor go before the start
            deferred += 1
            updates.append({"id": mid, "scheduled_at": allowed})
            continue
        contacts[customer].append(now)  # a second message to the same customer in this batch counts too
        go.append(OutgoingMessage(mid, cid, customer, channel, locale, body))
        attempts[mid] = int(tries or 0)
    delivered, retrying = _send(s, tenant, go, updates, sender, now, attempts)
    return DispatchSummary(len(delivered), dict(suppressed), len(go) - len(delivered) - retrying, deferred,
                           retrying)


def _reason(policy: ContactPolicy, tenant: int, camp: CampaignRow, customer: int, channel: str, now: datetime,
            consenting: set[int], opted: set[tuple[int, str]], contacts: list[datetime],
            windows: Sequence[Any]) -> str | None:
    cap = cap_of(camp)
    return suppression_reason(customer, channel, consenting=consenting, opted=opted, contacts=contacts,
                              window_start=cap.window_start(now), now=now, max_messages=cap.max_messages) \
        or contact_reason(policy, tenant_id=tenant, customer_id=customer, campaign_id=camp.id, ends_at=camp.ends_at,
                          now=now, contacts=contacts, control_windows=windows)


def _outcomes(sender: Sender, go: list[OutgoingMessage]) -> dict[int, SendResult]:
    """Each message's outcome: from a sender that reports per message (`deliver`), or from the set of
    accepted ids a plain sender returns (a refusal then is final)."""
    if not go:
        return {}
    with metrics.provider_call(f"sender:{sender.name}"):
        deliver = getattr(sender, "deliver", None)
        if deliver is not None:
            return dict(deliver(go))
        accepted = sender.send(go)
    return {m.message_id: SendResult(str(m.message_id), m.message_id in accepted) for m in go}


_SENT = (update(OutboxRow.__table__).where(OutboxRow.__table__.c.id == bindparam("b_id"))  # type: ignore[arg-type]
         .values(status="sent", sent_at=bindparam("b_at"), sender=bindparam("b_sender"),
                 gateway_id=bindparam("b_gid"), attempts=bindparam("b_n"), last_error=None))


def _send(s: Session, tenant: int, go: list[OutgoingMessage], updates: list[dict[str, Any]], sender: Sender,
          now: datetime, attempts: dict[int, int]) -> tuple[list[OutgoingMessage], int]:
    """Hand the messages to the sender, store every status change (a passing refusal is scheduled again
    with a growing wait, until the last attempt), and record the delivered as contacts; the delivered and
    how many wait for another try."""
    outcomes = _outcomes(sender, go)
    sent_rows: list[dict[str, Any]] = []
    retrying = 0
    for m in go:
        result = outcomes.get(m.message_id) or SendResult(str(m.message_id), False, None, True, "no outcome")
        tries = attempts.get(m.message_id, 0) + 1
        if result.accepted:
            sent_rows.append({"b_id": m.message_id, "b_at": now, "b_sender": sender.name,
                              "b_gid": result.gateway_id, "b_n": tries})
        elif result.retryable and tries < MAX_ATTEMPTS:
            retrying += 1
            updates.append({"id": m.message_id, "scheduled_at": retry_at(tries, now), "attempts": tries,
                            "last_error": result.error[:200], "sender": sender.name})
        else:
            updates.append({"id": m.message_id, "status": "failed", "sender": sender.name, "attempts": tries,
                            "last_error": (result.error or "not accepted")[:200]})
    if updates:
        update_outbox(s, updates)
    if sent_rows:
        s.connection().execute(_SENT, sent_rows)
    delivered = [m for m in go if outcomes.get(m.message_id) is not None and outcomes[m.message_id].accepted]
    if delivered:
        bulk_insert(s, ContactRow, [{"tenant_id": tenant, "customer_id": m.customer_id, "campaign_id": m.campaign_id,
                                     "channel": m.channel, "contacted_at": now} for m in delivered])
        bulk_insert(s, TrackingEventRow, [{"tenant_id": tenant, "customer_id": m.customer_id,
                                           "campaign_id": m.campaign_id, "kind": "sent", "at": now}
                                          for m in delivered])
    return delivered, retrying
