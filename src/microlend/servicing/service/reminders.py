"""Repayment reminders (还款提醒), the use cases: queue a business date's reminders for the whole book in a few
set-based statements (days before a due date, the due day, overdue notices), queue a receipt after each
repayment (on `RepaymentPosted`), and send what is due through the customers' SMS port outside quiet hours.
A borrower who opted out is not queued, and a message whose borrower opted out since is suppressed.
Queueing is idempotent: one message per loan, kind, date, day count and repayment."""

from __future__ import annotations

import time as timer
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from decimal import Decimal
from typing import Any, cast

from sqlalchemy import Table, exists, func, literal, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.db import UTCDateTime, is_postgres
from microlend.core.errors import NotFound
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.parties import queries as parties
from microlend.parties import sms
from microlend.servicing.events import RepaymentPosted
from microlend.servicing.reminder_tables import ReminderOptOutRow, ReminderRow, ReminderSettingsRow
from microlend.servicing.reminders import (
    BEFORE_DUE,
    DUE_DAY,
    OVERDUE,
    RECEIPT,
    SMS,
    ReminderSettings,
    render,
)
from microlend.servicing.tables import InstallmentRow, LoanRow

QUEUED, SENT, SUPPRESSED, FAILED = "queued", "sent", "suppressed", "failed"
_R = cast(Table, ReminderRow.__table__)


# --- settings ------------------------------------------------------------------------------------------------


def settings_of(session: Session, tenant_id: int) -> ReminderSettings:
    row = session.get(ReminderSettingsRow, tenant_id)
    if row is None:
        return ReminderSettings()
    return ReminderSettings(tuple(row.days_before), tuple(row.overdue_days), time.fromisoformat(row.quiet_start),
                            time.fromisoformat(row.quiet_end), row.timezone, dict(row.templates or {}))


def reminder_settings(uow: UnitOfWork, who: Principal) -> ReminderSettings:
    who.require(Permission.VIEW_LOANS)
    with uow.read_only():
        return settings_of(uow.session, who.tenant_id)


def set_reminder_settings(uow: UnitOfWork, who: Principal, settings: ReminderSettings) -> ReminderSettings:
    """The bank's reminder rules and wording (validated when `settings` was made), with an audit record."""
    who.require(Permission.MANAGE_PRODUCTS)
    with uow:
        s = uow.session
        before = settings_of(s, who.tenant_id).facts()
        row = s.get(ReminderSettingsRow, who.tenant_id)
        if row is None:
            row = ReminderSettingsRow(tenant_id=who.tenant_id)
            s.add(row)
        f = settings.facts()
        row.days_before, row.overdue_days = f["days_before"], f["overdue_days"]
        row.quiet_start, row.quiet_end, row.timezone = f["quiet_start"], f["quiet_end"], f["timezone"]
        row.templates, row.updated_by, row.updated_at = f["templates"], who.username, utcnow()
        audit.record(s, who, "reminders.settings", "reminder_settings", who.tenant_id, before=before, after=f)
        uow.commit()
    return settings


# --- opt-outs ------------------------------------------------------------------------------------------------


def opt_out(uow: UnitOfWork, who: Principal, customer_id: int, *, at: datetime | None = None) -> None:
    """The borrower asked for no reminders by text (e.g. replied T); idempotent."""
    who.require(Permission.POST_REPAYMENT)
    if not parties.of_this_bank(uow, who, [customer_id]):
        raise NotFound(f"customer {customer_id} not found", field="customer_id")
    with uow:
        s = uow.session
        have = s.execute(select(ReminderOptOutRow.id).where(
            ReminderOptOutRow.tenant_id == who.tenant_id, ReminderOptOutRow.customer_id == customer_id,
            ReminderOptOutRow.channel == SMS)).first()
        if have is None:
            s.add(ReminderOptOutRow(tenant_id=who.tenant_id, customer_id=customer_id, channel=SMS,
                                    opted_out_at=at or utcnow()))
            audit.record(s, who, "reminders.opt_out", "customer", customer_id, after={"channel": SMS})
        uow.commit()


