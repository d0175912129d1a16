"""Property: whatever the portfolio and however many dates are closed, the loan-level sub-ledger adds up to the
general ledger: per account, the batch entries' lines equal the sum of every loan's rows; per batch and account they
agree; and per loan, its postings equal its own balances (逐户对账)."""

from __future__ import annotations

import tempfile
from collections import defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.databases import pristine_sqlite_url

from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.servicing import cob, service
from microlend.servicing.nonaccrual import AccruedInterestPolicy, NonAccrualSettings
from microlend.servicing.service import Disbursement, setup_tenant
from microlend.servicing.tables import JournalEntryRow, JournalLineRow, LoanAccrualRow

loans = st.lists(
    st.tuples(
        st.sampled_from(["EI-STD", "EP-STD", "IO-STD", "BL-STD"]),
        st.decimals(Decimal("5000"), Decimal("50000"), places=2),  # within every product's range
        st.sampled_from([3, 6, 12]),
        st.decimals(Decimal("0.05"), Decimal("0.15"), places=3),
        st.booleans(),  # pays each installment on its due date, or not at all
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=4, deadline=None, suppress_health_check=[HealthCheck.too_slow],
          phases=[Phase.explicit, Phase.reuse, Phase.generate])  # each example closes months of dates
@given(portfolio=loans, days=st.integers(20, 130), policy=st.sampled_from(list(AccruedInterestPolicy)))
def test_the_sub_ledger_sums_to_the_general_ledger_per_account_batch_and_loan(
    portfolio: list[tuple[str, Decimal, int, Decimal, bool]], days: int, policy: AccruedInterestPolicy
) -> None:
    old = list(tenancy.TENANT_SETUP)
    tenancy.TENANT_SETUP[:] = [setup_tenant]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            factory = make_session_factory(make_engine(pristine_sqlite_url(Path(tmp) / "p.db")))
            t = tenancy.create_tenant(UnitOfWork(factory), "prop", business_date=date(2026, 1, 15))
            who = Principal(1, t.id, "staff", frozenset({Role.ADMIN}))
            service.set_nonaccrual_settings(UnitOfWork(factory), who, NonAccrualSettings(30, True, policy))
            payers = []
            for product, principal, term, rate, pays in portfolio:
                loan = service.disburse(UnitOfWork(factory), who, Disbursement(product, principal, term, rate))
                if pays:
                    payers.append(loan.id)
            day = date(2026, 1, 15)
            for _ in range(days):
                for loan_id in payers:
                    for inst in service.get_loan(UnitOfWork(factory), who, loan_id).installments:
                        if inst.due_date == day and inst.outstanding > 0:
                            service.post_repayment(UnitOfWork(factory), who, loan_id, inst.outstanding)
                cob.run_close_of_business(UnitOfWork(factory), who, through=day)
                day += timedelta(days=1)
            with UnitOfWork(factory) as u:
                gl: dict[str, Decimal] = defaultdict(Decimal)
                for account, debit, credit in u.session.execute(
                    select(JournalLineRow.account_code, JournalLineRow.debit, JournalLineRow.credit)
                    .join(JournalEntryRow, JournalEntryRow.id == JournalLineRow.entry_id)
                    .where(JournalEntryRow.tenant_id == t.id, JournalLineRow.loan_id.is_(None),
                           JournalEntryRow.id.in_(select(LoanAccrualRow.entry_id)))
                ):
                    gl[account] += debit - credit
                per_loan: dict[tuple[int, str], Decimal] = defaultdict(Decimal)
                for row in u.session.execute(
                    select(LoanAccrualRow).where(LoanAccrualRow.tenant_id == t.id)
                ).scalars():
                    per_loan[(row.loan_id, row.debit_account)] += row.amount
                    per_loan[(row.loan_id, row.credit_account)] -= row.amount
            summed: dict[str, Decimal] = defaultdict(Decimal)
            for (_, account), amount in per_loan.items():
                summed[account] += amount
            assert {a: v for a, v in gl.items() if v} == {a: v for a, v in summed.items() if v}
            assert gl  # interest accrued every night
            assert service.reconcile_batches(UnitOfWork(factory), who) == []
            assert service.reconcile_loans(UnitOfWork(factory), who) == []
            assert service.reconcile(UnitOfWork(factory), who).ok
            assert service.trial_balance(UnitOfWork(factory), who).balanced
    finally:
        tenancy.TENANT_SETUP[:] = old
