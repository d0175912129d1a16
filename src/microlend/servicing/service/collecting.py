"""Collections (催收), the use cases: a case opens when a loan becomes overdue (on `LoanBecameOverdue`), follows
its bucket (on `LoanBucketChanged`), is routed by the bank's strategy to a queue, worked by collectors (contacts
under the conduct rules, promises to pay, notes, escalation, assignment) and closes on cure or write-off.
A contact a conduct rule forbids is recorded with the rule and refused (409). Promises are found kept or
broken at a close of business (`check_promises`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import date, datetime, time
from decimal import Decimal
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.clock import utcnow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Permission, Principal, system_principal
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.parties import queries as parties
from microlend.servicing import collection_rules as rules
from microlend.servicing.collection_rules import CollectionSettings, ContactAttempt
from microlend.servicing.collection_tables import (
    CollectionActionRow,
    CollectionAttachmentRow,
    CollectionCaseRow,
    CollectionSettingsRow,
)
from microlend.servicing.events import LoanBecameOverdue, LoanBucketChanged, LoanRepaid, LoanWrittenOff
from microlend.servicing.service._common import _cents
from microlend.servicing.tables import InstallmentRow, LoanRow, RepaymentRow

P = Permission
MAX_PAGE = 500


# --- settings ------------------------------------------------------------------------------------------------


def settings_of(session: Session, tenant_id: int) -> CollectionSettings:
    row = session.get(CollectionSettingsRow, tenant_id)
    if row is None:
        return CollectionSettings()
    strategy = dict(row.strategy or {})
    routes = rules.routes_from_json(strategy["routes"]) if strategy.get("routes") else rules.DEFAULT_ROUTES
    return CollectionSettings(routes, time.fromisoformat(row.allowed_start), time.fromisoformat(row.allowed_end),
                              row.timezone, row.max_contacts_per_day, dict(row.templates or rules.DEFAULT_TEMPLATES),
                              dict(strategy.get("branch_queues") or {}))


def collection_settings(uow: UnitOfWork, who: Principal) -> CollectionSettings:
    who.require(P.COLLECT)
    with uow.read_only():
        return settings_of(uow.session, who.tenant_id)


def save_settings(uow: UnitOfWork, who: Principal, settings: CollectionSettings) -> CollectionSettings:
    """Change the bank's strategy and conduct rules (a manager's setting)."""
    who.require(P.MANAGE_PRODUCTS)
    problems = rules.settings_problems(settings)
    if problems:
        where, why = problems[0]
        raise ValidationError(f"{where}: {why}", field=where)
    try:
        from zoneinfo import ZoneInfo
        ZoneInfo(settings.timezone)
    except Exception as exc:
        raise ValidationError(f"timezone: unknown time zone '{settings.timezone}'", field="timezone") from exc
    with uow:
        row = uow.session.get(CollectionSettingsRow, who.tenant_id)
        before = settings_of(uow.session, who.tenant_id)
        values = {"strategy": settings.to_json(), "allowed_start": settings.allowed_start.strftime("%H:%M"),
                  "allowed_end": settings.allowed_end.strftime("%H:%M"), "timezone": settings.timezone,
                  "max_contacts_per_day": settings.max_contacts_per_day,
                  "templates": {k: dict(v) for k, v in settings.templates.items()}, "updated_by": who.username,
                  "updated_at": utcnow()}
        if row is None:
            uow.session.add(CollectionSettingsRow(tenant_id=who.tenant_id, **values))
        else:
            for key, value in values.items():
                setattr(row, key, value)
        audit.record(uow.session, who, "collections.settings", "tenant", who.tenant_id,
                     before=_settings_facts(before),
                     after={k: v for k, v in values.items() if k != "updated_at"})
        uow.commit()
    return settings


def _settings_facts(settings: CollectionSettings) -> dict[str, Any]:
    return {"strategy": settings.to_json(), "allowed_start": settings.allowed_start.strftime("%H:%M"),
            "allowed_end": settings.allowed_end.strftime("%H:%M"), "timezone": settings.timezone,
            "max_contacts_per_day": settings.max_contacts_per_day,
            "templates": {k: dict(v) for k, v in settings.templates.items()}}


# --- views ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class CaseView:
    id: int
    loan_id: int
    customer_id: int | None
    branch: str
    status: str
    bucket: str
    days_past_due: int
    amount_overdue: Decimal
    queue: str
    next_action: str
    assignee: str | None
    escalation: int
    registered_contacts: list[str]
    opened_on: date
    closed_on: date | None
    close_reason: str | None

    @classmethod
    def of(cls, r: CollectionCaseRow) -> CaseView:
        return cls(r.id, r.loan_id, r.customer_id, r.branch, r.status, r.bucket, r.days_past_due, r.amount_overdue,
                   r.queue, r.next_action, r.assignee, r.escalation, list(r.registered_contacts or []), r.opened_on,
                   r.closed_on, r.close_reason)


@dataclass(frozen=True)
class ActionView:
    id: int
    case_id: int
    kind: str
    channel: str | None
    party: str | None
    outcome: str | None
    template: str | None
    rule: str | None
    amount: Decimal | None
    promise_date: date | None
    promise_status: str | None
    text: str
    actor: str
    at: datetime

    @classmethod
    def of(cls, r: CollectionActionRow) -> ActionView:
        return cls(r.id, r.case_id, r.kind, r.channel, r.party, r.outcome, r.template, r.rule, r.amount,
                   r.promise_date, r.promise_status, r.text, r.actor, r.at)


@dataclass(frozen=True)
class CaseDetail:
    case: CaseView
    actions: list[ActionView]


# --- opening, following and closing by events ---------------------------------------------------------------


def _amount_overdue(session: Session, tenant_id: int, loan_id: int) -> Decimal:
    rows = session.execute(
        select(InstallmentRow.principal, InstallmentRow.principal_paid, InstallmentRow.interest,
               InstallmentRow.interest_paid, InstallmentRow.fee, InstallmentRow.fee_paid)
        .where(InstallmentRow.tenant_id == tenant_id, InstallmentRow.loan_id == loan_id,
               InstallmentRow.status == "overdue")).all()
    owed = sum((p - pp + i - ip + f - fp for p, pp, i, ip, f, fp in rows), start=Decimal(0))
    loan = session.get(LoanRow, loan_id)
    if loan is not None:
        owed += loan.penalty_accrued - loan.penalty_paid
    return owed


def _open_case(session: Session, tenant_id: int, loan_id: int) -> CollectionCaseRow | None:
    return session.execute(
        select(CollectionCaseRow).where(CollectionCaseRow.tenant_id == tenant_id, CollectionCaseRow.loan_id == loan_id,
                                        CollectionCaseRow.status == rules.OPEN).with_for_update()).scalar_one_or_none()


def _branch_and_contacts(uow: UnitOfWork, tenant_id: int, customer_id: int | None) -> tuple[str, list[str]]:
    """The borrower's branch and the names of the borrower's registered contacts (parties' profile)."""
    if customer_id is None:
        return "", []
    who = system_principal(tenant_id, "collections")
    card = parties.contact_cards(uow, who, [customer_id]).get(customer_id)
    attributes = parties.customer_attributes(uow, who, [customer_id]).get(customer_id) or {}
    contacts = attributes.get("contacts") or []
    names = [str(c.get("name") or "") if isinstance(c, dict) else str(c) for c in contacts]
    return (card.branch or "") if card else "", [n for n in names if n]


def open_or_follow(uow: UnitOfWork, tenant_id: int, loan_id: int, on: date, days_past_due: int, bucket: str) -> None:
    s = uow.session
    settings = settings_of(s, tenant_id)
    loan = s.get(LoanRow, loan_id)
    if loan is None or loan.tenant_id != tenant_id:
        return
    amount = _amount_overdue(s, tenant_id, loan_id)
    case = _open_case(s, tenant_id, loan_id)
    now = utcnow()
    who = system_principal(tenant_id, "collections")
    if case is None:
        branch, contacts = _branch_and_contacts(uow, tenant_id, loan.customer_id)
        queue, action = rules.route(settings, bucket, amount, branch)
        case = CollectionCaseRow(tenant_id=tenant_id, loan_id=loan_id, customer_id=loan.customer_id, branch=branch,
                                 status=rules.OPEN, bucket=bucket, days_past_due=days_past_due,
                                 amount_overdue=amount, queue=queue, next_action=action, assignee=None, escalation=0,
                                 registered_contacts=contacts, opened_on=on, created_at=now, updated_at=now)
        s.add(case)
        s.flush()
        audit.record(s, who, "collections.open", "collection_case", case.id,
                     after={"loan_id": loan_id, "bucket": bucket, "queue": queue, "amount_overdue": str(amount)})
        return
    before_group = rules.bucket_group(case.bucket)
    case.bucket, case.days_past_due, case.amount_overdue, case.updated_at = bucket, days_past_due, amount, now
    if rules.bucket_group(bucket) != before_group:
        case.queue, case.next_action = rules.route(settings, bucket, amount, case.branch)
        case.assignee = None  # a new bucket is a new team's work
        s.add(CollectionActionRow(tenant_id=tenant_id, case_id=case.id, kind="reroute", party=None,
                                  text=f"{before_group} -> {rules.bucket_group(bucket)}: {case.queue}",
                                  actor=who.username, at=now))
        audit.record(s, who, "collections.reroute", "collection_case", case.id,
                     before={"bucket": before_group}, after={"bucket": bucket, "queue": case.queue})


def _close(session: Session, who: Principal, case: CollectionCaseRow, on: date, reason: str, text: str = "") -> None:
    now = utcnow()
    case.status, case.closed_on, case.close_reason, case.updated_at = rules.CLOSED, on, reason, now
    case.next_action = ""
    session.add(CollectionActionRow(tenant_id=case.tenant_id, case_id=case.id, kind="close", text=text or reason,
                                    outcome=reason, actor=who.username, at=now))
    # a pending promise the borrower honoured before the case closed (the payment that cured the loan) is kept
    for promise in session.execute(select(CollectionActionRow).where(
            CollectionActionRow.tenant_id == case.tenant_id, CollectionActionRow.case_id == case.id,
            CollectionActionRow.kind == "promise", CollectionActionRow.promise_status == "pending")).scalars():
        kept = _promise_paid(session, case.tenant_id, case.loan_id, promise, on)
        promise.promise_status = "kept" if kept else "closed"
        if kept:
            audit.record(session, who, "collections.promise_kept", "collection_case", case.id,
                         after={"promise": promise.id, "amount": str(promise.amount)})
    audit.record(session, who, "collections.close", "collection_case", case.id, after={"reason": reason})


def _promise_paid(session: Session, tenant_id: int, loan_id: int, promise: CollectionActionRow, on: date) -> bool:
    """Whether the loan received the promised amount from the day of the promise through its date (as of `on`)."""
    assert promise.promise_date is not None and promise.amount is not None
    since = promise.promised_on or promise.promise_date
    paid = session.execute(select(RepaymentRow.amount).where(
        RepaymentRow.tenant_id == tenant_id, RepaymentRow.loan_id == loan_id, RepaymentRow.status == "posted",
        RepaymentRow.value_date >= since, RepaymentRow.value_date <= min(on, promise.promise_date))).scalars().all()
    return sum(paid, start=Decimal(0)) >= promise.amount


def open_case_on_overdue(uow: UnitOfWork, event: LoanBecameOverdue) -> None:
    """Handler: a loan fell overdue at a close of business — a case opens (once: a second delivery finds it)."""
    with uow:
        loan = uow.session.get(LoanRow, event.loan_id)
        bucket = loan.bucket if loan is not None and loan.bucket != "M0" else "M1"
        open_or_follow(uow, event.tenant_id, event.loan_id, event.business_date, event.days_past_due, bucket)
        uow.commit()


def follow_bucket(uow: UnitOfWork, event: LoanBucketChanged) -> None:
    """Handler: the loan moved bucket — the case follows (re-routed on a new bucket group), or closes as cured
    when the loan is current again."""
    with uow:
        if event.to_bucket == "M0":
            case = _open_case(uow.session, event.tenant_id, event.loan_id)
            if case is not None:
                _close(uow.session, system_principal(event.tenant_id, "collections"), case, event.business_date,
                       rules.CURED)
        else:
            open_or_follow(uow, event.tenant_id, event.loan_id, event.business_date, event.days_past_due,
                           event.to_bucket)
        uow.commit()


def close_on_repaid(uow: UnitOfWork, event: LoanRepaid) -> None:
    with uow:
        case = _open_case(uow.session, event.tenant_id, event.loan_id)
        if case is not None:
            _close(uow.session, system_principal(event.tenant_id, "collections"), case, event.business_date,
                   rules.CURED, "loan repaid in full")
        uow.commit()


def close_on_write_off(uow: UnitOfWork, event: LoanWrittenOff) -> None:
    with uow:
        case = _open_case(uow.session, event.tenant_id, event.loan_id)
        if case is not None:
            _close(uow.session, system_principal(event.tenant_id, "collections"), case, event.business_date,
                   rules.WRITTEN_OFF)
        uow.commit()


def open_case_early(uow: UnitOfWork, who: Principal, *, loan_id: int | None = None,
                    credit_line_id: int | None = None, reason: str) -> list[CaseView]:
    """Open a collections case before the loan falls (further) overdue, on an early-warning signal: on the
    loan, or on every active drawdown of the credit line. A loan with an open case keeps it (it is
    returned); the case is routed as an early (M1) case while the loan is current. Audited with the reason."""
    if not (who.can(P.COLLECT) or who.can(P.MANAGE_CREDIT_LINES) or who.can(P.EDIT_POLICIES)):
        raise PermissionDenied("only collections, an approver or the risk team opens a collections case early")
    reason = reason.strip()
    if not reason or len(reason) > 500:
        raise ValidationError("reason: say why the case opens early, in at most 500 characters", field="reason")
    if (loan_id is None) == (credit_line_id is None):
        raise ValidationError("loan_id: name a loan or a credit line", field="loan_id")
    with uow:
        s = uow.session
        if loan_id is not None:
            loan = s.get(LoanRow, loan_id)
            if loan is None or loan.tenant_id != who.tenant_id:
                raise NotFound(f"loan {loan_id} not found")
            loans = [loan]
        else:
            loans = list(s.execute(select(LoanRow).where(
                LoanRow.tenant_id == who.tenant_id, LoanRow.credit_line_id == credit_line_id,
                LoanRow.status == "active").order_by(LoanRow.id)).scalars())
        active = [x for x in loans if x.status == "active"]
        if not active:
            raise Conflict("collections: no active loan to open a case on", field="loan_id")
        settings = settings_of(s, who.tenant_id)
        on = s.get(TenantRow, who.tenant_id).business_date  # type: ignore[union-attr]
        cases = []
        for loan in active:
            case = _open_case(s, who.tenant_id, loan.id)
            if case is None:
                amount = _amount_overdue(s, who.tenant_id, loan.id)
                branch, contacts = _branch_and_contacts(uow, who.tenant_id, loan.customer_id)
                bucket = loan.bucket or "M0"
                queue, action = rules.route(settings, bucket if bucket != "M0" else "M1", amount, branch)
                now = utcnow()
                case = CollectionCaseRow(
                    tenant_id=who.tenant_id, loan_id=loan.id, customer_id=loan.customer_id, branch=branch,
                    status=rules.OPEN, bucket=bucket, days_past_due=loan.days_past_due or 0, amount_overdue=amount,
                    queue=queue, next_action=action, assignee=None, escalation=0, registered_contacts=contacts,
                    opened_on=on, created_at=now, updated_at=now)
                s.add(case)
                s.flush()
                s.add(CollectionActionRow(tenant_id=who.tenant_id, case_id=case.id, kind="note",
                                          text=f"opened early: {reason}", actor=who.username, at=now))
                audit.record(s, who, "collections.open_early", "collection_case", case.id,
                             after={"loan_id": loan.id, "bucket": bucket, "queue": queue, "reason": reason})
            cases.append(CaseView.of(case))
        uow.commit()
    return cases


# --- reading -------------------------------------------------------------------------------------------------


def list_cases(uow: UnitOfWork, who: Principal, *, status: str = rules.OPEN, queue: str | None = None,
               assignee: str | None = None, bucket: str | None = None, unassigned: bool = False,
               after: int | None = None, limit: int = 50, offset: int = 0) -> list[CaseView]:
    """A queue page: cases of the caller's bank in the order they opened; `after` pages by the last id seen
    (cheap at any depth), `offset` by position."""
    who.require(P.COLLECT)
    limit = max(1, min(limit, MAX_PAGE))
    q = select(CollectionCaseRow).where(CollectionCaseRow.tenant_id == who.tenant_id,
                                        CollectionCaseRow.status == status)
    if queue is not None:
        q = q.where(CollectionCaseRow.queue == queue)
    if assignee is not None:
        q = q.where(CollectionCaseRow.assignee == assignee)
    if bucket is not None:
        q = q.where(CollectionCaseRow.bucket == bucket)
    if unassigned:
        q = q.where(CollectionCaseRow.assignee.is_(None))
    if after is not None:
        q = q.where(CollectionCaseRow.id > after)
    with uow.read_only():
        rows = uow.session.execute(q.order_by(CollectionCaseRow.id).limit(limit).offset(offset)).scalars().all()
        return [CaseView.of(r) for r in rows]


def count_cases(uow: UnitOfWork, who: Principal, *, status: str = rules.OPEN) -> int:
    who.require(P.COLLECT)
    with uow.read_only():
        return int(uow.session.execute(select(func.count()).select_from(CollectionCaseRow).where(
            CollectionCaseRow.tenant_id == who.tenant_id, CollectionCaseRow.status == status)).scalar_one())


def _case(session: Session, who: Principal, case_id: int, *, lock: bool = False) -> CollectionCaseRow:
    q = select(CollectionCaseRow).where(CollectionCaseRow.tenant_id == who.tenant_id, CollectionCaseRow.id == case_id)
    row = session.execute(q.with_for_update() if lock else q).scalar_one_or_none()
    if row is None:
        raise NotFound(f"collection case {case_id} not found")
    return row


def get_case(uow: UnitOfWork, who: Principal, case_id: int) -> CaseDetail:
    who.require(P.COLLECT)
    with uow.read_only():
        case = _case(uow.session, who, case_id)
        actions = uow.session.execute(select(CollectionActionRow).where(
            CollectionActionRow.tenant_id == who.tenant_id, CollectionActionRow.case_id == case_id)
            .order_by(CollectionActionRow.id)).scalars().all()
        return CaseDetail(CaseView.of(case), [ActionView.of(a) for a in actions])


# --- working a case ------------------------------------------------------------------------------------------


def _working(session: Session, who: Principal, case_id: int) -> CollectionCaseRow:
    case = _case(session, who, case_id, lock=True)
    if case.status != rules.OPEN:
        raise Conflict(f"collection case {case_id} is closed ({case.close_reason})")
    return case


def log_contact(uow: UnitOfWork, who: Principal, case_id: int, *, channel: str, party: str, outcome: str,
                template: str | None = None, note: str = "") -> ActionView:
    """Record a contact with the borrower or a registered contact. The conduct rules are checked first: a
    forbidden contact is recorded (kind `blocked`, with the rule) and refused with the rule's name (409)."""
    who.require(P.COLLECT)
    if channel not in rules.CHANNELS:
        raise ValidationError(f"channel: one of {', '.join(rules.CHANNELS)}", field="channel")
    if outcome not in rules.OUTCOMES:
        raise ValidationError(f"outcome: one of {', '.join(rules.OUTCOMES)}", field="outcome")
    if not party.strip() or len(party) > 100:
        raise ValidationError("party: the borrower or a registered contact's name", field="party")
    now = utcnow()
    refused: tuple[str, str] | None = None
    with uow:
        s = uow.session
        case = _working(s, who, case_id)
        settings = settings_of(s, who.tenant_id)
        start, end = rules.local_day(settings, now)
        today = int(s.execute(select(func.count()).select_from(CollectionActionRow).where(
            CollectionActionRow.tenant_id == who.tenant_id, CollectionActionRow.case_id == case_id,
            CollectionActionRow.kind == "contact", CollectionActionRow.at >= start,
            CollectionActionRow.at <= end)).scalar_one())
        refused = rules.conduct_violation(settings, ContactAttempt(channel, party, now, template),
                                          contacts_today=today, registered=list(case.registered_contacts or []))
        row = CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="blocked" if refused else "contact",
                                  channel=channel, party=party, outcome=None if refused else outcome,
                                  template=template, rule=refused[0] if refused else None,
                                  text=refused[1] if refused else note[:2000], actor=who.username, at=now)
        s.add(row)
        if refused is None:
            case.updated_at = now
        s.flush()
        audit.record(s, who, "collections.blocked" if refused else "collections.contact", "collection_case", case_id,
                     after={"channel": channel, "outcome": outcome, "rule": refused[0] if refused else None})
        view = ActionView.of(row)
        uow.commit()
    if refused is not None:
        raise Conflict(f"conduct rule '{refused[0]}': {refused[1]}", field=refused[0])
    return view


