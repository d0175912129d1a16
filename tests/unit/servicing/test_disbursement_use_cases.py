"""Disbursement and credit-line drawdown on a fake unit of work: the schedule, the balanced entry, the event
on commit, idempotent replay, tenant isolation and the available limit — no database."""

from __future__ import annotations

from dataclasses import replace
from datetime import date
from decimal import Decimal

import pytest
from tests.unit.servicing.fakes import FakeUnitOfWork, give_credit_line, staff, stock_catalogue

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.servicing import service
from microlend.servicing.apr import apr
from microlend.servicing.domain import Loan
from microlend.servicing.events import LoanDisbursed
from microlend.servicing.ledger import Acct, JournalEntry, natural_balance
from microlend.servicing.schedules import RepaymentMethod, build_schedule

D = Decimal
TODAY = date(2026, 1, 15)
WHO = staff()
OTHER_BANK = staff(tenant_id=2)


@pytest.fixture
def uow() -> FakeUnitOfWork:
    """Two banks with the standard catalogue; business date 2026-01-15."""
    fake = FakeUnitOfWork(TODAY)
    stock_catalogue(fake)
    stock_catalogue(fake, tenant_id=2)
    return fake


def balance(uow: FakeUnitOfWork, account: str, loan_id: int | None = None) -> Decimal:
    return natural_balance(account, uow.ledger.balance(account, loan_id))


def loan_request(code: str = "EI-STD", principal: str = "12000", term: int = 12, **kw: object) -> service.Disbursement:
    return service.Disbursement(code, D(principal), term, **kw)  # type: ignore[arg-type]


