"""The reason-code catalogue and the plain trace over HTTP and on the pages: an analyst edits a code (an
auditor may only read), a bad entry is a clear 422 with nothing written, lint over HTTP refuses a code without
text, a decision's detail gives its trace with rows numbered as the page numbers them, and the version page
shows cells without engine quoting."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Api, TenantKit
from tests.integration.decisioning.test_decisioning_api import DEFAULT, application, decide
from tests.integration.decisioning.test_policy_pages import sign_in
from tests.integration.decisioning.test_reason_catalogue import with_new_code

from microlend.decisioning.policy import policy_hash

AGE_TEXTS: dict[str, Any] = {
    "borrower_zh": "年龄超过{max_age}周岁", "borrower_en": "You are over {max_age}", "staff_zh": "超龄",
    "staff_en": "Over age", "tellable": True, "params": {"max_age": "customer.age"}}


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    app_client.cookies.clear()
    return Api(app_client, new_tenant())


class TestReasonCodesApi:
    def test_an_analyst_lists_and_edits_and_the_decision_tells_the_new_text(self, api: Api) -> None:
        analyst = api.token("risk_analyst")
        codes = api.client.get("/api/v1/reason-codes", headers=analyst).json()
        assert "AGE_ABOVE_MAX" in {c["code"] for c in codes}
        r = api.client.put("/api/v1/reason-codes/AGE_ABOVE_MAX", json=AGE_TEXTS, headers=analyst)
        assert r.status_code == 200, r.text
        assert r.json()["params"] == {"max_age": "customer.age"}
        d = decide(api, application({"customer": {"age": 70}, "capacity": {"age_at_maturity": 71}}), lang="en")
        assert d["borrower_reasons"][0] == "You are over 65"
        assert d["reasons"][0] == {"code": "AGE_ABOVE_MAX", "message": "Over age", "tellable": True}

    def test_an_auditor_reads_but_may_not_edit(self, api: Api) -> None:
        auditor = api.token("auditor")
        assert api.client.get("/api/v1/reason-codes/AGE_ABOVE_MAX", headers=auditor).status_code == 200
        r = api.client.put("/api/v1/reason-codes/AGE_ABOVE_MAX", json=AGE_TEXTS, headers=auditor)
        assert r.status_code == 403

    def test_a_text_naming_an_undeclared_parameter_is_422_and_nothing_changes(self, api: Api) -> None:
        analyst = api.token("risk_analyst")
        r = api.client.put("/api/v1/reason-codes/AGE_ABOVE_MAX", json={**AGE_TEXTS, "params": {}}, headers=analyst)
        assert r.status_code == 422 and "not a declared parameter" in r.text
        after = api.client.get("/api/v1/reason-codes/AGE_ABOVE_MAX", headers=analyst).json()
        assert after["updated_by"] == "system"

    def test_an_unknown_code_is_404(self, api: Api) -> None:
        r = api.client.get("/api/v1/reason-codes/NO_SUCH_CODE", headers=api.token("auditor"))
        assert r.status_code == 404

    def test_lint_and_submit_over_http_refuse_a_code_without_text(self, api: Api) -> None:
        analyst = api.token("risk_analyst")
        doc = with_new_code("MATURITY_AGE")
        lint = api.client.post("/api/v1/policies/lint", json={"content": doc}, headers=analyst).json()
        assert not lint["ok"] and any("MATURITY_AGE" in f["message"] for f in lint["findings"])
        r = api.client.post("/api/v1/policies", json={"content": doc, "note": "new code"}, headers=analyst)
        assert r.status_code == 422 and "MATURITY_AGE" in r.text, r.text


class TestPlainTraceApi:
    def test_the_detail_numbers_rows_as_the_page_does_with_the_values_matched(self, api: Api) -> None:
        d = decide(api, application({"model": {"score": "530"}}))
        detail = api.client.get(f"/api/v1/decisions/{d['id']}", headers=api.token("auditor")).json()
        grade = next(s for s in detail["plain_trace"] if s["name"] == "Score cut-offs and risk grade")
        assert grade["kind"] == "table"
        assert [(r["row"], r["matched"][0]["value"], r["outputs"][0]["value"]) for r in grade["rows"]] == \
            [(3, 530, "E")]
        assert detail["trace"]["grade"]["traceData"]["index"] == 2  # the engine's own count from 0


class TestPages:
    def test_the_decision_page_reads_the_trace_plainly(self, api: Api) -> None:
        d = decide(api, application({"model": {"score": "530"}}))
        sign_in(api, "auditor")
        page = api.client.get(f"/decisions/{d['id']}").text
        plain = page.split('data-testid="plain-trace"')[1].split("</ol>")[0]
        assert "Score cut-offs and risk grade" in plain and "Row 3" in plain and "was 530" in plain

    def test_in_chinese_too(self, api: Api) -> None:
        d = decide(api, application({"model": {"score": "530"}}))
        sign_in(api, "auditor", lang="zh_CN")
        page = api.client.get(f"/decisions/{d['id']}").text
        assert "决策过程" in page and "第 3 行" in page and "实际值 530" in page

    def test_the_version_page_shows_rules_plainly(self, api: Api) -> None:
        sign_in(api, "auditor")
        page = api.client.get(f"/policies/{policy_hash(DEFAULT)}").text
        assert "decisionTableNode" not in page and "expressionNode" not in page
        assert "Decision table" in page and "first matching row" in page
        grade = page.split("<h2>Score cut-offs and risk grade</h2>")[1].split("</table>")[0]
        assert "&#34;E&#34;" not in grade and '"E"' not in grade and '<td class="out">E</td>' in grade
        assert '<td class="out">SCORE_BELOW_CUTOFF</td>' in page

    def test_an_analyst_edits_a_code_on_the_page_and_a_bad_one_is_shown_again(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        listing = api.client.get("/reason-codes").text
        assert "AGE_ABOVE_MAX" in listing and "New reason code" in listing
        form = {"code": "AGE_ABOVE_MAX", "borrower_zh": "年龄超过{max_age}周岁", "borrower_en": "Over {max_age}",
                "staff_zh": "超龄", "staff_en": "Over age", "tellable": "1", "params": "max_age = customer.age"}
        r = api.client.post("/reason-codes", data=form, follow_redirects=False)
        assert r.status_code == 303, r.text
        assert "Over {max_age}" in api.client.get(r.headers["location"]).text
        bad = api.client.post("/reason-codes", data={**form, "params": ""})
        assert bad.status_code == 422 and "not a declared parameter" in bad.text

    def test_an_auditor_may_read_the_catalogue_but_not_save(self, api: Api) -> None:
        sign_in(api, "auditor", lang="zh_CN")
        assert "原因码" in api.client.get("/reason-codes").text
        r = api.client.post("/reason-codes", data={"code": "AGE_ABOVE_MAX"})
        assert r.status_code == 403


class TestTheApplicant:
    def test_a_declined_applicant_reads_the_bank_s_text_with_the_rule_s_age(self, api: Api) -> None:
        import random
        from datetime import date

        from tests.integration.origination.test_applications_api import GOOD_ROW, apply, customer_body

        from microlend.demo import identities

        analyst = api.token("risk_analyst")
        r = api.client.put("/api/v1/reason-codes/AGE_ABOVE_MAX", json={
            **AGE_TEXTS, "borrower_zh": "您的年龄超过本产品上限{max_age}周岁"}, headers=analyst)
        assert r.status_code == 200, r.text
        rng = random.Random(7)
        body = customer_body(GOOD_ROW)
        body["id_number"] = identities.resident_id(rng, identities.birth_date_for_age(rng, 70, date(2026, 1, 1)))
        created = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
        assert created.status_code == 201, created.text
        app = apply(api, int(created.json()["id"]), "30000.00")
        assert app.status_code == 201, app.text
        reasons = {x["code"]: x["message"] for x in app.json()["decision"]["reasons"]}
        assert reasons["AGE_ABOVE_MAX"] == "您的年龄超过本产品上限65周岁"


class TestTheTableEditor:
    def form(self, page: str) -> dict[str, str]:
        import re

        fields = dict(re.findall(r'<input (?:type="hidden" )?name="([^"]+)" value="([^"]*)"', page))
        return {k: v.replace("&#34;", '"').replace("&gt;", ">").replace("&lt;", "<").replace("&amp;", "&")
                for k, v in fields.items()}

    def test_an_analyst_edits_a_cell_checks_and_saves_a_new_draft(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        champion = policy_hash(DEFAULT)
        version = api.client.get(f"/policies/{champion}").text
        assert f'href="/policies/{champion}/tables/grade"' in version
        page = api.client.get(f"/policies/{champion}/tables/grade").text
        form = self.form(page)
        assert form["n"] == "8" and form["c-3-g_score"] == "[520..560)" and form["c-7-g_score"] == ">= 660"
        broken = {**form, "c-7-g_grade": '"B"'}
        check = api.client.post(f"/policies/{champion}/tables/grade/lint", data=broken).text
        assert "golden_test_failed" in check and 'data-testid="lint-bad"' in check
        refused = api.client.post(f"/policies/{champion}/tables/grade", data=broken, follow_redirects=False)
        assert refused.status_code == 422 and "golden_test_failed" in refused.text
        edited = {**form, "note-3": "grey band 520-560: grade E, always referred to a person"}
        r = api.client.post(f"/policies/{champion}/tables/grade", data=edited, follow_redirects=False)
        assert r.status_code == 303, r.text
        saved = api.client.get(r.headers["location"]).text
        assert "Saved as a new draft version." in saved and "always referred to a person" in saved
        assert r.headers["location"] != f"/policies/{champion}?done=saved"

    def test_an_auditor_may_not_edit(self, api: Api) -> None:
        sign_in(api, "auditor")
        assert api.client.get(f"/policies/{policy_hash(DEFAULT)}/tables/grade").status_code == 403

    def test_a_table_the_version_does_not_have_is_404(self, api: Api) -> None:
        sign_in(api, "risk_analyst", lang="zh_CN")
        r = api.client.get(f"/policies/{policy_hash(DEFAULT)}/tables/nope")
        assert r.status_code == 404
