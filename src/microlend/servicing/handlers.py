"""What servicing does after its own events, each in the handler's own unit of work (registered in
`bootstrap.EVENT_HANDLERS`): repayments and class changes join the loan's timeline, and every change of the
five-category class is an audit record. Each handler applies its effect once, however often it is handed
the event: a timeline entry is known by the repayment's id, or by its loan, kind and business date (close of
business runs once per date), and an audit record by the event's id."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from microlend.core import audit
from microlend.core.identity import system_principal
from microlend.core.tables import AuditRow
from microlend.core.uow import UnitOfWork
from microlend.servicing.events import LoanClassChanged, RepaymentPosted
from microlend.servicing.tables import LoanEventRow

CLASS_CHANGE = "loan.class_change"


def record_repayment(uow: UnitOfWork, event: RepaymentPosted) -> None:
    """A posted repayment joins the loan's timeline (loan_events) on its value date."""
    _on_timeline(uow.session, event.tenant_id, event.loan_id, event.value_date, "RepaymentPosted",
                 {"repayment_id": event.repayment_id, "kind": event.kind, "amount": str(event.amount)},
                 key="repayment_id")


def record_class_change(uow: UnitOfWork, event: LoanClassChanged) -> None:
    """A change of the five-category class joins the loan's timeline on the business date it happened."""
    _on_timeline(uow.session, event.tenant_id, event.loan_id, event.business_date, "LoanClassChanged",
                 {"from_class": event.from_class, "to_class": event.to_class, "days_past_due": event.days_past_due,
                  "reason": event.reason, "changed_by": event.changed_by or "close of business"})


def audit_class_change(uow: UnitOfWork, event: LoanClassChanged) -> None:
    """五级分类 a loan's class is what provisions and the regulator's reports rest on: each change made by a
    close of business is an audit record of the close-of-business identity, with the class before and after."""
    if event.changed_by:  # a judgement: its use case wrote the officer's audit record with the change
        return
    s = uow.session
    reason = f"close of business {event.business_date.isoformat()} (event {event.event_id})"
    done = s.execute(select(AuditRow.id).where(
        AuditRow.tenant_id == event.tenant_id, AuditRow.object_type == "loan",
        AuditRow.object_id == str(event.loan_id), AuditRow.action == CLASS_CHANGE, AuditRow.reason == reason,
    ).limit(1)).first()
    if done is not None:
        return
    audit.record(s, system_principal(event.tenant_id, "cob"), CLASS_CHANGE, "loan", event.loan_id,
                 before={"loan_class": event.from_class},
                 after={"loan_class": event.to_class, "days_past_due": event.days_past_due,
                        "business_date": event.business_date.isoformat(), "why": event.reason},
                 reason=reason)


def _on_timeline(s: Session, tenant_id: int, loan_id: int, on: date, kind: str, data: dict[str, Any],
                 key: str | None = None) -> None:
    """Add a loan event unless it is there already: the same loan, kind and date (and `key` in its data)."""
    seen = s.execute(select(LoanEventRow.data).where(
        LoanEventRow.tenant_id == tenant_id, LoanEventRow.loan_id == loan_id, LoanEventRow.kind == kind,
        LoanEventRow.business_date == on)).scalars()
    if any(key is None or (d or {}).get(key) == data[key] for d in seen):
        return
    s.add(LoanEventRow(tenant_id=tenant_id, loan_id=loan_id, business_date=on, kind=kind, data=data))
