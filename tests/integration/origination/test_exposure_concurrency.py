"""Applications arriving at once for one borrower never both use the same exposure headroom: the decision
reserves it under a lock on the borrower's row (PostgreSQL `SELECT ... FOR UPDATE`; SQLite serialises writers)."""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest
from sqlalchemy import Engine, select, text
from sqlalchemy.exc import OperationalError
from tests.conftest import Api
from tests.integration.origination.test_applications_api import new_customer
from tests.signing import consent_by_code

from microlend.decisioning.tables import DecisionRow
from microlend.origination import exposure, service
from microlend.origination.tables import ApplicationRow


def test_parallel_applications_of_one_borrower_stay_within_the_cap(api: Api, engine: Engine) -> None:
    customers = [new_customer(api) for _ in range(3)]  # grade C at a turnover of 600,000: cap 150,000 each
    for customer_id in customers:
        consent_by_code(api, customer_id, "credit_report")
    who = api.kit.principal("credit_officer")
    workers_per_customer = 4
    barrier = threading.Barrier(len(customers) * workers_per_customer)
    errors: list[BaseException] = []

    def submit(customer_id: int) -> None:
        cmd = service.NewApplication(customer_id=customer_id, product_code="EI-STD", amount=Decimal("100000"),
                                     term_months=12, consents=("credit_report",))
        barrier.wait()
        try:
            service.submit(api.kit.uow_factory(), who, cmd)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=submit, args=(c,)) for c in customers for _ in range(workers_per_customer)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, f"{engine.dialect.name}: {errors[:2]}"
    with api.kit.uow_factory() as u:
        rows = u.session.execute(select(ApplicationRow.customer_id, ApplicationRow.status, ApplicationRow.amount,
                                        ApplicationRow.offer_amount, DecisionRow.inputs)
                                 .join(DecisionRow, DecisionRow.id == ApplicationRow.decision_id)
                                 .where(ApplicationRow.customer_id.in_(customers))
                                 .order_by(ApplicationRow.decision_id)).all()
    assert len(rows) == len(threads)
    for c in customers:
        mine = [(status, amount, offer, inputs) for customer, status, amount, offer, inputs in rows if customer == c]
        assert [offer for status, _, offer, _ in mine if status == "approved"] == [Decimal("100000")], mine
        # each decision saw every one decided before it (an offer, a review): never the same headroom twice
        committed = Decimal(0)
        for status, amount, offer, inputs in mine:
            assert Decimal(inputs.get("exposure", {}).get("total", "0")) == committed, (engine.dialect.name, mine)
            committed += offer if status == "approved" else amount if status == "referred" else 0


def test_the_borrowers_row_is_held_until_the_reserving_transaction_ends(api: Api, engine: Engine) -> None:
    """The lock itself (on PostgreSQL other writers of a bank may also queue behind its audit chain): while one
    transaction holds a borrower's row, another cannot take it, and can take another borrower's."""
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks are PostgreSQL's; SQLite lets one writer in at a time")
    first, second = new_customer(api), new_customer(api)
    tenant = api.kit.tenant.id
    with api.kit.uow_factory() as holder:
        exposure.lock_borrowers(holder.session, tenant, [first])
        holder.session.commit()  # the row exists now; take it again and keep it
        exposure.lock_borrowers(holder.session, tenant, [first])
        with api.kit.uow_factory() as other:
            other.session.execute(text("SET LOCAL lock_timeout = '300ms'"))
            exposure.lock_borrowers(other.session, tenant, [second])  # another borrower: no wait
            with pytest.raises(OperationalError, match="lock timeout"):
                exposure.lock_borrowers(other.session, tenant, [first, second])
    with api.kit.uow_factory() as after:  # released with the holder's transaction
        after.session.execute(text("SET LOCAL lock_timeout = '300ms'"))
        exposure.lock_borrowers(after.session, tenant, [first])