def record_promise(uow: UnitOfWork, who: Principal, case_id: int, *, amount: Any, promise_date: date,
                   note: str = "") -> ActionView:
    """A promise to pay (承诺还款) an amount by a date, found kept or broken at a close of business."""
    who.require(P.COLLECT)
    value = _cents(amount, "amount")
    with uow:
        s = uow.session
        case = _working(s, who, case_id)
        tenant = s.get(TenantRow, who.tenant_id)
        today = tenant.business_date if tenant is not None else promise_date
        if promise_date < today:
            raise ValidationError(f"promise_date: not before the business date {today}", field="promise_date")
        if (promise_date - today).days > 90:
            raise ValidationError("promise_date: at most 90 days ahead", field="promise_date")
        now = utcnow()
        row = CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="promise", amount=value,
                                  promise_date=promise_date, promise_status="pending", promised_on=today,
                                  text=note[:2000], actor=who.username, at=now)
        s.add(row)
        case.next_action, case.updated_at = "promise_follow_up", now
        s.flush()
        audit.record(s, who, "collections.promise", "collection_case", case_id,
                     after={"amount": str(value), "promise_date": promise_date.isoformat()})
        view = ActionView.of(row)
        uow.commit()
    return view


def add_note(uow: UnitOfWork, who: Principal, case_id: int, text: str) -> ActionView:
    who.require(P.COLLECT)
    if not text.strip() or len(text) > 2000:
        raise ValidationError("text: 1 to 2000 characters", field="text")
    with uow:
        _working(uow.session, who, case_id)
        row = CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="note", text=text,
                                  actor=who.username, at=utcnow())
        uow.session.add(row)
        uow.session.flush()
        audit.record(uow.session, who, "collections.note", "collection_case", case_id, after={"note": row.id})
        view = ActionView.of(row)
        uow.commit()
    return view


