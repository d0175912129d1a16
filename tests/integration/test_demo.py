"""The demo bank is seeded through the real use cases: its books balance and its audit chain holds."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import func, select

from microlend.core import audit
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.migrate import upgrade
from microlend.core.uow import UnitOfWork
from microlend.demo.history import seed_datasets, seed_marketing, simulate
from microlend.demo.seed import german_credit, seed
from microlend.origination.tables import ApplicationRow, LoanContractRow
from microlend.parties.tables import ConsentRow
from microlend.servicing import service as servicing

pytestmark = pytest.mark.slow


def test_a_demo_bank_lives_sixty_days_with_balanced_books(tmp_path: Path) -> None:
    engine = make_engine(f"sqlite:///{tmp_path / 'demo.db'}")
    upgrade(engine)
    uow = UnitOfWork(make_session_factory(engine))
    bank = seed(uow, customers=300)
    assert bank.customers == 300 and bank.new
    life = simulate(uow, bank.tenant_id, german_credit(), days=60, per_day=5)
    assert life.applications > 100 and life.disbursed > 20 and life.repayments > 10
    who = system_principal(bank.tenant_id)
    assert servicing.reconcile(uow, who).ok
    with uow:
        assert audit.verify(uow.session, bank.tenant_id).ok
        waiting = uow.session.execute(select(func.count()).select_from(ApplicationRow).where(
            ApplicationRow.status == "referred")).scalar_one()
    assert waiting == life.waiting_review > 0
    with uow:  # every loan was signed for by its borrower: on their phone, or with a code read out to an officer
        paid_out = set(uow.session.execute(select(ApplicationRow.id).where(
            ApplicationRow.status.in_(("accepted", "disbursed")))).scalars())
        signed = uow.session.execute(select(LoanContractRow.application_id, LoanContractRow.channel)).all()
        consents = set(uow.session.execute(select(ConsentRow.channel)).scalars())
    assert paid_out and paid_out == {a for a, _ in signed}
    assert {c for _, c in signed} == {"self", "assisted-otp"} and consents == {"self", "assisted-otp"}
    assert "pre-approved offers" in seed_marketing(uow, bank.tenant_id)
    assert "german_credit (1000 rows)" in seed_datasets(uow, bank.tenant_id, tmp_path / "files")
    with uow:
        assert audit.verify(uow.session, bank.tenant_id).ok
    assert seed(uow, customers=300).new is False  # seeding again adds nothing