class TestDisburse:
    def test_a_loan_gets_its_schedule_and_a_balanced_entry_of_principal_against_cash(
        self, uow: FakeUnitOfWork
    ) -> None:
        view = service.disburse(uow, WHO, loan_request(customer_id=7, application_id=3))
        expected = build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, D("12000"), D("0.0888"), 12, TODAY)
        assert [(i.number, i.due_date, i.principal, i.interest) for i in view.installments] == [
            (i.number, i.due_date, i.principal, i.interest) for i in expected.installments
        ]
        assert view.status == "active" and view.outstanding_principal == D("12000")
        assert view.maturity_date == expected.maturity_date and view.customer_id == 7
        [entry] = uow.ledger.entries()
        assert entry.kind == "disbursement" and entry.memo == f"loan {view.id} disbursed"
        assert entry.total_debit == entry.total_credit == D("12000")
        assert balance(uow, Acct.LOAN_PRINCIPAL, view.id) == D("12000")
        assert balance(uow, Acct.CASH) == D("-12000") and balance(uow, Acct.FEE_INCOME) == 0
        stored = uow.loans.get(1, view.id)
        assert stored.application_id == 3 and stored.grace_days == 3
        assert stored.penalty_rate == D("0.0888") * D("1.5")
        assert uow.loans.history(view.id) == ["LoanDisbursed"]

    def test_an_upfront_fee_is_deducted_from_the_cash_paid_out_and_deferred(self, uow: FakeUnitOfWork) -> None:
        view = service.disburse(uow, WHO, loan_request("IO-STD", "10000", 6))
        assert view.upfront_fee == D("50.00") and view.deferred_fee == D("50.00")
        [entry] = uow.ledger.entries()
        assert entry.total_debit == entry.total_credit == D("10000")
        assert balance(uow, Acct.CASH) == D("-9950.00") and balance(uow, Acct.FEE_INCOME) == 0
        assert balance(uow, Acct.DEFERRED_FEE) == D("50.00")  # a credit balance, shown natural

    def test_the_event_is_published_only_on_commit(self, uow: FakeUnitOfWork) -> None:
        view = service.disburse(uow, WHO, loan_request())
        assert uow.published == [LoanDisbursed(1, view.id, TODAY, "12000.00")] and uow.commits == 1

        def refuse(who: Principal, on: date, entry: JournalEntry) -> int:
            raise Conflict("the books are closed")

        uow.ledger.post = refuse  # type: ignore[method-assign]
        with pytest.raises(Conflict, match="books are closed"):
            service.disburse(uow, WHO, loan_request("EP-STD"))
        assert len(uow.published) == 1 and uow.commits == 1
        assert [loan.id for loan in uow.loans.state.loans.values()] == [view.id]

    def test_the_audit_record_names_the_rate_and_apr(self, uow: FakeUnitOfWork) -> None:
        view = service.disburse(uow, WHO, loan_request(annual_rate=D("0.1")))
        [(action, object_id, record)] = uow.audit.state.records
        schedule = build_schedule(RepaymentMethod.EQUAL_INSTALLMENT, D("12000"), D("0.1"), 12, TODAY)
        assert (action, object_id) == ("loan.disburse", view.id)
        assert record["after"]["annual_rate"] == "0.1" and record["after"]["apr"] == str(apr(schedule))
        assert record["after"]["product_code"] == "EI-STD"

    def test_the_same_key_replays_the_first_loan(self, uow: FakeUnitOfWork) -> None:
        first = service.disburse(uow, WHO, loan_request(idempotency_key="d-1"))
        again = service.disburse(uow, WHO, loan_request(idempotency_key="d-1"))
        assert again == first
        assert len(uow.ledger.entries()) == 1 and len(uow.published) == 1 and uow.commits == 1

    def test_a_key_reused_with_another_request_is_refused(self, uow: FakeUnitOfWork) -> None:
        service.disburse(uow, WHO, loan_request(idempotency_key="d-1"))
        with pytest.raises(ValidationError, match="idempotency_key: already used with a different request"):
            service.disburse(uow, WHO, loan_request(principal="12001", idempotency_key="d-1"))
        assert len(uow.ledger.entries()) == 1

    def test_another_bank_may_use_the_same_key(self, uow: FakeUnitOfWork) -> None:
        mine = service.disburse(uow, WHO, loan_request(idempotency_key="d-1"))
        theirs = service.disburse(uow, OTHER_BANK, loan_request(idempotency_key="d-1"))
        assert theirs.id != mine.id

    def test_another_banks_customer_or_no_customer_at_all_is_not_found(self, uow: FakeUnitOfWork) -> None:
        for customer in (8, 999):  # 8 is a customer of bank 2
            with pytest.raises(NotFound, match=f"customer {customer} not found"):
                service.disburse(uow, WHO, loan_request(customer_id=customer))
        assert uow.loans.state.loans == {} and uow.commits == 0
        assert service.disburse(uow, OTHER_BANK, loan_request(customer_id=8)).customer_id == 8

    def test_another_banks_product_is_refused(self, uow: FakeUnitOfWork) -> None:
        uow.loans.state.products = {k: p for k, p in uow.loans.state.products.items() if p.tenant_id == 2
                                    or p.product.code != "BL-STD"}
        with pytest.raises(NotFound, match="product_code: no product 'BL-STD'"):
            service.disburse(uow, WHO, loan_request("BL-STD", term=6))
        assert service.disburse(uow, OTHER_BANK, loan_request("BL-STD", term=6)).status == "active"

    def test_a_product_no_longer_offered_is_refused(self, uow: FakeUnitOfWork) -> None:
        products = uow.loans.state.products
        for pid, p in list(products.items()):
            if p.tenant_id == 1 and p.product.code == "EI-STD":
                products[pid] = replace(p, active=False)
        with pytest.raises(NotFound, match="product_code"):
            service.disburse(uow, WHO, loan_request())

    @pytest.mark.parametrize(
        ("request_", "message"),
        [
            (loan_request("RV-STD"), "product_code: a revolving product is used through a credit line"),
            (loan_request(principal="500"), "amount: must be between 1000 and 300000"),
            (loan_request(term=48), "term_months: must be between 3 and 36"),
            (loan_request(annual_rate=D("0.5")), "annual_rate: must be between"),
            (loan_request(annual_rate=D("0.1234567")), "annual_rate: at most 6 decimal places"),
            (loan_request(principal="1000.001"), "principal: at most 2 decimal places"),
            (loan_request(principal="-5"), "principal: must be a positive amount"),
            (loan_request(idempotency_key=""), "idempotency_key: must be 1-255 characters"),
        ],
    )
    def test_invalid_requests_are_refused_and_nothing_is_kept(
        self, uow: FakeUnitOfWork, request_: service.Disbursement, message: str
    ) -> None:
        with pytest.raises(ValidationError, match=message):
            service.disburse(uow, WHO, request_)
        assert uow.loans.state.loans == {} and uow.ledger.entries() == [] and uow.commits == 0

    def test_a_user_without_the_permission_is_refused(self, uow: FakeUnitOfWork) -> None:
        viewer = Principal(user_id=2, tenant_id=1, username="auditor", roles=frozenset({Role.AUDITOR}))
        with pytest.raises(PermissionDenied):
            service.disburse(uow, viewer, loan_request())