def assign(uow: UnitOfWork, who: Principal, case_id: int, assignee: str) -> CaseView:
    """Put a case in a collector's queue (a collector may take an unassigned case for themself)."""
    who.require(P.COLLECT)
    from microlend.core.tables import UserRow

    with uow:
        s = uow.session
        case = _working(s, who, case_id)
        user = s.execute(select(UserRow).where(UserRow.tenant_id == who.tenant_id,
                                               UserRow.username == assignee)).scalar_one_or_none()
        if user is None:
            raise ValidationError(f"assignee: no user '{assignee}' in this bank", field="assignee")
        if not who.can(P.MANAGE_PRODUCTS) and not (assignee == who.username and case.assignee is None):
            raise Conflict("a collector may only take an unassigned case; a manager assigns others")
        before = case.assignee
        case.assignee, case.updated_at = assignee, utcnow()
        s.add(CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="assign", party=assignee,
                                  text=f"{before or '-'} -> {assignee}", actor=who.username, at=case.updated_at))
        audit.record(s, who, "collections.assign", "collection_case", case_id, before={"assignee": before},
                     after={"assignee": assignee})
        view = CaseView.of(case)
        uow.commit()
    return view


def escalate(uow: UnitOfWork, who: Principal, case_id: int, reason: str) -> CaseView:
    """Move the case to the next action of its strategy (after the last: legal)."""
    who.require(P.COLLECT)
    if not reason.strip():
        raise ValidationError("reason: required", field="reason")
    with uow:
        s = uow.session
        case = _working(s, who, case_id)
        settings = settings_of(s, who.tenant_id)
        group = rules.bucket_group(case.bucket)
        chosen = next((r for r in settings.routes if r.bucket == group), settings.routes[-1])
        case.escalation += 1
        actions = chosen.actions
        case.next_action = actions[min(case.escalation, len(actions) - 1)] if case.escalation < len(actions) \
            else "legal"
        case.updated_at = utcnow()
        s.add(CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="escalation", text=reason[:2000],
                                  outcome=case.next_action, actor=who.username, at=case.updated_at))
        audit.record(s, who, "collections.escalate", "collection_case", case_id,
                     after={"next_action": case.next_action, "reason": reason})
        view = CaseView.of(case)
        uow.commit()
    return view


