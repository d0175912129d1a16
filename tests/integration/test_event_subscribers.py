"""The modules' event handlers end to end, on SQLite and PostgreSQL: a use case publishes, its commit keeps
the event in the outbox, each handler runs in its own unit of work and its effect is visible; a handler that
fails leaves the event waiting, and a later round delivers it, once."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from tests.conftest import Api, TenantKit
from tests.integration.origination.test_applications_api import apply, new_customer

from microlend.core import outbox
from microlend.core.clock import utcnow
from microlend.core.events import from_payload, handler_name
from microlend.core.identity import Principal
from microlend.core.tables import AuditRow, EventOutboxRow, TenantRow
from microlend.marketing import handlers as marketing_handlers
from microlend.marketing.tables import CampaignRow, OutboxRow
from microlend.parties.tables import CustomerRow
from microlend.servicing import cob, service
from microlend.servicing import handlers as servicing_handlers
from microlend.servicing.events import RepaymentPosted
from microlend.servicing.service import Disbursement, reminders
from microlend.servicing.tables import LoanEventRow, RepaymentRow

START = date(2026, 1, 15)
def bank_customer(bank: TenantKit) -> int:
    """A customer of the bank (a loan is booked only on one of its own customers)."""
    tag = uuid.uuid4().hex
    with bank.uow_factory() as u:
        row = CustomerRow(tenant_id=bank.tenant.id, kind="person", name="孙老板", id_number_enc="x",
                          id_number_index=f"id-{tag}", id_number_masked="x", phone_enc="x", phone_index=f"p-{tag}",
                          phone_masked="x", marketing_consent=True, attributes={}, created_at=utcnow(),
                          updated_at=utcnow())
        u.session.add(row)
        u.session.flush()
        u.commit()
        return int(row.id)


def set_business_date(bank: TenantKit, on: date) -> None:
    with bank.uow_factory() as u:
        row = u.session.get(TenantRow, bank.tenant.id)
        assert row is not None
        row.business_date = on
        u.commit()


def new_loan(bank: TenantKit, who: Principal, customer_id: int | None) -> int:
    set_business_date(bank, START)
    return service.disburse(bank.uow_factory(), who,
                            Disbursement("EI-STD", Decimal("12000"), 12, customer_id=customer_id)).id


def deliveries(bank: TenantKit, event_type: str, handler: Any = None) -> list[EventOutboxRow]:
    """The event's deliveries in the bank (to one handler if given)."""
    with bank.uow_factory() as u:
        q = select(EventOutboxRow).where(EventOutboxRow.tenant_id == bank.tenant.id,
                                         EventOutboxRow.event_type == event_type)
        if handler is not None:
            q = q.where(EventOutboxRow.handler == handler_name(handler))
        return list(u.session.execute(q.order_by(EventOutboxRow.id)).scalars())


def timeline(bank: TenantKit, loan_id: int, kind: str) -> list[dict[str, Any]]:
    with bank.uow_factory() as u:
        return [d for d in u.session.execute(select(LoanEventRow.data).where(
            LoanEventRow.loan_id == loan_id, LoanEventRow.kind == kind).order_by(LoanEventRow.id)).scalars()]


def schedule_message(bank: TenantKit, customer_id: int) -> int:
    """A campaign message waiting in marketing's outbox for the customer."""
    now = utcnow()
    with bank.uow_factory() as u:
        campaign = CampaignRow(
            tenant_id=bank.tenant.id, name=f"spring-{customer_id}", channel="sms", locale="zh_CN",
            control_share_bp=0, cost_per_message=Decimal("0.05"), attribution_days=30, cap_max_messages=3,
            cap_window_days=30, quiet_start="21:00", quiet_end="08:00", timezone="Asia/Shanghai",
            status="launched", created_by="marketer", created_at=now, launched_at=now)
        u.session.add(campaign)
        u.session.flush()
        message = OutboxRow(tenant_id=bank.tenant.id, campaign_id=campaign.id, customer_id=customer_id,
                            channel="sms", locale="zh_CN", body="您已获得预授信额度", token=f"tok{campaign.id:08d}",
                            status="scheduled", scheduled_at=now + timedelta(days=1))
        u.session.add(message)
        u.session.flush()
        message_id = message.id
        u.commit()
    return message_id