class TestDrawDown:
    def test_a_drawdown_is_a_revolving_loan_until_the_line_expires(self, uow: FakeUnitOfWork) -> None:
        line = give_credit_line(uow, "50000")
        view = service.draw_down(uow, WHO, line.id, D("20000"))
        assert view.method == "revolving" and view.credit_line_id == line.id and view.customer_id == 7
        assert view.annual_rate == D("0.108") and view.maturity_date == line.expires_on
        assert [(i.number, i.period_start, i.due_date, i.principal, i.interest) for i in view.installments] == [
            (1, TODAY, line.expires_on, D("20000"), D(0))
        ]
        [entry] = uow.ledger.entries()
        assert entry.total_debit == entry.total_credit == D("20000")
        assert balance(uow, Acct.CASH) == D("-20000") and balance(uow, Acct.LOAN_PRINCIPAL) == D("20000")
        assert uow.published == [LoanDisbursed(1, view.id, TODAY, "20000.00")]
        assert uow.audit.state.records == [
            ("loan.drawdown", view.id, {"before": None, "after": {"credit_line_id": line.id, "amount": "20000.00"},
                                        "reason": ""})
        ]

    def test_a_drawdown_cannot_exceed_the_available_limit(self, uow: FakeUnitOfWork) -> None:
        line = give_credit_line(uow, "50000")
        service.draw_down(uow, WHO, line.id, D("30000"))
        with pytest.raises(ValidationError, match=r"amount: exceeds the available limit 20000\.00"):
            service.draw_down(uow, WHO, line.id, D("20000.01"))
        service.draw_down(uow, WHO, line.id, D("20000"))
        assert len(uow.ledger.entries()) == 2

    def test_a_repaid_drawdown_frees_the_limit(self, uow: FakeUnitOfWork) -> None:
        line = give_credit_line(uow, "50000")
        first = service.draw_down(uow, WHO, line.id, D("50000"))
        service.repay_early(uow, WHO, first.id)
        assert service.draw_down(uow, WHO, line.id, D("50000")).outstanding_principal == D("50000")

    def test_another_banks_line_is_not_found(self, uow: FakeUnitOfWork) -> None:
        theirs = give_credit_line(uow, "50000", tenant_id=2)
        with pytest.raises(NotFound, match=f"credit line {theirs.id} not found"):
            service.draw_down(uow, WHO, theirs.id, D("1000"))
        assert uow.ledger.entries() == []

    @pytest.mark.parametrize(("status", "expires_on"), [("closed", date(2027, 1, 15)), ("open", TODAY)])
    def test_a_closed_or_expired_line_takes_no_drawdown(
        self, uow: FakeUnitOfWork, status: str, expires_on: date
    ) -> None:
        line = give_credit_line(uow, "50000", status=status, expires_on=expires_on)
        with pytest.raises(Conflict, match="not open for drawdowns"):
            service.draw_down(uow, WHO, line.id, D("1000"))

    def test_the_same_key_replays_and_another_amount_is_refused(self, uow: FakeUnitOfWork) -> None:
        line = give_credit_line(uow, "50000")
        first = service.draw_down(uow, WHO, line.id, D("1000"), idempotency_key="w-1")
        assert service.draw_down(uow, WHO, line.id, D("1000"), idempotency_key="w-1") == first
        with pytest.raises(ValidationError, match="idempotency_key"):
            service.draw_down(uow, WHO, line.id, D("2000"), idempotency_key="w-1")
        assert len(uow.ledger.entries()) == 1 and uow.commits == 1


