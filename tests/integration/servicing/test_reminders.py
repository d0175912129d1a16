"""Repayment reminders on SQLite and PostgreSQL: queued three days before and on the due day for what is
left of the installment, overdue notices on the bank's days, nothing sent in quiet hours, nothing to a
borrower who opted out, a receipt after each repayment, and queueing a date twice adds nothing."""

from __future__ import annotations

import random
from datetime import UTC, date, datetime, time
from decimal import Decimal

import pytest
from sqlalchemy import func, select
from tests.integration.servicing.kit import Bank

from microlend.core import clock, outbox
from microlend.core.clock import FixedClock
from microlend.core.errors import NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.demo import identities
from microlend.parties import notify
from microlend.parties.customers import NewCustomer, create_customer
from microlend.servicing import cob, service
from microlend.servicing.reminder_tables import ReminderRow
from microlend.servicing.reminders import ReminderSettings
from microlend.servicing.service import Disbursement
from microlend.servicing.service import reminders as rem

D = Decimal
_rng = random.Random(5)
# 10:00 in Shanghai (02:00 UTC): outside the default quiet hours (21:00–08:00)
MORNING = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)


def _customer(bank: Bank, name: str) -> tuple[int, str]:
    birth = identities.birth_date_for_age(_rng, 40, date(2026, 1, 1))
    phone = identities.mobile(_rng)
    made = create_customer(bank.uow(), bank.principal(Role.CREDIT_OFFICER), NewCustomer(
        kind="person", name=name, id_number=identities.resident_id(_rng, birth), phone=phone, branch="城关支行"))
    return made.id, phone


def _loan(bank: Bank, customer_id: int, amount: str = "12000") -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D(amount), 6, D("0.12"),
                                                               customer_id=customer_id)).id


def _rows(bank: Bank, **where: object) -> list[ReminderRow]:
    with bank.uow() as u:
        q = select(ReminderRow).where(ReminderRow.tenant_id == bank.tenant_id)
        for k, v in where.items():
            q = q.where(getattr(ReminderRow, k) == v)
        return list(u.session.execute(q.order_by(ReminderRow.id)).scalars())


@pytest.fixture
def borrowers(bank: Bank) -> list[tuple[int, str, int]]:
    """Three borrowers with a six-month loan each, disbursed on 2026-01-15 (first due date 2026-02-15)."""
    out = []
    for k in range(3):
        cid, phone = _customer(bank, f"借款人{k}")
        out.append((cid, phone, _loan(bank, cid, str(10000 + 1000 * k))))
    return out


def test_reminders_are_queued_three_days_before_and_on_the_due_day(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    before = rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=MORNING)
    assert (before.before_due, before.due_day, before.overdue) == (3, 0, 0)
    rows = _rows(bank, kind="before_due")
    assert {r.loan_id for r in rows} == {loan for _, _, loan in borrowers}
    assert all(r.ref_date == date(2026, 2, 15) and r.days == 3 for r in rows)
    with bank.uow() as u:
        from microlend.servicing.tables import InstallmentRow
        first = {i.loan_id: i.principal + i.interest + i.fee for i in u.session.execute(
            select(InstallmentRow).where(InstallmentRow.number == 1)).scalars()}
    assert {r.loan_id: r.amount for r in rows} == {loan: first[loan] for _, _, loan in borrowers}

    assert rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=MORNING).total == 0  # once per date
    nothing = rem.queue_reminders(bank.uow(), system, date(2026, 2, 13), now=MORNING)
    assert nothing.total == 0
    on_the_day = rem.queue_reminders(bank.uow(), system, date(2026, 2, 15), now=MORNING)
    assert (on_the_day.before_due, on_the_day.due_day) == (0, 3)
    assert len(_rows(bank, kind="due_day", ref_date=date(2026, 2, 15))) == 3


def test_a_paid_installment_gets_no_reminder(bank: Bank, borrowers: list) -> None:
    loan = borrowers[0][2]
    service.post_repayment(bank.uow(), bank.who, loan, D("3000"))  # more than the first installment
    rem.queue_reminders(bank.uow(), bank.principal(Role.SYSTEM), date(2026, 2, 12), now=MORNING)
    assert loan not in {r.loan_id for r in _rows(bank, kind="before_due")}
    assert len(_rows(bank, kind="before_due")) == 2


def test_reminders_go_out_by_text_in_the_bank_wording(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=MORNING)
    sent = rem.dispatch_reminders(bank.uow(), system, now=MORNING)
    assert (sent.sent, sent.suppressed, sent.failed) == (3, 0, 0)
    _, phone, loan = borrowers[0]
    text = notify.sandbox.last_to(phone)
    assert text is not None and f"编号{loan}" in text.text and "2026-02-15" in text.text
    assert all(r.status == "sent" and r.message_id for r in _rows(bank, kind="before_due"))
    assert rem.dispatch_reminders(bank.uow(), system, now=MORNING).sent == 0  # each message once


def test_nothing_is_sent_in_quiet_hours(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    late = datetime(2026, 2, 12, 14, 30, tzinfo=UTC)  # 22:30 in Shanghai
    queued = rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=late)
    assert queued.scheduled_at == datetime(2026, 2, 13, 0, 0, tzinfo=UTC)  # 08:00 the next morning
    assert rem.dispatch_reminders(bank.uow(), system, now=late).sent == 0
    at_night = datetime(2026, 2, 12, 19, 0, tzinfo=UTC)  # 03:00 in Shanghai
    assert rem.dispatch_reminders(bank.uow(), system, now=at_night).sent == 0
    assert all(r.status == "queued" for r in _rows(bank))
    assert rem.dispatch_reminders(bank.uow(), system, now=datetime(2026, 2, 13, 0, 0, tzinfo=UTC)).sent == 3


