"""What the challenger report learns of a loan from servicing: the day it was paid out and the first day it was
bad (an installment more than 30 days past due, or written off), as of a given day, for the bank's loans only."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

from tests.integration.servicing.kit import Bank

from microlend.core.identity import Role
from microlend.servicing import queries, service
from microlend.servicing.service import Disbursement


def disburse(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", Decimal("10000"), 12, Decimal("0.12"))).id


def test_the_first_bad_day_is_31_days_after_an_unpaid_due_date(bank: Bank) -> None:
    unpaid, paid_late, paid_on_time, written_off = (disburse(bank) for _ in range(4))  # first due 2026-02-15
    bank.set_business_date(date(2026, 2, 1))
    asked = service.request_write_off(bank.uow(), bank.who, written_off, "the business never existed",
                                      reason_code="fraud", documents=["police report 2026-031"])
    service.approve_write_off(bank.uow(), bank.principal(Role.APPROVER), asked.id)
    bank.set_business_date(date(2026, 2, 15))
    service.post_repayment(bank.uow(), bank.who, paid_on_time, Decimal("888.49"))
    bank.set_business_date(date(2026, 3, 20))
    service.post_repayment(bank.uow(), bank.who, paid_late, Decimal("888.49"))  # 33 days late

    ids = [unpaid, paid_late, paid_on_time, written_off]
    before = queries.loan_performance(bank.uow(), bank.who, ids, date(2026, 3, 17))
    assert {i: p.bad_on for i, p in before.items()} == {
        unpaid: None, paid_late: None, paid_on_time: None, written_off: date(2026, 2, 1)}
    after = queries.loan_performance(bank.uow(), bank.who, ids, date(2026, 3, 20))
    assert {i: p.bad_on for i, p in after.items()} == {
        unpaid: date(2026, 3, 18), paid_late: date(2026, 3, 18), paid_on_time: None, written_off: date(2026, 2, 1)}
    assert {p.disbursed_on for p in after.values()} == {date(2026, 1, 15)}


def test_another_bank_s_loans_are_not_seen(bank: Bank, other_bank: Callable[[], Bank]) -> None:
    loan = disburse(bank)
    other = other_bank()
    assert queries.loan_performance(other.uow(), other.who, [loan], date(2026, 6, 1)) == {}
    assert queries.loss_given_default(bank.uow(), bank.who) == Decimal("0.45")
