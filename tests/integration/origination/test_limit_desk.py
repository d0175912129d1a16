"""The limit management desk (增信提额) on SQLite and PostgreSQL: the monthly behaviour score kept per line and
used by the review; no decrease without a person; authority by amount; the officer's and approver's
endpoints and pages."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select, update
from tests.conftest import Api, TenantKit
from tests.integration.decisioning.test_decisioning_api import (
    audit_actions,
    doubling_review,
    open_line,
    publish_review,
)
from tests.integration.origination.test_workbench_pages import get, post

from microlend.core.errors import PermissionDenied
from microlend.core.identity import Principal
from microlend.core.tenancy import business_date
from microlend.decisioning import behaviour
from microlend.decisioning.behaviour_scores import latest_scores
from microlend.decisioning.limit_changes import update_limit_authority
from microlend.decisioning.tables import BehaviourScoreRow, LimitChangeRow
from microlend.origination import limit_desk as desk
from microlend.origination.behaviour_scoring import score_portfolio
from microlend.origination.limit_review import review_credit_lines
from microlend.parties.tables import CustomerRow
from microlend.servicing import service as servicing
from microlend.servicing.tables import CreditLineRow, InstallmentRow, LoanRow


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


@pytest.fixture
def other(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def today(api: Api) -> date:
    with api.kit.uow_factory() as u:
        return business_date(u.session, api.kit.tenant.id)


def late_long_ago(api: Api, limit: str = "40000") -> int:
    """A line whose 4 drawdowns were each repaid 20 days late 7 to 10 months ago: nothing late in the last 6
    months (the review's own late-payment rule does not fire), but the 12-month behaviour is poor."""
    line_id = open_line(api, limit, {"turnover_drop": False, "note": "late-long-ago"}, drawn="3000")
    admin = api.kit.principal("admin")
    for _ in range(3):
        servicing.draw_down(api.kit.uow_factory(), admin, line_id, Decimal("3000"))
    on = today(api)
    with api.kit.uow_factory() as u:
        rows = u.session.execute(select(InstallmentRow, LoanRow).join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
                                 .where(LoanRow.credit_line_id == line_id).order_by(LoanRow.id)).all()
        assert len(rows) == 4
        for k, (inst, loan) in enumerate(rows):
            loan.disbursed_on = on - timedelta(days=330)
            inst.due_date = on - timedelta(days=300 - 25 * k)
            inst.due_day = inst.due_date.toordinal()
            inst.paid_on = inst.due_date + timedelta(days=20)
        u.commit()
    return line_id


def amount_limit(api: Api, line_id: int) -> Decimal:
    with api.kit.uow_factory() as u:
        row = u.session.get(CreditLineRow, line_id)
        assert row is not None
        return row.limit


def assign(api: Api, line_id: int, officer: Principal | None) -> int:
    with api.kit.uow_factory() as u:
        customer_id = u.session.get(CreditLineRow, line_id).customer_id  # type: ignore[union-attr]
        u.session.execute(update(CustomerRow).where(CustomerRow.id == customer_id).values(
            officer_user_id=None if officer is None else officer.user_id))
        u.commit()
    assert customer_id is not None
    return int(customer_id)


class TestBehaviourScore:
    def test_every_open_line_and_loan_is_scored_once_a_month_from_its_own_history(self, api: Api) -> None:
        poor, clean = late_long_ago(api), open_line(api, "30000", {})
        runner = api.kit.principal("approver")
        run = score_portfolio(api.kit.uow_factory(), runner)
        again = score_portfolio(api.kit.uow_factory(), runner)  # a re-run replaces the month, never duplicates
        assert run.scored == again.scored == 2 and run.month == f"{today(api):%Y-%m}"
        with api.kit.uow_factory() as u:
            assert u.session.execute(select(func.count()).select_from(BehaviourScoreRow).where(
                BehaviourScoreRow.tenant_id == api.kit.tenant.id)).scalar_one() == 2
        scores = latest_scores(api.kit.uow_factory(), runner, "line")
        facts = {f.name: f.value for f in scores[poor].factors}
        assert facts["overdue_count_12m"] == 4 and facts["max_dpd_12m"] == 20 and facts["on_time_bp"] == 0
        assert scores[poor].score == behaviour.score_one(facts).score < 560 and scores[poor].band == "E"
        assert (scores[clean].score, scores[clean].band) == (630, "C")

    def test_another_bank_sees_none_of_the_scores(self, api: Api, other: Api) -> None:
        late_long_ago(api)
        score_portfolio(api.kit.uow_factory(), api.kit.principal("approver"))
        assert latest_scores(other.kit.uow_factory(), other.kit.principal("approver"), "line") == {}

    def test_the_review_decides_on_the_behaviour_score_not_the_application_profile(self, api: Api) -> None:
        line_id = late_long_ago(api)
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        [line] = run.lines
        assert (line.action, line.reasons, line.status) == ("decrease", ("DECREASE_LOW_SCORE",), "pending")
        with api.kit.uow_factory() as u:
            change = u.session.get(LimitChangeRow, line.change_id)
            assert change is not None
            row = u.session.execute(select(BehaviourScoreRow).where(
                BehaviourScoreRow.subject_id == line_id, BehaviourScoreRow.subject_kind == "line")).scalar_one()
        stored = latest_scores(api.kit.uow_factory(), api.kit.principal("approver"), "line", [line_id])[line_id]
        assert change.inputs["model.score"] == stored.score == row.score
        assert change.inputs["behaviour.score"]["factors"] == [f.as_dict() for f in stored.factors]


class TestNoDecreaseWithoutAPerson:
    def test_a_decrease_waits_even_when_the_policy_applies_increases_itself(self, api: Api) -> None:
        line_id = late_long_ago(api)
        publish_review(api, doubling_review())  # auto_apply_increases: true
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        [line] = run.lines
        assert (line.action, line.status) == ("decrease", "pending")
        assert amount_limit(api, line_id) == Decimal("40000.00")
        assert audit_actions(api, "credit_line.change_limit") == 0

    def test_the_officer_recommends_but_only_another_person_with_authority_applies(self, api: Api) -> None:
        line_id = late_long_ago(api)
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        change_id = run.lines[0].change_id
        assert change_id is not None
        officer, admin = api.kit.principal("credit_officer"), api.kit.principal("admin")
        with pytest.raises(PermissionDenied):
            desk.decide(api.kit.uow_factory(), officer, change_id, approve=True)
        desk.recommend(api.kit.uow_factory(), admin, change_id, "support", "turnover is down, agree")
        with pytest.raises(PermissionDenied, match="four eyes"):
            desk.decide(api.kit.uow_factory(), admin, change_id, approve=True)
        assert amount_limit(api, line_id) == Decimal("40000.00")
        desk.decide(api.kit.uow_factory(), api.kit.principal("approver"), change_id, approve=True, note="agreed")
        assert amount_limit(api, line_id) == Decimal("28000.00")
        assert audit_actions(api, "credit_line.change_limit") == 1


class TestAuthorityByAmount:
    def test_an_increase_above_the_approvers_authority_needs_a_higher_role(self, api: Api) -> None:
        line_id = open_line(api, "100000", {})
        publish_review(api, doubling_review())
        update_limit_authority(api.kit.uow_factory(), api.kit.principal("admin"),
                               {"approver": Decimal("50000"), "admin": Decimal("500000")}, Decimal("50000"))
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        change_id = run.lines[0].change_id
        assert change_id is not None and run.lines[0].status == "pending"
        with pytest.raises(PermissionDenied, match="authority"):
            desk.decide(api.kit.uow_factory(), api.kit.principal("approver"), change_id, approve=True)
        assert amount_limit(api, line_id) == Decimal("100000.00")
        assert audit_actions(api, "credit_line.change_limit") == 0
        desk.decide(api.kit.uow_factory(), api.kit.principal("admin"), change_id, approve=True)
        assert amount_limit(api, line_id) == Decimal("200000.00")

    def test_the_review_applies_by_itself_only_within_the_automatic_authority(self, api: Api) -> None:
        line_id = open_line(api, "40000", {})
        publish_review(api, doubling_review())
        update_limit_authority(api.kit.uow_factory(), api.kit.principal("admin"),
                               {"approver": Decimal("200000")}, Decimal("10000"))
        run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
        assert [(r.action, r.outcome, r.status) for r in run.lines] == [("increase", "approve", "pending")]
        assert amount_limit(api, line_id) == Decimal("40000.00")

    def test_a_rejected_authority_setting_changes_nothing(self, api: Api) -> None:
        r = api.client.put("/api/v1/limit-desk/authority", headers=api.token("admin"),
                           json={"role_limits": {"wizard": "1"}, "automatic_limit": "0"})
        assert r.status_code == 422 and "unknown role" in r.text
        r = api.client.put("/api/v1/limit-desk/authority", headers=api.token("approver"),
                           json={"role_limits": {"approver": "999999999"}, "automatic_limit": "0"})
        assert r.status_code == 403
        got = api.client.get("/api/v1/limit-desk/authority", headers=api.token("credit_officer")).json()
        assert got["role_limits"]["approver"] == "200000.00" and got["automatic_limit"] == "50000.00"


def pending_decrease(api: Api) -> tuple[int, int]:
    line_id = late_long_ago(api)
    run = review_credit_lines(api.kit.uow_factory(), api.kit.principal("approver"), apply=True)
    assert run.lines[0].change_id is not None
    return line_id, run.lines[0].change_id


class TestOfficerAndApproverOverHttp:
    def test_the_officer_lists_their_customers_candidates_with_the_evidence(self, api: Api) -> None:
        line_id, change_id = pending_decrease(api)
        username, officer = api.kit.user("credit_officer")
        _, colleague = api.kit.user("credit_officer")
        assign(api, line_id, officer)
        r = api.client.get("/api/v1/limit-desk/candidates", headers={**api.token_for(username),
                                                                      "Accept-Language": "en"})
        assert r.status_code == 200, r.text
        [c] = r.json()
        assert (c["id"], c["action"], c["current_limit"], c["proposed_limit"]) == (
            change_id, "decrease", "40000.00", "28000.00")
        assert c["score"] < 560 and c["band"] == "E" and c["max_dpd_6m"] == 0
        assert {f["name"]: f["points"] for f in c["factors"]}["overdue_count_12m"] == -60
        assert c["why"] == ["Limit lowered: the credit score fell"] and c["can_decide"] is False
        theirs = api.client.get("/api/v1/limit-desk/candidates",
                                headers=api.token_for(api.kit.user("credit_officer")[0]))
        assert theirs.status_code == 200
        assert colleague.user_id != officer.user_id and theirs.json() == []

    def test_recommend_then_approve_with_four_eyes(self, api: Api) -> None:
        line_id, change_id = pending_decrease(api)
        officer_name, officer = api.kit.user("credit_officer")
        assign(api, line_id, officer)
        officer_h = api.token_for(officer_name)
        r = api.client.post(f"/api/v1/limit-desk/candidates/{change_id}/recommendation", headers=officer_h,
                            json={"recommendation": "support", "note": "sales fell since spring"})
        assert r.status_code == 200, r.text
        assert r.json()["recommended_by"] == officer_name and r.json()["officer_note"] == "sales fell since spring"
        assert api.client.post(f"/api/v1/limit-desk/candidates/{change_id}/decision", headers=officer_h,
                               json={"approve": True}).status_code == 403
        approver_h = api.token("approver")
        queue = api.client.get("/api/v1/limit-desk/approvals", headers=approver_h).json()
        assert [(q["id"], q["recommendation"], q["can_decide"]) for q in queue] == [(change_id, "support", True)]
        case = api.client.get(f"/api/v1/limit-desk/candidates/{change_id}", headers=approver_h).json()
        assert case["candidate"]["officer_note"] == "sales fell since spring" and case["scores"][0]["band"] == "E"
        done = api.client.post(f"/api/v1/limit-desk/candidates/{change_id}/decision", headers=approver_h,
                               json={"approve": True, "note": "agreed"})
        assert done.status_code == 200 and done.json()["status"] == "approved"
        assert amount_limit(api, line_id) == Decimal("28000.00")

    def test_bad_input_and_other_banks_are_refused_and_change_nothing(self, api: Api, other: Api) -> None:
        _, change_id = pending_decrease(api)
        h = api.token("credit_officer")
        bad = api.client.post(f"/api/v1/limit-desk/candidates/{change_id}/recommendation", headers=h,
                              json={"recommendation": "maybe", "note": "x"})
        assert bad.status_code == 422
        assert api.client.post(f"/api/v1/limit-desk/candidates/{change_id}/recommendation", headers=h,
                               json={"recommendation": "support", "note": ""}).status_code == 422
        foreign = other.token("approver")
        assert other.client.get(f"/api/v1/limit-desk/candidates/{change_id}", headers=foreign).status_code == 404
        assert other.client.post(f"/api/v1/limit-desk/candidates/{change_id}/decision", headers=foreign,
                                 json={"approve": False}).status_code == 404
        assert api.client.get("/api/v1/limit-desk/candidates", headers=api.token("marketer")).status_code == 403
        with api.kit.uow_factory() as u:
            row = u.session.get(LimitChangeRow, change_id)
            assert row is not None and (row.status, row.recommendation) == ("pending", None)


class TestPages:
    def test_officer_page_then_approver_case_in_both_languages(self, api: Api) -> None:
        line_id, change_id = pending_decrease(api)
        officer = api.kit.principal("credit_officer")
        assign(api, line_id, officer)
        r = get(api, "/limit-desk/candidates", officer, lang="zh_CN")
        assert r.status_code == 200, r.text
        assert "增信提额" in r.text and "降额" in r.text and "近12个月逾期4期及以上" in r.text
        assert 'href="/limit-desk/candidates"' in r.text  # in the menu
        sent = post(api, f"/limit-desk/cases/{change_id}/recommend", officer,
                    {"recommendation": "support", "note": "销售下滑", "back": "list"})
        assert sent.status_code == 303 and sent.headers["location"].endswith("done=recommended")
        approver = api.kit.principal("approver")
        case = get(api, f"/limit-desk/cases/{change_id}", approver)
        assert case.status_code == 200 and "销售下滑" in case.text and "Four or more late instalments" in case.text
        assert 'data-testid="approve"' in case.text
        own = get(api, f"/limit-desk/cases/{change_id}", officer)
        assert own.status_code == 200 and 'data-testid="approve"' not in own.text
        refused = post(api, f"/limit-desk/cases/{change_id}/decide", officer, {"decision": "approve"})
        assert refused.status_code == 403
        done = post(api, f"/limit-desk/cases/{change_id}/decide", approver, {"decision": "approve", "note": "ok"})
        assert done.status_code == 303
        assert amount_limit(api, line_id) == Decimal("28000.00")

    def test_pages_refuse_roles_without_the_permission(self, api: Api) -> None:
        assert get(api, "/limit-desk/candidates", api.kit.principal("marketer")).status_code == 403
        assert get(api, "/limit-desk/approvals", api.kit.principal("credit_officer")).status_code == 403
        assert get(api, "/limit-desk/candidates", None).status_code == 303


def test_every_string_on_the_desk_pages_has_a_chinese_translation() -> None:
    import re
    from importlib import resources

    from microlend.web import i18n
    from microlend.web import limit_desk as pages

    folder = resources.files("microlend.web").joinpath("templates", "limit_desk")
    msgids: set[str] = {label for _, label, _ in pages.NAV} | set(pages.DONE.values())
    for f in folder.iterdir():
        msgids |= set(re.findall(r'_\("((?:[^"\\]|\\.)*)"', f.read_text(encoding="utf-8")))
    msgids = {m for m in msgids if not m.endswith(":")}  # the prefixes of the labels below
    msgids |= {"you ran the review that proposed this change; a second person decides it",
               "four eyes: you recommended this change, so another person must decide it",
               "above your approval authority: a person with a higher authority decides it"}
    labels = folder.joinpath("_labels.html").read_text(encoding="utf-8")
    msgids |= set(re.findall(r'"[a-z_]+:[a-z_-]+": "([^"]+)"', labels))
    zh = i18n.translations("zh_CN")
    assert not sorted(m for m in msgids if zh.gettext(m) == m)


def test_the_monthly_command_scores_a_bank_by_name(api: Api, db_url: str, monkeypatch: pytest.MonkeyPatch,
                                                    tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from microlend.cli.common import get_settings
    from microlend.cli.decisioning import app

    late_long_ago(api)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", db_url)
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path))
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(app, ["score-behaviour", "--tenant", api.kit.tenant.name])
        unknown = CliRunner().invoke(app, ["score-behaviour", "--tenant", "no-such-bank"])
        on_engine = CliRunner().invoke(app, ["score-behaviour", "--tenant", api.kit.tenant.name, "--engine", "local"])
        bad_engine = CliRunner().invoke(app, ["score-behaviour", "--tenant", api.kit.tenant.name, "--engine", "x"])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"1 lines and loans scored for {today(api):%Y-%m}" in result.output and "E 1" in result.output
    assert unknown.exit_code != 0
    assert on_engine.exit_code == 0 and on_engine.output == result.output, on_engine.output
    assert bad_engine.exit_code == 2 and "'x' is not an engine" in bad_engine.output
    assert audit_actions(api, "behaviour_score.run") == 2
