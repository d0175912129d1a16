"""The journal refuses to exist unbalanced; reversals cancel exactly."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from microlend.servicing.ledger import (
    CHART_OF_ACCOUNTS,
    Acct,
    JournalEntry,
    JournalLine,
    UnbalancedEntryError,
    balances,
    credit,
    debit,
    natural_balance,
)

D = Decimal


class TestJournalEntry:
    def test_a_disbursement_with_a_deducted_fee_balances(self) -> None:
        entry = JournalEntry(
            "disbursement",
            (
                debit(Acct.LOAN_PRINCIPAL, D("10000")),
                credit(Acct.CASH, D("9800")),
                credit(Acct.FEE_INCOME, D("200")),
            ),
        )
        assert entry.total_debit == entry.total_credit == D("10000")

    def test_an_unbalanced_entry_cannot_be_created(self) -> None:
        with pytest.raises(UnbalancedEntryError, match=r"debits 10000 != credits 9999\.99"):
            JournalEntry("disbursement", (debit(Acct.LOAN_PRINCIPAL, D("10000")), credit(Acct.CASH, D("9999.99"))))

    def test_an_empty_entry_is_refused(self) -> None:
        with pytest.raises(UnbalancedEntryError):
            JournalEntry("nothing", (debit(Acct.CASH, D(0)), credit(Acct.SUSPENSE, D(0))))

    @pytest.mark.parametrize(
        "line",
        [
            JournalLine(Acct.CASH, D("-1"), D(0)),
            JournalLine(Acct.CASH, D("1"), D("1")),
            JournalLine(Acct.CASH, D("0.001"), D(0)),
            JournalLine("9999", D("1"), D(0)),
        ],
    )
    def test_bad_lines_are_refused(self, line: JournalLine) -> None:
        with pytest.raises(UnbalancedEntryError):
            JournalEntry("bad", (line, credit(Acct.SUSPENSE, line.debit)))

    def test_the_chart_has_every_account_the_business_needs(self) -> None:
        assert {a.code for a in CHART_OF_ACCOUNTS} == {a.value for a in Acct}


lines = st.lists(
    st.tuples(st.sampled_from(list(Acct)), st.decimals(D("0.01"), D("100000"), places=2)),
    min_size=1,
    max_size=6,
)


class TestLedgerProperties:
    @given(debits=lines, credits=lines)
    def test_every_entry_that_exists_balances_and_its_reversal_cancels_it(
        self,
        debits: list[tuple[Acct, Decimal]],
        credits: list[tuple[Acct, Decimal]],
    ) -> None:
        d_total = sum((a for _, a in debits), D(0))
        c_total = sum((a for _, a in credits), D(0))
        built = [debit(acc, a) for acc, a in debits] + [credit(acc, a) for acc, a in credits]
        if d_total != c_total:
            with pytest.raises(UnbalancedEntryError):
                JournalEntry("random", tuple(built))
            # add the balancing line to suspense and it must be accepted
            gap = d_total - c_total
            built.append(credit(Acct.SUSPENSE, gap) if gap > 0 else debit(Acct.SUSPENSE, -gap))
        entry = JournalEntry("random", tuple(built))
        assert entry.total_debit == entry.total_credit
        assert sum(balances([entry]).values()) == 0
        net = balances([entry, entry.reversal()])
        assert all(v == 0 for v in net.values())

    def test_natural_balance_shows_income_as_positive(self) -> None:
        assert natural_balance(Acct.INTEREST_INCOME, D("-5")) == D("5")
        assert natural_balance(Acct.CASH, D("5")) == D("5")