def test_a_due_backlog_found_in_quiet_hours_waits_for_the_morning(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=MORNING)
    night = datetime(2026, 2, 12, 15, 0, tzinfo=UTC)  # 23:00 in Shanghai: the worker was down all day
    result = rem.dispatch_reminders(bank.uow(), system, now=night)
    assert (result.sent, result.deferred) == (0, 3)
    assert {r.scheduled_at for r in _rows(bank)} == {datetime(2026, 2, 13, 0, 0, tzinfo=UTC)}


def test_a_borrower_who_opted_out_gets_no_reminder(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    out_customer, out_phone, out_loan = borrowers[1]
    rem.opt_out(bank.uow(), bank.principal(Role.OPERATIONS), out_customer)
    rem.queue_reminders(bank.uow(), system, date(2026, 2, 12), now=MORNING)
    assert out_loan not in {r.loan_id for r in _rows(bank)}
    # opting out after the queueing: the message is suppressed when its time comes
    late_customer, late_phone, late_loan = borrowers[2]
    rem.opt_out(bank.uow(), bank.principal(Role.OPERATIONS), late_customer)
    before = len(notify.sandbox.messages_to(late_phone))
    sent = rem.dispatch_reminders(bank.uow(), system, now=MORNING)
    assert (sent.sent, sent.suppressed) == (1, 1)
    assert _rows(bank, loan_id=late_loan)[0].status == "suppressed"
    assert len(notify.sandbox.messages_to(late_phone)) == before
    assert notify.sandbox.messages_to(out_phone) == []
    rem.opt_in(bank.uow(), bank.principal(Role.OPERATIONS), out_customer)
    due_day = rem.queue_reminders(bank.uow(), system, date(2026, 2, 15), now=MORNING)
    assert due_day.due_day == 2  # the first borrower, and the one who opted back in; not the one still out
    assert {r.loan_id for r in _rows(bank, kind="due_day")} == {borrowers[0][2], out_loan}


def test_overdue_notices_on_the_bank_days(bank: Bank, borrowers: list) -> None:
    system = bank.principal(Role.SYSTEM)
    rem.set_reminder_settings(bank.uow(), bank.who, ReminderSettings(days_before=(3,), overdue_days=(1, 7)))
    cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 2, 16))  # the first installment unpaid
    queued = rem.queue_reminders(bank.uow(), system, date(2026, 2, 17), now=datetime(2026, 2, 17, 2, tzinfo=UTC))
    assert queued.overdue == 3
    rows = _rows(bank, kind="overdue")
    assert all(r.days == 1 and r.amount > 0 for r in rows)
    cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 2, 18))
    assert rem.queue_reminders(bank.uow(), system, date(2026, 2, 19)).overdue == 0  # 3 days: not a notice day


def test_a_receipt_follows_each_repayment(bank: Bank, borrowers: list, monkeypatch: pytest.MonkeyPatch) -> None:
    cid, phone, loan = borrowers[0]
    monkeypatch.setattr(clock, "_clock", FixedClock(MORNING))
    posted = service.post_repayment(bank.uow(), bank.who, loan, D("500.25"))
    outbox.background.drain()
    receipts = _rows(bank, kind="receipt")
    assert [(r.loan_id, r.customer_id, r.amount, r.ref_id) for r in receipts] == [(loan, cid, D("500.25"), posted.id)]
    sent = rem.dispatch_reminders(bank.uow(), bank.principal(Role.SYSTEM), now=MORNING)
    assert sent.sent == 1
    text = notify.sandbox.last_to(phone)
    assert text is not None and "500.25" in text.text


def test_settings_are_checked_and_need_the_right_role(bank: Bank) -> None:
    with pytest.raises(ValidationError, match=r"templates\.receipt\.en"):
        ReminderSettings(templates={"receipt": {"en": "paid {amont}"}})
    with pytest.raises(ValidationError, match="days_before"):
        ReminderSettings(days_before=(0,))
    with pytest.raises(PermissionDenied):
        rem.set_reminder_settings(bank.uow(), bank.principal(Role.COLLECTOR), ReminderSettings())
    with pytest.raises(PermissionDenied):
        rem.queue_reminders(bank.uow(), bank.principal(Role.OPERATIONS), date(2026, 2, 12))
    custom = ReminderSettings(quiet_start=time(22), quiet_end=time(7),
                              templates={"before_due": {"zh_CN": "{bank}提醒：{due_date}还{amount}元"}})
    rem.set_reminder_settings(bank.uow(), bank.who, custom)
    assert rem.reminder_settings(bank.uow(), bank.who) == custom


def test_another_bank_sees_none_of_them(bank: Bank, borrowers: list, other_bank) -> None:  # type: ignore[no-untyped-def]
    rem.queue_reminders(bank.uow(), bank.principal(Role.SYSTEM), date(2026, 2, 12), now=MORNING)
    other = other_bank()
    assert rem.list_reminders(other.uow(), other.who) == []
    assert len(rem.list_reminders(bank.uow(), bank.who)) == 3
    with bank.uow() as u:
        assert u.session.execute(select(func.count()).select_from(ReminderRow)).scalar_one() == 3


def test_only_the_bank_own_customer_can_be_opted_out(bank: Bank, borrowers: list, other_bank) -> None:  # type: ignore[no-untyped-def]
    other = other_bank()
    with pytest.raises(NotFound):
        rem.opt_out(other.uow(), other.principal(Role.OPERATIONS), borrowers[0][0])
    assert rem.queue_reminders(bank.uow(), bank.principal(Role.SYSTEM), date(2026, 2, 12), now=MORNING).total == 3
