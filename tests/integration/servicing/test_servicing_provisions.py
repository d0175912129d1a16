"""Provisions (拨备): three-stage expected credit loss per loan, a run posting only the allowance's change
(Dr 6702 / Cr 1304), the allowance always equal to the sum of loan provisions, month-end provisioning in close
of business, the portfolio report, and the trial balance balanced throughout."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.integration.servicing.kit import Bank
from typer.testing import CliRunner

from microlend.api import errors
from microlend.api.routers.servicing import router
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.core.settings import Settings
from microlend.core.tables import TenantRow
from microlend.servicing import cob, provisions, service
from microlend.servicing.ledger import Acct
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import LoanProvisionRow

D = Decimal
ZERO = D(0)


def balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


def loans(bank: Bank, n: int) -> list[int]:
    return [
        service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D(5000 + 1000 * k), 12, D("0.12"))).id
        for k in range(n)
    ]


def rows(bank: Bank, run_id: int) -> list[LoanProvisionRow]:
    with bank.uow() as u:
        return list(u.session.execute(select(LoanProvisionRow).where(LoanProvisionRow.run_id == run_id)).scalars())


class TestTheRun:
    def test_stages_provisions_and_the_allowance(self, bank: Bank) -> None:
        ids = loans(bank, 3)
        service.post_repayment(bank.uow(), bank.who, ids[0], D("100"))  # no effect on staging
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 30))
        first = provisions.run_provisioning(bank.uow(), bank.who)
        assert first.loans == 3 and set(first.by_stage) == {"1", "2", "3"}
        for r in rows(bank, first.id):
            assert r.stage == 1
            assert r.amount == provisions.provision_for(r.ead, 1)
        assert first.total == sum((r.amount for r in rows(bank, first.id)), ZERO) > 0
        assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == first.total
        assert balances(bank)[Acct.CREDIT_IMPAIRMENT_LOSS] == first.total

        # nobody pays: past 30 days loans move to stage 2, past 90 to stage 3 (lifetime, PD 100 %)
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 5, 20))
        held = balances(bank)[Acct.LOAN_LOSS_ALLOWANCE]  # month-end runs of close of business moved it
        assert held > first.total
        later = provisions.run_provisioning(bank.uow(), bank.who)
        assert {r.stage for r in rows(bank, later.id)} == {3}
        assert later.change == later.total - held
        assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == later.total
        again = provisions.run_provisioning(bank.uow(), bank.who)  # nothing changed: nothing posted
        assert again.change == 0 and again.total == later.total

    def test_month_end_close_of_business_provisions(self, bank: Bank) -> None:
        loans(bank, 2)
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 30))
        assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == 0
        cob.run_close_of_business(bank.uow(), bank.who, through=date(2026, 1, 31))
        report = provisions.portfolio_report(bank.uow(), bank.who)
        assert report["as_of"] == "2026-01-31"
        assert D(report["provision_total"]) == balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] > 0

    def test_parameters_are_the_banks_and_checked(self, bank: Bank) -> None:
        loans(bank, 1)
        params = provisions.ProvisionParameters(D("0.05"), D("0.3"), D("1"), D("0.6"))
        provisions.set_provision_parameters(bank.uow(), bank.who, params)
        run = provisions.run_provisioning(bank.uow(), bank.who)
        (row,) = rows(bank, run.id)
        assert row.amount == provisions.provision_for(row.ead, 1, params) == (row.ead * D("0.03")).quantize(D("0.01"))
        with pytest.raises(ValidationError, match="lgd"):
            provisions.ProvisionParameters(lgd=D("1.2"))
        with pytest.raises(PermissionDenied):
            provisions.run_provisioning(bank.uow(), bank.principal(Role.MARKETER))
        with pytest.raises(ValidationError, match="date"):
            provisions.run_provisioning(bank.uow(), bank.who, date(2027, 1, 1))


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    steps=st.lists(
        st.tuples(st.integers(1, 40), st.sampled_from(["0.01", "0.02", "0.1"]), st.sampled_from(["0.3", "0.45"])),
        min_size=1,
        max_size=4,
    )
)
def test_the_allowance_always_equals_the_sum_of_loan_provisions(bank: Bank, steps: list[tuple[int, str, str]]) -> None:
    if not service.list_loans(bank.uow(), bank.who):
        loans(bank, 3)
    for days, pd1, lgd in steps:
        with bank.uow() as u:
            tenant = u.session.get(TenantRow, bank.tenant_id)
            assert tenant is not None
            through = tenant.business_date + timedelta(days=days)
        cob.run_close_of_business(bank.uow(), bank.who, through=through)
        provisions.set_provision_parameters(
            bank.uow(), bank.who, provisions.ProvisionParameters(pd_stage1=D(pd1), lgd=D(lgd))
        )
        run = provisions.run_provisioning(bank.uow(), bank.who)
        assert balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] == sum((r.amount for r in rows(bank, run.id)), ZERO)
        assert service.reconcile(bank.uow(), bank.who).ok


SECRET = "provisions-api-test-secret-0123456789abcdef"


@pytest.fixture
def client(bank: Bank) -> Iterator[TestClient]:
    settings_ = Settings(
        mode="test", database_url=bank.engine.url.render_as_string(hide_password=False), secret_key=SECRET
    )
    app = FastAPI()
    app.state.settings = settings_
    app.state.session_factory = make_session_factory(bank.engine)
    errors.install(app)
    app.include_router(router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def token(bank: Bank, role: str) -> dict[str, str]:
    with bank.uow() as u:
        row = tenancy.add_user(u.session, bank.tenant_id, f"prov-{role}", "correct-horse-1", [role])
        who = tenancy.principal_for(row)
        u.commit()
    return {"Authorization": f"Bearer {tenancy.issue_token(who, Settings(mode='test', secret_key=SECRET))}"}


def test_the_api_runs_and_reports(bank: Bank, client: TestClient) -> None:
    loans(bank, 2)
    admin, auditor = token(bank, "admin"), token(bank, "auditor")
    r = client.post("/api/v1/provisions/runs", json={}, headers=admin)
    assert r.status_code == 201, r.text
    assert r.json()["loans"] == 2
    report = client.get("/api/v1/portfolio/report", headers=auditor)
    assert report.status_code == 200
    body = report.json()
    assert set(body) >= {
        "outstanding",
        "by_class",
        "npl_ratio",
        "provision_total",
        "provision_by_stage",
        "provision_coverage",
        "loan_provision_ratio",
    }
    assert D(body["provision_total"]) == balances(bank)[Acct.LOAN_LOSS_ALLOWANCE]
    assert D(body["outstanding"]) == D("11000") and body["npl_ratio"] == "0.0000"


def test_the_command_line_runs_and_reports(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> None:
    from microlend.cli import servicing as cli

    monkeypatch.setattr(cli, "tenant_principal", lambda _name: (bank.uow(), bank.who))
    loans(bank, 1)
    runner = CliRunner()
    result = runner.invoke(cli.servicing_app, ["provision", "--tenant", "t1", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["loans"] == 1
    result = runner.invoke(cli.portfolio_app, ["report", "--tenant", "t1", "--json"])
    assert result.exit_code == 0, result.output
    body = json.loads(result.output)
    assert D(body["provision_total"]) == balances(bank)[Acct.LOAN_LOSS_ALLOWANCE] > 0
