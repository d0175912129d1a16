"""The demo bank is seeded through the real use cases, its external data served by the provider sandboxes in a
process of their own: Chinese micro-businesses and business owners decided on tax, invoices, flows, registry,
enforcement and the credit report (no German attribute), its books balanced and its audit chain whole."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select

from microlend.core import audit
from microlend.core.db import make_session_factory
from microlend.core.errors import DomainError
from microlend.core.identity import system_principal
from microlend.core.job_tables import JobRunRow
from microlend.core.tables import AuditRow, TenantRow
from microlend.core.uow import UnitOfWork
from microlend.data.tables import BankAccountRow, BankTransactionRow, ProviderCallRow, ProviderSettingsRow
from microlend.decisioning.tables import DecisionRow
from microlend.demo import providers
from microlend.demo.history import live_on, seed_datasets, seed_marketing, simulate
from microlend.demo.seed import _customers, german_credit, seed
from microlend.origination.tables import ApplicationRow, LoanContractRow
from microlend.parties.tables import ConsentRow, CustomerRow
from microlend.servicing import service as servicing
from microlend.servicing.reminder_tables import ReminderRow

pytestmark = pytest.mark.slow


def test_a_demo_bank_of_micro_businesses_lives_on_sandbox_data(fresh_engine: Engine, tmp_path: Path) -> None:
    uow = UnitOfWork(make_session_factory(fresh_engine))
    bank = seed(uow, customers=160)
    assert bank.customers == 160 and bank.new
    with uow.read_only():
        customers = uow.session.execute(select(CustomerRow.kind, CustomerRow.attributes)).all()
        accounts = uow.session.execute(select(func.count()).select_from(BankAccountRow)).scalar_one()
        bounced = uow.session.execute(
            select(func.count()).select_from(BankTransactionRow).where(BankTransactionRow.kind == "bounced")
        ).scalar_one()
    german = set(german_credit().columns)
    assert all(not german & set(attrs) for _, attrs in customers)  # no German attribute on any customer
    businesses = sum(1 for kind, _ in customers if kind == "business")
    assert 0.55 < businesses / len(customers) < 0.85
    assert all({"years_in_business", "annual_turnover", "employees"} <= set(attrs) for _, attrs in customers)
    assert 40 <= accounts <= 90 and bounced > 0
    assert (
        bank.accounts == accounts and bank.transactions > 20 * accounts
    )  # ~40 % bank with it, the risky ones bounce payments

    anchor = providers.anchor_of(uow, bank.tenant_id)
    with providers.start(anchor) as sandbox:
        assert providers.connect(uow, bank.tenant_id, sandbox.base_url) == 6
        assert providers.connect(uow, bank.tenant_id, sandbox.base_url) == 0  # already pointed there
        life = simulate(uow, bank.tenant_id, days=30, per_day=5)
    assert sandbox.process.poll() is not None  # the sandbox stopped with the block
    assert life.applications > 100 and life.disbursed > 10 and life.approved >= life.disbursed
    assert life.declined > 0 and life.referred > 0 and life.decline_reasons
    assert f"{life.applications} applications" in life.summary()

    with uow.read_only():
        s = uow.session
        decisions = s.execute(
            select(DecisionRow.outcome, DecisionRow.limit, DecisionRow.reasons, DecisionRow.inputs).where(
                DecisionRow.tenant_id == bank.tenant_id
            )
        ).all()
        calls = s.execute(select(ProviderCallRow.kind, ProviderCallRow.status, ProviderCallRow.cost)).all()
        settings = s.execute(select(ProviderSettingsRow.kind, ProviderSettingsRow.base_url)).all()
    # every source the sandbox serves answered (a business without card takings is simply not found there)
    statuses = [inputs["data"]["sources"] for *_, inputs in decisions]
    assert statuses and all(set(st.values()) <= {"ok", "not_found", "no_consent"} for st in statuses)
    assert sum(1 for st in statuses if set(st.values()) == {"ok"} and len(st) == 6) > 20
    tax_approvals = [
        (limit, Decimal(inputs["capacity"]["verified_sales_12m"]))
        for outcome, limit, _, inputs in decisions
        if outcome == "approve" and inputs["application"]["product_code"] == "TAX_LOAN"
    ]
    assert tax_approvals and all(limit <= Decimal("0.3") * sales for limit, sales in tax_approvals)
    assert any(
        outcome == "decline" and any(r.startswith("ENFORCEMENT_") or r == "SALES_DECLINING" for r in reasons)
        for outcome, _, reasons, _ in decisions
    )
    # each call recorded, and billed at the demo's price when the provider answered
    assert {k for k, st, _ in calls if st == "ok"} == set(providers.COST_PER_CALL)
    assert all(cost == providers.COST_PER_CALL[k] for k, st, cost in calls if st in ("ok", "not_found"))
    assert {url for _, url in settings} == {sandbox.base_url}

    who = system_principal(bank.tenant_id)
    assert servicing.reconcile(uow, who).ok
    # the history was lived through the worker's calendar: every night closed once, reminders and receipts sent
    with uow.read_only():
        runs = uow.session.execute(select(JobRunRow.kind, JobRunRow.business_date, JobRunRow.status).where(
            JobRunRow.tenant_id == bank.tenant_id)).all()
        sent = uow.session.execute(select(ReminderRow.kind, func.count()).where(
            ReminderRow.tenant_id == bank.tenant_id, ReminderRow.status == "sent").group_by(ReminderRow.kind)).all()
        receipts = uow.session.execute(select(func.count()).select_from(ReminderRow).where(
            ReminderRow.tenant_id == bank.tenant_id, ReminderRow.kind == "receipt")).scalar_one()
    nights = [d for k, d, _ in runs if k == "close_of_business"]
    assert len(nights) == len(set(nights)) == 30 and {st for *_, st in runs} == {"succeeded"}
    assert len([d for k, d, _ in runs if k == "reminders"]) == 30
    assert len([d for k, d, _ in runs if k == "early_warning"]) == 30  # the scan after every close
    assert len([d for k, d, _ in runs if k == "data_refresh"]) == 30  # before it, the re-pull of month-old data
    assert life.repulled == 0  # no answer of the month's decisions is a month old yet
    assert life.alerts > 0 and life.alerts_acted > 0  # early-warning alerts exist, some acted on
    assert dict(sent).get("before_due", 0) > 0  # three days before the first due dates of the month's loans
    assert receipts == life.repayments  # one receipt queued per repayment
    with uow:
        assert audit.verify(uow.session, bank.tenant_id).ok
        waiting = uow.session.execute(
            select(func.count()).select_from(ApplicationRow).where(ApplicationRow.status == "referred")
        ).scalar_one()
    assert waiting == life.waiting_review > 0
    with uow:  # every loan was signed for by its borrower: on their phone, or with a code read out to an officer
        paid_out = set(
            uow.session.execute(
                select(ApplicationRow.id).where(ApplicationRow.status.in_(("accepted", "disbursed")))
            ).scalars()
        )
        signed = uow.session.execute(select(LoanContractRow.application_id, LoanContractRow.channel)).all()
        consents = uow.session.execute(select(ConsentRow.channel, ConsentRow.scope)).all()
    assert paid_out and paid_out == {a for a, _ in signed}
    assert {c for _, c in signed} == {"self", "assisted-otp"} and {c for c, _ in consents} == {"self", "assisted-otp"}
    assert {scope for _, scope in consents} == {"credit_report", "external_data"}

    # the next start of the demo has a sandbox on another port: the providers are re-pointed, audited
    with providers.start(anchor, (0, 0)) as again:
        assert providers.connect(uow, bank.tenant_id, again.base_url) == 6
    with uow.read_only():
        updates = uow.session.execute(
            select(func.count())
            .select_from(AuditRow)
            .where(AuditRow.tenant_id == bank.tenant_id, AuditRow.action == "data_provider.update")
        ).scalar_one()
    assert updates == 12

    assert "pre-approved offers" in seed_marketing(uow, bank.tenant_id)
    assert "german_credit (1000 rows)" in seed_datasets(uow, bank.tenant_id, tmp_path / "files")
    with uow:
        assert audit.verify(uow.session, bank.tenant_id).ok
    assert seed(uow, customers=160).new is False  # seeding again adds nothing


def test_the_same_seed_gives_the_same_customers() -> None:
    first = _customers(50, 11, date(2026, 6, 1))
    again = _customers(50, 11, date(2026, 6, 1))
    other = _customers(50, 12, date(2026, 6, 1))
    assert [c.customer for c in first] == [c.customer for c in again]
    assert [c.customer.id_number for c in first] != [c.customer.id_number for c in other]


def test_the_bank_lives_on_after_its_history_with_customers_new_to_it(fresh_engine: Engine) -> None:
    uow = UnitOfWork(make_session_factory(fresh_engine))
    bank = seed(uow, customers=90)
    with uow.read_only():
        today = uow.session.get(TenantRow, bank.tenant_id).business_date  # type: ignore[union-attr]
    with providers.start(providers.anchor_of(uow, bank.tenant_id), (0, 0)) as sandbox:
        providers.connect(uow, bank.tenant_id, sandbox.base_url)
        first = simulate(uow, bank.tenant_id, days=6, per_day=5)
        with uow.read_only():
            before = set(uow.session.execute(select(ApplicationRow.id, ApplicationRow.customer_id)).all())
        more = live_on(uow, bank.tenant_id, days=4, per_day=5)
    with uow.read_only():
        after = set(uow.session.execute(select(ApplicationRow.id, ApplicationRow.customer_id)).all())
        moved_to = uow.session.get(TenantRow, bank.tenant_id).business_date  # type: ignore[union-attr]
        nights = uow.session.execute(select(JobRunRow.business_date).where(
            JobRunRow.tenant_id == bank.tenant_id, JobRunRow.kind == "close_of_business")).scalars().all()
    new = after - before
    assert first.applications > 0 and more.applications == len(new) > 0
    assert not {c for _, c in new} & {c for _, c in before}  # only customers who had not applied before
    assert moved_to == today + timedelta(days=4)
    assert sorted(nights) == [today - timedelta(days=6 - i) for i in range(10)]  # every night closed, once
    assert servicing.reconcile(uow, system_principal(bank.tenant_id)).ok
    with pytest.raises(DomainError):
        live_on(uow, bank.tenant_id, days=0)