def opt_in(uow: UnitOfWork, who: Principal, customer_id: int) -> None:
    who.require(Permission.POST_REPAYMENT)
    with uow:
        s = uow.session
        row = s.execute(select(ReminderOptOutRow).where(
            ReminderOptOutRow.tenant_id == who.tenant_id, ReminderOptOutRow.customer_id == customer_id,
            ReminderOptOutRow.channel == SMS)).scalar_one_or_none()
        if row is not None:
            s.delete(row)
            audit.record(s, who, "reminders.opt_in", "customer", customer_id, before={"channel": SMS})
        uow.commit()


def _not_opted_out(tenant_id: int, customer: Any) -> Any:
    return ~exists().where(ReminderOptOutRow.tenant_id == tenant_id, ReminderOptOutRow.customer_id == customer,
                           ReminderOptOutRow.channel == SMS)


# --- queueing ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class QueuedReminders:
    """What one business date's queueing added (already queued messages are not counted again)."""

    business_date: date
    before_due: int
    due_day: int
    overdue: int
    scheduled_at: datetime
    seconds: float

    @property
    def total(self) -> int:
        return self.before_due + self.due_day + self.overdue

    def facts(self) -> dict[str, Any]:
        return {"business_date": self.business_date.isoformat(), "before_due": self.before_due,
                "due_day": self.due_day, "overdue": self.overdue, "scheduled_at": self.scheduled_at.isoformat(),
                "seconds": round(self.seconds, 3)}


def _insert(session: Session) -> Any:
    return (postgresql.insert(_R) if is_postgres(session) else sqlite.insert(_R))


_COLUMNS = ["tenant_id", "loan_id", "customer_id", "kind", "ref_date", "days", "ref_id", "amount", "locale",
            "status", "scheduled_at", "created_at"]


def _queue(session: Session, rows: Any) -> int:
    """Insert the selected messages, skipping those queued already; how many were added. (PostgreSQL reports
    no row count for INSERT ... SELECT through this driver: the inserted rows are counted in the statement.)"""
    stmt = _insert(session).from_select(_COLUMNS, rows).on_conflict_do_nothing()
    if is_postgres(session):
        added = stmt.returning(_R.c.id).cte("added")
        return int(session.execute(select(func.count()).select_from(added)).scalar_one())
    return int(session.connection().execute(stmt).rowcount or 0)


def _installments_due(session: Session, tenant_id: int, kind: str, due: date, days: int, locale: str,
                      at: datetime, now: datetime) -> int:
    """Queue one message per active loan with an unpaid installment due on `due`, for what is left of it."""
    i, loan = InstallmentRow, LoanRow
    left = func.sum(i.principal + i.interest + i.fee - i.principal_paid - i.interest_paid - i.fee_paid)
    rows = (
        select(i.tenant_id, i.loan_id, loan.customer_id, literal(kind), literal(due), literal(days), literal(0),
               left, literal(locale), literal(QUEUED), literal(at, UTCDateTime()), literal(now, UTCDateTime()))
        .select_from(i).join(loan, loan.id == i.loan_id)
        .where(i.tenant_id == tenant_id, i.status == "pending", i.due_day == due.toordinal(),
               loan.status == "active", loan.customer_id.is_not(None), _not_opted_out(tenant_id, loan.customer_id))
        .group_by(i.tenant_id, i.loan_id, loan.customer_id)
    )
    return _queue(session, rows)


def _overdue(session: Session, tenant_id: int, on: date, days_list: Sequence[int], locale: str, at: datetime,
             now: datetime) -> int:
    """Queue an overdue notice for every active loan whose days past due is one of `days_list`, for what is
    overdue on it (unpaid overdue installments and unpaid penalty interest)."""
    if not days_list:
        return 0
    i, loan = InstallmentRow, LoanRow
    unpaid = (select(func.coalesce(func.sum(i.principal + i.interest + i.fee - i.principal_paid - i.interest_paid
                                            - i.fee_paid), 0))
              .where(i.loan_id == loan.id, i.status == "overdue").scalar_subquery())
    rows = (
        select(loan.tenant_id, loan.id, loan.customer_id, literal(OVERDUE), literal(on), loan.days_past_due,
               literal(0), (unpaid + loan.penalty_accrued - loan.penalty_paid).label("amount"), literal(locale),
               literal(QUEUED), literal(at, UTCDateTime()), literal(now, UTCDateTime()))
        .where(loan.tenant_id == tenant_id, loan.status == "active", loan.days_past_due.in_(list(days_list)),
               loan.customer_id.is_not(None), _not_opted_out(tenant_id, loan.customer_id))
    )
    return _queue(session, rows)