def close_case(uow: UnitOfWork, who: Principal, case_id: int, reason: str) -> CaseView:
    """Close by hand: cured when the loan is current or repaid, written off when it is written off."""
    who.require(P.COLLECT)
    if reason not in (rules.CURED, rules.WRITTEN_OFF):
        raise ValidationError("reason: cured or written_off", field="reason")
    with uow:
        s = uow.session
        case = _working(s, who, case_id)
        loan = s.get(LoanRow, case.loan_id)
        cured = loan is not None and (loan.days_past_due == 0 or loan.status == "closed")
        written_off = loan is not None and loan.status == "written_off"
        if (reason == rules.CURED and not cured) or (reason == rules.WRITTEN_OFF and not written_off):
            raise Conflict(f"the loan is not {reason.replace('_', ' ')} (days past due "
                           f"{loan.days_past_due if loan else '-'}, status {loan.status if loan else '-'})")
        tenant = s.get(TenantRow, who.tenant_id)
        _close(s, who, case, tenant.business_date if tenant else case.opened_on, reason)
        view = CaseView.of(case)
        uow.commit()
    return view


# --- attachments ---------------------------------------------------------------------------------------------

#: What a collector may attach from the phone: a photo (JPEG, PNG) or a PDF, recognised by its first bytes (the
#: type the browser claims is not trusted), at most `MAX_ATTACHMENT_BYTES`, and at most `MAX_ATTACHMENTS` a case.
ATTACHMENT_TYPES = {b"\xff\xd8\xff": "image/jpeg", b"\x89PNG\r\n\x1a\n": "image/png", b"%PDF-": "application/pdf"}
EXTENSIONS = {"image/jpeg": ".jpg", "image/png": ".png", "application/pdf": ".pdf"}
MAX_ATTACHMENT_BYTES = 5 * 1024 * 1024
MAX_ATTACHMENTS = 50


