"""Property: reversing a repayment (then replaying the later ones) leaves the loan and the ledger exactly as
if that repayment had never been posted."""

from __future__ import annotations

import tempfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from tests.databases import pristine_sqlite_url

from microlend.core import tenancy
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import Principal, Role
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.servicing import service
from microlend.servicing.service import Disbursement, setup_tenant

payments = st.lists(
    st.tuples(st.decimals(Decimal("1"), Decimal("3000"), places=2), st.integers(0, 40)), min_size=2, max_size=5
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(paid=payments, data=st.data())
def test_reversal_then_replay_equals_never_having_posted(paid: list[tuple[Decimal, int]], data: st.DataObject) -> None:
    reversed_index = data.draw(st.integers(0, len(paid) - 1))
    old = list(tenancy.TENANT_SETUP)
    tenancy.TENANT_SETUP[:] = [setup_tenant]
    try:
        with tempfile.TemporaryDirectory() as tmp:
            engine = make_engine(pristine_sqlite_url(Path(tmp) / "p.db"))
            factory = make_session_factory(engine)
            states = []
            for name, skip in (("with", None), ("without", reversed_index)):
                t = tenancy.create_tenant(UnitOfWork(factory), name, business_date=date(2026, 1, 15))
                who = Principal(1, t.id, "staff", frozenset({Role.ADMIN}))
                loan = service.disburse(UnitOfWork(factory), who, Disbursement("EI-STD", Decimal("12000"), 12))
                day = date(2026, 1, 15)
                ids = []
                for k, (amount, days_later) in enumerate(paid):
                    day += timedelta(days=days_later)
                    with UnitOfWork(factory) as u:
                        row = u.session.get(TenantRow, t.id)
                        assert row is not None
                        row.business_date = day
                        u.commit()
                    if k != skip:
                        ids.append(service.post_repayment(UnitOfWork(factory), who, loan.id, amount).id)
                if skip is None:
                    service.reverse_repayment(UnitOfWork(factory), who, ids[reversed_index], "returned")
                view = service.get_loan(UnitOfWork(factory), who, loan.id)
                tb = service.trial_balance(UnitOfWork(factory), who)
                assert tb.balanced and service.reconcile(UnitOfWork(factory), who).ok
                states.append(
                    (
                        [(i.principal_paid, i.interest_paid, i.fee_paid, i.status) for i in view.installments],
                        view.credit_balance,
                        view.status,
                        {r.code: r.balance for r in tb.rows},
                    )
                )
            engine.dispose()
            assert states[0] == states[1]
    finally:
        tenancy.TENANT_SETUP[:] = old
