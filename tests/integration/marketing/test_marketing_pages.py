"""The marketer's pages and the officers' visit tasks through HTTP (cookie sign-in), on both databases:
segments with a live count, a campaign created, launched and sent from the pages, its report with the
control group, real applications attributed to it, pre-approval runs, and who may see what."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import select, update
from tests.battery import audit_count
from tests.conftest import Api, sign_in_page
from tests.integration.origination.test_applications_api import GOOD_ROW, apply, customer_body
from tests.signing import accept_by_code

from microlend.core.identity import Principal
from microlend.marketing import service
from microlend.marketing.contact_policy import ContactPolicy, in_global_holdout
from microlend.marketing.tables import AssignmentRow, ContactRow, OutboxRow, VisitTaskRow
from microlend.origination.tables import ApplicationRow

pytestmark = pytest.mark.slow


def sign_in(api: Api, *roles: str) -> Principal:
    api.client.cookies.clear()
    username, who = api.kit.user(*roles)
    sign_in_page(api.client, username)
    api.client.cookies.set("ml_lang", "en")
    return who


def customers(api: Api, n: int, *, officer_user_id: int | None = None, consent: bool = True) -> list[int]:
    headers = api.token("credit_officer")
    ids = []
    for _ in range(n):
        body: dict[str, Any] = {**customer_body(GOOD_ROW), "marketing_consent": consent}
        if officer_user_id is not None:
            body["officer_user_id"] = officer_user_id
        r = api.client.post("/api/v1/customers", json=body, headers=headers)
        assert r.status_code == 201, r.text
        ids.append(int(r.json()["id"]))
    return ids


def reachable(api: Api, ids: list[int]) -> list[int]:
    """`ids` less the customers in the bank's default global holdout (5 %, by customer id): which of a test's
    customers fall there depends on the ids the shared database hands out."""
    share = ContactPolicy.default().holdout_share_bp
    return [i for i in ids if not in_global_holdout(api.kit.tenant.id, i, share)]


def reachable_customers(api: Api, n: int, *, officer_user_id: int) -> list[int]:
    """New customers of the officer, as many as it takes for `n` of them to be outside the global holdout."""
    ids: list[int] = []
    while len(reachable(api, ids)) < n:
        ids += customers(api, 1, officer_user_id=officer_user_id)
    return ids


def created_id(response: Any) -> int:
    assert response.status_code == 303, response.text
    match = re.fullmatch(r"/marketing/campaigns/(\d+)", response.headers["location"])
    assert match, response.headers["location"]
    return int(match.group(1))


class TestWhoSeesWhat:
    def test_a_credit_officer_cannot_open_the_campaign_pages_and_a_marketer_can(self, api: Api) -> None:
        sign_in(api, "credit_officer")
        for path in ("/marketing/segments", "/marketing/runs", "/marketing/campaigns", "/marketing/segments/new"):
            assert api.client.get(path).status_code == 403, path
        assert api.client.post("/marketing/segments", data={"name": "x", "expression": "age > 1"}).status_code == 403
        menu = api.client.get("/tasks/visits").text
        assert "My visit tasks" in menu and 'href="/marketing/campaigns"' not in menu
        sign_in(api, "marketer")
        for path in ("/marketing/segments", "/marketing/runs", "/marketing/campaigns"):
            r = api.client.get(path)
            assert r.status_code == 200 and 'href="/marketing/campaigns"' in r.text, path
        api.client.cookies.clear()

    def test_pages_need_a_sign_in(self, api: Api) -> None:
        api.client.cookies.clear()
        for path in ("/marketing/campaigns", "/tasks/visits"):
            r = api.client.get(path, follow_redirects=False)
            assert r.status_code == 303 and r.headers["location"].startswith("/login?next="), path

    def test_a_campaign_of_another_bank_is_not_found(self, api: Api, other: Api) -> None:
        sign_in(other, "marketer")
        customers(other, 2)
        other.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        cid = created_id(other.client.post("/marketing/campaigns", data={
            "name": "theirs", "target": "segment:all", "channel": "sms"}, follow_redirects=False))
        sign_in(api, "marketer")
        assert api.client.get(f"/marketing/campaigns/{cid}").status_code == 404
        assert api.client.get(f"/marketing/campaigns/{cid}/report").status_code == 404
        before = audit_count(other)
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 404
        assert audit_count(other) == before
        with other.kit.uow_factory() as u:
            assert u.session.execute(select(AssignmentRow.id).where(AssignmentRow.campaign_id == cid)).first() is None
        api.client.cookies.clear()


class TestSegments:
    def test_the_live_count_shows_exclusions_and_a_masked_sample(self, api: Api) -> None:
        ids = customers(api, 3) + customers(api, 2, consent=False)
        sign_in(api, "marketer")
        r = api.client.post("/marketing/segments/check", data={"expression": "age >= 18", "channel": "sms"},
                            headers={"HX-Request": "true"})
        assert r.status_code == 200
        assert re.search(r'data-testid="live-count">3<', r.text) and "No marketing consent" in r.text
        assert re.search(r"<dt>No marketing consent</dt><dd>2</dd>", r.text)
        sample = r.text.split('data-testid="sample"', 1)[1]
        refs = re.findall(r"<tr><td>([^<]*)</td>", sample)
        assert len(refs) == 3 and all(ref.startswith("****") for ref in refs)  # no customer number shown
        assert not any(f"<td>{i}</td>" in sample for i in ids)

    def test_an_expression_reaching_outside_the_features_is_refused_live_and_on_save(self, api: Api) -> None:
        sign_in(api, "marketer")
        r = api.client.post("/marketing/segments/check", data={"expression": "password == 'x'", "channel": "sms"})
        assert 'data-testid="expression-error"' in r.text and "password" in r.text
        saved = api.client.post("/marketing/segments", data={"name": "bad", "expression": "password == 'x'"})
        assert saved.status_code == 422 and "password" in saved.text

    def test_saving_twice_makes_a_second_version_each_audited_once(self, api: Api) -> None:
        sign_in(api, "marketer")
        for expression in ("age >= 30", "age >= 35"):
            before = audit_count(api)
            r = api.client.post("/marketing/segments", data={"name": "grown-ups", "expression": expression},
                                follow_redirects=False)
            assert r.status_code == 303 and audit_count(api) == before + 1
        page = api.client.get("/marketing/segments").text
        assert "grown-ups" in page and "v2" in page and "age &gt;= 35" in page
        edit = api.client.get("/marketing/segments/grown-ups/edit").text
        assert "age &gt;= 35" in edit and "readonly" in edit


class TestCampaignFromThePages:
    def test_create_launch_send_and_read_the_report_with_real_applications(
            self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        # the pages act at noon in Shanghai yesterday (outside quiet hours); applications arrive now
        noon = (datetime.now(UTC) - timedelta(days=1)).replace(hour=4, minute=0, second=0, microsecond=0)
        monkeypatch.setattr("microlend.web.marketing._now", lambda: noon)
        ids = customers(api, 24)
        who = sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "everyone", "expression": "age >= 18"})
        refused = api.client.post("/marketing/campaigns", data={
            "name": "spring", "target": "segment:everyone", "channel": "sms", "control_pct": "100"})
        assert refused.status_code == 422 and "control_share" in refused.text
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "spring", "target": "segment:everyone", "channel": "sms", "locale": "en", "control_pct": "25",
            "cap_max": "2", "cap_days": "7", "cost": "0.10", "days": "30"}, follow_redirects=False))
        assert "Draft" in api.client.get(f"/marketing/campaigns/{cid}").text
        launched = api.client.post(f"/marketing/campaigns/{cid}/launch")
        assert launched.status_code == 200 and 'data-testid="launch-summary"' in launched.text
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 409
        uow = api.kit.uow_factory()
        with uow:
            arms = dict(uow.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
                AssignmentRow.campaign_id == cid)).all())
        assert set(arms) == set(ids) and {"treatment", "control"} <= set(arms.values())
        sent = api.client.post("/marketing/outbox/send", data={"back": f"/marketing/campaigns/{cid}"},
                               follow_redirects=False)
        assert sent.status_code == 303 and sent.headers["location"].startswith(f"/marketing/campaigns/{cid}?sent=")
        treated = sorted(c for c, a in arms.items() if a == "treatment")
        control = sorted(c for c, a in arms.items() if a == "control")
        with uow:
            contacted = uow.session.execute(select(ContactRow.customer_id).where(
                ContactRow.campaign_id == cid)).scalars().all()
        assert sorted(contacted) == treated
        with uow:
            token = uow.session.execute(select(OutboxRow.token).where(
                OutboxRow.campaign_id == cid, OutboxRow.customer_id == treated[0])).scalar_one()
        api.client.cookies.clear()
        link = api.client.get(f"/t/{token}", follow_redirects=False)
        assert link.status_code == 307 and link.cookies.get("ml_campaign") == str(cid)
        assert "ml_campaign" not in api.client.get("/t/not-a-token-at-all", follow_redirects=False).cookies
        sign_in(api, "marketer")
        # real applications: a treated customer through the tracked link, a control customer on their own
        headers = api.token("credit_officer")
        first = apply(api, treated[0], "30000.00", headers=headers)
        assert first.status_code == 201, first.text
        with uow:
            uow.session.execute(update(ApplicationRow).where(ApplicationRow.id == first.json()["id"]).values(
                campaign_id=cid))
            uow.commit()
        assert apply(api, control[0], "30000.00", headers=headers).status_code == 201
        accepted = accept_by_code(api, first.json()["id"], headers)
        assert accepted.json()["status"] == "disbursed"  # small enough to be paid out at once
        report = service.campaign_report(api.kit.uow_factory(), who, [cid])
        applied = report.comparisons[0]
        assert (applied.treatment, applied.treatment_n) == (1, len(treated))
        assert (applied.control, applied.control_n) == (1, len(control))
        assert first.json()["status"] == "approved"  # decided automatically: an offer is open
        sms = next(f for f in report.funnel if f.by == "channel")
        assert (sms.sent, sms.applied, sms.approved, sms.disbursed) == (len(treated), 1, 1, 1)
        disbursed = report.comparisons[1]
        assert (disbursed.treatment, disbursed.control) == (1, 0) and report.cost_per_disbursed is not None
        page = api.client.get(f"/marketing/campaigns/{cid}/report")
        assert page.status_code == 200
        for part in ('data-testid="funnel"', 'data-testid="comparison"', "Treatment vs control group",
                     f"(1/{len(treated)})", f"(1/{len(control)})", "95% interval", "Cost per disbursed loan",
                     'data-testid="uplift"', "data:image/svg+xml;base64,"):
            assert part in page.text, part
        api.client.cookies.set("ml_lang", "zh_CN")
        zh = api.client.get(f"/marketing/campaigns/{cid}/report").text
        assert "实验组与对照组对比" in zh and "转化漏斗" in zh
        api.client.cookies.clear()

    def test_an_application_from_another_campaigns_link_is_not_counted(self, api: Api) -> None:
        ids = customers(api, 6)
        who = sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "a", "target": "segment:all", "channel": "visit", "control_pct": "0"}, follow_redirects=False))
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 200
        app = apply(api, ids[0], "30000.00")
        uow = api.kit.uow_factory()
        with uow:
            uow.session.execute(update(ApplicationRow).where(ApplicationRow.id == app.json()["id"]).values(
                campaign_id=cid + 1000))
            uow.commit()
        applied = service.campaign_report(api.kit.uow_factory(), who, [cid]).comparisons[0]
        assert applied.treatment == 0 and applied.treatment_n == len(reachable(api, ids))
        api.client.cookies.clear()


class TestUpliftOnTheReport:
    def test_a_finished_campaign_with_a_control_group_teaches_the_uplift_model(
            self, api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
        launch = (datetime.now(UTC) - timedelta(days=60)).replace(hour=4, minute=0, second=0, microsecond=0)
        clock = {"now": launch}
        monkeypatch.setattr("microlend.web.marketing._now", lambda: clock["now"])
        customers(api, 60)
        who = sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "autumn", "target": "segment:all", "channel": "visit", "control_pct": "40", "days": "30"},
            follow_redirects=False))
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 200
        clock["now"] = launch + timedelta(days=29)
        early = api.client.get(f"/marketing/campaigns/{cid}/report").text
        assert 'data-testid="uplift-problem"' in early and "when the campaign is closed" in early
        # an open campaign: its interim result, with the instant it was computed, equal to the live figures
        assert 'data-testid="as-of"' in early and "interim, as of" in early
        interim = service.interim_report(api.kit.uow_factory(), who, cid, now=clock["now"])
        assert not interim.recomputed
        assert interim.report.to_dict() == service.campaign_report(api.kit.uow_factory(), who, [cid]).to_dict()
        assert api.client.post(f"/marketing/campaigns/{cid}/close", data={"stage": "applied"}).status_code == 409
        uow = api.kit.uow_factory()
        with uow:
            arms = sorted(uow.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
                AssignmentRow.campaign_id == cid)).all())
        # every third treated and every fifth control customer applied inside the window (counted within each
        # arm, so both arms hold customers who applied and customers who did not, whatever the ids)
        by_arm = {a: [c for c, arm in arms if arm == a] for a in ("treatment", "control")}
        assert len(by_arm["treatment"]) >= 6 and len(by_arm["control"]) >= 6
        events = [{"customer_id": c, "kind": "applied", "at": launch + timedelta(days=3)}
                  for a, step in (("treatment", 3), ("control", 5)) for i, c in enumerate(by_arm[a]) if i % step == 0]
        service.record_events(api.kit.uow_factory(), who, events)
        clock["now"] = launch + timedelta(days=31)
        ready = api.client.get(f"/marketing/campaigns/{cid}/report").text
        assert "Close the campaign" in ready and 'data-testid="auuc"' not in ready
        closed = api.client.post(f"/marketing/campaigns/{cid}/close", data={"stage": "applied"},
                                 follow_redirects=False)
        assert closed.status_code == 303
        page = api.client.get(f"/marketing/campaigns/{cid}/report").text
        assert 'data-testid="auuc"' in page and "Qini coefficient" in page and "Uplift in the top 10%" in page
        assert 'data-testid="qini-area"' in page and 'data-testid="closed"' in page
        assert 'data-testid="as-of"' not in page
        again = api.client.post(f"/marketing/campaigns/{cid}/close", data={"stage": "applied"})
        assert again.status_code == 409 and "already closed" in again.text
        api.client.cookies.clear()


class TestPreapprovalRuns:
    def test_a_run_started_from_the_page_is_shown_done_with_its_offers(self, api: Api) -> None:
        customers(api, 5)
        sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        r = api.client.post("/marketing/runs", data={"segment": "all"}, follow_redirects=False)
        assert r.status_code == 303
        page = api.client.get(r.headers["location"]).text
        assert "Run started for all" in page and 'data-testid="run-status">Done<' in page
        runs = service.list_runs(api.kit.uow_factory(), api.kit.principal("marketer"))
        assert len(runs) == 1 and runs[0].status == "completed" and runs[0].customers_total == 5
        assert f"{runs[0].offers_count} offers" in page
        assert 'data-polling="yes"' in page  # just started: the page keeps looking for a few seconds
        assert 'data-polling="no"' in api.client.get("/marketing/runs?poll=0", headers={"HX-Request": "true"}).text
        assert api.client.post("/marketing/runs", data={"segment": "nope"}).status_code == 404
        api.client.cookies.clear()


class TestVisitTasks:
    def test_an_officer_sees_only_their_own_tasks_and_records_an_outcome(self, api: Api) -> None:
        _, mine = api.kit.user("credit_officer")
        _, theirs = api.kit.user("credit_officer")
        mine_n, theirs_n = 3, 2
        reachable_customers(api, mine_n, officer_user_id=mine.user_id)
        reachable_customers(api, theirs_n, officer_user_id=theirs.user_id)
        sign_in(api, "marketer")
        api.client.post("/marketing/segments", data={"name": "all", "expression": "age >= 18"})
        cid = created_id(api.client.post("/marketing/campaigns", data={
            "name": "visits", "target": "segment:all", "channel": "visit", "control_pct": "0"},
            follow_redirects=False))
        assert api.client.post(f"/marketing/campaigns/{cid}/launch").status_code == 200
        uow = api.kit.uow_factory()
        with uow:
            tasks = uow.session.execute(select(VisitTaskRow.id, VisitTaskRow.officer_user_id).where(
                VisitTaskRow.campaign_id == cid)).all()
        my_tasks = sorted(t for t, o in tasks if o == mine.user_id)
        their_tasks = sorted(t for t, o in tasks if o == theirs.user_id)
        assert len(my_tasks) == mine_n and len(their_tasks) == theirs_n
        api.client.cookies.clear()
        sign_in_page(api.client, mine.username)
        api.client.cookies.set("ml_lang", "en")
        page = api.client.get("/tasks/visits").text
        assert page.count('data-testid="visit-task"') == mine_n and "visits" in page and "周老板" in page
        assert all(f'id="visit-{t}"' in page for t in my_tasks)
        assert not any(f'id="visit-{t}"' in page for t in their_tasks)
        done = api.client.post(f"/tasks/visits/{my_tasks[0]}", data={"outcome": "unreachable"},
                               headers={"HX-Request": "true"})
        assert done.status_code == 200 and "Recorded" in done.text and "Not at home" in done.text
        assert api.client.get("/tasks/visits").text.count('data-testid="visit-task"') == mine_n - 1
        assert api.client.post(f"/tasks/visits/{their_tasks[0]}", data={"outcome": "visited"}).status_code == 404
        assert api.client.post(f"/tasks/visits/{my_tasks[0]}", data={"outcome": "visited"}).status_code == 404
        bad = api.client.post(f"/tasks/visits/{my_tasks[1]}", data={"outcome": "sold"},
                              headers={"HX-Request": "true"})
        assert bad.status_code == 422 and "outcome" in bad.text
        with uow:
            outcome = uow.session.execute(select(VisitTaskRow.outcome).where(
                VisitTaskRow.id == my_tasks[0])).scalar_one()
        assert outcome == "unreachable"
        # due in the campaign's visit days (7 unless stated): nothing overdue yet; a past due date is flagged
        listing = api.client.get("/tasks/visits").text
        assert 'data-testid="due"' in listing and 'data-testid="overdue"' not in listing
        with uow:
            uow.session.execute(update(VisitTaskRow).where(VisitTaskRow.id == my_tasks[1]).values(
                due_at=datetime.now(UTC) - timedelta(hours=1)))
            uow.commit()
        listing = api.client.get("/tasks/visits").text
        assert listing.count('data-testid="overdue"') == 1 and 'data-testid="overdue-count"' in listing
        assert listing.index(f'id="visit-{my_tasks[1]}"') < listing.index(f'id="visit-{my_tasks[2]}"')
        api.client.cookies.clear()


@pytest.fixture
def other(app_client: Any, new_tenant: Any) -> Api:
    return Api(app_client, new_tenant())
