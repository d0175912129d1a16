"""Pure rules of non-accrual and provisions: the bank's threshold and policy, a non-accrual loan's collections
(principal first, off-balance interest and penalty income on cash basis, never below zero), stages and the
expected credit loss of one loan."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.unit.servicing.fakes import make_loan

from microlend.core.errors import ValidationError
from microlend.servicing.allocation import AllocationTarget
from microlend.servicing.domain import Loan
from microlend.servicing.ledger import Acct, JournalEntry
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.provisions import ProvisionParameters, provision_for, stage_of

D = Decimal
OVERDUE_ON = date(2026, 6, 1)  # five installments past due on a loan disbursed 2026-01-15


def signed(entry: JournalEntry) -> dict[str, Decimal]:
    out: dict[str, Decimal] = {}
    for line in entry.lines:
        out[line.account] = out.get(line.account, D(0)) + line.signed
    return out


def non_accrual_loan(held: Decimal, penalty: Decimal) -> Loan:
    """A loan nobody paid, stopped accruing with everything accrued moved off-balance (policy reverse)."""
    loan = make_loan()
    for inst in loan.installments:
        if inst.due_date < OVERDUE_ON:
            inst.interest_accrued, inst.status = inst.interest, "overdue"
    loan.penalty_accrued = penalty
    loan.accrual_status = "non-accrual"
    loan.interest_suspended = min(held, loan.interest_receivable)
    loan.penalty_suspended = penalty
    return loan


class TestTheRule:
    def test_defaults_and_the_threshold(self) -> None:
        rule = NonAccrualSettings()
        assert (rule.days, rule.on_npl, rule.policy) == (90, True, AccruedInterestPolicy.REVERSE)
        assert not rule.stops_accruing(90, False) and rule.stops_accruing(91, False)
        assert rule.stops_accruing(10, True)
        assert not NonAccrualSettings(days=180, on_npl=False).stops_accruing(120, True)

    def test_settings_are_checked(self) -> None:
        with pytest.raises(ValidationError, match="nonaccrual_days"):
            NonAccrualSettings(days=400)
        with pytest.raises(ValidationError, match="nonaccrual_policy"):
            NonAccrualSettings(policy="drop")  # type: ignore[arg-type]


class TestCollections:
    def test_a_non_accrual_loan_collects_principal_first(self) -> None:
        loan = non_accrual_loan(D("600"), D("50"))
        assert loan.order()[:2] == (AllocationTarget.OVERDUE_PRINCIPAL, AllocationTarget.CURRENT_PRINCIPAL)

    @given(
        amount=st.decimals(min_value=D("0.01"), max_value=D("15000"), places=2),
        held=st.decimals(min_value=D("0"), max_value=D("700"), places=2),
        penalty=st.decimals(min_value=D("0"), max_value=D("200"), places=2),
    )
    def test_off_balance_amounts_become_income_only_as_collected(
        self, amount: Decimal, held: Decimal, penalty: Decimal
    ) -> None:
        loan = non_accrual_loan(held, penalty)
        before_i, before_p = loan.interest_suspended, loan.penalty_suspended
        owed = sum((d.amount for d in loan.current_dues(OVERDUE_ON)), D(0))
        posting = loan.repay(min(amount, owed), OVERDUE_ON)
        lines = signed(posting.entry)
        cash_i, cash_p = -lines.get(Acct.INTEREST_INCOME, D(0)), -lines.get(Acct.PENALTY_INCOME, D(0))
        assert 0 <= cash_i <= before_i and 0 <= cash_p <= before_p
        assert loan.interest_suspended == before_i - cash_i >= 0
        assert loan.penalty_suspended == before_p - cash_p >= 0
        # the memo accounts move by what became income, against their contra
        assert lines.get(Acct.OFF_BALANCE_INTEREST, D(0)) == -cash_i
        assert lines.get(Acct.OFF_BALANCE_PENALTY, D(0)) == -cash_p
        assert sum(lines.values(), D(0)) == 0


class TestProvisions:
    def test_stages(self) -> None:
        assert stage_of(0, "normal") == 1
        assert stage_of(10, "special_mention") == 2 and stage_of(31, "normal") == 2
        assert stage_of(91, "substandard") == 3 and stage_of(0, "loss") == 3

    @given(ead=st.decimals(min_value=D("0"), max_value=D("10000000"), places=2), stage=st.sampled_from([1, 2, 3]))
    def test_a_loans_provision_is_ead_times_pd_times_lgd_to_the_cent(self, ead: Decimal, stage: int) -> None:
        params = ProvisionParameters()
        pd = (params.pd_stage1, params.pd_stage2, params.pd_stage3)[stage - 1]
        exact = ead * pd * params.lgd
        assert provision_for(ead, stage) == exact.quantize(D("0.01"), rounding="ROUND_HALF_UP")

    def test_parameters_are_checked(self) -> None:
        with pytest.raises(ValidationError, match="pd_stage1"):
            ProvisionParameters(pd_stage1=D("-0.1"))
        with pytest.raises(ValidationError, match="pd_stage2"):
            ProvisionParameters(pd_stage1=D("0.5"), pd_stage2=D("0.2"))
