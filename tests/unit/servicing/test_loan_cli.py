"""`microlend loan schedule`: JSON and table output, and clear errors with exit code 2."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from typer.testing import CliRunner

from microlend.cli.servicing import app

runner = CliRunner()
BASE = [
    "schedule",
    "--principal",
    "10000",
    "--annual-rate",
    "0.12",
    "--term-months",
    "12",
    "--start-date",
    "2026-01-15",
]


class TestLoanSchedule:
    def test_json_has_every_installment_with_decimal_strings(self) -> None:
        result = runner.invoke(app, [*BASE, "--method", "equal-installment", "--upfront-fee", "200", "--json"])
        assert result.exit_code == 0, result.output
        body = json.loads(result.output)
        assert len(body["installments"]) == 12
        first = body["installments"][0]
        assert set(first) == {"number", "due_date", "principal", "interest", "fee", "payment", "balance"}
        assert first == {
            "number": 1,
            "due_date": "2026-02-15",
            "principal": "788.49",
            "interest": "100.00",
            "fee": "0.00",
            "payment": "888.49",
            "balance": "9211.51",
        }
        assert body["installments"][-1]["balance"] == "0.00"
        assert body["total_interest"] == "661.86"
        assert Decimal(body["apr"]) > Decimal("0.15")  # the deducted fee raises the APR
        assert body["net_disbursed"] == "9800.00"

    def test_fee_added_to_the_first_installment(self) -> None:
        result = runner.invoke(app, [*BASE, "--upfront-fee", "200", "--fee-mode", "first-installment", "--json"])
        first = json.loads(result.output)["installments"][0]
        assert first["fee"] == "200.00" and first["payment"] == "1088.49"

    @pytest.mark.parametrize("method", ["equal-installment", "equal-principal", "interest-only", "bullet"])
    def test_every_method_prints_a_table(self, method: str) -> None:
        result = runner.invoke(app, [*BASE, "--method", method], env={"COLUMNS": "160"})
        assert result.exit_code == 0, result.output
        assert "APR" in result.output and "2027-01-15" in result.output

    @pytest.mark.parametrize(
        ("change", "message"),
        [
            (["--principal", "ten"], "principal"),
            (["--annual-rate", "-0.1"], "annual_rate"),
            (["--term-months", "0"], "term_months"),
            (["--term-months", "twelve"], "term_months"),
            (["--start-date", "2026-02-30"], "start_date"),
            (["--method", "balloon"], "method"),
            (["--fee-mode", "later"], "fee_mode"),
            (["--upfront-fee", "20000"], "upfront_fee"),
            (["--currency", "XYZ"], "currency"),
        ],
    )
    def test_bad_input_exits_2_with_a_message_not_a_traceback(self, change: list[str], message: str) -> None:
        args = list(BASE)
        flag = change[0]
        if flag in args:
            args[args.index(flag) + 1] = change[1]
        else:
            args += change
        result = runner.invoke(app, args)
        assert result.exit_code == 2
        assert message in result.output
        assert "Traceback" not in result.output
        assert result.exception is None or isinstance(result.exception, SystemExit)
