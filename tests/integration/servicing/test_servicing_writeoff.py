"""Bad loans as a bank's finance team expects them, on SQLite and PostgreSQL: a write-off (核销) needs an eligible
loan and a second person, is charged against the loan-loss allowance and leaves the loan on the off-balance
register (账销案存), where later payments are recoveries; a substandard loan is not upgraded the day after its
arrears are paid; every class change is an event with its reason. Properties: through non-accrual, write-off
and recovery the trial balance stays balanced, the ledger reconciles with the sub-ledger and, after each
provisioning run, the allowance equals the sum of the loans' provisions."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.bootstrap import load_modules
from microlend.core.errors import Conflict, PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.tables import AuditRow, EventOutboxRow, TenantRow
from microlend.servicing import cob, provisions, service
from microlend.servicing.classification import cure_observation_end
from microlend.servicing.ledger import Acct
from microlend.servicing.repository import loans
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import LoanClassStateRow, LoanEventRow, LoanProvisionRow, WriteOffRow
from microlend.servicing.writeoff import BadLoanPolicy

D = Decimal
ZERO = D(0)
FIRST_DUE = date(2026, 2, 15)


@pytest.fixture(autouse=True)
def _handlers() -> None:
    load_modules()  # the servicing event handlers (timeline, audit) as the application registers them


def balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


def reconciled(bank: Bank) -> bool:
    rec = service.reconcile(bank.uow(), bank.who)
    assert rec.ok, [(r.account, r.general_ledger, r.sub_ledger) for r in rec.rows if r.difference]
    return rec.ok


def twelve_thousand(bank: Bank) -> int:
    return service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id


def approver(bank: Bank) -> Principal:
    return bank.principal(Role.APPROVER)


def officer(bank: Bank) -> Principal:
    return Principal(user_id=55, tenant_id=bank.tenant_id, username="loan-officer",
                     roles=frozenset({Role.CREDIT_OFFICER}))


def today(bank: Bank) -> date:
    with bank.uow() as u:
        row = u.session.get(TenantRow, bank.tenant_id)
        assert row is not None
        return row.business_date


def close_through(bank: Bank, last: date) -> list[cob.CobResult]:
    return cob.run_close_of_business(bank.uow(), bank.who, through=last)


def pay_all_due(bank: Bank, loan_id: int) -> Decimal:
    """Pay what is due today (arrears, penalty and the current installment)."""
    on = today(bank)
    with bank.uow() as u:
        loan = loans(u).get(bank.tenant_id, loan_id)
        owed = sum((d.amount for d in loan.current_dues(on)), ZERO) - loan.credit_balance
    service.post_repayment(bank.uow(), bank.who, loan_id, owed)
    return owed


def written_off(bank: Bank, loan_id: int, klass: str = "loss") -> service.WriteOffView:
    service.downgrade_loan(bank.uow(), officer(bank), loan_id, klass, "the borrower's shop burnt down, uninsured")
    asked = service.request_write_off(bank.uow(), bank.who, loan_id, "uncollectable after the fire")
    return service.approve_write_off(bank.uow(), approver(bank), asked.id)


def timeline(bank: Bank, loan_id: int, kind: str) -> list[dict[str, Any]]:
    with bank.uow() as u:
        return list(u.session.execute(select(LoanEventRow.data).where(
            LoanEventRow.loan_id == loan_id, LoanEventRow.kind == kind).order_by(LoanEventRow.id)).scalars())


class TestWriteOffNeedsAnEligibleLoanAndASecondPerson:
    def test_a_ten_day_old_loan_that_is_not_overdue_cannot_be_written_off(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, date(2026, 1, 24))  # ten days old, nothing due yet
        before = balances(bank)
        with pytest.raises(Conflict, match="classified normal"):
            service.request_write_off(bank.uow(), bank.who, loan_id, "gone")
        with pytest.raises(ValidationError, match="documents"):
            service.request_write_off(bank.uow(), bank.who, loan_id, "gone", reason_code="fraud")
        assert service.list_write_offs(bank.uow(), bank.who) == []
        assert service.get_loan(bank.uow(), bank.who, loan_id).status == "active"
        assert balances(bank) == before

    def test_the_requester_cannot_approve_and_an_approval_needs_the_authority(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        service.downgrade_loan(bank.uow(), officer(bank), loan_id, "doubtful", "borrower in hiding")
        asked = service.request_write_off(bank.uow(), bank.who, loan_id, "uncollectable")
        assert asked.status == "pending" and asked.loan_class == "doubtful"
        with pytest.raises(Conflict, match="waiting"):
            service.request_write_off(bank.uow(), bank.who, loan_id, "again")
        with pytest.raises(PermissionDenied, match="four eyes"):
            service.approve_write_off(bank.uow(), bank.who, asked.id)
        with pytest.raises(PermissionDenied):
            service.approve_write_off(bank.uow(), officer(bank), asked.id)
        assert service.get_loan(bank.uow(), bank.who, loan_id).status == "active"
        done = service.approve_write_off(bank.uow(), approver(bank), asked.id)
        assert done.status == "approved" and done.decided_by == "staff" and done.requested_by == "officer"
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.status == "written_off" and view.accrual_status == "written-off"
        with pytest.raises(Conflict, match="already approved"):
            service.reject_write_off(bank.uow(), approver(bank), asked.id, "too late")
        with bank.uow() as u:
            actions = u.session.execute(select(AuditRow.action).where(
                AuditRow.tenant_id == bank.tenant_id, AuditRow.object_type == "write_off")).scalars().all()
        assert sorted(actions) == ["write_off.approve", "write_off.request"]

    def test_a_rejection_moves_nothing(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        asked = service.request_write_off(bank.uow(), bank.who, loan_id, "absconded", reason_code="fraud",
                                          documents=["police report 2026-17"])
        before = balances(bank)
        done = service.reject_write_off(bank.uow(), approver(bank), asked.id, "the police found him")
        assert done.status == "rejected" and balances(bank) == before
        assert service.get_loan(bank.uow(), bank.who, loan_id).status == "active"


class TestWriteOffAgainstTheAllowance:
    def test_write_off_uses_the_allowance_and_the_shortfall_goes_to_impairment_loss(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        service.downgrade_loan(bank.uow(), officer(bank), loan_id, "loss", "fraud discovered")
        run = provisions.run_provisioning(bank.uow(), bank.who)
        assert run.total == D("5400.00")  # 12,000 × PD 100 % × LGD 45 %
        asked = service.request_write_off(bank.uow(), bank.who, loan_id, "uncollectable")
        done = service.approve_write_off(bank.uow(), approver(bank), asked.id)
        assert (done.charged, done.against_allowance, done.shortfall) == (D("12000"), D("5400"), D("6600"))
        end = balances(bank)
        assert end[Acct.LOAN_LOSS_ALLOWANCE] == 0 and end[Acct.LOAN_PRINCIPAL] == 0
        assert end[Acct.CREDIT_IMPAIRMENT_LOSS] == D("12000")  # the provision 5,400 plus the shortfall
        assert end[Acct.WRITE_OFF_EXPENSE] == 0
        assert end[Acct.WRITTEN_OFF_REGISTER] == D("12000")  # 账销案存
        assert reconciled(bank)
        again = provisions.run_provisioning(bank.uow(), bank.who)
        assert again.loans == 0 and again.total == 0 == balances(bank)[Acct.LOAN_LOSS_ALLOWANCE]

    def test_an_accruing_loans_interest_leaves_income_before_it_is_written_off(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=20))  # accruing, interest and penalty on the books
        before = balances(bank)
        assert before[Acct.INTEREST_RECEIVABLE] > 0 and before[Acct.PENALTY_RECEIVABLE] > 0
        done = written_off(bank, loan_id)
        end = balances(bank)
        assert end[Acct.INTEREST_RECEIVABLE] == 0 and end[Acct.PENALTY_RECEIVABLE] == 0
        assert end[Acct.INTEREST_INCOME] == before[Acct.INTEREST_INCOME] - before[Acct.INTEREST_RECEIVABLE]
        assert end[Acct.OFF_BALANCE_INTEREST] == before[Acct.INTEREST_RECEIVABLE]
        assert done.charged == before[Acct.LOAN_PRINCIPAL]
        assert reconciled(bank)


class TestRecoveries:
    def test_a_repayment_after_write_off_is_a_recovery(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=20))
        done = written_off(bank, loan_id)
        held_interest = balances(bank)[Acct.OFF_BALANCE_INTEREST]
        assert held_interest > 0
        rep = service.post_repayment(bank.uow(), bank.who, loan_id, D("1000"), idempotency_key="rec-1")
        assert rep.kind == "recovery" and rep.loan_status == "written_off"
        again = service.post_repayment(bank.uow(), bank.who, loan_id, D("1000"), idempotency_key="rec-1")
        assert again.id == rep.id  # idempotent like any repayment
        mid = balances(bank)
        assert mid[Acct.LOAN_LOSS_ALLOWANCE] == D("1000")  # back to the allowance
        assert mid[Acct.WRITTEN_OFF_REGISTER] == done.charged - D("1000")
        assert service.get_write_off(bank.uow(), bank.who, done.id).recovered == D("1000")
        # the rest of the charged-off amount, then off-balance interest as income (cash basis)
        income_before = mid[Acct.INTEREST_INCOME]
        service.post_repayment(bank.uow(), bank.who, loan_id, done.charged - D("1000") + D("5"))
        end = balances(bank)
        assert end[Acct.WRITTEN_OFF_REGISTER] == 0 and end[Acct.INTEREST_INCOME] == income_before + D("5")
        assert end[Acct.OFF_BALANCE_INTEREST] == held_interest - D("5")
        with pytest.raises(ValidationError, match="still owes"):
            service.post_repayment(bank.uow(), bank.who, loan_id, D("100000"))
        assert reconciled(bank)
        run = provisions.run_provisioning(bank.uow(), bank.who)  # the recovered allowance is released
        assert run.change == -done.charged and balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == 0
        report = provisions.portfolio_report(bank.uow(), bank.who)
        assert D(report["written_off"]) == done.charged and report["written_off_loans"] == 1
        assert D(report["recovered"]) == done.charged + D("5")

    def test_a_recovery_is_reversed_and_the_later_ones_recovered_anew(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=20))
        done = written_off(bank, loan_id)
        at_write_off = balances(bank)
        held_interest = at_write_off[Acct.OFF_BALANCE_INTEREST]
        first = service.post_repayment(bank.uow(), bank.who, loan_id, done.charged - D("100"))
        second = service.post_repayment(bank.uow(), bank.who, loan_id, D("105"))  # 100 register, 5 interest
        assert balances(bank)[Acct.OFF_BALANCE_INTEREST] == held_interest - D("5")
        back = service.reverse_repayment(bank.uow(), bank.who, first.id, "cheque bounced")
        assert back.status == "reversed" and back.loan_status == "written_off"
        end = balances(bank)
        # the later 105 now all goes to the register; the off-balance interest is owed in full again
        assert end[Acct.WRITTEN_OFF_REGISTER] == done.charged - D("105")
        assert end[Acct.OFF_BALANCE_INTEREST] == held_interest
        assert end[Acct.LOAN_LOSS_ALLOWANCE] == at_write_off[Acct.LOAN_LOSS_ALLOWANCE] + D("105")
        assert end[Acct.INTEREST_INCOME] == at_write_off[Acct.INTEREST_INCOME]
        assert service.get_write_off(bank.uow(), bank.who, done.id).recovered == D("105")
        with bank.uow() as u:
            loan = loans(u).get(bank.tenant_id, loan_id)
            assert loan.interest_suspended == held_interest
            assert loans(u).repayment(bank.tenant_id, second.id).allocation["recovery"]["interest"] == "0.00"
        with pytest.raises(Conflict, match="already reversed"):
            service.reverse_repayment(bank.uow(), bank.who, first.id, "again")
        assert timeline(bank, loan_id, "RecoveryReversed")
        assert reconciled(bank)

    def test_recoveries_need_the_permission_and_the_register(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        written_off(bank, loan_id)
        with pytest.raises(PermissionDenied):
            service.post_repayment(bank.uow(), bank.principal(Role.MARKETER), loan_id, D("10"))
        with pytest.raises(Conflict, match="written off"):
            service.repay_early(bank.uow(), bank.who, loan_id)


class TestClassification:
    def test_a_substandard_loan_is_not_upgraded_the_day_after_its_arrears_are_paid(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=91))
        assert service.get_loan(bank.uow(), bank.who, loan_id).loan_class == "substandard"
        bank.set_business_date(FIRST_DUE + timedelta(days=92))
        pay_all_due(bank, loan_id)
        paid_on = today(bank)
        close_through(bank, paid_on + timedelta(days=1))
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.days_past_due == 0 and view.loan_class == "substandard"
        with bank.uow() as u:
            state = u.session.get(LoanClassStateRow, loan_id)
            assert state is not None and state.cured_on == paid_on
            dues = [i.due_date for i in loans(u).get(bank.tenant_id, loan_id).installments if i.status == "pending"]
        expected = cure_observation_end(paid_on, dues)
        assert state.observe_until_day == expected.toordinal() and expected >= date(2026, 11, 17)
        assert [c["to_class"] for c in timeline(bank, loan_id, "LoanClassChanged")] == [
            "special_mention", "substandard"]
        assert reconciled(bank)

    def test_after_the_banks_observation_period_of_normal_repayment_it_is_upgraded(self, bank: Bank) -> None:
        service.set_bad_loan_settings(bank.uow(), bank.who, BadLoanPolicy(cure_months=0, cure_periods=1))
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=91))
        bank.set_business_date(FIRST_DUE + timedelta(days=92))
        pay_all_due(bank, loan_id)
        next_due = min(i.due_date for i in service.loan_schedule(bank.uow(), bank.who, loan_id)
                       if i.status == "pending" and i.due_date > today(bank))
        close_through(bank, next_due - timedelta(days=1))
        assert service.get_loan(bank.uow(), bank.who, loan_id).loan_class == "substandard"
        pay_all_due(bank, loan_id)  # the next installment on time
        close_through(bank, next_due)
        view = service.get_loan(bank.uow(), bank.who, loan_id)
        assert view.loan_class == "normal"
        last = timeline(bank, loan_id, "LoanClassChanged")[-1]
        assert (last["from_class"], last["to_class"]) == ("substandard", "normal")
        assert last["reason"].startswith("arrears repaid on") and last["changed_by"] == "close of business"

    def test_class_changes_are_events_with_their_reasons(self, bank: Bank) -> None:
        loan_id = twelve_thousand(bank)
        close_through(bank, FIRST_DUE + timedelta(days=1))
        service.downgrade_loan(bank.uow(), officer(bank), loan_id, "substandard", "borrower's main customer failed")
        with pytest.raises(Conflict, match="only downgrades"):
            service.downgrade_loan(bank.uow(), officer(bank), loan_id, "special_mention", "better now")
        with pytest.raises(PermissionDenied):
            service.downgrade_loan(bank.uow(), bank.principal(Role.COLLECTOR), loan_id, "loss", "x")
        with pytest.raises(ValidationError, match="reason"):
            service.downgrade_loan(bank.uow(), officer(bank), loan_id, "loss", " ")
        pay_all_due(bank, loan_id)
        close_through(bank, FIRST_DUE + timedelta(days=3))
        # the judgement is a floor: arrears paid, the loan stays substandard
        assert service.get_loan(bank.uow(), bank.who, loan_id).loan_class == "substandard"
        changes = timeline(bank, loan_id, "LoanClassChanged")
        assert [(c["from_class"], c["to_class"], c["reason"]) for c in changes] == [
            ("normal", "special_mention", "1 days past due"),
            ("special_mention", "substandard", "judgement by loan-officer: borrower's main customer failed"),
        ]
        shown = service.class_history(bank.uow(), bank.principal(Role.COLLECTOR), loan_id)
        assert [(c.to_class, c.reason, c.changed_by) for c in shown] == [
            ("special_mention", "1 days past due", "close of business"),
            ("substandard", "judgement by loan-officer: borrower's main customer failed", "loan-officer"),
        ]
        with bank.uow() as u:
            published = u.session.execute(select(EventOutboxRow.payload).where(
                EventOutboxRow.tenant_id == bank.tenant_id, EventOutboxRow.event_type == "LoanClassChanged")
            ).scalars().all()
            audits = u.session.execute(select(AuditRow).where(
                AuditRow.tenant_id == bank.tenant_id, AuditRow.action == "loan.class_change")
                .order_by(AuditRow.id)).scalars().all()
        assert {p["reason"] for p in published} == {c["reason"] for c in changes}
        assert [(a.actor, a.after["why"]) for a in audits] == [
            ("cob", "1 days past due"),
            ("loan-officer", "judgement by loan-officer: borrower's main customer failed"),
        ]


# ------------------------------------------------------------------------------------------ properties

STEP = st.one_of(
    st.tuples(st.just("cob"), st.integers(1, 45)),
    st.tuples(st.just("pay"), st.integers(1, 3000)),
    st.tuples(st.just("downgrade"), st.sampled_from(["special_mention", "substandard", "doubtful", "loss"])),
    st.tuples(st.just("write_off"), st.just(0)),
    st.tuples(st.just("provision"), st.just(0)),
)


def _step(bank: Bank, loan_ids: list[int], i: int, kind: str, arg: Any) -> None:
    loan_id = loan_ids[i % len(loan_ids)]
    status = service.get_loan(bank.uow(), bank.who, loan_id).status
    try:
        if kind == "cob":
            close_through(bank, today(bank) + timedelta(days=arg - 1))
        elif kind == "pay" and status in ("active", "written_off"):
            service.post_repayment(bank.uow(), bank.who, loan_id, D(arg))
        elif kind == "downgrade" and status == "active":
            service.downgrade_loan(bank.uow(), officer(bank), loan_id, arg, "property test")
        elif kind == "write_off" and status == "active":
            asked = service.request_write_off(bank.uow(), bank.who, loan_id, "property test", reason_code="fraud",
                                              documents=["case file"])
            service.approve_write_off(bank.uow(), approver(bank), asked.id)
        elif kind == "provision":
            run = provisions.run_provisioning(bank.uow(), bank.who)
            with bank.uow() as u:
                amounts = u.session.execute(select(LoanProvisionRow.amount).where(
                    LoanProvisionRow.run_id == run.id)).scalars().all()
            assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == sum(amounts, ZERO)
    except (Conflict, ValidationError):
        pass  # a payment above the payoff or the claim, a downgrade that is not one: refused, nothing kept


@settings(max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(steps=st.lists(STEP, min_size=3, max_size=8))
def test_books_stay_sound_through_non_accrual_write_off_and_recovery(
    bank: Bank, steps: list[tuple[str, Any]]
) -> None:
    loan_ids = [int(r.id) for r in service.list_loans(bank.uow(), bank.who)]
    if not loan_ids:
        loan_ids = [twelve_thousand(bank), twelve_thousand(bank)]
        close_through(bank, FIRST_DUE + timedelta(days=95))  # both non-accrual, substandard
    for i, (kind, arg) in enumerate(steps):
        _step(bank, loan_ids, i, kind, arg)
        assert reconciled(bank)
    with bank.uow() as u:
        register = sum((r.charged - r.recovered_charged for r in u.session.execute(select(WriteOffRow).where(
            WriteOffRow.tenant_id == bank.tenant_id, WriteOffRow.status == "approved")).scalars()), ZERO)
    assert balances(bank)[Acct.WRITTEN_OFF_REGISTER] == register
    run = provisions.run_provisioning(bank.uow(), bank.who)
    assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == run.total


def test_the_command_line_requests_approves_and_downgrades(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    import json

    from typer.testing import CliRunner

    from microlend.cli import servicing as cli

    people = {"officer": bank.who, "staff": approver(bank), "loan-officer": officer(bank)}
    monkeypatch.setattr(cli, "open_uow", bank.uow)
    monkeypatch.setattr(cli, "user_principal", lambda _uow, user, _tenant: people[user])
    loan_id = twelve_thousand(bank)
    runner = CliRunner()
    base = ["--tenant", "t1", "--loan", str(loan_id)]
    refused = runner.invoke(cli.app, ["write-off", *base, "--user", "officer", "--reason", "gone"])
    assert refused.exit_code != 0 and "classified normal" in refused.output
    down = runner.invoke(cli.app, ["downgrade", *base, "--user", "loan-officer", "--to-class", "doubtful",
                                   "--reason", "borrower in hiding"])
    assert down.exit_code == 0 and "doubtful" in down.output, down.output
    asked = runner.invoke(cli.app, ["write-off", *base, "--user", "officer", "--reason", "uncollectable", "--json"])
    assert asked.exit_code == 0, asked.output
    request_id = json.loads(asked.output)["id"]
    same = runner.invoke(cli.app, ["write-off-approve", "--tenant", "t1", "--user", "officer", "--write-off",
                                   str(request_id)])
    assert same.exit_code != 0 and "four eyes" in same.output
    done = runner.invoke(cli.app, ["write-off-approve", "--tenant", "t1", "--user", "staff", "--write-off",
                                   str(request_id), "--json"])
    assert done.exit_code == 0, done.output
    assert json.loads(done.output)["status"] == "approved" and json.loads(done.output)["shortfall"] == "12000.00"
