"""The micro-business expert scorecard in a bank's registry: registered beside the German starter, promoted to
champion, scoring through the runtime with reason codes; validated without the model gates but with four eyes;
its points table on the API and the analyst's pages."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import Api, TenantKit, sign_in_page

from microlend.core import audit
from microlend.core.errors import Conflict, PermissionDenied
from microlend.core.tables import AuditRow, TenantRow
from microlend.risk.registry import (
    ModelVersion,
    ScoringRuntime,
    approve_model,
    list_model_versions,
    mark_validated,
    register_expert_starter,
    register_model,
)
from microlend.risk.starter import EXPERT_STARTER_DIR, EXPERT_STARTER_NAME
from microlend.risk.tables import ModelScoreRow, ModelVersionRow

from .conftest import Bank

CLEAN: dict[str, Any] = {
    "tax_sales_12m": 1_200_000,
    "tax_sales_growth_yoy": 0.15,
    "tax_months_declared_24m": 24,
    "tax_grade": "B",
    "inv_red_ratio_12m": 0.01,
    "inv_sales_gap": 0.03,
    "inv_top_customer_share": 0.25,
    "mer_active_days_3m": 82,
    "business_age_months": 60,
    "reg_legal_rep_changes_12m": 0,
    "enf_cases_open": 0,
    "enf_dishonest": 0,
    "bur_overdue_months_24m": 0,
    "bur_max_overdue_level_24m": 0,
    "bur_lenders_open": 1,
    "bur_inquiries_3m": 1,
    "bur_history_months": 48,
    "own_bounced_6m": 0,
    "years_in_business": 5,
}


def _register(bank: Bank, *, champion: bool) -> ModelVersion:
    with bank.uow:
        tenant = bank.uow.session.get(TenantRow, bank.tenant_id)
        assert tenant is not None
        version = register_expert_starter(bank.uow.session, tenant, champion=champion)
        bank.uow.commit()
    return version


class TestRegisterExpertStarter:
    def test_registered_beside_the_german_champion_it_waits_approved(self, bank: Bank) -> None:
        expert = _register(bank, champion=False)
        assert (expert.name, expert.kind, expert.status) == (EXPERT_STARTER_NAME, "expert", "approved")
        assert expert.store_path.startswith("package:") and expert.approved_by_name == "microlend"
        statuses = {v.kind: v.status for v in list_model_versions(bank.uow, bank.people["wang"])}
        assert statuses == {"scorecard": "champion", "expert": "approved"}
        assert _register(bank, champion=False).id == expert.id  # registering again changes nothing

    def test_as_champion_it_scores_through_the_runtime_and_retires_the_german_one(self, bank: Bank) -> None:
        expert = _register(bank, champion=True)
        statuses = {v.kind: v.status for v in list_model_versions(bank.uow, bank.people["wang"])}
        assert statuses == {"scorecard": "retired", "expert": "champion"}
        runtime = ScoringRuntime()
        clean = runtime.score(bank.uow, bank.people["zhao"], CLEAN, subject_type="application", subject_id=7)
        assert clean.champion.model_version_id == expert.id and clean.champion.kind == "expert"
        assert 580 <= clean.champion.score <= 650 and clean.champion.reasons == []
        bad = runtime.score(
            bank.uow,
            bank.people["zhao"],
            {**CLEAN, "enf_cases_open": 1, "enf_dishonest": 1, "tax_grade": "Z"},
            subject_type="application",
            subject_id=8,
        )
        assert bad.champion.score < 520
        assert bad.champion.reason_codes == ("DISHONEST_DEBTOR", "TAX_GRADE_LOW", "ENFORCEMENT_CASES")
        assert bad.champion.unseen == ["tax_grade"]
        with bank.uow:
            rows = (
                bank.uow.session.execute(
                    select(ModelScoreRow).where(ModelScoreRow.tenant_id == bank.tenant_id).order_by(ModelScoreRow.id)
                )
                .scalars()
                .all()
            )
            assert [(r.model_version_id, r.subject_id) for r in rows] == [(expert.id, "7"), (expert.id, "8")]
            assert rows[1].reasons == ["DISHONEST_DEBTOR", "TAX_GRADE_LOW", "ENFORCEMENT_CASES"]
            actions = (
                bank.uow.session.execute(select(AuditRow.action).where(AuditRow.tenant_id == bank.tenant_id))
                .scalars()
                .all()
            )
            assert {"model.approved", "model.retired"} <= set(actions) and actions.count("model.champion") == 2
            assert audit.verify(bank.uow.session, bank.tenant_id).ok

    def test_an_approved_expert_starter_is_promoted_on_a_second_call(self, bank: Bank) -> None:
        first = _register(bank, champion=False)
        second = _register(bank, champion=True)
        assert (second.id, second.status) == (first.id, "champion")


class TestBankRegisteredExpertModel:
    def test_needs_a_validator_and_a_third_persons_approval_but_no_gates(self, bank: Bank) -> None:
        wang, li, sun = bank.people["wang"], bank.people["li"], bank.people["sun"]
        v = register_model(bank.uow, wang, EXPERT_STARTER_DIR, name="our-expert", store_root=bank.store)
        assert (v.status, v.kind) == ("draft", "expert")
        validated = mark_validated(bank.uow, sun, v.id, note="points table and rationale reviewed")
        assert validated.status == "validated"
        with pytest.raises(PermissionDenied, match="four eyes"):
            approve_model(bank.uow, wang, v.id)
        assert approve_model(bank.uow, li, v.id).status == "approved"

    def test_a_statistical_model_without_figures_is_still_refused(self, bank: Bank) -> None:
        (german,) = list_model_versions(bank.uow, bank.people["wang"])
        with bank.uow:
            row = bank.uow.session.get(ModelVersionRow, german.id)
            assert row is not None
            row.status, row.metrics = "draft", {"basis": "expert judgement, no development sample"}
            bank.uow.commit()
        with pytest.raises(Conflict, match="no hold-out validation figures"):
            mark_validated(bank.uow, bank.people["sun"], german.id)


@pytest.fixture
def api(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def _browser(api: Api, *roles: str, lang: str) -> TestClient:
    username, _ = api.kit.user(*roles)
    client = TestClient(api.client.app, raise_server_exceptions=False)
    client.cookies.set("ml_lang", lang)
    sign_in_page(client, username)
    return client


class TestPagesAndApi:
    @pytest.mark.parametrize("lang", ["zh_CN", "en"])
    def test_the_analyst_sees_the_points_table_with_missing_unseen_and_rationale(self, api: Api, lang: str) -> None:
        with api.kit.uow_factory() as uow:
            tenant = uow.session.get(TenantRow, api.kit.tenant.id)
            assert tenant is not None
            version = register_expert_starter(uow.session, tenant, champion=False)
            uow.commit()
        browser = _browser(api, "risk_analyst", lang=lang)
        listing = browser.get("/analyst/models")
        assert listing.status_code == 200
        assert ("专家评分卡" if lang == "zh_CN" else "Expert scorecard") in listing.text
        page = browser.get(f"/analyst/models/{version.id}")
        assert page.status_code == 200, page.text[:500]
        assert 'data-testid="expert-points"' in page.text and 'data-testid="gates-not-applicable"' in page.text
        if lang == "zh_CN":
            assert "缺失" in page.text and "未知或其他取值" in page.text and "纳税信用等级" in page.text
            assert "假设而非实测" in page.text
        else:
            assert "Missing" in page.text and "Unseen or other value" in page.text
            assert "Tax credit grade" in page.text and "Assumed, not measured" in page.text
        assert "SALES_DECLINING" in page.text

    def test_the_monitoring_page_of_an_expert_champion(self, api: Api) -> None:
        with api.kit.uow_factory() as uow:
            tenant = uow.session.get(TenantRow, api.kit.tenant.id)
            assert tenant is not None
            version = register_expert_starter(uow.session, tenant, champion=True)
            uow.commit()
        browser = _browser(api, "risk_analyst", lang="en")
        assert browser.get(f"/analyst/models/{version.id}").status_code == 200
        monitoring = browser.get(f"/analyst/models/{version.id}/monitoring")
        assert monitoring.status_code == 200, monitoring.text[:500]

    def test_the_points_api_gives_neutral_points_and_reason_codes(self, api: Api) -> None:
        with api.kit.uow_factory() as uow:
            tenant = uow.session.get(TenantRow, api.kit.tenant.id)
            assert tenant is not None
            version = register_expert_starter(uow.session, tenant, champion=False)
            uow.commit()
        headers = api.token("risk_analyst")
        rows = api.client.get(f"/api/v1/risk/models/{version.id}/points", headers=headers)
        assert rows.status_code == 200, rows.text
        grade = [r for r in rows.json() if r["feature"] == "tax_grade"]
        assert [(r["bin"], r["points"]) for r in grade] == [
            ("A", 12.0),
            ("B", 8.0),
            ("M", 5.0),
            ("C", -25.0),
            ("D", -60.0),
            ("Missing", -60.0),
            ("Unseen or other", -60.0),
        ]
        assert {r["reason_code"] for r in grade} == {"TAX_GRADE_LOW"} and grade[0]["woe"] is None
        gates = api.client.get(f"/api/v1/risk/models/{version.id}/gates", headers=headers)
        assert gates.status_code == 200 and gates.json()["applies"] is False


class TestCommandLine:
    def test_points_score_and_report_work_on_the_expert_scorecard(self, tmp_path: Path) -> None:
        import pandas as pd
        from typer.testing import CliRunner

        from microlend.cli.risk import app

        runner = CliRunner()
        result = runner.invoke(app, ["points", "--model", str(EXPERT_STARTER_DIR), "--out", str(tmp_path / "p.csv")])
        assert result.exit_code == 0, result.output
        table = pd.read_csv(tmp_path / "p.csv")
        assert {"Missing", "Unseen or other"} <= set(table["bin"]) and table["rationale_zh"].notna().all()
        cases = pd.DataFrame(
            [CLEAN, {**CLEAN, "enf_cases_open": 1, "enf_dishonest": 1}, {**CLEAN, "tax_sales_growth_yoy": -0.5}, {}]
        ).assign(default_90dpd_12m=[0, 1, 1, 1])
        cases.to_csv(tmp_path / "cases.csv", index=False)
        result = runner.invoke(
            app,
            [
                "score",
                "--model",
                str(EXPERT_STARTER_DIR),
                "--data",
                str(tmp_path / "cases.csv"),
                "--out",
                str(tmp_path / "scored.csv"),
            ],
        )
        assert result.exit_code == 0, result.output
        scored = pd.read_csv(tmp_path / "scored.csv")
        assert scored["score"].iloc[0] > 580 > 520 > scored["score"].iloc[1]
        assert scored["reasons"].iloc[2] == "SALES_DECLINING"
        result = runner.invoke(
            app,
            [
                "report",
                "--model",
                str(EXPERT_STARTER_DIR),
                "--data",
                str(tmp_path / "cases.csv"),
                "--out",
                str(tmp_path / "report.html"),
            ],
        )
        assert result.exit_code == 0, result.output
        html = (tmp_path / "report.html").read_text(encoding="utf-8")
        assert "Unseen or other" in html and "纳税信用等级" in html