def message_status(bank: TenantKit, message_id: int) -> tuple[str, str | None]:
    with bank.uow_factory() as u:
        row = u.session.get(OutboxRow, message_id)
        assert row is not None
        return row.status, row.suppressed_reason


class TestRepaymentPosted:
    def test_a_repayment_joins_the_loan_timeline_after_its_commit(self, bank: TenantKit) -> None:
        who = bank.principal("admin")
        loan_id = new_loan(bank, who, bank_customer(bank))
        repayment = service.post_repayment(bank.uow_factory(), who, loan_id, Decimal("300.50"))
        [entry] = timeline(bank, loan_id, "RepaymentPosted")
        assert entry["repayment_id"] == repayment.id and entry["amount"] == "300.50"
        [delivery] = deliveries(bank, "RepaymentPosted", servicing_handlers.record_repayment)
        assert (delivery.handler, delivery.status) == (handler_name(servicing_handlers.record_repayment), "done")
        [receipt] = deliveries(bank, "RepaymentPosted", reminders.queue_receipt)  # and a receipt to the borrower
        assert receipt.status == "done"
        assert delivery.payload["amount"] == "300.50" and delivery.payload["value_date"] == "2026-01-15"

    def test_a_failing_handler_keeps_the_event_and_a_later_round_applies_it_once(
        self, bank: TenantKit, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        who = bank.principal("admin")
        customer = bank_customer(bank)
        loan_id = new_loan(bank, who, customer)

        def database_hiccup(*_: Any, **__: Any) -> None:
            raise ConnectionError("the timeline is unreachable")

        timeline_store = servicing_handlers._on_timeline
        monkeypatch.setattr(servicing_handlers, "_on_timeline", database_hiccup)
        repayment = service.post_repayment(bank.uow_factory(), who, loan_id, Decimal("100.00"))
        with bank.uow_factory() as u:
            assert u.session.get(RepaymentRow, repayment.id) is not None  # the repayment is committed
        [delivery] = deliveries(bank, "RepaymentPosted", servicing_handlers.record_repayment)
        assert (delivery.status, delivery.attempts) == ("pending", 1)
        assert delivery.last_error == "ConnectionError: the timeline is unreachable"
        assert timeline(bank, loan_id, "RepaymentPosted") == []

        monkeypatch.setattr(servicing_handlers, "_on_timeline", timeline_store)  # the store is back
        later = utcnow() + timedelta(minutes=5)
        report = outbox.deliver_due(bank.uow_factory(), now=later, tenant_id=bank.tenant.id)
        assert report == outbox.DeliveryReport(done=1)
        [entry] = timeline(bank, loan_id, "RepaymentPosted")
        assert entry["repayment_id"] == repayment.id
        [delivery] = deliveries(bank, "RepaymentPosted", servicing_handlers.record_repayment)
        assert (delivery.status, delivery.attempts) == ("done", 2)

        # the same event again, delivered by a second process or handed to the handler once more: no new entry
        event = RepaymentPosted(bank.tenant.id, loan_id, repayment.id, customer, "repayment", Decimal("100.00"),
                                START, event_id=delivery.event_id)
        again = outbox.deliver(bank.uow_factory().fresh, bank.uow_factory().handlers,
                               [outbox.Delivery(event, delivery.handler)])
        assert again == outbox.DeliveryReport(skipped=1)
        with bank.uow_factory() as u:
            servicing_handlers.record_repayment(u, event)
            u.commit()
        assert len(timeline(bank, loan_id, "RepaymentPosted")) == 1


class TestCloseOfBusinessEvents:
    def test_a_loan_falling_overdue_changes_class_is_audited_and_its_borrower_gets_no_more_offers(
        self, bank: TenantKit
    ) -> None:
        who = bank.principal("admin")
        customer = bank_customer(bank)
        loan_id = new_loan(bank, who, customer)
        quiet = new_loan(bank, who, customer_id=None)
        message = schedule_message(bank, customer)
        set_business_date(bank, date(2026, 2, 16))  # the first installment fell due yesterday, unpaid
        [result] = cob.run_close_of_business(bank.uow_factory(), who)
        assert result.newly_overdue == 2

        assert message_status(bank, message) == ("suppressed", "overdue")
        [overdue] = deliveries(bank, "LoanBecameOverdue")[:1]
        assert overdue.payload["customer_id"] == customer and overdue.status == "done"
        with bank.uow_factory() as u:
            audits = u.session.execute(select(AuditRow).where(
                AuditRow.tenant_id == bank.tenant.id, AuditRow.action == "loan.class_change")
                .order_by(AuditRow.object_id)).scalars().all()
            suppressions = u.session.execute(select(AuditRow.after).where(
                AuditRow.tenant_id == bank.tenant.id, AuditRow.action == "outbox.suppress")).scalars().all()
        assert sorted(int(a.object_id) for a in audits) == sorted([loan_id, quiet])
        assert all(a.before == {"loan_class": "normal"} and a.after["loan_class"] == "special_mention"
                   and a.actor == "cob" for a in audits)
        assert [s["reason"] for s in suppressions] == ["overdue"]
        [entry] = timeline(bank, loan_id, "LoanClassChanged")
        assert (entry["from_class"], entry["to_class"], entry["days_past_due"]) == ("normal", "special_mention", 1)
        assert {d.status for d in deliveries(bank, "LoanClassChanged")} == {"done"}
        assert len(deliveries(bank, "LoanClassChanged")) == 4  # two loans, two handlers each

    def test_a_second_delivery_of_the_class_change_adds_no_audit_record(self, bank: TenantKit) -> None:
        who = bank.principal("admin")
        new_loan(bank, who, bank_customer(bank))
        set_business_date(bank, date(2026, 2, 16))
        cob.run_close_of_business(bank.uow_factory(), who)
        audit_delivery = next(d for d in deliveries(bank, "LoanClassChanged")
                              if d.handler == handler_name(servicing_handlers.audit_class_change))
        uow = bank.uow_factory()
        event = from_payload(uow.handlers.event_type("LoanClassChanged"), audit_delivery.payload,
                                    audit_delivery.event_id)
        with uow:
            servicing_handlers.audit_class_change(uow, event)
            uow.commit()
        with bank.uow_factory() as u:
            assert len(u.session.execute(select(AuditRow.id).where(
                AuditRow.tenant_id == bank.tenant.id, AuditRow.action == "loan.class_change")).all()) == 1


class TestApplicationDecided:
    def test_a_decided_applicant_gets_no_waiting_invitation(self, api: Api) -> None:
        customer = new_customer(api)
        waiting = schedule_message(api.kit, customer)
        other = schedule_message(api.kit, customer + 1_000_000)  # another customer's message stays
        r = apply(api, customer, "30000.00")
        assert r.status_code == 201, r.text
        assert outbox.background.drain()  # the request did not wait for the handlers
        assert message_status(api.kit, waiting) == ("suppressed", "applied")
        assert message_status(api.kit, other) == ("scheduled", None)
        [decided] = deliveries(api.kit, "ApplicationDecided")
        assert decided.payload["application_id"] == r.json()["id"] and decided.payload["status"] == "approved"
        assert decided.handler == handler_name(marketing_handlers.suppress_for_decided_applicant)
        assert datetime.fromisoformat(decided.payload["decided_at"]).tzinfo == UTC
