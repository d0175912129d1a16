"""Money moved on a business date holds that date until it commits: a close of business (which locks the bank's
row before it starts and moves the date as it commits) and a repayment or payout never overlap, on PostgreSQL by
row locks (the payment reads the date ``FOR KEY SHARE``) and on SQLite by the write lock: a payment that arrives
while a close runs waits for it and is dated the next day, and a close never starts while a payment holds the
date."""

from __future__ import annotations

import threading
import time
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.core.tables import TenantRow
from microlend.servicing import service
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import RepaymentRow

D = Decimal


def test_a_payment_during_a_close_waits_for_it_and_is_dated_the_next_day(bank: Bank) -> None:
    loan_id = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
    opened = date(2026, 1, 15)
    done: list[object] = []

    def repay() -> None:
        try:
            done.append(service.post_repayment(bank.uow(), bank.who, loan_id, D("100")).id)
        except BaseException as err:  # reported by the assertions below
            done.append(err)

    payer = threading.Thread(target=repay)
    with bank.uow() as closing:  # as a close of business holds the bank's row from its start to its end
        tenant = closing.session.execute(
            select(TenantRow).where(TenantRow.id == bank.tenant_id).with_for_update()
        ).scalar_one()
        assert tenant.business_date == opened
        payer.start()
        time.sleep(1.0)
        assert payer.is_alive() and not done  # waiting for the close
        tenant.business_date = opened + timedelta(days=1)
        closing.commit()
    payer.join(30)
    assert not payer.is_alive() and len(done) == 1 and isinstance(done[0], int), done
    with bank.uow() as u:
        value_date = u.session.execute(select(RepaymentRow.value_date).where(RepaymentRow.id == done[0])).scalar_one()
    assert value_date == opened + timedelta(days=1)