@dataclass(frozen=True)
class AttachmentView:
    id: int
    case_id: int
    filename: str
    content_type: str
    size: int
    sha256: str
    uploaded_by: str
    at: datetime


def _safe_name(filename: str, content_type: str) -> str:
    """The file's name without any folder, control or quoting characters, ending as its type does."""
    base = filename.replace("\\", "/").rsplit("/", 1)[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '"<>|:*?;')[:100].strip() or "attachment"
    ext = EXTENSIONS[content_type]
    stem = base.rsplit(".", 1)[0] if "." in base else base
    return f"{stem or 'attachment'}{ext}"


def add_attachment(uow: UnitOfWork, who: Principal, case_id: int, *, filename: str, content: bytes) -> AttachmentView:
    """Attach a photo or PDF to an open case (a note in its history names it; the audit trail keeps its hash and
    size, never its name or content)."""
    who.require(P.COLLECT)
    if not content:
        raise ValidationError("file: empty", field="file")
    if len(content) > MAX_ATTACHMENT_BYTES:
        raise ValidationError(f"file: larger than {MAX_ATTACHMENT_BYTES // (1024 * 1024)} MB", field="file")
    content_type = next((t for magic, t in ATTACHMENT_TYPES.items() if content.startswith(magic)), None)
    if content_type is None:
        raise ValidationError("file: a JPEG or PNG photo or a PDF", field="file")
    digest = hashlib.sha256(content).hexdigest()
    name = _safe_name(filename, content_type)
    with uow:
        s = uow.session
        _working(s, who, case_id)
        count = int(s.execute(select(func.count()).select_from(CollectionAttachmentRow).where(
            CollectionAttachmentRow.tenant_id == who.tenant_id, CollectionAttachmentRow.case_id == case_id))
            .scalar_one())
        if count >= MAX_ATTACHMENTS:
            raise Conflict(f"collection case {case_id} has {MAX_ATTACHMENTS} attachments already")
        now = utcnow()
        row = CollectionAttachmentRow(tenant_id=who.tenant_id, case_id=case_id, filename=name,
                                      content_type=content_type, size=len(content), sha256=digest, content=content,
                                      uploaded_by=who.username, at=now)
        s.add(row)
        s.flush()
        s.add(CollectionActionRow(tenant_id=who.tenant_id, case_id=case_id, kind="attachment", text=name,
                                  outcome=str(row.id), actor=who.username, at=now))
        audit.record(s, who, "collections.attachment", "collection_case", case_id,
                     after={"attachment": row.id, "content_type": content_type, "size": len(content),
                            "sha256": digest})
        view = AttachmentView(row.id, case_id, name, content_type, len(content), digest, who.username, now)
        uow.commit()
    return view


