from __future__ import annotations

import random
from datetime import UTC, date, datetime, timedelta

import pytest
from sqlalchemy import Engine, select

from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.demo import DEMO_LAUNCH, MIN_OFFERS_FOR_SMS, seed_marketing_demo
from microlend.marketing.tables import OfferRow, PreapprovalRunRow
from microlend.parties.tables import ConsentRow, CustomerRow
from microlend.risk.datasets import german_credit

from .conftest import Bank

AS_OF = date(2026, 3, 1)
_banks = iter(range(1, 10**6))


@pytest.fixture
def dbank(marketing_engine: Engine) -> Bank:
    """A bank created as the platform creates one, with every module's defaults: the expert scorecard as its
    champion model and the default credit policy published (what the live rules run on)."""
    import uuid

    from microlend.bootstrap import load_modules

    load_modules()
    tenant = tenancy.create_tenant(UnitOfWork(make_session_factory(marketing_engine)),
                                   f"demo-mkt-{next(_banks)}-{uuid.uuid4().hex[:8]}", business_date=AS_OF)
    return Bank(tenant.id, marketing_engine)


def _seed_customers(mbank: Bank, n: int = 600, *, consent: bool = True) -> None:
    frame = german_credit().frame.head(n)
    rng = random.Random(1)
    created = datetime(2024, 6, 1, tzinfo=UTC)
    with mbank.uow() as u:
        for i, row in enumerate(frame.to_dict("records")):
            attrs = {k: v for k, v in row.items() if k != "creditability"}
            attrs["annual_turnover"] = str(int(row["credit_amount"]) * 40)
            attrs["years_in_business"] = rng.randint(1, 15)
            u.session.add(CustomerRow(
                tenant_id=mbank.tenant_id, kind="person", name=f"c{i}", id_number_enc="x",
                id_number_index=f"{mbank.tenant_id}-{i}", id_number_masked="x", phone_enc="x",
                phone_index=f"p{mbank.tenant_id}-{i}", phone_masked="x",
                birth_date=date(2026 - int(row["age_in_years"]), 1, 15), industry="retail",
                marketing_consent=rng.random() < 0.85, attributes=attrs,
                created_at=created + timedelta(days=i), updated_at=created))
        u.flush()
        if consent:  # as the demo's history gives it to its applicants: the live rules read the credit report
            ids = u.session.execute(select(CustomerRow.id).where(CustomerRow.tenant_id == mbank.tenant_id)).scalars()
            for cid in ids:
                u.session.add(ConsentRow(tenant_id=mbank.tenant_id, customer_id=cid, scope="credit_report",
                                         granted_at=created, granted_by="officer@demo", channel="assisted-otp"))
        u.commit()


def test_demo_bank_gets_a_measured_campaign_and_visit_tasks(dbank: Bank) -> None:
    mbank = dbank
    _seed_customers(mbank)
    who = mbank.who()
    demo = seed_marketing_demo(mbank.uow(), who, as_of=AS_OF, at=DEMO_LAUNCH, officer_user_ids=[7, 8])
    assert demo.run_id is not None
    with mbank.uow() as u:
        offers = u.session.execute(select(OfferRow.id).where(OfferRow.run_id == demo.run_id)).all()
    assert len(offers) == demo.offers
    # the live rules made the offers: the bank's champion model and its published policy, not the starter path
    from microlend.decisioning import queries as decisions
    from microlend.risk import queries as models

    system = system_principal(mbank.tenant_id)
    _, model_label = models.champion_model(mbank.uow(), system)
    _, policy_label = decisions.published_credit_policy(mbank.uow(), system)
    with mbank.uow() as u:
        run = u.session.get(PreapprovalRunRow, demo.run_id)
        assert run is not None
        assert (run.model_version, run.policy_version) == (model_label, policy_label)
    # the campaigns come from the run: the SMS campaign on its offers when there are enough for a control
    # group, the officers' visits on every offer it made
    sms = service.get_campaign(mbank.uow(), who, demo.sms_campaign_id)
    visit = service.get_campaign(mbank.uow(), who, demo.visit_campaign_id)
    assert sms.run_id == (demo.run_id if demo.offers >= MIN_OFFERS_FOR_SMS else None)
    assert visit.run_id == (demo.run_id if demo.offers else None)
    applied, disbursed = demo.report.comparisons[0], demo.report.comparisons[1]
    assert disbursed.control_n > 0 and disbursed.treatment_n > disbursed.control_n
    # the simulated effect (24 % of the treated apply, 6 % of the controls) shows at the first stage; the later
    # stage's handful of loans is reported with its interval (which arm a customer falls in depends on its id)
    assert applied.treatment_rate > applied.control_rate, demo.report.comparisons
    assert disbursed.low <= disbursed.difference <= disbursed.high
    channel = next(f for f in demo.report.funnel if f.by == "channel")
    assert channel.sent > 0 and channel.tracked_opens > 0 and channel.tracked_clicks > 0
    tasks = service.visit_tasks(mbank.uow(), mbank.who(user_id=7))
    assert service.visit_tasks(mbank.uow(), who, officer_user_id=7)
    assert tasks and all(t.officer_user_id in (7, 8) for t in tasks)
    again = seed_marketing_demo(mbank.uow(), who, as_of=AS_OF, at=DEMO_LAUNCH)
    assert (again.sms_campaign_id, again.visit_campaign_id) == (demo.sms_campaign_id, demo.visit_campaign_id)
    assert len(service.list_campaigns(mbank.uow(), who)) == 2
