"""`microlend ledger trial-balance | reconcile` and `microlend cob run` on a real database."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal

import pytest
from tests.integration.servicing.kit import Bank
from typer.testing import CliRunner

from microlend.cli.servicing import cob_app, ledger_app
from microlend.core.settings import get_settings
from microlend.servicing import service
from microlend.servicing.service import Disbursement

runner = CliRunner()


@pytest.fixture
def cli_bank(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", bank.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield bank
    get_settings.cache_clear()


class TestLedgerCommands:
    def test_trial_balance_json_is_balanced(self, cli_bank: Bank) -> None:
        service.disburse(cli_bank.uow(), cli_bank.who, Disbursement("EI-STD", Decimal("10000"), 12))
        result = runner.invoke(ledger_app, ["trial-balance", "--tenant", "t1", "--json"])
        assert result.exit_code == 0, result.output
        body = json.loads(result.output)
        assert body["balanced"] is True and body["total_debit"] == body["total_credit"] == "10000.00"
        cash = next(a for a in body["accounts"] if a["code"] == "1001")
        assert cash["credit"] == "10000.00"

    def test_reconcile_proves_the_sub_ledger(self, cli_bank: Bank) -> None:
        service.disburse(cli_bank.uow(), cli_bank.who, Disbursement("EP-STD", Decimal("8000"), 6))
        runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "2026-03-01"])
        result = runner.invoke(ledger_app, ["reconcile", "--tenant", "t1", "--json"])
        assert result.exit_code == 0, result.output
        body = json.loads(result.output)
        assert body["ok"] is True
        assert next(a for a in body["accounts"] if a["code"] == "1302")["general_ledger"] != "0.00"

    def test_reconcile_batches_proves_the_nightly_sub_ledger_and_refuses_a_bad_date(self, cli_bank: Bank) -> None:
        service.disburse(cli_bank.uow(), cli_bank.who, Disbursement("EP-STD", Decimal("8000"), 6))
        runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "2026-02-01"])
        result = runner.invoke(ledger_app, ["reconcile-batches", "--tenant", "t1", "--from", "2026-01-15", "--json"])
        assert result.exit_code == 0, result.output
        assert json.loads(result.output) == {"differences": [], "ok": True}
        bad = runner.invoke(ledger_app, ["reconcile-batches", "--tenant", "t1", "--from", "2026-13-01"])
        assert bad.exit_code == 2 and "from" in bad.output

    def test_an_unknown_tenant_exits_2(self, cli_bank: Bank) -> None:
        result = runner.invoke(ledger_app, ["trial-balance", "--tenant", "nobody"])
        assert result.exit_code == 2 and "nobody" in result.output


class TestCobCommand:
    def test_runs_each_open_date_once(self, cli_bank: Bank) -> None:
        first = runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "2026-01-17", "--json"])
        assert first.exit_code == 0, first.output
        assert [r["business_date"] for r in json.loads(first.output)["runs"]] == [
            "2026-01-15",
            "2026-01-16",
            "2026-01-17",
        ]
        again = runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "2026-01-17", "--json"])
        assert json.loads(again.output)["runs"] == []

    def test_a_bad_date_exits_2(self, cli_bank: Bank) -> None:
        result = runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "17/01/2026"])
        assert result.exit_code == 2 and "date" in result.output

    def test_on_the_local_engine_the_books_reconcile_and_a_bad_engine_exits_2(self, cli_bank: Bank) -> None:
        service.disburse(cli_bank.uow(), cli_bank.who, Disbursement("EI-STD", Decimal("12000"), 12))
        run = runner.invoke(
            cob_app, ["run", "--tenant", "t1", "--date", "2026-02-20", "--engine", "local", "--json"]
        )
        assert run.exit_code == 0, run.output
        runs = json.loads(run.output)["runs"]
        assert len(runs) == 37 and Decimal(runs[-1]["interest_accrued"]) > 0
        reconciled = runner.invoke(ledger_app, ["reconcile", "--tenant", "t1", "--json"])
        assert reconciled.exit_code == 0 and json.loads(reconciled.output)["ok"] is True, reconciled.output
        batches = runner.invoke(ledger_app, ["reconcile-batches", "--tenant", "t1", "--json"])
        assert json.loads(batches.output) == {"differences": [], "ok": True}
        bad = runner.invoke(cob_app, ["run", "--tenant", "t1", "--engine", "hadoop"])
        assert bad.exit_code == 2 and "hadoop" in bad.output


class TestCobForEveryTenant:
    def test_without_a_tenant_every_bank_is_closed(self, cli_bank: Bank) -> None:
        result = runner.invoke(cob_app, ["run", "--date", "2026-01-16", "--json"])
        assert result.exit_code == 0, result.output
        runs = json.loads(result.output)["runs"]
        assert {(r["tenant"], r["business_date"]) for r in runs} == {("t1", "2026-01-15"), ("t1", "2026-01-16")}
