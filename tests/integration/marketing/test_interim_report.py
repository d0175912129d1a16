"""An open campaign's report on SQLite and PostgreSQL: the page's interim result holds the very figures the
live computation gives, is served from store while nothing changed, and is recomputed when a new event, a
delivery receipt or its age says so; the worker's hourly pass refreshes every open campaign."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select

from microlend.marketing import service
from microlend.marketing.tables import CampaignInterimRow

from .conftest import Bank
from .test_marketing_campaign_flow import NOON
from .test_marketing_measurement import _arms, _campaign


def _same(a: service.InterimReport, live: object) -> None:
    assert a.report.to_dict() == live.to_dict()  # type: ignore[attr-defined]


def test_the_interim_report_equals_the_live_one_and_follows_new_events(mbank: Bank) -> None:
    who = mbank.who()
    cid = _campaign(mbank, "open spring", share=2000, at=NOON)
    other = _campaign(mbank, "open summer", share=0, at=NOON + timedelta(days=2))
    arms = _arms(mbank, cid)
    treated = sorted(c for c, a in arms.items() if a == "treatment")
    control = sorted(c for c, a in arms.items() if a == "control")
    service.record_events(mbank.uow(), who, [
        {"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=1)} for c in treated[:12]]
        + [{"customer_id": c, "kind": "disbursed", "at": NOON + timedelta(days=1, hours=3)} for c in treated[:7]]
        + [{"customer_id": c, "kind": "applied", "at": NOON + timedelta(days=3)} for c in control[:4]])
    now = NOON + timedelta(days=4)

    first = service.interim_report(mbank.uow(), who, cid, now=now)
    assert first.recomputed and first.as_of == now and first.charts["funnel"]
    _same(first, service.campaign_report(mbank.uow(), who, [cid]))

    again = service.interim_report(mbank.uow(), who, cid, now=now + timedelta(minutes=10))
    assert not again.recomputed and again.as_of == now  # read from store, "as of" the computation
    assert again.charts == first.charts
    _same(again, service.campaign_report(mbank.uow(), who, [cid]))

    # a new event changes the inputs: the next view recomputes, and again equals the live figures
    service.record_event(mbank.uow(), who, "applied", customer_id=treated[20], at=NOON + timedelta(days=1))
    fresh = service.interim_report(mbank.uow(), who, cid, now=now + timedelta(minutes=20))
    assert fresh.recomputed
    assert fresh.report.comparisons[0].treatment == first.report.comparisons[0].treatment + 1
    _same(fresh, service.campaign_report(mbank.uow(), who, [cid]))

    # an hour old: recomputed on view even when marketing's own tables did not change
    old = service.interim_report(mbank.uow(), who, cid, now=now + timedelta(minutes=90))
    assert old.recomputed

    # the worker's pass refreshes each open campaign once its result is stale, and nothing when fresh
    assert service.refresh_open_reports(mbank.uow(), who, now=now + timedelta(hours=3)) == 2
    assert service.refresh_open_reports(mbank.uow(), who, now=now + timedelta(hours=3, minutes=1)) == 0
    with mbank.uow() as u:
        stored = {r.campaign_id for r in u.session.execute(select(CampaignInterimRow).where(
            CampaignInterimRow.tenant_id == mbank.tenant_id)).scalars()}
    assert stored == {cid, other}


def test_a_closed_campaign_is_left_to_its_stored_close(mbank: Bank) -> None:
    import polars as pl

    from .test_marketing_campaign_flow import customers

    who = mbank.who()
    cid = _campaign(mbank, "to close", share=2000, at=NOON)
    service.close_campaign(mbank.uow(), who, cid, customers(), at=NOON + timedelta(days=40))
    assert isinstance(customers(), pl.DataFrame)
    assert service.refresh_open_reports(mbank.uow(), who, now=NOON + timedelta(days=41)) == 0


def test_another_bank_cannot_read_the_interim_report(mbank: Bank) -> None:
    import dataclasses

    import pytest

    from microlend.core.errors import NotFound

    cid = _campaign(mbank, "mine", share=2000, at=NOON)
    stranger = dataclasses.replace(mbank.who(), tenant_id=mbank.who().tenant_id + 999)
    with pytest.raises(NotFound):
        service.interim_report(mbank.uow(), stranger, cid, now=NOON)


def test_a_new_event_refreshes_over_the_kept_targeting_and_a_new_send_reads_it_again(mbank: Bank) -> None:
    from microlend.marketing.service import attribution

    who = mbank.who()
    cid = _campaign(mbank, "incremental", share=2000, at=NOON)
    treated = sorted(c for c, a in _arms(mbank, cid).items() if a == "treatment")
    now = NOON + timedelta(days=4)
    first = service.interim_report(mbank.uow(), who, cid, now=now)
    key = (mbank.tenant_id, (cid,))
    kept = attribution._TARGETING[key]
    assert first.charts["funnel"] and first.charts["funnel"].startswith("data:image/svg+xml;base64,")

    service.record_event(mbank.uow(), who, "applied", customer_id=treated[0], at=NOON + timedelta(days=1))
    after_event = service.interim_report(mbank.uow(), who, cid, now=now + timedelta(minutes=1))
    assert after_event.recomputed and attribution._TARGETING[key] is kept  # events re-read, targeting kept
    _same(after_event, service.campaign_report(mbank.uow(), who, [cid]))
    assert after_event.report.comparisons[0].treatment == first.report.comparisons[0].treatment + 1

    # another campaign sends to the same customers: the targeting (who was touched last) is read again
    _campaign(mbank, "competing", share=0, at=NOON + timedelta(days=2))
    service.record_event(mbank.uow(), who, "applied", customer_id=treated[1], at=NOON + timedelta(days=3))
    after_send = service.interim_report(mbank.uow(), who, cid, now=now + timedelta(minutes=2))
    assert after_send.recomputed and attribution._TARGETING[key] is not kept
    _same(after_send, service.campaign_report(mbank.uow(), who, [cid]))
