"""Extension (展期) and restructuring (重组) rules without a database: the legal extension limit, which loans count
as restructured, and what replacing the remaining schedule does (principal kept or capitalised to the cent,
balanced postings, interest to date cut at the approval day)."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.servicing.fakes import make_loan

from microlend.core.errors import Conflict, ValidationError
from microlend.servicing.ledger import Acct, balances
from microlend.servicing.restructuring import (
    RestructureKind,
    RestructureTerms,
    counts_as_restructured,
    extension_limit_months,
    restructure_loan,
)
from microlend.servicing.schedules import RepaymentMethod

D = Decimal
ZERO = D(0)
EXT, RES = RestructureKind.EXTENSION, RestructureKind.RESTRUCTURE


@pytest.mark.parametrize(("term", "limit"), [(6, 6), (12, 12), (24, 12), (60, 30), (120, 36)])
def test_the_extension_limit_of_the_general_rules_on_loans(term: int, limit: int) -> None:
    assert extension_limit_months(term) == limit


def test_which_loans_count_as_restructured() -> None:
    loan = make_loan()
    assert counts_as_restructured(RES, loan, False)
    assert not counts_as_restructured(EXT, loan, False)  # a performing borrower's extension
    assert counts_as_restructured(EXT, loan, True)  # arrears capitalised
    loan.days_past_due = 3
    assert counts_as_restructured(EXT, loan, False)
    loan.days_past_due, loan.loan_class = 0, "special_mention"
    assert counts_as_restructured(EXT, loan, False)


def test_bad_terms_name_the_field() -> None:
    with pytest.raises(ValidationError, match="kind"):
        RestructureTerms("rollover", 12)  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="term_months"):
        RestructureTerms(EXT, 0)
    with pytest.raises(ValidationError, match="annual_rate"):
        RestructureTerms(EXT, 12, D("0.1234567"))


def test_a_revolving_or_closed_loan_is_not_rescheduled() -> None:
    loan = make_loan()
    loan.status = "closed"
    with pytest.raises(Conflict, match="closed"):
        restructure_loan(loan, RestructureTerms(EXT, 18), date(2026, 3, 1))
    line = make_loan(method=RepaymentMethod.EQUAL_INSTALLMENT)
    line.method = RepaymentMethod.REVOLVING.value
    with pytest.raises(Conflict, match="revolving"):
        restructure_loan(line, RestructureTerms(EXT, 18), date(2026, 3, 1))


def test_an_extension_in_the_first_period_cuts_it_at_the_approval_day() -> None:
    loan = make_loan("12000", "0.12", 12, date(2026, 1, 15))
    loan.installments[0].interest_accrued = D("38.71")  # ten days accrued by close of business
    done = restructure_loan(loan, RestructureTerms(EXT, 18), date(2026, 1, 25))
    cut = loan.installments[0]
    assert (cut.due_date, cut.principal, cut.interest, cut.interest_accrued) == (
        date(2026, 1, 25), ZERO, D("38.71"), D("38.71"))
    assert done.entry is None and done.recognised_interest == 0
    assert sum((i.principal for i in loan.installments), ZERO) == D("12000")
    assert loan.maturity_date == date(2027, 7, 15) and len(loan.installments) == 19


@settings(max_examples=60, deadline=None)
@given(
    days_on=st.integers(1, 200),
    term=st.integers(1, 48),
    capitalise=st.booleans(),
    rate_bp=st.integers(0, 1500),
    penalty=st.integers(0, 50_000),
)
def test_principal_is_kept_or_capitalised_to_the_cent_and_the_entry_balances(
    days_on: int, term: int, capitalise: bool, rate_bp: int, penalty: int
) -> None:
    loan = make_loan("12000", "0.12", 12, date(2026, 1, 15))
    on = date.fromordinal(date(2026, 1, 15).toordinal() + days_on)
    for inst in loan.installments:  # accrued by close of business up to yesterday, nothing paid
        if inst.due_date < on:
            inst.interest_accrued, inst.status = inst.interest, "overdue"
    loan.penalty_accrued = D(penalty) / 100
    owed_interest = sum((i.interest_accrued for i in loan.installments), ZERO)
    outstanding = loan.outstanding_principal
    done = restructure_loan(loan, RestructureTerms(RES, term, D(rate_bp) / 10_000, capitalise), on)
    new = loan.installments[-term:]
    assert sum((i.principal for i in new), ZERO) == done.principal
    assert all(i.interest >= 0 and i.principal >= 0 for i in loan.installments)
    assert loan.outstanding_principal == done.principal + (ZERO if capitalise else
                                                           outstanding - done.moved_principal)
    if capitalise:
        assert done.principal == outstanding + owed_interest + done.recognised_interest + D(penalty) / 100
        assert loan.penalty_due == 0 and loan.interest_receivable == 0
    else:
        assert done.principal == done.moved_principal and done.capitalised == 0
    if done.entry is not None:
        assert done.entry.total_debit == done.entry.total_credit
        moved = balances([done.entry])
        assert moved.get(Acct.LOAN_PRINCIPAL, ZERO) == done.capitalised_interest + done.capitalised_penalty