def list_attachments(uow: UnitOfWork, who: Principal, case_id: int) -> list[AttachmentView]:
    who.require(P.COLLECT)
    with uow.read_only():
        _case(uow.session, who, case_id)
        rows = uow.session.execute(select(
            CollectionAttachmentRow.id, CollectionAttachmentRow.filename, CollectionAttachmentRow.content_type,
            CollectionAttachmentRow.size, CollectionAttachmentRow.sha256, CollectionAttachmentRow.uploaded_by,
            CollectionAttachmentRow.at).where(
            CollectionAttachmentRow.tenant_id == who.tenant_id, CollectionAttachmentRow.case_id == case_id)
            .order_by(CollectionAttachmentRow.id)).all()
        return [AttachmentView(r.id, case_id, r.filename, r.content_type, r.size, r.sha256, r.uploaded_by, r.at)
                for r in rows]


def attachment_content(uow: UnitOfWork, who: Principal, attachment_id: int) -> tuple[AttachmentView, bytes]:
    """An attachment of a case of the caller's bank and its bytes; NotFound for any other bank's."""
    who.require(P.COLLECT)
    with uow.read_only():
        row = uow.session.execute(select(CollectionAttachmentRow).where(
            CollectionAttachmentRow.tenant_id == who.tenant_id,
            CollectionAttachmentRow.id == attachment_id)).scalar_one_or_none()
        if row is None:
            raise NotFound(f"attachment {attachment_id} not found")
        return (AttachmentView(row.id, row.case_id, row.filename, row.content_type, row.size, row.sha256,
                               row.uploaded_by, row.at), bytes(row.content))


