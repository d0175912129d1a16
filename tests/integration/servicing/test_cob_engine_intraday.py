"""Money moving while close of business runs on a batch engine: a loan paid out, a line drawn on or a loan
repaid after its partition was closed, on the date being closed, leaves the books reconciled loan by loan and
with the general ledger on every later date, as if it had happened before the close or after it."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

from tests.integration.servicing.kit import Bank

from microlend.batch.engine import LocalEngine
from microlend.servicing import service
from microlend.servicing.cob_engine import run_close_of_business_on
from microlend.servicing.service import Disbursement

D = Decimal


def close_on_engine(bank: Bank, through: date, during: list[object] | None = None) -> None:
    moved: list[int] = []

    def after_partition(first: int, last: int) -> None:
        if during is not None and not moved:  # once, after the first partition committed
            moved.append(first)
            for act in during:
                act()  # type: ignore[operator]

    run_close_of_business_on(bank.uow(), bank.who, LocalEngine(), through=through, partition_loans=2,
                             after_partition=after_partition)
    assert during is None or moved


def test_money_moved_during_an_engine_close_is_closed_and_reconciles(bank: Bank) -> None:
    early = [service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
             for _ in range(5)]
    line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
    service.draw_down(bank.uow(), bank.who, line.id, D("5000"))
    day = date(2026, 1, 15)
    close_on_engine(bank, day)
    day += timedelta(days=1)
    paid_out: list[int] = []
    close_on_engine(bank, day, during=[
        lambda: paid_out.append(
            service.disburse(bank.uow(), bank.who, Disbursement("EP-STD", D("8000.50"), 6, D("0.10"))).id),
        lambda: paid_out.append(service.draw_down(bank.uow(), bank.who, line.id, D("2500")).id),
        lambda: service.post_repayment(bank.uow(), bank.who, early[0], D("300")),
    ])
    for _ in range(20):
        day += timedelta(days=1)
        close_on_engine(bank, day)
    assert service.reconcile_loans(bank.uow(), bank.who) == []
    assert service.reconcile(bank.uow(), bank.who).ok
    assert service.reconcile_batches(bank.uow(), bank.who) == []
    for loan_id in paid_out:  # the loans paid out during the close accrued from their first day
        assert service.get_loan(bank.uow(), bank.who, loan_id).status == "active"
