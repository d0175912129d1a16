"""Write-off (核销) and classification (五级分类) rules without a database: eligibility, the write-off against the
allowance (shortfall to impairment loss, accrued interest by the non-accrual state), recoveries on the
off-balance register, the cure rule for non-performing loans and the observation periods."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.servicing.fakes import make_loan

from microlend.core.errors import Conflict, ValidationError
from microlend.servicing.classification import (
    ClassState,
    add_months,
    cure_observation_end,
    decide,
    restructure_observation_end,
)
from microlend.servicing.domain import Loan
from microlend.servicing.events import LoanWrittenOff
from microlend.servicing.ledger import Acct, JournalEntry, balances
from microlend.servicing.writeoff import (
    DEFAULT_POLICY,
    BadLoanPolicy,
    check_eligible,
    recover,
    still_claimed,
    write_off_loan,
)

D = Decimal
ON = date(2026, 3, 1)


def loan_of(principal: str = "10000") -> Loan:
    return make_loan(principal, "0.12", 12, date(2026, 1, 15))


def amounts(entry: JournalEntry | None) -> dict[str, Decimal]:
    assert entry is not None
    return {k: v for k, v in balances([entry]).items() if v}


class TestEligibility:
    def test_a_loan_that_is_not_overdue_cannot_be_written_off_without_a_documented_reason(self) -> None:
        loan = loan_of()  # 10 days old, normal, not overdue
        with pytest.raises(Conflict, match="classified normal"):
            check_eligible(DEFAULT_POLICY, loan, "", [])

    def test_doubtful_and_loss_loans_are_eligible_by_default(self) -> None:
        for klass in ("doubtful", "loss"):
            loan = loan_of()
            loan.loan_class = klass
            check_eligible(DEFAULT_POLICY, loan, "", [])
        loan = loan_of()
        loan.loan_class = "substandard"
        with pytest.raises(Conflict):
            check_eligible(DEFAULT_POLICY, loan, "", [])

    def test_a_documented_reason_needs_its_documents_and_must_be_the_banks(self) -> None:
        loan = loan_of()
        with pytest.raises(ValidationError, match="documents"):
            check_eligible(DEFAULT_POLICY, loan, "bankruptcy", [])
        with pytest.raises(ValidationError, match="reason_code"):
            check_eligible(DEFAULT_POLICY, loan, "felt_like_it", ["doc-1"])
        check_eligible(DEFAULT_POLICY, loan, "bankruptcy", ["court ruling (2026) 01 破 12"])

    def test_the_bank_sets_the_classes(self) -> None:
        loan = loan_of()
        loan.loan_class = "substandard"
        check_eligible(BadLoanPolicy(frozenset({"substandard", "doubtful", "loss"})), loan, "", [])
        with pytest.raises(ValidationError, match="writeoff_classes"):
            BadLoanPolicy(frozenset({"bad"}))
        with pytest.raises(ValidationError, match="cure_months"):
            BadLoanPolicy(cure_months=99)


class TestWriteOff:
    def test_it_is_charged_against_the_allowance(self) -> None:
        loan = loan_of()
        loan.accrual_status = "non-accrual"
        done = write_off_loan(loan, ON, "uncollectable", D("20000"), reverse_accrued=True)
        assert (done.charged, done.against_allowance, done.shortfall) == (D("10000"), D("10000"), D("0"))
        assert amounts(done.entry) == {
            Acct.LOAN_LOSS_ALLOWANCE: D("10000"), Acct.LOAN_PRINCIPAL: D("-10000"),
            Acct.WRITTEN_OFF_REGISTER: D("10000"), Acct.OFF_BALANCE_CONTRA: D("-10000"),
        }
        assert Acct.WRITE_OFF_EXPENSE not in amounts(done.entry)
        assert loan.status == "written_off" and loan.accrual_state == "written-off" and loan.closed_on == ON
        assert all(i.status == "written_off" for i in loan.installments)
        assert loan.events == [LoanWrittenOff(loan.tenant_id, loan.id, ON, "10000.00")]

    def test_a_short_allowance_leaves_the_shortfall_to_impairment_loss(self) -> None:
        loan = loan_of()
        done = write_off_loan(loan, ON, "fraud", D("2500"), reverse_accrued=True)
        assert (done.against_allowance, done.shortfall) == (D("2500"), D("7500"))
        assert amounts(done.entry)[Acct.CREDIT_IMPAIRMENT_LOSS] == D("7500")

    def test_an_accruing_loans_accrued_interest_is_reversed_off_balance_by_the_reverse_policy(self) -> None:
        loan = loan_of()
        loan.installments[0].interest_accrued = D("40.00")
        loan.penalty_accrued = D("2.00")
        done = write_off_loan(loan, ON, "fraud", D("100000"), reverse_accrued=True)
        got = amounts(done.entry)
        assert got[Acct.INTEREST_INCOME] == D("40.00") and got[Acct.PENALTY_INCOME] == D("2.00")
        assert got[Acct.OFF_BALANCE_INTEREST] == D("40.00") and got[Acct.OFF_BALANCE_PENALTY] == D("2.00")
        assert done.charged == D("10000") and done.moved_off_balance == D("42.00")
        assert (loan.interest_suspended, loan.penalty_suspended) == (D("40.00"), D("2.00"))

    def test_kept_interest_is_charged_off_with_the_principal(self) -> None:
        loan = loan_of()
        loan.installments[0].interest_accrued = D("40.00")
        done = write_off_loan(loan, ON, "fraud", D("100000"), reverse_accrued=False)
        assert done.charged == D("10040.00") and Acct.INTEREST_INCOME not in amounts(done.entry)
        assert amounts(done.entry)[Acct.INTEREST_RECEIVABLE] == D("-40.00")

    def test_a_written_off_loan_takes_no_ordinary_repayment(self) -> None:
        loan = loan_of()
        write_off_loan(loan, ON, "fraud", D("0"), reverse_accrued=True)
        with pytest.raises(Conflict, match="written off"):
            loan.repay(D("1"), date(2026, 3, 2))
        with pytest.raises(Conflict):
            write_off_loan(loan, ON, "again", D("0"), reverse_accrued=True)


class TestRecovery:
    def written_off(self) -> Loan:
        loan = loan_of()
        loan.installments[0].interest_accrued = D("40.00")
        write_off_loan(loan, ON, "fraud", D("100000"), reverse_accrued=True)
        return loan

    def test_a_payment_recovers_the_charged_off_amount_back_to_the_allowance_first(self) -> None:
        loan = self.written_off()
        done = recover(loan, D("600"), date(2026, 4, 1), D("10000"))
        assert (done.charged, done.interest, done.penalty) == (D("600"), D("0"), D("0"))
        assert amounts(done.entry) == {
            Acct.CASH: D("600"), Acct.LOAN_LOSS_ALLOWANCE: D("-600"),
            Acct.OFF_BALANCE_CONTRA: D("600"), Acct.WRITTEN_OFF_REGISTER: D("-600"),
        }

    def test_then_off_balance_interest_as_income_and_more_than_owed_is_refused(self) -> None:
        loan = self.written_off()
        assert still_claimed(D("10000"), loan) == D("10040.00")
        done = recover(loan, D("10020"), date(2026, 4, 1), D("10000"))
        assert (done.charged, done.interest) == (D("10000"), D("20"))
        assert amounts(done.entry)[Acct.INTEREST_INCOME] == D("-20")
        assert loan.interest_suspended == D("20.00")
        with pytest.raises(ValidationError, match="still owes"):
            recover(loan, D("20.01"), date(2026, 4, 2), D("0"))

    @settings(max_examples=60, deadline=None)
    @given(st.lists(st.integers(min_value=1, max_value=400_000), min_size=1, max_size=6),
           st.integers(min_value=0, max_value=2_000_000))
    def test_recoveries_never_recover_more_than_was_claimed_and_stay_balanced(
        self, cents: list[int], allowance_cents: int
    ) -> None:
        loan = loan_of()
        loan.installments[0].interest_accrued = D("40.00")
        done = write_off_loan(loan, ON, "fraud", D(allowance_cents) / 100, reverse_accrued=True)
        assert done.against_allowance + done.shortfall == done.charged
        left = done.charged
        total = D(0)
        for c in cents:
            amount = D(c) / 100
            if amount > still_claimed(left, loan):
                with pytest.raises(ValidationError):
                    recover(loan, amount, ON, left)
                continue
            r = recover(loan, amount, ON, left)
            assert r.entry.total_debit == r.entry.total_credit and r.total == amount
            left -= r.charged
            total += amount
        assert total + still_claimed(left, loan) == done.charged + D("40.00")


class TestClassRules:
    def test_a_substandard_loan_is_not_upgraded_the_day_after_its_arrears_are_paid(self) -> None:
        cure_end = date(2026, 12, 1)
        first = decide("substandard", "normal", 0, date(2026, 6, 1), ClassState(), cure_end)
        assert first.loan_class == "substandard" and first.state.cured_on == date(2026, 6, 1)
        later = decide("substandard", "normal", 0, date(2026, 11, 30), first.state)
        assert later.loan_class == "substandard"
        done = decide("substandard", "normal", 0, cure_end, later.state)
        assert done.loan_class == "normal" and "arrears repaid on 2026-06-01" in done.reason

    def test_falling_overdue_again_restarts_the_cure(self) -> None:
        state = ClassState(cured_on=date(2026, 6, 1), observe_until=date(2026, 12, 1))
        relapse = decide("substandard", "special_mention", 3, date(2026, 7, 1), state)
        assert relapse.loan_class == "substandard" and relapse.state.cured_on is None

    def test_a_doubtful_loan_partly_repaid_stays_doubtful(self) -> None:
        assert decide("doubtful", "substandard", 95, date(2026, 7, 1), ClassState()).loan_class == "doubtful"

    def test_special_mention_from_days_past_due_returns_to_normal_when_repaid(self) -> None:
        d = decide("special_mention", "normal", 0, date(2026, 7, 1), ClassState())
        assert d.loan_class == "normal" and d.reason == "0 days past due"

    def test_a_judgement_is_a_floor_with_its_reason(self) -> None:
        state = ClassState(judged_class="special_mention", judged_reason="borrower's shop closed")
        d = decide("special_mention", "normal", 0, date(2026, 7, 1), state)
        assert d.loan_class == "special_mention"
        worse = decide("special_mention", "substandard", 91, date(2026, 7, 1), state)
        assert worse.loan_class == "substandard" and worse.reason == "91 days past due"

    def test_a_restructured_loan_is_at_least_substandard_during_its_observation(self) -> None:
        state = ClassState(restructured_until=date(2027, 3, 15))
        d = decide("normal", "normal", 0, date(2026, 5, 1), state)
        assert d.loan_class == "substandard" and "restructured" in d.reason

    def test_observation_periods(self) -> None:
        monthly = [date(2026, m, 15) for m in range(1, 13)]
        # six months after the cure is later than two periods
        assert cure_observation_end(date(2026, 3, 20), monthly) == date(2026, 9, 20)
        half_yearly = [date(2026, 6, 15), date(2026, 12, 15), date(2027, 6, 15)]
        # two half-yearly periods end after six months
        assert cure_observation_end(date(2026, 5, 1), half_yearly) == date(2026, 12, 15)
        assert cure_observation_end(date(2026, 5, 1), half_yearly, BadLoanPolicy(cure_months=12)) == date(2027, 5, 1)
        assert restructure_observation_end(date(2026, 4, 15), monthly) == date(2027, 4, 15)
        assert add_months(date(2026, 8, 31), 6) == date(2027, 2, 28)
