"""Visit tasks on SQLite and PostgreSQL: due the campaign's visit days after the launch (7 unless stated),
flagged overdue on the officer's list, their outcome counted in the campaign's funnel, and the open ones
closed with their reason by the hourly sweep once the customer is no longer eligible (opted out of visits,
overdue on a loan, the targeted offer expired, applied already)."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal

import pytest
from sqlalchemy import select, update

from microlend.core.errors import ValidationError
from microlend.core.identity import Role
from microlend.core.tables import AuditRow
from microlend.marketing import service, sources
from microlend.marketing.segments import FrequencyCap
from microlend.marketing.tables import AssignmentRow, OfferRow, PreapprovalRunRow, VisitTaskRow

from .conftest import Bank
from .test_marketing_campaign_flow import NOON, customers


def _visits(mbank: Bank, name: str, *, due_days: int | None = None, share: int = 0) -> int:
    who = mbank.who()
    try:
        service.get_segment(mbank.uow(), who, "adults")
    except Exception:
        service.save_segment(mbank.uow(), who, "adults", "age >= 25 and months_on_book > 2", at=NOON)
    extra = {} if due_days is None else {"visit_due_days": due_days}
    camp = service.create_campaign(mbank.uow(), who, service.CampaignSpec(
        name=name, channel="visit", segment_name="adults", control_share_bp=share,
        cap=FrequencyCap(max_messages=10, window_days=1), **extra), at=NOON)  # type: ignore[arg-type]
    service.launch_campaign(mbank.uow(), who, camp.id, customers(), at=NOON)
    return camp.id


def _tasks(mbank: Bank, campaign_id: int) -> list[VisitTaskRow]:
    with mbank.uow() as u:
        rows = list(u.session.execute(select(VisitTaskRow).where(
            VisitTaskRow.campaign_id == campaign_id).order_by(VisitTaskRow.id)).scalars())
        u.session.expunge_all()
        return rows


def test_tasks_are_due_the_campaigns_visit_days_after_the_launch(mbank: Bank) -> None:
    default = _visits(mbank, "default due")
    stated = _visits(mbank, "three days", due_days=3)
    assert {t.due_at for t in _tasks(mbank, default)} == {NOON + timedelta(days=7)}
    assert {t.due_at for t in _tasks(mbank, stated)} == {NOON + timedelta(days=3)}
    assert service.get_campaign(mbank.uow(), mbank.who(), stated).visit_due_days == 3
    with pytest.raises(ValidationError, match="visit_due_days"):
        service.create_campaign(mbank.uow(), mbank.who(), service.CampaignSpec(
            name="never", channel="visit", segment_name="adults", visit_due_days=0), at=NOON)


def test_overdue_tasks_are_flagged_on_the_officers_list(mbank: Bank) -> None:
    _visits(mbank, "soon", due_days=2)
    officer = mbank.who(Role.CREDIT_OFFICER, user_id=101)
    before = service.visit_cards(mbank.uow(), officer, now=NOON + timedelta(days=1))
    after = service.visit_cards(mbank.uow(), officer, now=NOON + timedelta(days=2, minutes=1))
    assert before and not any(c.overdue for c in before)
    assert after and all(c.overdue for c in after)
    service.close_visit_task(mbank.uow(), officer, after[0].task.id, outcome="visited", at=NOON + timedelta(days=3))
    done = service.visit_cards(mbank.uow(), officer, status="done", now=NOON + timedelta(days=9))
    assert len(done) == 1 and not done[0].overdue  # done is never overdue


def test_the_outcome_is_counted_in_the_campaigns_funnel(mbank: Bank) -> None:
    cid = _visits(mbank, "funnel", share=2000)
    officer = mbank.who(Role.CREDIT_OFFICER, user_id=101)
    tasks = [t for t in _tasks(mbank, cid) if t.officer_user_id == 101]
    at = NOON + timedelta(days=1)
    for task, outcome in zip(tasks[:4], ("visited", "applied", "not_interested", "unreachable"), strict=True):
        service.close_visit_task(mbank.uow(), officer, task.id, outcome=outcome, at=at)
    report = service.campaign_report(mbank.uow(), mbank.who(), [cid])
    visit = next(f for f in report.funnel if f.by == "channel")
    assert visit.targeted == visit.sent == len(_tasks(mbank, cid))
    assert visit.delivered == visit.sent - 1  # the unreachable customer was not reached
    assert (visit.responded, visit.applied) == (3, 1)
    assert report.comparisons[0].treatment == 1


def test_the_sweep_closes_the_tasks_of_customers_no_longer_eligible(
        mbank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    who = mbank.who()
    cid = _visits(mbank, "sweep")
    tasks = _tasks(mbank, cid)
    opted, overdue, expired, applied, fine = (t.customer_id for t in tasks[:5])
    now = NOON + timedelta(days=2)
    service.record_opt_out(mbank.uow(), who, opted, "visit", at=NOON + timedelta(hours=1))
    service.record_opt_out(mbank.uow(), who, fine, "sms", at=NOON + timedelta(hours=1))  # another channel
    monkeypatch.setattr(sources.lending, "worst_days_past_due", lambda _uow, _who: {overdue: 12, fine: 0})
    service.record_event(mbank.uow(), who, "applied", customer_id=applied, at=NOON + timedelta(days=1))
    with mbank.uow() as u:
        run = PreapprovalRunRow(tenant_id=who.tenant_id, run_key="k" * 64, as_of=date(2026, 3, 1),
                                status="completed", policy_version="p", model_version="m", parameters={},
                                started_at=NOON)
        u.session.add(run)
        u.session.flush()
        offers = {}
        for customer, expires in ((expired, now.date() - timedelta(days=1)), (fine, now.date())):
            offer = OfferRow(tenant_id=who.tenant_id, run_id=run.id, customer_id=customer, limit=Decimal("50000"),
                             annual_rate=Decimal("0.12"), apr=Decimal("0.125"), expires_on=expires,
                             policy_version="p", model_version="m")
            u.session.add(offer)
            u.session.flush()
            offers[customer] = offer.id
        for customer, offer_id in offers.items():
            u.session.execute(update(AssignmentRow).where(AssignmentRow.campaign_id == cid,
                                                          AssignmentRow.customer_id == customer).values(
                offer_id=offer_id))
        u.commit()

    closed = service.close_ineligible_visit_tasks(mbank.uow(), who, now=now)
    assert closed == {"opted_out": 1, "overdue": 1, "offer_expired": 1, "applied": 1}
    by_customer = {t.customer_id: t for t in _tasks(mbank, cid)}
    for customer, reason in ((opted, "opted_out"), (overdue, "overdue"), (expired, "offer_expired"),
                             (applied, "applied")):
        t = by_customer[customer]
        assert (t.status, t.closed_reason, t.closed_at) == ("cancelled", reason, now), customer
    assert by_customer[fine].status == "open"
    assert sum(t.status == "open" for t in by_customer.values()) == len(tasks) - 4
    # the next pass finds nothing more; the pass is audited
    assert sum(service.close_ineligible_visit_tasks(mbank.uow(), who, now=now).values()) == 0
    with mbank.uow() as u:
        assert u.session.execute(select(AuditRow.id).where(AuditRow.action == "visit_task.sweep")).first()
    # a closed task is no visit delivered in the funnel
    visit = next(f for f in service.campaign_report(mbank.uow(), who, [cid]).funnel if f.by == "channel")
    assert visit.delivered == visit.sent - 4


def test_an_officer_may_not_run_the_sweep(mbank: Bank) -> None:
    from microlend.core.errors import PermissionDenied

    with pytest.raises(PermissionDenied):
        service.close_ineligible_visit_tasks(mbank.uow(), mbank.who(Role.CREDIT_OFFICER), now=NOON)


def test_the_hourly_messages_job_sweeps_the_tasks_and_refreshes_open_reports(mbank: Bank) -> None:
    from microlend.core.identity import system_principal
    from microlend.worker import send_messages

    cid = _visits(mbank, "hourly")
    first = _tasks(mbank, cid)[0]
    service.record_opt_out(mbank.uow(), mbank.who(), first.customer_id, "visit", at=NOON)
    figures = send_messages(mbank.uow(), system_principal(mbank.who().tenant_id, "worker"), NOON.date())
    assert figures["visit_tasks_closed_opted_out"] == 1 and figures["campaign_reports_refreshed"] == 1
    assert _tasks(mbank, cid)[0].closed_reason == "opted_out"
