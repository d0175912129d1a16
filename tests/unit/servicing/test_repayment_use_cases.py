"""The repayment, reversal, credit balance, early repayment use cases on a fake unit of work:
permission and tenant checks, idempotency, what is posted, audited and published — no database."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from decimal import Decimal

import pytest
from tests.unit.servicing.fakes import FakeUnitOfWork, make_loan, staff

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.servicing import service
from microlend.servicing.events import LoanRepaid, RepaymentPosted
from microlend.servicing.ledger import Acct, natural_balance
from microlend.servicing.repository import loans

D = Decimal
DISBURSED = date(2026, 1, 15)
WHO = staff()


@pytest.fixture
def uow() -> FakeUnitOfWork:
    """A bank holding one 10,000 loan at 12% over 12 months (EI-STD), disbursed on 2026-01-15."""
    fake = FakeUnitOfWork(DISBURSED)
    fake.loans.add(make_loan("10000", "0.12", 12, DISBURSED))
    return fake


def balance(uow: FakeUnitOfWork, account: str) -> Decimal:
    return natural_balance(account, uow.ledger.balance(account))


def on(uow: FakeUnitOfWork, day: date) -> FakeUnitOfWork:
    uow.ledger.state.business_date = day
    return uow


class TestPostRepayment:
    def test_an_installment_on_its_due_date_is_settled_in_order(self, uow: FakeUnitOfWork) -> None:
        rep = service.post_repayment(on(uow, date(2026, 2, 15)), WHO, 1, D("888.49"))
        assert rep.credit == 0 and rep.loan_status == "active" and rep.value_date == date(2026, 2, 15)
        view = service.get_loan(uow, WHO, 1)
        assert view.installments[0].status == "paid"
        assert view.outstanding_principal == D("9211.51")
        assert balance(uow, Acct.CASH) == D("888.49")
        assert uow.audit.actions() == ["repayment.post"] and uow.commits == 1

    def test_overpayment_is_held_as_credit_balance(self, uow: FakeUnitOfWork) -> None:
        rep = service.post_repayment(uow, WHO, 1, D("1000"))
        assert rep.credit == D("111.51")
        assert balance(uow, Acct.BORROWER_CREDIT) == D("111.51")
        assert service.get_loan(uow, WHO, 1).credit_balance == D("111.51")

    def test_the_same_key_posts_once(self, uow: FakeUnitOfWork) -> None:
        a = service.post_repayment(uow, WHO, 1, D("100"), idempotency_key="r-1")
        b = service.post_repayment(uow, WHO, 1, D("100"), idempotency_key="r-1")
        assert a.id == b.id
        with pytest.raises(ValidationError, match="idempotency_key"):
            service.post_repayment(uow, WHO, 1, D("101"), idempotency_key="r-1")
        assert balance(uow, Acct.CASH) == D("100")

    def test_a_failed_validation_does_not_use_up_the_key(self, uow: FakeUnitOfWork) -> None:
        with pytest.raises(ValidationError):
            service.post_repayment(uow, WHO, 1, D("-1"), idempotency_key="r-2")
        with pytest.raises(ValidationError, match="2 decimal places"):
            service.post_repayment(uow, WHO, 1, D("1.005"), idempotency_key="r-2")
        service.post_repayment(uow, WHO, 1, D("10"), idempotency_key="r-2")

    def test_paying_the_whole_schedule_closes_the_loan(self) -> None:
        uow = FakeUnitOfWork(DISBURSED)
        loan = uow.loans.add(make_loan("10000", "0.12", 3, DISBURSED))
        for inst in loan.installments:
            service.post_repayment(on(uow, inst.due_date), WHO, 1, inst.principal + inst.interest)
        view = service.get_loan(uow, WHO, 1)
        assert view.status == "closed" and view.outstanding_principal == 0
        assert balance(uow, Acct.INTEREST_INCOME) == sum(i.interest for i in loan.installments)
        posted = [e for e in uow.published if isinstance(e, RepaymentPosted)]
        assert [(e.kind, e.value_date) for e in posted] == [("repayment", i.due_date) for i in loan.installments]
        assert [e for e in uow.published if e not in posted] == [LoanRepaid(1, 1, loan.installments[-1].due_date)]
        assert uow.loans.history(1) == ["LoanRepaid"]
        with pytest.raises(Conflict):
            service.post_repayment(uow, WHO, 1, D("1"))

    def test_nothing_is_kept_when_the_use_case_fails(self, uow: FakeUnitOfWork) -> None:
        uow.loans.state.loans[1].status = "closed"
        with pytest.raises(Conflict, match="closed"):
            service.post_repayment(uow, WHO, 1, D("10"))
        assert uow.ledger.entries() == [] and uow.commits == 0


class TestReversal:
    def test_reversal_then_replay_equals_never_having_posted(self, uow: FakeUnitOfWork) -> None:
        twin = FakeUnitOfWork(DISBURSED)
        twin.loans.add(make_loan("10000", "0.12", 12, DISBURSED))
        payments = [D("500"), D("700"), D("900")]
        reps = [service.post_repayment(on(uow, date(2026, 3, 1)), WHO, 1, p) for p in payments]
        for p in (payments[0], payments[2]):
            service.post_repayment(on(twin, date(2026, 3, 1)), WHO, 1, p)
        reversed_ = service.reverse_repayment(uow, WHO, reps[1].id, "cheque bounced")
        assert reversed_.status == "reversed"
        a, b = service.get_loan(uow, WHO, 1), service.get_loan(twin, WHO, 1)
        assert [(i.principal_paid, i.interest_paid, i.status) for i in a.installments] == [
            (i.principal_paid, i.interest_paid, i.status) for i in b.installments
        ]
        assert a.credit_balance == b.credit_balance
        for account in Acct:
            assert balance(uow, account) == balance(twin, account), account
        replayed = uow.loans.repayments_of(1)[2]
        assert replayed.status == "posted" and uow.ledger.entry(replayed.journal_entry_id).kind == "repayment.replay"
        assert uow.loans.history(1) == ["RepaymentReversed"]
        assert uow.audit.actions()[-1] == "repayment.reverse"

    def test_a_reversed_repayment_cannot_be_reversed_again(self, uow: FakeUnitOfWork) -> None:
        rep = service.post_repayment(uow, WHO, 1, D("100"))
        service.reverse_repayment(uow, WHO, rep.id, "error")
        with pytest.raises(Conflict):
            service.reverse_repayment(uow, WHO, rep.id, "again")

    def test_a_reason_is_required(self, uow: FakeUnitOfWork) -> None:
        rep = service.post_repayment(uow, WHO, 1, D("100"))
        with pytest.raises(ValidationError, match="reason"):
            service.reverse_repayment(uow, WHO, rep.id, "  ")

    def test_reversing_the_closing_payment_reopens_the_loan(self) -> None:
        uow = FakeUnitOfWork(DISBURSED)
        loan = uow.loans.add(make_loan("10000", "0.12", 1, DISBURSED))
        rep = service.post_repayment(uow, WHO, 1, loan.installments[0].principal + loan.installments[0].interest)
        assert service.get_loan(uow, WHO, 1).status == "closed"
        service.reverse_repayment(uow, WHO, rep.id, "wrong loan")
        view = service.get_loan(uow, WHO, 1)
        assert view.status == "active" and view.outstanding_principal == D("10000")
        assert view.interest_receivable == 0

    def test_an_early_repayment_after_the_payment_blocks_the_reversal(self, uow: FakeUnitOfWork) -> None:
        rep = service.post_repayment(uow, WHO, 1, D("100"))
        service.repay_early(uow, WHO, 1)
        with pytest.raises(Conflict, match="adjusting payment"):
            service.reverse_repayment(uow, WHO, rep.id, "error")



class TestCreditBalance:
    def test_a_credit_balance_settles_the_next_installment(self, uow: FakeUnitOfWork) -> None:
        service.post_repayment(uow, WHO, 1, D("1000"))  # 111.51 held as credit
        applied = service.apply_credit_balance(on(uow, date(2026, 2, 16)), WHO, 1)
        assert applied.amount == D("111.51") and applied.kind == "credit_applied" and applied.credit == 0
        view = service.get_loan(uow, WHO, 1)
        assert view.credit_balance == 0
        assert view.installments[1].interest_paid == D("92.12")
        assert view.installments[1].principal_paid == D("19.39")
        assert balance(uow, Acct.BORROWER_CREDIT) == 0
        with pytest.raises(Conflict, match="no credit balance"):
            service.apply_credit_balance(uow, WHO, 1)


class TestEarlyRepayment:
    def test_full_early_repayment_charges_interest_to_date_only(self, uow: FakeUnitOfWork) -> None:
        rep = service.repay_early(on(uow, date(2026, 1, 25)), WHO, 1)
        assert rep.amount == D("10000") + D("32.26") and rep.kind == "early_full"
        assert service.get_loan(uow, WHO, 1).status == "closed"
        assert balance(uow, Acct.INTEREST_INCOME) == D("32.26")
        assert uow.loans.history(1) == ["LoanRepaid", "EarlyRepayment"]

    @pytest.mark.parametrize("mode", ["reduce-term", "reduce-installment"])
    def test_partial_early_repayment_on_a_due_date_reamortises(self, uow: FakeUnitOfWork, mode: str) -> None:
        service.repay_early(on(uow, date(2026, 2, 15)), WHO, 1, amount=D("888.49") + D("3000"), mode=mode)
        view = service.get_loan(uow, WHO, 1)
        assert view.outstanding_principal == D("10000") - D("788.49") - D("3000")
        future = [i for i in view.installments if i.number > 1]
        assert sum(i.principal for i in future) == view.outstanding_principal
        if mode == "reduce-term":
            assert len(future) < 11
        else:
            assert len(future) == 11 and future[0].payment < D("888.49")

    def test_partial_early_repayment_between_due_dates_repays_principal_today(self, uow: FakeUnitOfWork) -> None:
        rep = service.repay_early(on(uow, date(2026, 2, 3)), WHO, 1, amount=D("3000"))
        assert rep.kind == "early_partial" and rep.value_date == date(2026, 2, 3)
        view = service.get_loan(uow, WHO, 1)
        first = view.installments[0]
        # the first period stays; 3,000 no longer earns 1 % a month for 12 of its 31 days: off the next interest
        assert (first.due_date, first.principal, first.interest) == (date(2026, 2, 15), D("788.49"), D("100.00"))
        assert view.installments[1].interest == D("62.12") - D("11.61")  # 6,211.51 × 1 % less the saving
        assert view.outstanding_principal == D("7000")
        assert balance(uow, Acct.CASH) == D("3000") and balance(uow, Acct.LOAN_PRINCIPAL) == -D("3000")
        with pytest.raises(ValidationError, match="full early repayment"):
            service.repay_early(uow, WHO, 1, amount=D("6300"))

    def test_a_product_without_early_repayment_refuses_it(self, uow: FakeUnitOfWork) -> None:
        uow.loans.state.no_early_repayment.add(1)
        with pytest.raises(Conflict, match="does not allow early repayment"):
            service.repay_early(uow, WHO, 1)

    def test_the_same_key_replays_the_payoff(self, uow: FakeUnitOfWork) -> None:
        a = service.repay_early(uow, WHO, 1, idempotency_key="e-1")
        b = service.repay_early(uow, WHO, 1, idempotency_key="e-1")
        assert a == b and len(uow.ledger.entries()) == 1


class TestTenantsAndPermissions:
    def test_another_tenants_loan_is_not_found(self, uow: FakeUnitOfWork) -> None:
        stranger = staff(tenant_id=2)
        with pytest.raises(NotFound):
            service.get_loan(uow, stranger, 1)
        with pytest.raises(NotFound):
            service.post_repayment(uow, stranger, 1, D("10"))
        rep = service.post_repayment(uow, WHO, 1, D("10"))
        with pytest.raises(NotFound):
            service.reverse_repayment(uow, stranger, rep.id, "x")
        assert balance(uow, Acct.CASH) == D("10")

    @pytest.mark.parametrize(
        ("role", "action"),
        [
            (Role.MARKETER, "repay"),
            (Role.CREDIT_OFFICER, "reverse"),
            (Role.BORROWER, "view"),
            (Role.MARKETER, "early"),
            (Role.MARKETER, "credit"),
        ],
    )
    def test_roles_without_the_permission_are_refused(self, uow: FakeUnitOfWork, role: Role, action: str) -> None:
        rep = service.post_repayment(uow, WHO, 1, D("10"))
        who = Principal(user_id=9, tenant_id=1, username="staff", roles=frozenset({role}))
        calls: dict[str, Callable[[], object]] = {
            "repay": lambda: service.post_repayment(uow, who, 1, D("10")),
            "reverse": lambda: service.reverse_repayment(uow, who, rep.id, "x"),
            "view": lambda: service.get_loan(uow, who, 1),
            "early": lambda: service.repay_early(uow, who, 1),
            "credit": lambda: service.apply_credit_balance(uow, who, 1),
        }
        with pytest.raises(PermissionDenied):
            calls[action]()
        assert len(uow.ledger.entries()) == 1


def test_the_repository_accessor_finds_the_fake(uow: FakeUnitOfWork) -> None:
    with uow:
        assert loans(uow) is uow.loans
