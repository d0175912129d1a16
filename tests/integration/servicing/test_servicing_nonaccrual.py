"""Non-accrual (停止计息): a 12,000 loan more than 90 days past due takes no more interest or penalty to income;
what it had accrued is reversed to the off-balance memo accounts (or kept, by the bank's policy); collections
repay principal first and recognise off-balance interest on cash basis; the trial balance stays balanced and
the ledger reconciles with the loan sub-ledger (memo accounts included) throughout."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.api import errors
from microlend.api.routers.servicing import router
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.core.settings import Settings
from microlend.servicing import cob, service
from microlend.servicing.ledger import Acct
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import LoanEventRow

D = Decimal
ZERO = D(0)
FIRST_DUE = date(2026, 2, 15)  # a loan disbursed on 2026-01-15 falls due monthly from here
STOPS = FIRST_DUE + timedelta(days=91)  # more than 90 days past due at the end of this day


def balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


def reconciled(bank: Bank) -> bool:
    rec = service.reconcile(bank.uow(), bank.who)
    assert rec.ok, [(r.account, r.general_ledger, r.sub_ledger) for r in rec.rows if r.difference]
    return rec.ok


def close_through(bank: Bank, last: date) -> list[cob.CobResult]:
    return cob.run_close_of_business(bank.uow(), bank.who, through=last)


def twelve_thousand(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id


class TestTheThreshold:
    def test_a_loan_over_90_days_past_due_takes_no_more_income(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, STOPS - timedelta(days=1))
        before = balances(bank)
        assert service.get_loan(bank.uow(), bank.who, loan_id).accrual_status == "accruing"
        assert before[Acct.INTEREST_INCOME] > 0 and before[Acct.PENALTY_INCOME] > 0
        assert before[Acct.OFF_BALANCE_INTEREST] == 0

        results = close_through(bank, STOPS + timedelta(days=60))
        assert results[0].stopped_accruing == 1 and sum(r.stopped_accruing for r in results) == 1
        after_stop = results[1:]
        assert all(r.interest_accrued == 0 and r.penalty_accrued == 0 for r in after_stop)
        assert sum(r.interest_off_balance for r in after_stop) > 0 and sum(r.penalty_off_balance for r in after_stop)

        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.accrual_status == "non-accrual" and view.days_past_due > 90
        end = balances(bank)
        # reverse (the default): what it had accrued and not been paid left income and the receivables
        assert end[Acct.INTEREST_INCOME] == 0 and end[Acct.PENALTY_INCOME] == 0
        assert end[Acct.INTEREST_RECEIVABLE] == 0 and end[Acct.PENALTY_RECEIVABLE] == 0
        # ... and is tracked off-balance, with everything accrued since
        assert end[Acct.OFF_BALANCE_INTEREST] == view.interest_receivable
        assert end[Acct.OFF_BALANCE_PENALTY] == view.penalty_due
        assert end[Acct.OFF_BALANCE_INTEREST] > before[Acct.INTEREST_RECEIVABLE]
        assert reconciled(bank)
        with bank.uow() as u:
            kinds = u.session.execute(
                select(LoanEventRow.kind).where(LoanEventRow.loan_id == loan_id, LoanEventRow.business_date == STOPS)
            ).scalars()
            assert "LoanStoppedAccruing" in set(kinds)

    def test_keep_policy_leaves_what_was_accrued_on_the_books(self, bank: Bank) -> None:
        service.set_nonaccrual_settings(bank.uow(), bank.who, NonAccrualSettings(policy=AccruedInterestPolicy.KEEP))
        twelve_thousand(bank)
        close_through(bank, STOPS)
        at_stop = balances(bank)
        assert at_stop[Acct.INTEREST_INCOME] > 0 and at_stop[Acct.OFF_BALANCE_INTEREST] == 0
        close_through(bank, STOPS + timedelta(days=30))
        end = balances(bank)
        for code in (Acct.INTEREST_INCOME, Acct.PENALTY_INCOME, Acct.INTEREST_RECEIVABLE, Acct.PENALTY_RECEIVABLE):
            assert end[code] == at_stop[code]
        assert end[Acct.OFF_BALANCE_INTEREST] > 0 and end[Acct.OFF_BALANCE_PENALTY] > 0
        assert reconciled(bank)

    def test_a_bank_sets_its_own_threshold(self, bank: Bank) -> None:
        service.set_nonaccrual_settings(bank.uow(), bank.who, NonAccrualSettings(days=30, on_npl=False))
        assert service.nonaccrual_settings(bank.uow(), bank.who).days == 30
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=30))
        assert service.get_loan(bank.uow(), bank.who, loan_id).accrual_status == "accruing"
        close_through(bank, FIRST_DUE + timedelta(days=31))
        assert service.get_loan(bank.uow(), bank.who, loan_id).accrual_status == "non-accrual"
        assert reconciled(bank)

    def test_settings_are_checked_and_need_the_permission(self, bank: Bank) -> None:
        with pytest.raises(ValidationError, match="nonaccrual_policy"):
            NonAccrualSettings(policy="forget")  # type: ignore[arg-type]
        with pytest.raises(ValidationError, match="nonaccrual_days"):
            NonAccrualSettings(days=-1)
        with pytest.raises(PermissionDenied):
            service.set_nonaccrual_settings(bank.uow(), bank.principal(Role.AUDITOR), NonAccrualSettings(days=60))


class TestCollections:
    def test_principal_first_then_off_balance_interest_as_income(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, STOPS + timedelta(days=10))
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        overdue = [i for i in view.installments if i.status == "overdue"]
        current = next(i for i in view.installments if i.status == "pending")
        principal_due = sum((i.principal - i.principal_paid for i in [*overdue, current]), ZERO)
        before = balances(bank)
        paid = principal_due + D("100")
        rep = service.post_repayment(bank.uow(), bank.who, loan_id, paid)
        after = balances(bank)
        assert before[Acct.LOAN_PRINCIPAL] - after[Acct.LOAN_PRINCIPAL] == principal_due
        assert after[Acct.INTEREST_INCOME] - before[Acct.INTEREST_INCOME] == D("100")  # cash basis
        assert before[Acct.OFF_BALANCE_INTEREST] - after[Acct.OFF_BALANCE_INTEREST] == D("100")
        assert after[Acct.INTEREST_RECEIVABLE] == 0
        assert reconciled(bank)

        service.reverse_repayment(bank.uow(), bank.who, rep.id, "bounced")
        assert balances(bank) == before
        assert reconciled(bank)

    def test_pay_off_recognises_everything_off_balance(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, STOPS + timedelta(days=5))
        off = balances(bank)
        service.repay_early(bank.uow(), bank.who, loan_id)
        end = balances(bank)
        assert end[Acct.OFF_BALANCE_INTEREST] == 0 and end[Acct.OFF_BALANCE_PENALTY] == 0
        assert end[Acct.INTEREST_INCOME] >= off[Acct.OFF_BALANCE_INTEREST]
        assert end[Acct.PENALTY_INCOME] == off[Acct.OFF_BALANCE_PENALTY]
        assert end[Acct.LOAN_PRINCIPAL] == 0 and end[Acct.INTEREST_RECEIVABLE] == 0
        assert service.get_loan(bank.uow(), bank.who, loan_id).status == "closed"
        assert reconciled(bank)

    def test_write_off_leaves_off_balance_interest_on_the_memo_accounts(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, STOPS + timedelta(days=5))
        off = balances(bank)
        asked = service.request_write_off(bank.uow(), bank.who, loan_id, "uncollectable", reason_code="death",
                                          documents=["death certificate 2026-0042"])
        done = service.approve_write_off(bank.uow(), bank.principal(Role.APPROVER), asked.id)
        assert service.get_loan(bank.uow(), bank.who, loan_id).accrual_status == "written-off"
        end = balances(bank)
        assert done.charged == off[Acct.LOAN_PRINCIPAL]  # no income booked earlier in it
        assert done.against_allowance + done.shortfall == done.charged
        assert end[Acct.OFF_BALANCE_INTEREST] == off[Acct.OFF_BALANCE_INTEREST]
        assert end[Acct.WRITTEN_OFF_REGISTER] == done.charged
        assert reconciled(bank)


SECRET = "nonaccrual-api-test-secret-0123456789abcdef"


@pytest.fixture
def client(bank: Bank) -> Iterator[TestClient]:
    settings = Settings(
        mode="test", database_url=bank.engine.url.render_as_string(hide_password=False), secret_key=SECRET
    )
    app = FastAPI()
    app.state.settings = settings
    app.state.session_factory = make_session_factory(bank.engine)
    errors.install(app)
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def auditor(bank: Bank) -> Callable[[], dict[str, str]]:
    def make() -> dict[str, str]:
        with bank.uow() as u:
            row = tenancy.add_user(u.session, bank.tenant_id, "nonaccrual-auditor", "correct-horse-1", ["auditor"])
            who = tenancy.principal_for(row)
            u.commit()
        return {"Authorization": f"Bearer {tenancy.issue_token(who, Settings(mode='test', secret_key=SECRET))}"}

    return make


def test_the_loan_shows_its_accrual_status(
    bank: Bank, client: TestClient, auditor: Callable[[], dict[str, str]]
) -> None:
    loan_id = twelve_thousand(bank)
    headers = auditor()
    assert client.get(f"/api/v1/loans/{loan_id}", headers=headers).json()["accrual_status"] == "accruing"
    close_through(bank, STOPS)
    assert client.get(f"/api/v1/loans/{loan_id}", headers=headers).json()["accrual_status"] == "non-accrual"
