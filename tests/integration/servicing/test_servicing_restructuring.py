"""Extension (展期) and restructuring (重组) as a bank's credit and finance teams expect them, on SQLite and
PostgreSQL: an officer asks, a second person with the authority approves; the new schedule replaces the remaining
one on the approval day; capitalised arrears move from the receivables into principal with balanced per-loan
postings; a distressed loan is reclassified at least substandard until its observation period ends, while an
extension granted to a performing borrower leaves its class alone; the books stay balanced and reconciled."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.integration.servicing.kit import Bank
from tests.integration.servicing.test_servicing_api import SECRET
from tests.integration.servicing.test_servicing_api import token_for as token_for

from microlend.api import errors
from microlend.api.routers import restructures
from microlend.api.routers import servicing as servicing_api
from microlend.bootstrap import load_modules
from microlend.core.db import make_session_factory
from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.settings import Settings
from microlend.core.tables import AuditRow, TenantRow
from microlend.servicing import cob, service
from microlend.servicing.ledger import Acct
from microlend.servicing.repository import loans
from microlend.servicing.restructuring import RestructureKind, RestructureTerms
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import LoanClassStateRow, LoanEventRow

D = Decimal
ZERO = D(0)
FIRST_DUE = date(2026, 2, 15)  # the bank's business date starts at 15 Jan 2026
EXTEND = RestructureTerms(RestructureKind.EXTENSION, 18)


@pytest.fixture(autouse=True)
def _handlers() -> None:
    load_modules()


def officer(bank: Bank) -> Principal:
    return Principal(user_id=55, tenant_id=bank.tenant_id, username="loan-officer",
                     roles=frozenset({Role.CREDIT_OFFICER}))


def approver(bank: Bank) -> Principal:
    return bank.principal(Role.APPROVER)


def twelve_thousand(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id


def balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


def reconciled(bank: Bank) -> bool:
    rec = service.reconcile(bank.uow(), bank.who)
    assert rec.ok, [(r.account, r.general_ledger, r.sub_ledger) for r in rec.rows if r.difference]
    return rec.ok


def close_through(bank: Bank, last: date) -> None:
    cob.run_close_of_business(bank.uow(), bank.who, through=last)


def today(bank: Bank) -> date:
    with bank.uow() as u:
        row = u.session.get(TenantRow, bank.tenant_id)
        assert row is not None
        return row.business_date


def timeline(bank: Bank, loan_id: int, kind: str) -> list[dict[str, Any]]:
    with bank.uow() as u:
        return list(u.session.execute(select(LoanEventRow.data).where(
            LoanEventRow.loan_id == loan_id, LoanEventRow.kind == kind).order_by(LoanEventRow.id)).scalars())


def pay_due(bank: Bank, loan_id: int) -> Decimal:
    on = today(bank)
    with bank.uow() as u:
        loan = loans(u).get(bank.tenant_id, loan_id)
        owed = sum((d.amount for d in loan.current_dues(on)), ZERO) - loan.credit_balance
    if owed > 0:
        service.post_repayment(bank.uow(), bank.who, loan_id, owed)
    return owed


class TestAnExtensionForAPerformingBorrower:
    def test_the_new_schedule_replaces_the_rest_and_the_class_stays_normal(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, date(2026, 1, 24))  # ten days into the first period, nothing due
        before = service.get_loan(bank.uow(), bank.who, loan_id)
        books_before = balances(bank)
        asked = service.request_restructure(bank.uow(), officer(bank), loan_id, EXTEND, "a longer trading cycle")
        assert asked.status == "pending" and asked.loan_class == "normal"
        assert service.get_loan(bank.uow(), bank.who, loan_id).installments == before.installments
        with pytest.raises(PermissionDenied, match="four eyes"):  # the requester may not approve
            service.approve_restructure(bank.uow(), Principal(55, bank.tenant_id, "loan-officer",
                                                              frozenset({Role.ADMIN})), asked.id)
        with pytest.raises(PermissionDenied):  # an officer has no authority to approve
            service.approve_restructure(bank.uow(), officer(bank), asked.id)
        done = service.approve_restructure(bank.uow(), approver(bank), asked.id)
        assert done.status == "approved" and not done.restructured and done.observe_until is None
        assert done.effective_on == date(2026, 1, 25) and done.principal == D("12000")
        after = service.get_loan(bank.uow(), bank.who, loan_id)
        # the running period is cut at the approval day: ten days of interest (12,000 × 1 % × 10/31) due now
        cut = after.installments[0]
        assert (cut.due_date, cut.principal, cut.interest) == (date(2026, 1, 25), ZERO, D("38.71"))
        new = after.installments[1:]
        assert len(new) == 18 and [i.number for i in new] == list(range(2, 20))
        assert all(i.due_date.day == 15 for i in new) and new[0].due_date == date(2026, 2, 15)
        assert new[0].broken_period and new[0].days == 21  # on the loan's own day: a broken first period
        assert sum((i.principal for i in new), ZERO) == D("12000")
        assert after.maturity_date == date(2027, 7, 15) > before.maturity_date
        assert after.loan_class == "normal" and after.outstanding_principal == D("12000")
        end = balances(bank)
        assert end[Acct.LOAN_PRINCIPAL] == books_before[Acct.LOAN_PRINCIPAL]
        assert end[Acct.INTEREST_RECEIVABLE] == D("38.71")  # ten days, on the books
        assert timeline(bank, loan_id, "LoanRestructured")[0]["kind"] == "extension"
        assert reconciled(bank)
        # the borrower pays the interest to date and then the new schedule through close of business
        assert pay_due(bank, loan_id) == D("38.71")
        close_through(bank, date(2026, 2, 14))
        assert balances(bank)[Acct.INTEREST_RECEIVABLE] == new[0].interest
        assert today(bank) == date(2026, 2, 15)
        assert pay_due(bank, loan_id) == new[0].payment
        close_through(bank, date(2026, 2, 20))
        assert service.get_loan(bank.uow(), bank.who, loan_id).days_past_due == 0
        assert reconciled(bank)

    def test_an_extension_must_extend_and_stay_within_the_legal_limit(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        with pytest.raises(ValidationError, match="must end after"):
            service.request_restructure(bank.uow(), officer(bank), loan_id,
                                        RestructureTerms(RestructureKind.EXTENSION, 6), "shorter")
        with pytest.raises(ValidationError, match="at most 12 months"):
            service.request_restructure(bank.uow(), officer(bank), loan_id,
                                        RestructureTerms(RestructureKind.EXTENSION, 30), "much longer")
        with pytest.raises(ValidationError, match="annual_rate"):
            service.request_restructure(bank.uow(), officer(bank), loan_id,
                                        RestructureTerms(RestructureKind.EXTENSION, 18, D("0.30")), "dearer")
        assert service.list_restructures(bank.uow(), approver(bank)) == []


class TestARestructuringOfADistressedLoan:
    def test_arrears_are_capitalised_and_the_loan_is_substandard_until_observed(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=40))  # 40 days past due, interest and penalty on the books
        before = balances(bank)
        loan_before = service.get_loan(bank.uow(), bank.who, loan_id)
        assert loan_before.days_past_due > 0 and before[Acct.PENALTY_RECEIVABLE] > 0
        terms = RestructureTerms(RestructureKind.RESTRUCTURE, 24, D("0.10"), capitalise_arrears=True)
        asked = service.request_restructure(bank.uow(), officer(bank), loan_id, terms, "shop flooded, insured")
        with pytest.raises(Conflict, match="waiting"):
            service.request_restructure(bank.uow(), officer(bank), loan_id, terms, "again")
        done = service.approve_restructure(bank.uow(), approver(bank), asked.id)
        end = balances(bank)
        assert done.restructured and done.observe_until is not None
        # everything owed became principal: receivables cleared into 1301, no cash moved, income unchanged
        assert end[Acct.INTEREST_RECEIVABLE] == 0 and end[Acct.PENALTY_RECEIVABLE] == 0
        capitalised_receivables = before[Acct.INTEREST_RECEIVABLE] + before[Acct.PENALTY_RECEIVABLE]
        recognised = end[Acct.INTEREST_INCOME] - before[Acct.INTEREST_INCOME]  # interest to date of the cut period
        assert end[Acct.LOAN_PRINCIPAL] == before[Acct.LOAN_PRINCIPAL] + capitalised_receivables + recognised
        assert end[Acct.CASH] == before[Acct.CASH]
        after = service.get_loan(bank.uow(), bank.who, loan_id)
        assert after.outstanding_principal == done.principal == end[Acct.LOAN_PRINCIPAL]
        assert done.principal - loan_before.outstanding_principal == capitalised_receivables + recognised
        assert done.capitalised > capitalised_receivables  # the overdue principal as well
        assert after.annual_rate == D("0.10") and after.loan_class == "substandard" and after.penalty_due == 0
        assert all(i.status == "paid" for i in after.installments if i.due_date <= done.effective_on)
        with bank.uow() as u:
            state = u.session.get(LoanClassStateRow, loan_id)
            assert state is not None and state.restructure_until_day == done.observe_until.toordinal()
            actions = u.session.execute(select(AuditRow.action).where(
                AuditRow.tenant_id == bank.tenant_id, AuditRow.object_type == "restructure")).scalars().all()
        assert sorted(actions) == ["restructure.approve", "restructure.request"]
        changes = service.class_history(bank.uow(), bank.who, loan_id)
        assert changes[-1].to_class == "substandard" and "restructured" in changes[-1].reason
        assert reconciled(bank)
        # paying on time does not upgrade it before the observation ends
        close_through(bank, after.installments[-24].due_date - timedelta(days=1))
        pay_due(bank, loan_id)
        close_through(bank, after.installments[-24].due_date + timedelta(days=3))
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.days_past_due == 0 and view.loan_class == "substandard"
        assert reconciled(bank)


class TestEligibility:
    def test_written_off_and_closed_loans_are_refused(self, bank: Bank) -> None:
        gone = twelve_thousand(bank)
        service.downgrade_loan(bank.uow(), officer(bank), gone, "loss", "fraud")
        w = service.request_write_off(bank.uow(), bank.who, gone, "uncollectable")
        with pytest.raises(Conflict, match="write-off waiting"):
            service.request_restructure(bank.uow(), officer(bank), gone, EXTEND, "one more chance")
        service.approve_write_off(bank.uow(), approver(bank), w.id)
        with pytest.raises(Conflict, match="written off"):
            service.request_restructure(bank.uow(), officer(bank), gone, EXTEND, "one more chance")
        paid = twelve_thousand(bank)
        service.repay_early(bank.uow(), bank.who, paid)
        with pytest.raises(Conflict, match="closed"):
            service.request_restructure(bank.uow(), officer(bank), paid, EXTEND, "no need")
        with pytest.raises(PermissionDenied):
            service.request_restructure(bank.uow(), bank.principal(Role.COLLECTOR), paid, EXTEND, "collector")

    def test_a_rejection_moves_nothing_and_another_bank_sees_nothing(self, bank: Bank, other_bank: Any) -> None:
        loan_id = twelve_thousand(bank)
        asked = service.request_restructure(bank.uow(), officer(bank), loan_id, EXTEND, "longer cycle")
        before, books = service.get_loan(bank.uow(), bank.who, loan_id), balances(bank)
        theirs = other_bank()
        with pytest.raises(Exception, match="not found"):
            service.approve_restructure(theirs.uow(), theirs.principal(Role.APPROVER), asked.id)
        done = service.reject_restructure(bank.uow(), approver(bank), asked.id, "no evidence of the cycle")
        assert done.status == "rejected" and done.decision_reason == "no evidence of the cycle"
        assert service.get_loan(bank.uow(), bank.who, loan_id) == before and balances(bank) == books
        with pytest.raises(Conflict, match="already rejected"):
            service.approve_restructure(bank.uow(), approver(bank), asked.id)
        assert [v.id for v in service.list_restructures(bank.uow(), approver(bank), loan_id=loan_id)] == [asked.id]
        assert service.list_restructures(theirs.uow(), theirs.principal(Role.APPROVER)) == []

    def test_a_non_accrual_loans_arrears_are_not_capitalised(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=95))  # past 90 days: non-accrual
        assert service.get_loan(bank.uow(), bank.who, loan_id).accrual_status == "non-accrual"
        with pytest.raises(Conflict, match="non-accrual"):
            service.request_restructure(bank.uow(), officer(bank), loan_id, RestructureTerms(
                RestructureKind.RESTRUCTURE, 24, capitalise_arrears=True), "flood")
        asked = service.request_restructure(bank.uow(), officer(bank), loan_id, RestructureTerms(
            RestructureKind.RESTRUCTURE, 24), "flood")
        done = service.approve_restructure(bank.uow(), approver(bank), asked.id)
        assert done.restructured and done.capitalised == 0
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.days_past_due > 0  # the arrears stay due as they were
        assert reconciled(bank)


@pytest.fixture
def client(bank: Bank) -> Iterator[TestClient]:
    settings = Settings(
        mode="test", database_url=bank.engine.url.render_as_string(hide_password=False), secret_key=SECRET
    )
    app = FastAPI()
    app.state.settings = settings
    app.state.session_factory = make_session_factory(bank.engine)
    errors.install(app)
    app.include_router(servicing_api.router)
    app.include_router(restructures.router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


class TestTheApi:
    def test_request_list_approve_with_clear_refusals(
        self, bank: Bank, client: TestClient, token_for: Callable[..., dict[str, str]]
    ) -> None:
        loan_id = twelve_thousand(bank)
        officer_token = token_for(Role.CREDIT_OFFICER)
        body = {"kind": "extension", "term_months": 18, "reason": "a longer trading cycle"}
        bad = client.post(f"/api/v1/loans/{loan_id}/restructure", json={**body, "kind": "rollover"},
                          headers=officer_token)
        assert bad.status_code == 422
        short = client.post(f"/api/v1/loans/{loan_id}/restructure", json={**body, "term_months": 3},
                            headers=officer_token)
        assert short.status_code == 422 and "must end after" in short.text
        r = client.post(f"/api/v1/loans/{loan_id}/restructure", json=body, headers=officer_token)
        assert r.status_code == 202, r.text
        asked = r.json()
        assert asked["status"] == "pending" and asked["kind"] == "extension" and asked["annual_rate"] is None
        again = client.post(f"/api/v1/loans/{loan_id}/restructure", json=body, headers=officer_token)
        assert again.status_code == 409 and "waiting for approval" in again.text
        mine = client.post(f"/api/v1/restructures/{asked['id']}/approve", headers=officer_token)
        assert mine.status_code == 403
        listed = client.get("/api/v1/restructures", params={"status": "pending", "loan_id": loan_id},
                            headers=token_for(Role.APPROVER))
        assert [x["id"] for x in listed.json()] == [asked["id"]]
        ok = client.post(f"/api/v1/restructures/{asked['id']}/approve", headers=token_for(Role.APPROVER))
        assert ok.status_code == 201, ok.text
        assert ok.json()["maturity_after"] > ok.json()["maturity_before"] and ok.json()["restructured"] is False
        schedule = client.get(f"/api/v1/loans/{loan_id}/schedule", headers=token_for(Role.AUDITOR)).json()
        assert len(schedule["installments"]) == 18
        service.repay_early(bank.uow(), bank.who, loan_id)
        closed = client.post(f"/api/v1/loans/{loan_id}/restructure", json=body, headers=officer_token)
        assert closed.status_code == 409 and "closed" in closed.text
