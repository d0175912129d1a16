"""Loans and money movement on a real database: disbursement, repayments, reversal with replay, early
repayment, write-off; the trial balance stays balanced and the sub-ledger reconciles with the ledger."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError, IntegrityError
from tests.integration.servicing.kit import Bank

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.core.tables import AuditRow
from microlend.servicing import service
from microlend.servicing.ledger import Acct
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import JournalEntryRow, JournalLineRow

D = Decimal


def assert_books_sound(bank: Bank) -> None:
    """Every stored entry balances line by line, the trial balance balances, the sub-ledger reconciles."""
    with bank.uow() as u:
        unbalanced = u.session.execute(
            select(JournalLineRow.entry_id)
            .group_by(JournalLineRow.entry_id)
            .having(func.sum(JournalLineRow.debit) != func.sum(JournalLineRow.credit))
        ).all()
        assert unbalanced == []
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced, tb
    recon = service.reconcile(bank.uow(), bank.who)
    assert recon.ok, recon


def disburse(
    bank: Bank, amount: str = "10000", term: int = 12, code: str = "EI-STD", rate: str = "0.12", key: str | None = None
) -> service.LoanView:
    return service.disburse(bank.uow(), bank.who, Disbursement(code, D(amount), term, D(rate), idempotency_key=key))


def balance(bank: Bank, code: str) -> Decimal:
    tb = service.trial_balance(bank.uow(), bank.who)
    return next(r.balance for r in tb.rows if r.code == code)


class TestTenantSetup:
    def test_a_new_bank_gets_the_chart_of_accounts_and_a_product_per_method(self, bank: Bank) -> None:
        products = service.list_products(bank.uow(), bank.who)
        assert {p.method for p in products} == {
            "equal-installment",
            "equal-principal",
            "interest-only",
            "bullet",
            "revolving",
        }
        tb = service.trial_balance(bank.uow(), bank.who)
        assert {r.code for r in tb.rows} == {a.value for a in Acct}
        assert tb.total_debit == 0


class TestDisbursement:
    def test_disbursing_posts_principal_against_cash_and_the_schedule(self, bank: Bank) -> None:
        loan = disburse(bank)
        assert loan.outstanding_principal == D("10000") and len(loan.installments) == 12
        assert loan.installments[0].payment == D("888.49")
        assert balance(bank, Acct.LOAN_PRINCIPAL) == D("10000")
        assert balance(bank, Acct.CASH) == D("-10000")
        assert_books_sound(bank)

    def test_a_deducted_fee_is_deferred_not_income_at_payout(self, bank: Bank) -> None:
        service.disburse(bank.uow(), bank.who, Disbursement("IO-STD", D("20000"), 6))
        assert balance(bank, Acct.FEE_INCOME) == 0
        assert balance(bank, Acct.DEFERRED_FEE) == D("100.00")
        assert balance(bank, Acct.CASH) == D("-19900.00")
        assert_books_sound(bank)

    def test_the_same_key_replays_the_same_loan_and_another_body_is_refused(self, bank: Bank) -> None:
        first = disburse(bank, key="k-1")
        again = disburse(bank, key="k-1")
        assert again.id == first.id
        with pytest.raises(ValidationError, match="idempotency_key"):
            disburse(bank, amount="20000", key="k-1")
        assert balance(bank, Acct.LOAN_PRINCIPAL) == D("10000")

    def test_out_of_range_offers_are_refused(self, bank: Bank) -> None:
        with pytest.raises(ValidationError, match="amount"):
            disburse(bank, amount="500")
        with pytest.raises(NotFound, match="product_code"):
            disburse(bank, code="NOPE")

    def test_writes_an_audit_record(self, bank: Bank) -> None:
        loan = disburse(bank)
        with bank.uow() as u:
            actions = u.session.execute(
                select(AuditRow.action).where(AuditRow.object_id == str(loan.id), AuditRow.object_type == "loan")
            ).scalars()
            assert list(actions) == ["loan.disburse"]


class TestRepayments:
    def test_an_installment_on_its_due_date_is_settled_in_order(self, bank: Bank) -> None:
        loan = disburse(bank)
        bank.set_business_date(date(2026, 2, 15))
        rep = service.post_repayment(bank.uow(), bank.who, loan.id, D("888.49"))
        assert rep.credit == 0
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.installments[0].status == "paid"
        assert view.outstanding_principal == D("9211.51")
        assert_books_sound(bank)

    def test_overpayment_is_held_as_credit_balance(self, bank: Bank) -> None:
        loan = disburse(bank)
        rep = service.post_repayment(bank.uow(), bank.who, loan.id, D("1000"))
        assert rep.credit == D("111.51")
        assert balance(bank, Acct.BORROWER_CREDIT) == D("111.51")
        assert_books_sound(bank)

    def test_a_credit_balance_settles_the_next_installment(self, bank: Bank) -> None:
        loan = disburse(bank)
        service.post_repayment(bank.uow(), bank.who, loan.id, D("1000"))  # 111.51 held as credit
        bank.set_business_date(date(2026, 2, 16))  # installment 2 is now the current one
        applied = service.apply_credit_balance(bank.uow(), bank.who, loan.id)
        assert applied.amount == D("111.51") and applied.kind == "credit_applied"
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.credit_balance == 0
        assert view.installments[1].interest_paid == D("92.12")
        assert view.installments[1].principal_paid == D("19.39")
        assert balance(bank, Acct.BORROWER_CREDIT) == 0
        with pytest.raises(Conflict, match="no credit balance"):
            service.apply_credit_balance(bank.uow(), bank.who, loan.id)
        assert_books_sound(bank)

    def test_the_same_key_posts_once(self, bank: Bank) -> None:
        loan = disburse(bank)
        a = service.post_repayment(bank.uow(), bank.who, loan.id, D("100"), idempotency_key="r-1")
        b = service.post_repayment(bank.uow(), bank.who, loan.id, D("100"), idempotency_key="r-1")
        assert a.id == b.id
        with pytest.raises(ValidationError, match="idempotency_key"):
            service.post_repayment(bank.uow(), bank.who, loan.id, D("101"), idempotency_key="r-1")
        assert balance(bank, Acct.CASH) == D("-9900")

    def test_a_failed_validation_does_not_use_up_the_key(self, bank: Bank) -> None:
        loan = disburse(bank)
        with pytest.raises(ValidationError):
            service.post_repayment(bank.uow(), bank.who, loan.id, D("-1"), idempotency_key="r-2")
        service.post_repayment(bank.uow(), bank.who, loan.id, D("10"), idempotency_key="r-2")

    def test_paying_the_whole_schedule_closes_the_loan(self, bank: Bank) -> None:
        loan = disburse(bank, term=3)
        for inst in loan.installments:
            bank.set_business_date(inst.due_date)
            service.post_repayment(bank.uow(), bank.who, loan.id, inst.payment)
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.status == "closed" and view.outstanding_principal == 0
        assert balance(bank, Acct.INTEREST_INCOME) == sum(i.interest for i in loan.installments)
        with pytest.raises(Conflict):
            service.post_repayment(bank.uow(), bank.who, loan.id, D("1"))
        assert_books_sound(bank)


class TestReversal:
    def test_reversal_then_replay_equals_never_having_posted(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        twin = other_bank()
        payments = [D("500"), D("700"), D("900")]
        loans = {b.tenant_id: disburse(b) for b in (bank, twin)}
        bank.set_business_date(date(2026, 3, 1))
        twin.set_business_date(date(2026, 3, 1))
        reps = [service.post_repayment(bank.uow(), bank.who, loans[bank.tenant_id].id, p) for p in payments]
        for p in (payments[0], payments[2]):
            service.post_repayment(twin.uow(), twin.who, loans[twin.tenant_id].id, p)
        service.reverse_repayment(bank.uow(), bank.who, reps[1].id, "cheque bounced")
        a = service.get_loan(bank.uow(), bank.who, loans[bank.tenant_id].id)
        b = service.get_loan(twin.uow(), twin.who, loans[twin.tenant_id].id)
        assert [(i.principal_paid, i.interest_paid, i.status) for i in a.installments] == [
            (i.principal_paid, i.interest_paid, i.status) for i in b.installments
        ]
        assert a.credit_balance == b.credit_balance
        tb_a = {r.code: r.balance for r in service.trial_balance(bank.uow(), bank.who).rows}
        tb_b = {r.code: r.balance for r in service.trial_balance(twin.uow(), twin.who).rows}
        assert tb_a == tb_b
        assert_books_sound(bank)

    def test_reversing_the_closing_payment_reopens_the_loan(self, bank: Bank) -> None:
        loan = disburse(bank, term=1, code="BL-STD")
        rep = service.post_repayment(bank.uow(), bank.who, loan.id, loan.installments[0].payment)
        assert service.get_loan(bank.uow(), bank.who, loan.id).status == "closed"
        service.reverse_repayment(bank.uow(), bank.who, rep.id, "wrong loan")
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.status == "active" and view.outstanding_principal == D("10000")
        assert view.interest_receivable == 0
        assert_books_sound(bank)


class TestEarlyRepayment:
    def test_full_early_repayment_charges_interest_to_date_only(self, bank: Bank) -> None:
        loan = disburse(bank)
        bank.set_business_date(date(2026, 1, 25))  # 10 of 31 days into the first period
        rep = service.repay_early(bank.uow(), bank.who, loan.id)
        assert rep.amount == D("10000") + D("32.26")
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.status == "closed"
        assert balance(bank, Acct.INTEREST_INCOME) == D("32.26")
        assert_books_sound(bank)

    @pytest.mark.parametrize("mode", ["reduce-term", "reduce-installment"])
    def test_partial_early_repayment_on_a_due_date_reamortises(self, bank: Bank, mode: str) -> None:
        loan = disburse(bank)
        bank.set_business_date(date(2026, 2, 15))
        service.repay_early(bank.uow(), bank.who, loan.id, amount=D("888.49") + D("3000"), mode=mode)
        view = service.get_loan(bank.uow(), bank.who, loan.id)
        assert view.outstanding_principal == D("10000") - D("788.49") - D("3000")
        future = [i for i in view.installments if i.number > 1]
        assert sum(i.principal for i in future) == view.outstanding_principal
        if mode == "reduce-term":
            assert len(future) < 11
        else:
            assert len(future) == 11 and future[0].payment < D("888.49")
        assert_books_sound(bank)


class TestWriteOff:
    def test_write_off_without_an_allowance_goes_to_impairment_loss(self, bank: Bank) -> None:
        loan = disburse(bank)
        asked = service.request_write_off(bank.uow(), bank.who, loan.id, "borrower deceased, no estate",
                                          reason_code="death", documents=["death certificate 17"])
        done = service.approve_write_off(bank.uow(), bank.principal(Role.APPROVER), asked.id)
        assert service.get_loan(bank.uow(), bank.who, loan.id).status == "written_off"
        assert (done.against_allowance, done.shortfall) == (0, D("10000"))
        assert balance(bank, Acct.CREDIT_IMPAIRMENT_LOSS) == D("10000")
        assert balance(bank, Acct.WRITE_OFF_EXPENSE) == 0
        assert balance(bank, Acct.LOAN_PRINCIPAL) == 0
        assert_books_sound(bank)


class TestCreditLines:
    def test_drawdowns_within_the_limit_and_repay_any_day(self, bank: Bank) -> None:
        line = service.open_credit_line(bank.uow(), bank.who, "RV-STD", D("50000"))
        first = service.draw_down(bank.uow(), bank.who, line.id, D("30000"))
        with pytest.raises(ValidationError, match="available limit"):
            service.draw_down(bank.uow(), bank.who, line.id, D("30000"))
        bank.set_business_date(date(2026, 1, 20))
        service.post_repayment(bank.uow(), bank.who, first.id, D("30000"))
        assert service.get_loan(bank.uow(), bank.who, first.id).status == "closed"
        service.draw_down(bank.uow(), bank.who, line.id, D("50000"))
        assert_books_sound(bank)


class TestTenantsAndPermissions:
    def test_another_tenants_loan_is_not_found(self, bank: Bank, other_bank: Callable[[], Bank]) -> None:
        loan = disburse(bank)
        stranger = other_bank()
        with pytest.raises(NotFound):
            service.get_loan(stranger.uow(), stranger.who, loan.id)
        with pytest.raises(NotFound):
            service.post_repayment(stranger.uow(), stranger.who, loan.id, D("10"))
        assert balance(bank, Acct.CASH) == D("-10000")

    @pytest.mark.parametrize(
        ("role", "action"),
        [
            (Role.MARKETER, "repay"),
            (Role.CREDIT_OFFICER, "disburse"),
            (Role.COLLECTOR, "write_off"),
            (Role.CREDIT_OFFICER, "reverse"),
            (Role.MARKETER, "trial_balance"),
            (Role.BORROWER, "view"),
        ],
    )
    def test_roles_without_the_permission_are_refused(self, bank: Bank, role: Role, action: str) -> None:
        loan = disburse(bank)
        rep = service.post_repayment(bank.uow(), bank.who, loan.id, D("10"))
        who = bank.principal(role)
        calls: dict[str, Callable[[], object]] = {
            "repay": lambda: service.post_repayment(bank.uow(), who, loan.id, D("10")),
            "disburse": lambda: service.disburse(bank.uow(), who, Disbursement("EI-STD", D("5000"), 6)),
            "write_off": lambda: service.request_write_off(bank.uow(), who, loan.id, "x"),
            "reverse": lambda: service.reverse_repayment(bank.uow(), who, rep.id, "x"),
            "trial_balance": lambda: service.trial_balance(bank.uow(), who),
            "view": lambda: service.get_loan(bank.uow(), who, loan.id),
        }
        with pytest.raises(PermissionDenied):
            calls[action]()


class TestJournalGuards:
    def test_journal_rows_cannot_be_edited_or_deleted(self, bank: Bank) -> None:
        disburse(bank)
        for statement in ("UPDATE journal_lines SET debit = debit + 100", "DELETE FROM journal_entries"):
            with bank.engine.connect() as c, pytest.raises((DBAPIError, IntegrityError)):
                c.execute(text(statement))
                c.commit()

    def test_an_unbalanced_entry_is_refused_by_the_database(self, bank: Bank) -> None:
        with bank.uow() as u, pytest.raises((DBAPIError, IntegrityError)):
            s = u.session
            s.add(
                JournalEntryRow(
                    tenant_id=bank.tenant_id,
                    business_date=date(2026, 1, 15),
                    kind="bad",
                    total_debit=D("10"),
                    total_credit=D("9"),
                    created_by="x",
                    created_at=datetime.now(UTC),
                )
            )
            s.flush()
            u.commit()
        if bank.dialect == "postgresql":  # lines that do not add up to the entry are caught at commit
            with bank.uow() as u, pytest.raises(DBAPIError):
                s = u.session
                e = JournalEntryRow(
                    tenant_id=bank.tenant_id,
                    business_date=date(2026, 1, 15),
                    kind="bad",
                    total_debit=D("10"),
                    total_credit=D("10"),
                    created_by="x",
                    created_at=datetime.now(UTC),
                )
                s.add(e)
                s.flush()
                s.add(
                    JournalLineRow(
                        entry_id=e.id, tenant_id=bank.tenant_id, account_code=Acct.CASH, debit=D("10"), credit=D(0)
                    )
                )
                s.flush()
                u.commit()