def queue_reminders(uow: UnitOfWork, who: Principal, on: date, *, now: datetime | None = None) -> QueuedReminders:
    """Queue business date `on`'s reminders for the whole book in one transaction: installments due in each
    of the bank's days before, those due on `on`, and overdue notices; each to go at the first moment outside
    the quiet hours. Running it again for the same date adds nothing."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    now = now or utcnow()
    started = timer.perf_counter()
    with uow:
        s = uow.session
        tenant = s.get(TenantRow, who.tenant_id)
        if tenant is None:
            raise NotFound(f"tenant {who.tenant_id} not found")
        settings = settings_of(s, who.tenant_id)
        at = settings.next_allowed(now)
        locale = tenant.locale
        before = sum(_installments_due(s, who.tenant_id, BEFORE_DUE, on + timedelta(days=d), d, locale, at, now)
                     for d in settings.days_before)
        due = _installments_due(s, who.tenant_id, DUE_DAY, on, 0, locale, at, now)
        overdue = _overdue(s, who.tenant_id, on, settings.overdue_days, locale, at, now)
        result = QueuedReminders(on, before, due, overdue, at, timer.perf_counter() - started)
        audit.record(s, who, "reminders.queue", "business_date", on.isoformat(), after=result.facts())
        uow.commit()
    return result


def queue_receipt(uow: UnitOfWork, event: RepaymentPosted) -> None:
    """After a repayment: a receipt to the borrower (once per repayment), unless they opted out."""
    if event.customer_id is None:
        return
    s = uow.session
    opted = s.execute(select(ReminderOptOutRow.id).where(
        ReminderOptOutRow.tenant_id == event.tenant_id, ReminderOptOutRow.customer_id == event.customer_id,
        ReminderOptOutRow.channel == SMS)).first()
    if opted is not None:
        return
    tenant = s.get(TenantRow, event.tenant_id)
    if tenant is None:
        return
    now = utcnow()
    at = settings_of(s, event.tenant_id).next_allowed(now)
    s.execute(_insert(s).values(
        tenant_id=event.tenant_id, loan_id=event.loan_id, customer_id=event.customer_id, kind=RECEIPT,
        ref_date=event.value_date, days=0, ref_id=event.repayment_id,
        amount=Decimal(event.amount), locale=tenant.locale, status=QUEUED, scheduled_at=at, created_at=now,
    ).on_conflict_do_nothing())


# --- sending -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentReminders:
    sent: int
    suppressed: int
    deferred: int
    failed: int

    def facts(self) -> dict[str, int]:
        return {"sent": self.sent, "suppressed": self.suppressed, "deferred": self.deferred, "failed": self.failed}


def dispatch_reminders(uow: UnitOfWork, who: Principal, *, now: datetime | None = None, batch_size: int = 500,
                       limit: int | None = None) -> SentReminders:
    """Send queued reminders whose time has come, in batches (each its own transaction). During quiet hours
    nothing goes: what is due moves to their end. A borrower who opted out since is suppressed."""
    who.require(Permission.RUN_CLOSE_OF_BUSINESS)
    now = now or utcnow()
    sent = suppressed = deferred = failed = 0
    last_id = 0
    while limit is None or sent + suppressed + failed < limit:
        with uow:
            s = uow.session
            settings = settings_of(s, who.tenant_id)
            if settings.quiet(now):
                deferred += s.connection().execute(
                    update(_R).where(_R.c.tenant_id == who.tenant_id, _R.c.status == QUEUED, _R.c.scheduled_at <= now)
                    .values(scheduled_at=settings.next_allowed(now))
                ).rowcount or 0
                uow.commit()
                break
            rows = s.execute(select(ReminderRow).where(
                ReminderRow.tenant_id == who.tenant_id, ReminderRow.status == QUEUED, ReminderRow.scheduled_at <= now,
                ReminderRow.id > last_id).order_by(ReminderRow.id).limit(batch_size)).scalars().all()
            if not rows:
                break
            last_id = rows[-1].id
            tenant = s.get(TenantRow, who.tenant_id)
            bank = tenant.display_name if tenant is not None else ""
            opted = set(s.execute(select(ReminderOptOutRow.customer_id).where(
                ReminderOptOutRow.tenant_id == who.tenant_id, ReminderOptOutRow.channel == SMS,
                ReminderOptOutRow.customer_id.in_({r.customer_id for r in rows}))).scalars())
            go = []
            for r in rows:
                if r.customer_id in opted:
                    r.status, r.reason = SUPPRESSED, "opted_out"
                    suppressed += 1
                    continue
                r.body = render(settings, r.kind, r.locale, bank=bank, loan_id=r.loan_id, amount=r.amount,
                                ref_date=r.ref_date, days=r.days)
                go.append(r)
            ids = sms.text_customers(uow, who, [(r.customer_id, r.body or "") for r in go], at=now)
            for r, message_id in zip(go, ids, strict=True):
                if message_id is None:
                    r.status, r.reason = FAILED, "not_accepted"
                    failed += 1
                else:
                    r.status, r.sent_at, r.message_id = SENT, now, message_id
                    sent += 1
            audit.record(s, who, "reminders.send", "reminder_outbox", f"{rows[0].id}-{last_id}",
                         after={"sender": sms.sender_name(uow, who.tenant_id),
                                "sent": sum(r.status == SENT for r in go), "suppressed": len(rows) - len(go)})
            uow.commit()
    return SentReminders(sent, suppressed, deferred, failed)


# --- reading -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ReminderView:
    id: int
    loan_id: int
    customer_id: int
    kind: str
    ref_date: date
    days: int
    amount: Decimal
    status: str
    reason: str | None
    scheduled_at: datetime
    sent_at: datetime | None
    body: str | None


def list_reminders(uow: UnitOfWork, who: Principal, *, loan_id: int | None = None, status: str | None = None,
                   limit: int = 100) -> list[ReminderView]:
    """The bank's reminders, newest first (of one loan, of one status)."""
    who.require(Permission.VIEW_LOANS)
    with uow.read_only():
        q = select(ReminderRow).where(ReminderRow.tenant_id == who.tenant_id)
        if loan_id is not None:
            q = q.where(ReminderRow.loan_id == loan_id)
        if status is not None:
            q = q.where(ReminderRow.status == status)
        return [ReminderView(r.id, r.loan_id, r.customer_id, r.kind, r.ref_date, r.days, r.amount, r.status,
                             r.reason, r.scheduled_at, r.sent_at, r.body)
                for r in uow.session.execute(q.order_by(ReminderRow.id.desc()).limit(limit)).scalars()]


def counts(uow: UnitOfWork, who: Principal) -> dict[str, int]:
    """How many reminders are queued, sent, suppressed and failed."""
    who.require(Permission.VIEW_LOANS)
    with uow.read_only():
        found = dict(uow.session.execute(select(ReminderRow.status, func.count()).where(
            ReminderRow.tenant_id == who.tenant_id).group_by(ReminderRow.status)).all())
    return {k: int(found.get(k, 0)) for k in (QUEUED, SENT, SUPPRESSED, FAILED)}


def system(tenant_id: int) -> Principal:
    return system_principal(tenant_id, "reminders")


__all__ = ["QueuedReminders", "ReminderView", "SentReminders", "counts", "dispatch_reminders", "list_reminders",
           "opt_in", "opt_out", "queue_receipt", "queue_reminders", "reminder_settings", "set_reminder_settings",
           "settings_of"]