def test_a_key_taken_meanwhile_by_a_concurrent_request_replays_its_loan(uow: FakeUnitOfWork) -> None:
    """The first lookup misses; the concurrent request's loan is in place when this one is added."""
    concurrent = service.disburse(uow, WHO, loan_request(idempotency_key="d-9"))
    looked_up = uow.loans.by_disbursement_key
    calls: list[str] = []

    def late(tenant_id: int, key: str) -> Loan | None:
        calls.append(key)
        return None if len(calls) == 1 else looked_up(tenant_id, key)

    uow.loans.by_disbursement_key = late  # type: ignore[method-assign]
    assert service.disburse(uow, WHO, loan_request(idempotency_key="d-9")) == concurrent
    with pytest.raises(ValidationError, match="already used with a different request"):
        service.disburse(uow, WHO, loan_request(principal="13000", idempotency_key="d-9"))
    assert len(uow.ledger.entries()) == 1 and uow.commits == 1 and len(calls) == 4


class TestCreditLines:
    def test_an_opened_line_takes_drawdowns_up_to_its_limit(self, uow: FakeUnitOfWork) -> None:
        line = service.open_credit_line(uow, WHO, "RV-STD", D("30000"), customer_id=7, months=6)
        assert (line.limit, line.annual_rate, line.opened_on, line.expires_on) == (
            D("30000"), D("0.1080"), TODAY, date(2026, 7, 15)
        )
        assert line.status == "open" and line.drawn == 0 and line.available == D("30000")
        assert uow.audit.actions() == ["credit_line.open"]
        assert service.draw_down(uow, WHO, line.id, D("30000")).customer_id == 7
        with pytest.raises(ValidationError, match=r"exceeds the available limit 0\.00"):
            service.draw_down(uow, WHO, line.id, D("1"))

    def test_a_line_needs_a_revolving_product_of_the_bank(self, uow: FakeUnitOfWork) -> None:
        with pytest.raises(ValidationError, match="product_code: a credit line needs a revolving product"):
            service.open_credit_line(uow, WHO, "EI-STD", D("30000"))
        with pytest.raises(NotFound, match="product_code: no product 'XX'"):
            service.open_credit_line(uow, WHO, "XX", D("30000"))
        with pytest.raises(ValidationError, match="amount: must be between 1000 and 300000"):
            service.open_credit_line(uow, WHO, "RV-STD", D("300001"))
        assert uow.loans.state.credit_lines == {} and uow.commits == 0

    def test_a_line_for_another_banks_customer_is_not_found(self, uow: FakeUnitOfWork) -> None:
        with pytest.raises(NotFound, match="customer 8 not found"):
            service.open_credit_line(uow, WHO, "RV-STD", D("30000"), customer_id=8)
        assert uow.loans.state.credit_lines == {} and uow.commits == 0

    def test_a_lower_limit_stops_drawdowns_and_a_higher_one_stays_within_the_product(
        self, uow: FakeUnitOfWork
    ) -> None:
        line = service.open_credit_line(uow, WHO, "RV-STD", D("30000"))
        service.draw_down(uow, WHO, line.id, D("20000"))
        lowered = service.change_credit_line_limit(uow, WHO, line.id, D("10000"), "risk review")
        assert (lowered.limit, lowered.drawn, lowered.available) == (D("10000"), D("20000"), D(0))
        with pytest.raises(ValidationError, match="exceeds the available limit"):
            service.draw_down(uow, WHO, line.id, D("1"))
        with pytest.raises(ValidationError, match=r"new_limit: above the product's maximum 300000\.00"):
            service.change_credit_line_limit(uow, WHO, line.id, D("300001"), "growth")
        with pytest.raises(ValidationError, match="reason"):
            service.change_credit_line_limit(uow, WHO, line.id, D("40000"), " ")
        raised = service.change_credit_line_limit(uow, WHO, line.id, D("40000"), "growth")
        assert raised.available == D("20000")
        assert uow.audit.state.records[-1] == (
            "credit_line.change_limit", line.id,
            {"before": {"limit": "10000.00"}, "after": {"limit": "40000.00"}, "reason": "growth"},
        )

    def test_another_banks_line_is_not_found_and_a_closed_line_keeps_its_limit(self, uow: FakeUnitOfWork) -> None:
        theirs = give_credit_line(uow, "50000", tenant_id=2)
        with pytest.raises(NotFound):
            service.change_credit_line_limit(uow, WHO, theirs.id, D("1000"), "review")
        closed = give_credit_line(uow, "50000", status="closed")
        with pytest.raises(Conflict, match="only an open line's limit can change"):
            service.change_credit_line_limit(uow, WHO, closed.id, D("1000"), "review")
        assert uow.loans.state.credit_lines[theirs.id].limit == D("50000")