# --- close of business -----------------------------------------------------------------------------------------


def check_promises(uow: UnitOfWork, who: Principal, on: date) -> dict[str, int]:
    """At the close of business of `on`: each pending promise is kept once the loan received the promised amount
    since it was made (by its date), broken when its date has passed without it; cases follow."""
    who.require(P.RUN_CLOSE_OF_BUSINESS)
    kept = broken = 0
    with uow:
        s = uow.session
        pending = s.execute(select(CollectionActionRow, CollectionCaseRow.loan_id).join(
            CollectionCaseRow, CollectionCaseRow.id == CollectionActionRow.case_id).where(
            CollectionActionRow.tenant_id == who.tenant_id, CollectionActionRow.kind == "promise",
            CollectionActionRow.promise_status == "pending")).all()
        for promise, loan_id in pending:
            assert promise.promise_date is not None
            if _promise_paid(s, who.tenant_id, loan_id, promise, on):
                promise.promise_status, kept = "kept", kept + 1
            elif on >= promise.promise_date:
                promise.promise_status, broken = "broken", broken + 1
                case = s.get(CollectionCaseRow, promise.case_id)
                if case is not None and case.status == rules.OPEN:
                    case.next_action = "broken_promise_call"
            else:
                continue
            audit.record(s, who, f"collections.promise_{promise.promise_status}", "collection_case",
                         promise.case_id, after={"promise": promise.id, "amount": str(promise.amount)})
        uow.commit()
    return {"promises_kept": kept, "promises_broken": broken}
