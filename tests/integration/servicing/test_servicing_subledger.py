"""分户账: close of business posts each nightly batch (interest, penalty, off-balance, fees) as one general-ledger
entry with per-account totals and one sub-ledger row per loan; the two reconcile per batch, account and business
date, and loan by loan; the sub-ledger is append-only, a batch that does not add up is refused whole, and a date is
never posted twice."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError
from tests.integration.servicing.kit import Bank

from microlend.core.errors import NotFound, ValidationError
from microlend.servicing import cob, service
from microlend.servicing.ledger import Acct, UnbalancedEntryError
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.service import Disbursement
from microlend.servicing.subledger import post_loan_lines
from microlend.servicing.tables import JournalEntryRow, JournalLineRow, LoanAccrualRow

D = Decimal


def portfolio(bank: Bank) -> dict[str, int]:
    """A payer, a late loan that goes non-accrual, and a revolving drawdown, closed to 2026-04-30."""
    service.set_nonaccrual_settings(
        bank.uow(), bank.who, NonAccrualSettings(days=30, on_npl=True, policy=AccruedInterestPolicy.REVERSE)
    )
    payer = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
    late = service.disburse(bank.uow(), bank.who, Disbursement("EP-STD", D("8000.50"), 6, D("0.10"))).id
    line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("40000"))
    revolving = service.draw_down(bank.uow(), bank.who, line.id, D("25000")).id
    day = date(2026, 1, 15)
    while day <= date(2026, 4, 30):
        view = service.get_loan(bank.uow(), bank.who, payer)
        for inst in view.installments:
            if inst.due_date == day and inst.outstanding > 0:
                service.post_repayment(bank.uow(), bank.who, payer, inst.outstanding)
        cob.run_close_of_business(bank.uow(), bank.who, through=day)
        day += timedelta(days=1)
    return {"payer": payer, "late": late, "revolving": revolving}


def subledger_rows(bank: Bank) -> int:
    with bank.uow() as u:
        return int(
            u.session.execute(
                select(func.count()).select_from(LoanAccrualRow).where(LoanAccrualRow.tenant_id == bank.tenant_id)
            ).scalar_one()
        )


class TestBatchesReconcile:
    def test_every_batch_equals_its_loans_per_account_and_day_and_each_loan_reconciles(self, bank: Bank) -> None:
        loans = portfolio(bank)
        assert service.reconcile_batches(bank.uow(), bank.who) == []
        assert service.reconcile_batches(bank.uow(), bank.who, date(2026, 3, 1), date(2026, 3, 31)) == []
        assert service.reconcile_loans(bank.uow(), bank.who) == []
        assert service.reconcile(bank.uow(), bank.who).ok
        assert service.trial_balance(bank.uow(), bank.who).balanced
        with bank.uow() as u:
            # recomputed here from the stored rows: per batch entry and account, the GL line = Σ its loans' rows
            gl: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
            line = JournalLineRow
            for entry_id, account, debit, credit in u.session.execute(
                select(line.entry_id, line.account_code, line.debit, line.credit)
                .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
                .where(JournalEntryRow.tenant_id == bank.tenant_id, JournalLineRow.loan_id.is_(None),
                       JournalEntryRow.kind.like("cob.%"))
            ):
                gl[(entry_id, account)] += debit - credit
            sub: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
            kinds: set[str] = set()
            for row, kind in u.session.execute(
                select(LoanAccrualRow, JournalEntryRow.kind)
                .join(JournalEntryRow, JournalEntryRow.id == LoanAccrualRow.entry_id)
                .where(LoanAccrualRow.tenant_id == bank.tenant_id)
            ).tuples():
                sub[(row.entry_id, row.debit_account)] += row.amount
                sub[(row.entry_id, row.credit_account)] -= row.amount
                kinds.add(kind)
        assert gl and gl == sub
        assert {"cob.accrual", "cob.penalty", "cob.off_balance"} <= kinds
        # a loan's statement shows its nightly interest income, day by day
        postings = service.loan_postings(bank.uow(), bank.who, loans["payer"], Acct.INTEREST_INCOME.value)
        nightly = [p for p in postings if p.kind == "cob.accrual"]
        assert len({p.business_date for p in nightly}) > 90 and all(p.credit > 0 for p in nightly)
        penalty = service.loan_postings(bank.uow(), bank.who, loans["late"], Acct.PENALTY_INCOME.value)
        assert sum((p.credit - p.debit for p in penalty), D(0)) >= 0 and any(p.kind == "cob.penalty" for p in penalty)
        off = service.loan_postings(bank.uow(), bank.who, loans["late"], Acct.OFF_BALANCE_INTEREST.value)
        assert any(p.kind == "cob.off_balance" and p.debit > 0 for p in off)

    def test_a_drifted_row_is_named_per_batch_and_per_loan(self, bank: Bank) -> None:
        a = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 20))
        with bank.uow() as u:  # a row slipped into the sub-ledger outside any posting
            entry_id = u.session.execute(
                select(func.max(LoanAccrualRow.entry_id)).where(LoanAccrualRow.tenant_id == bank.tenant_id)
            ).scalar_one()
            u.session.add(LoanAccrualRow(
                entry_id=entry_id, leg=9, loan_id=a, tenant_id=bank.tenant_id, business_date=date(2026, 1, 20),
                debit_account=Acct.INTEREST_RECEIVABLE.value, credit_account=Acct.INTEREST_INCOME.value,
                amount=D("0.01"),
            ))
            u.commit()
        batch = service.reconcile_batches(bank.uow(), bank.who)
        assert sorted((d.entry_id, d.account, d.sub_ledger - d.general_ledger) for d in batch) == [
            (entry_id, Acct.INTEREST_RECEIVABLE.value, D("0.01")),
            (entry_id, Acct.INTEREST_INCOME.value, D("-0.01")),
        ]
        assert {d.business_date for d in batch} == {date(2026, 1, 20)}
        differences = service.reconcile_loans(bank.uow(), bank.who)
        assert (a, Acct.INTEREST_RECEIVABLE.value) in {(d.loan_id, d.account) for d in differences}
        assert any(d.loan_id is None for d in differences)  # the batch's own difference

    def test_the_sub_ledger_is_append_only(self, bank: Bank) -> None:
        service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12")))
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 16))
        for statement in ("UPDATE loan_accruals SET amount = amount + 100", "DELETE FROM loan_accruals"):
            with bank.uow() as u, pytest.raises(DBAPIError, match="immutable"):
                u.session.execute(text(statement))
        assert subledger_rows(bank) > 0


class TestBatchPosting:
    def test_a_batch_whose_loans_do_not_add_up_is_refused_whole(self, bank: Bank) -> None:
        a = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        before = subledger_rows(bank)
        with bank.uow() as u:
            entries = u.session.execute(select(func.count()).select_from(JournalEntryRow)).scalar_one()
        with bank.uow() as u, pytest.raises(UnbalancedEntryError, match="add up to"):
            post_loan_lines(
                u.session, bank.who, date(2026, 1, 15), "cob.accrual", "test", 500_000,  # 50.00, rows give 12.34
                [(Acct.INTEREST_RECEIVABLE, Acct.INTEREST_INCOME, "SELECT :l AS loan_id, 123400 AS amount")],
                {"t": bank.tenant_id, "l": a},
            )
        with bank.uow() as u:
            assert u.session.execute(select(func.count()).select_from(JournalEntryRow)).scalar_one() == entries
        assert subledger_rows(bank) == before

    def test_a_closed_date_is_never_posted_again_and_a_crash_leaves_nothing(
        self, bank: Bank, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12")))
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 20))
        rows = subledger_rows(bank)
        assert rows > 0
        assert cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 20)) == []  # all closed
        assert subledger_rows(bank) == rows
        real = cob.post_loan_lines

        def dies_after_posting(*args: object, **kwargs: object) -> object:
            real(*args, **kwargs)  # type: ignore[arg-type]
            raise RuntimeError("power cut")

        monkeypatch.setattr(cob, "post_loan_lines", dies_after_posting)
        with pytest.raises(RuntimeError, match="power cut"):
            cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 21))
        assert subledger_rows(bank) == rows  # rolled back with the date
        monkeypatch.setattr(cob, "post_loan_lines", real)
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 21))
        assert subledger_rows(bank) > rows
        assert service.reconcile_batches(bank.uow(), bank.who) == []


class TestScope:
    def test_a_loan_of_another_bank_has_no_statement_here(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        other = other_bank()
        theirs = service.disburse(other.uow(), other.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
        cob.run_close_of_business(other.uow(), other.who, through=date(2026, 1, 17))
        with pytest.raises(NotFound):
            service.loan_postings(bank.uow(), bank.who, theirs)
        assert service.loan_postings(other.uow(), other.who, theirs)
        assert service.reconcile_batches(bank.uow(), bank.who) == []
        with pytest.raises(ValidationError, match="account"):
            service.loan_postings(other.uow(), other.who, theirs, "9999")
        with pytest.raises(ValidationError, match="period"):
            service.reconcile_batches(bank.uow(), bank.who, date(2026, 2, 1), date(2026, 1, 1))
