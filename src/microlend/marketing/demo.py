"""The demo bank's marketing (示范营销活动): a segment, a pre-approval run over the bank's own customers with
its live rules (champion model, published credit policy, exposure and arrears, as
`bank_preapproval.run_bank_preapproval` runs it for a real bank), an SMS campaign on that run's offers with
a control group that has a visible funnel and lift, and visit tasks for the loan officers.

The bank's customers come into the frame marketing works on through `sources.customers_frame`;
`seed_marketing_demo` builds the rest. Customer responses in the demo are simulated with a fixed seed
(treated customers apply more often than the control group), so the report shows a real, measurable lift.
Running it twice adds nothing.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import polars as pl
from sqlalchemy import select

from microlend.core.identity import Principal
from microlend.core.uow import UnitOfWork
from microlend.marketing import service
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.sources import customers_frame
from microlend.marketing.tracking import CampaignReport

SEGMENT = "核心客群 core customers"
SMS_CAMPAIGN = "春季预授信短信 spring pre-approval SMS"
VISIT_CAMPAIGN = "客户经理走访 officer visits"
#: The demo launches a month before the bank's date, and its simulated history stamps applications with the
#: instant the demo is seeded (origination takes the clock): a window ending two days short of that instant
#: keeps those history applications out, so the report counts the responses to the campaign itself.
DEMO_WINDOW_DAYS = 28
#: the fewest offers the SMS campaign is run on (with its 20 % control group, enough to read a lift)
MIN_OFFERS_FOR_SMS = 100


@dataclass(frozen=True)
class DemoMarketing:
    segment: str
    run_id: int | None
    offers: int
    sms_campaign_id: int
    visit_campaign_id: int
    report: CampaignReport


def _simulate_responses(uow: UnitOfWork, who: Principal, campaign_id: int, at: datetime, seed: int) -> None:
    """Demo responses: opens and clicks for the treated, applications more often when contacted."""
    from microlend.marketing.tables import AssignmentRow, OutboxRow

    with uow:
        arms = uow.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
            AssignmentRow.campaign_id == campaign_id, AssignmentRow.arm != "excluded")).all()
        tokens = dict(uow.session.execute(select(OutboxRow.customer_id, OutboxRow.token).where(
            OutboxRow.campaign_id == campaign_id)).all())
    rng = random.Random(seed)
    events: list[dict[str, Any]] = []
    for customer_id, arm in sorted(arms):
        treated = arm == "treatment"
        t = at + timedelta(hours=rng.randint(1, 30))
        if treated and rng.random() < 0.55:
            events.append({"customer_id": customer_id, "kind": "opened", "at": t, "campaign_id": campaign_id,
                           "token": tokens.get(customer_id)})
            if rng.random() < 0.45:
                events.append({"customer_id": customer_id, "kind": "clicked", "at": t + timedelta(minutes=2),
                               "campaign_id": campaign_id, "token": tokens.get(customer_id)})
        if rng.random() < (0.24 if treated else 0.06):
            applied = t + timedelta(days=rng.randint(0, 10))
            events.append({"customer_id": customer_id, "kind": "applied", "at": applied})
            if rng.random() < 0.75:
                events.append({"customer_id": customer_id, "kind": "approved", "at": applied + timedelta(hours=2)})
                if rng.random() < 0.9:
                    events.append({"customer_id": customer_id, "kind": "disbursed", "at": applied + timedelta(days=1)})
    service.record_events(uow, who, events)


def seed_marketing_demo(uow: UnitOfWork, who: Principal, *, as_of: date, at: datetime,
                        officer_user_ids: Sequence[int] = (), seed: int = 20260302) -> DemoMarketing:
    """Build the demo's marketing on the tenant's customers; `at` is the launch instant (UTC, daytime)."""
    from microlend.marketing.bank_preapproval import run_bank_preapproval

    existing = {c.name: c for c in service.list_campaigns(uow, who)}
    frame = customers_frame(uow, who, as_of)
    if officer_user_ids:
        officers = list(officer_user_ids)
        frame = frame.with_columns(pl.when(pl.col("officer_user_id").is_null())
                                   .then(pl.Series([officers[i % len(officers)] for i in range(frame.height)]))
                                   .otherwise(pl.col("officer_user_id")).alias("officer_user_id"))
    if not any(s.name == SEGMENT for s in service.list_segments(uow, who)):
        service.save_segment(uow, who, SEGMENT, "age >= 22 and age <= 60", at=at,
                             description="working-age customers (demo)")
    run_id, offers = None, 0
    if SMS_CAMPAIGN not in existing:
        # the live rules, as `microlend marketing preapprove` runs them for a real bank: the bank's champion
        # model and published credit policy over its own customers and their exposure
        run = run_bank_preapproval(uow, who, as_of=as_of, started_at=at, segment_name=SEGMENT, chunk_rows=50_000)
        run_id, offers = run.run_id, run.offers
        # the SMS campaign measures its lift against a control group: on the run's offers when the live rules
        # pre-approved enough customers for one, else on the segment
        target = {"run_id": run_id} if offers >= MIN_OFFERS_FOR_SMS else {"segment_name": SEGMENT}
        sms = service.create_campaign(uow, who, service.CampaignSpec(
            name=SMS_CAMPAIGN, channel="sms", control_share_bp=2000, attribution_days=DEMO_WINDOW_DAYS,
            **target), at=at)
        service.launch_campaign(uow, who, sms.id, frame, at=at, bank_name="微贷通示范农商银行")
        consenting = set(frame.filter(pl.col("marketing_consent")).get_column("customer_id").to_list())
        service.dispatch_outbox(uow, who, now=at, consent=lambda _s, _t, ids: {i for i in ids if i in consenting})
        _simulate_responses(uow, who, sms.id, at, seed)
        sms_id = sms.id
    else:
        sms_id = existing[SMS_CAMPAIGN].id
        run_id = existing[SMS_CAMPAIGN].run_id
    if VISIT_CAMPAIGN not in existing:
        # the officers go out once the SMS campaign's window has closed: under the last-touch rule a visit
        # inside it would take the SMS campaign's later responses
        visits_at = at + timedelta(days=DEMO_WINDOW_DAYS)
        # the officers visit the customers the live rules pre-approved, the offer's figures on their cards
        visit_target = {"run_id": run_id} if run_id is not None and offers else {"segment_name": SEGMENT}
        visit = service.create_campaign(uow, who, service.CampaignSpec(
            name=VISIT_CAMPAIGN, channel="visit", control_share_bp=2000, **visit_target,
            attribution_days=DEMO_WINDOW_DAYS,
            cap=FrequencyCap(max_messages=3, window_days=7)), at=visits_at)
        service.launch_campaign(uow, who, visit.id, frame, at=visits_at)
        visit_id = visit.id
    else:
        visit_id = existing[VISIT_CAMPAIGN].id
    report = service.campaign_report(uow, who, [sms_id])
    return DemoMarketing(SEGMENT, run_id, offers, sms_id, visit_id, report)


DEMO_LAUNCH = datetime(2026, 3, 2, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai
