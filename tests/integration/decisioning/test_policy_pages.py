"""Credit policy and decision pages through HTTP: versions with badges, a version as tables with golden tests,
the editor with live lint and diff, simulation with charts, submit, the four-eyes refusal and publishing by a
second person, the champion/challenger page and the decision page with replay, in both languages."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Api, TenantKit, sign_in_page
from tests.integration.decisioning.test_decisioning_api import DEFAULT, decide, stricter_policy

from microlend.decisioning.policy import policy_hash


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    client = app_client
    client.cookies.clear()
    return Api(client, new_tenant())


def sign_in(api: Api, *roles: str, lang: str = "en") -> str:
    username, _ = api.kit.user(*roles)
    api.client.cookies.clear()
    sign_in_page(api.client, username, "/policies")
    api.client.cookies.set("ml_lang", lang)
    return username


class TestReadingPolicies:
    def test_pages_need_a_sign_in(self, api: Api) -> None:
        r = api.client.get("/policies", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login")

    def test_the_list_shows_the_champion_published(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        page = api.client.get("/policies").text
        assert "default_micro_loan" in page and "Published" in page and "arm-champion" in page

    def test_in_chinese_the_list_speaks_chinese(self, api: Api) -> None:
        sign_in(api, "risk_analyst", lang="zh_CN")
        page = api.client.get("/policies").text
        assert "授信政策" in page and "已发布" in page and "冠军" in page

    def test_a_version_shows_tables_graph_and_golden_tests(self, api: Api) -> None:
        sign_in(api, "auditor")
        page = api.client.get(f"/policies/{policy_hash(DEFAULT)}").text
        assert "<table class=\"rules\">" in page and "Limit matrix" in page
        graph = page.split('data-testid="graph"')[1].split("</ol>")[0]
        assert graph.index("Application") < graph.index("Knock-out rules") < graph.index("Outcome")
        assert page.count('class="badge ok">pass') == len(DEFAULT["tests"])
        assert "New version" not in page and "Edit as a new version" not in page  # an auditor cannot edit

    def test_a_marketer_may_not_see_policies(self, api: Api) -> None:
        sign_in(api, "marketer")
        assert api.client.get("/policies").status_code == 403

    def test_another_banks_version_is_not_found(self, api: Api, app_client: TestClient,
                                                new_tenant: Callable[[], TenantKit]) -> None:
        other = Api(app_client, new_tenant())
        r = other.client.post("/api/v1/policies", json={"content": stricter_policy()},
                              headers=other.token("risk_analyst"))
        sign_in(api, "risk_analyst")
        assert api.client.get(f"/policies/{r.json()['content_hash']}").status_code == 404


class TestEditingAndPublishing:
    def test_the_editor_starts_from_the_version_in_force(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        page = api.client.get("/policies/new").text
        assert "default_micro_loan" in page and 'hx-post="/policies/lint"' in page
        assert 'data-testid="lint-ok"' in page

    def test_live_lint_reports_a_code_node_and_the_diff(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        doc = stricter_policy()
        fragment = api.client.post("/policies/lint", data={"content": json.dumps(doc)}).text
        assert 'data-testid="lint-ok"' in fragment and "Knock-out rules" in fragment
        doc["nodes"].append({"id": "code", "type": "functionNode", "name": "Custom", "content": "x"})
        fragment = api.client.post("/policies/lint", data={"content": json.dumps(doc)}).text
        assert 'data-testid="lint-bad"' in fragment and "code_node" in fragment
        assert "Unreadable" in api.client.post("/policies/lint", data={"content": "{not json"}).text

    def test_simulation_shows_rates_and_charts(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        fragment = api.client.post("/policies/simulate",
                                   data={"content": json.dumps(stricter_policy(560)), "dataset": "german_credit"}).text
        assert 'data-testid="approval-rate"' in fragment and fragment.count('<img class="chart"') >= 2
        assert "Swap-in" in fragment

    def test_submit_then_the_author_is_refused_and_a_second_person_publishes(self, api: Api) -> None:
        sign_in(api, "risk_analyst", lang="zh_CN")
        r = api.client.post("/policies/submit", data={"content": json.dumps(stricter_policy()), "note": "540"},
                            follow_redirects=False)
        assert r.status_code == 303
        location = r.headers["location"]
        content_hash = location.split("/")[2].split("?")[0]
        page = api.client.get(location).text
        assert "待发布" in page and 'data-testid="publish"' in page
        refused = api.client.post(f"/policies/{content_hash}/publish", data={"arm": "champion"})
        assert refused.status_code == 403 and "双人复核" in refused.text
        sign_in(api, "risk_analyst")
        r = api.client.post(f"/policies/{content_hash}/publish", data={"arm": "champion"}, follow_redirects=False)
        assert r.status_code == 303
        page = api.client.get(r.headers["location"]).text
        assert "Published: this version is now in force." in page and "arm-champion" in page

    def test_a_failing_policy_is_not_submitted(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        doc = stricter_policy()
        doc["tests"][0]["expect"] = {"outcome": "decline"}
        r = api.client.post("/policies/submit", data={"content": json.dumps(doc)})
        assert r.status_code == 422 and 'data-testid="submit-error"' in r.text

    def test_a_challenger_on_a_share_shows_on_the_arms_page(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/submit", data={"content": json.dumps(stricter_policy())},
                            follow_redirects=False)
        content_hash = r.headers["location"].split("/")[2].split("?")[0]
        sign_in(api, "risk_analyst")
        r = api.client.post(f"/policies/{content_hash}/publish", data={"arm": "challenger", "share_percent": "100"},
                            follow_redirects=False)
        assert r.status_code == 303
        decide(api)
        page = api.client.get("/policies/arms").text
        assert "arm-challenger" in page and "100.0%" in page and "no outcomes yet" in page
        r = api.client.post("/policies/challenger/stop", follow_redirects=False)
        assert r.status_code == 303


    def test_a_split_and_a_shadow_are_reported_side_by_side_in_both_languages(self, api: Api) -> None:
        hashes = []
        for _ in range(2):
            sign_in(api, "risk_analyst")
            r = api.client.post("/policies/submit", data={"content": json.dumps(stricter_policy())},
                                follow_redirects=False)
            hashes.append(r.headers["location"].split("/")[2].split("?")[0])
        sign_in(api, "risk_analyst")
        for content_hash, form in zip(hashes, ({"arm": "challenger", "share_percent": "50"}, {"arm": "shadow"}),
                                      strict=True):
            assert api.client.post(f"/policies/{content_hash}/publish", data=form,
                                   follow_redirects=False).status_code == 303
        for _ in range(3):
            decide(api)
        page = api.client.get("/policies/arms?outcome_months=4").text
        for text in ('data-testid="comparison-challenger"', 'data-testid="comparison-shadow"',
                     'data-testid="survival-chart"', "Stop the shadow", "within 4 months", "Expected loss"):
            assert text in page, text
        api.client.cookies.set("ml_lang", "zh_CN")
        page = api.client.get("/policies/arms").text
        for text in ("挑战者对比冠军", "影子策略对比实际决策", "停止影子策略", "预期损失", "放款后 3 个月内"):
            assert text in page, text
        r = api.client.post("/policies/challenger/stop", data={"arm": "shadow"}, follow_redirects=False)
        assert r.status_code == 303
        page = api.client.get("/policies/arms").text
        assert 'data-testid="comparison-shadow"' not in page and 'data-testid="comparison-challenger"' in page

    def test_the_checker_sees_the_evidence_and_promotes_with_a_second_person(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/submit", data={"content": json.dumps(stricter_policy()),
                                                      "note": "cut-off to 540"}, follow_redirects=False)
        content_hash = r.headers["location"].split("/")[2].split("?")[0]
        checker = sign_in(api, "risk_analyst")
        page = api.client.get(f"/policies/{content_hash}").text
        evidence = page.split('data-testid="evidence"')[1].split("</section>")[0]
        assert "cut-off to 540" in evidence and "lending_club" in evidence and "refer→decline" in evidence
        assert 'data-testid="simulation"' in evidence
        r = api.client.post(f"/policies/{content_hash}/publish", data={"arm": "challenger", "share_percent": "10"},
                            follow_redirects=False)
        assert r.status_code == 303
        r = api.client.post(f"/policies/{content_hash}/promote", data={"note": "fewer bads"}, follow_redirects=False)
        assert r.status_code == 303
        page = api.client.get(r.headers["location"]).text
        assert 'data-testid="change-request"' in page and checker in page
        request_id = page.split('action="/policies/changes/')[1].split('"')[0]
        refused = api.client.post(f"/policies/changes/{request_id}", data={"approve": "1"})
        assert refused.status_code == 403 and "maker-checker" in refused.text
        sign_in(api, "risk_analyst", lang="zh_CN")
        r = api.client.post(f"/policies/changes/{request_id}", data={"approve": "1"}, follow_redirects=False)
        assert r.status_code == 303
        page = api.client.get(r.headers["location"]).text
        assert "已确认" in page and "arm-champion" in page


    def test_whoever_asked_for_a_promotion_is_refused_confirming_it_in_their_language(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/submit", data={"content": json.dumps(stricter_policy()), "note": "540"},
                            follow_redirects=False)
        content_hash = r.headers["location"].split("/")[2].split("?")[0]
        sign_in(api, "risk_analyst")
        r = api.client.post(f"/policies/{content_hash}/publish", data={"arm": "challenger", "share_percent": "10"},
                            follow_redirects=False)
        assert r.status_code == 303
        sign_in(api, "risk_analyst", lang="zh_CN")
        r = api.client.post(f"/policies/{content_hash}/promote", data={"note": "坏账更少"}, follow_redirects=False)
        page = api.client.get(r.headers["location"]).text
        request_id = page.split('action="/policies/changes/')[1].split('"')[0]
        refused = api.client.post(f"/policies/changes/{request_id}", data={"approve": "1"})
        assert refused.status_code == 403
        refusal = refused.text.split('data-testid="refusal">')[1].split("</p>")[0]
        assert "双人复核" in refusal and "maker-checker" not in refusal


class TestDecisionPage:
    def test_a_decision_shows_reasons_trace_and_replays(self, api: Api) -> None:
        from tests.integration.decisioning.test_decisioning_api import application

        d = decide(api, application({"model": {"score": "500"}}))
        sign_in(api, "auditor", lang="zh_CN")
        assert api.client.get(f"/decisions?id={d['id']}", follow_redirects=False).headers["location"] \
            == f"/decisions/{d['id']}"
        page = api.client.get(f"/decisions/{d['id']}").text
        assert "SCORE_BELOW_CUTOFF" in page and "拒绝" in page and "Knock-out rules" in page
        fragment = api.client.post(f"/decisions/{d['id']}/replay").text
        assert "重放结果一致" in fragment

    def test_another_banks_decision_is_not_found(self, api: Api, app_client: TestClient,
                                                 new_tenant: Callable[[], TenantKit]) -> None:
        other = Api(app_client, new_tenant())
        d = decide(other)
        sign_in(api, "auditor")
        assert api.client.get(f"/decisions/{d['id']}").status_code == 404
        assert api.client.post(f"/decisions/{d['id']}/replay").status_code == 404
