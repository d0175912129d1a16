"""Simulation with money through HTTP and the service: the bank's own decisions one click away on the page,
money on the bank's assumptions (LGD from its provisioning settings), and the money kept with the evidence."""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from tests.conftest import Api, TenantKit
from tests.integration.decisioning.test_decisioning_api import DEFAULT, application, decide, stricter_policy
from tests.integration.decisioning.test_policy_pages import sign_in

from microlend.core.identity import Principal, Role
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.policy import policy_hash
from microlend.decisioning.simulation_service import simulation
from microlend.servicing.provisions import ProvisionParameters, set_provision_parameters


@pytest.fixture
def api(app_client: TestClient, new_tenant: Callable[[], TenantKit]) -> Api:
    client = app_client
    client.cookies.clear()
    return Api(client, new_tenant())


def a_few_decisions(api: Api, scores: tuple[str, ...] = ("700", "650", "530", "610")) -> None:
    for i, score in enumerate(scores):
        decide(api, application({"customer": {"customer_id": f"m{i}"}, "model": {"score": score}}))


class TestThePage:
    def test_the_editor_offers_the_bank_s_own_applications_first(self, api: Api) -> None:
        a_few_decisions(api)
        sign_in(api, "risk_analyst")
        page = api.client.get("/policies/new").text
        select = page.split('data-testid="simulation-dataset"')[1].split("</select>")[0]
        assert select.index('value="bank_history"') < select.index('value="german_credit"')
        assert 'value="bank_history" selected' in select and "4 in the last 90 days" in select
        assert 'data-testid="history-days"' in page

    def test_a_bank_without_history_starts_on_a_sample(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        select = api.client.get("/policies/new").text.split('data-testid="simulation-dataset"')[1].split("</select>")[0]
        assert 'value="bank_history">' in select and "0 in the last 90 days" in select
        assert 'value="german_credit" selected' in select

    def test_simulating_on_the_bank_s_history_shows_money_by_segment(self, api: Api) -> None:
        a_few_decisions(api)
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/simulate", data={"content": json.dumps(stricter_policy(620)),
                                                        "dataset": "bank_history", "history_days": "30"})
        assert r.status_code == 200, r.text
        source = r.text.split('data-testid="simulation-source">')[1].split("<")[0]
        assert source.startswith("4 of this bank") and "applications of the last 30 days" in source
        for table in ("simulation-money", "money-segment-grade", "money-segment-product", "swap-reasons"):
            assert f'data-testid="{table}"' in r.text
        assert r.text.count('<img class="chart"') >= 2

    def test_in_chinese_the_money_speaks_chinese(self, api: Api) -> None:
        a_few_decisions(api)
        sign_in(api, "risk_analyst", lang="zh_CN")
        r = api.client.post("/policies/simulate", data={"content": json.dumps(stricter_policy(620)),
                                                        "dataset": "bank_history", "history_days": "30"})
        assert "预期损失" in r.text and "利润" in r.text and "本行最近 30 天的 4 笔申请" in r.text
        assert "本行最近 N 天的申请" in api.client.get("/policies/new").text

    def test_a_bank_without_history_is_told_so(self, api: Api) -> None:
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/simulate", data={"content": json.dumps(DEFAULT), "dataset": "bank_history"})
        assert r.status_code == 422 and "no acted-on decisions in the last 90 days" in r.text

    @pytest.mark.parametrize("days", ["0", "abc", "731"])
    def test_a_bad_window_is_refused(self, api: Api, days: str) -> None:
        a_few_decisions(api, ("700",))
        sign_in(api, "risk_analyst")
        r = api.client.post("/policies/simulate", data={"content": json.dumps(DEFAULT), "dataset": "bank_history",
                                                        "history_days": days})
        assert r.status_code == 422 and "history_days" in r.text


class TestTheApi:
    def test_the_bank_s_history_with_money_against_the_champion(self, api: Api) -> None:
        a_few_decisions(api)
        r = api.client.post("/api/v1/policies/simulate",
                            json={"content": stricter_policy(620), "dataset": "bank_history", "history_days": 7},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 200, r.text
        report = r.json()
        money = report["money"]
        assert report["rows"] == 4 and report["baseline"]["hash"] == policy_hash(DEFAULT)
        overall = money["overall"]
        assert overall["policy"]["approved"] == report["overall"]["approved"]
        assert overall["baseline"]["approved"] == report["baseline_overall"]["approved"]
        assert overall["delta"]["approved"] == overall["policy"]["approved"] - overall["baseline"]["approved"]
        figures = {k: Decimal(v) for k, v in overall["policy"].items() if isinstance(v, str)}
        assert figures["profit"] == (figures["interest_income"] + figures["fee_income"] - figures["expected_loss"]
                                     - figures["funding_cost"] - figures["operating_cost"])
        assert money["assumptions"]["lgd"] == "0.45" and money["assumptions"]["sources"]["lgd"] == \
            "servicing.provisioning"
        assert money["assumptions"]["products"], "the bank's product prices are read"
        swapped_out = report["swap"]["swap_out"]["applications"]
        assert sum(x["applications"] for x in money["swap_reasons"]["swap_out"]) >= swapped_out > 0

    def test_a_funding_rate_out_of_range_is_refused(self, api: Api) -> None:
        r = api.client.post("/api/v1/policies/simulate", json={"content": DEFAULT, "funding_rate": "1.5"},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 422


class TestTheEvidence:
    def test_the_submission_keeps_the_money_and_the_checker_sees_it(self, api: Api) -> None:
        a_few_decisions(api)
        r = api.client.post("/api/v1/policies", json={"content": stricter_policy()},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 201, r.text
        money = r.json()["simulation"]["money"]
        assert money["overall"]["policy"]["applications"] == 4 and "delta" in money["overall"]
        sign_in(api, "risk_analyst")
        page = api.client.get(f"/policies/{r.json()['content_hash']}").text
        evidence = page.split('data-testid="evidence-money"')[1]
        assert 'data-testid="simulation-money"' in evidence and '<img class="chart"' in evidence


class TestTheBanksAssumptions:
    def test_the_lgd_is_the_bank_s_provisioning_lgd(self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        from tests.integration.decisioning.conftest import staff
        from tests.integration.decisioning.test_decision_service import application as service_application

        for i, score in enumerate(("700", "650")):
            service.decide(uow, analyst, service_application({"customer": {"customer_id": f"l{i}"},
                                                              "model": {"score": score}}))
        before = simulation(uow, analyst, DEFAULT, "bank_history", None, None, charts=False)
        assert before.money is not None and before.money["assumptions"]["lgd"] == "0.45"
        admin = staff(bank, 19, "admin", Role.ADMIN)
        set_provision_parameters(uow, admin, ProvisionParameters(lgd=Decimal("0.6")))
        after = simulation(uow, analyst, DEFAULT, "bank_history", None, None, charts=False,
                           funding_rate=Decimal("0.031"))
        assert after.money is not None
        assumptions = after.money["assumptions"]
        assert (assumptions["lgd"], assumptions["funding_rate"]) == ("0.6", "0.031")
        assert assumptions["sources"]["lgd"] == "servicing.provisioning"
        el_before = Decimal(before.money["overall"]["policy"]["expected_loss"])
        el_after = Decimal(after.money["overall"]["policy"]["expected_loss"])
        assert el_before > 0 and abs(el_after - el_before * Decimal("0.6") / Decimal("0.45")) <= Decimal("0.01")
