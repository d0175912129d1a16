"""`microlend loan import --tenant T FILE.csv` on a real database: a good file puts ordinary loans on the books,
a bad row anywhere is named (row, column, why) and nothing is imported, and a loan disbursed in the past is
overdue after close of business for what it has not repaid."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest
from sqlalchemy import func, select
from tests.integration.servicing.kit import Bank
from typer.testing import CliRunner

from microlend.cli.servicing import app as loan_app
from microlend.cli.servicing import cob_app
from microlend.core.settings import get_settings
from microlend.core.tables import AuditRow
from microlend.demo import identities
from microlend.parties.customers import NewCustomer, create_customer
from microlend.servicing import queries
from microlend.servicing import service as servicing
from microlend.servicing.tables import JournalEntryRow, LoanRow

runner = CliRunner()
HEADER = "id_number,product_code,principal,annual_rate,term_months,disbursed_on,repaid_amount\n"


@pytest.fixture
def cli_bank(bank: Bank, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    monkeypatch.setenv("MICROLEND_DATABASE_URL", bank.engine.url.render_as_string(hide_password=False))
    get_settings.cache_clear()
    yield bank
    get_settings.cache_clear()


def customer(bank: Bank, seed: int) -> str:
    rng = random.Random(seed)
    id_number = identities.resident_id(rng, identities.birth_date_for_age(rng, 40, date(2026, 1, 1)))
    create_customer(bank.uow(), bank.who, NewCustomer("person", f"客户{seed}", id_number, identities.mobile(rng)))
    return id_number


def csv_file(tmp_path: Path, rows: list[str]) -> Path:
    path = tmp_path / "book.csv"
    path.write_text(HEADER + "".join(r + "\n" for r in rows), encoding="utf-8")
    return path


def counts(bank: Bank) -> tuple[int, int, int]:
    with bank.uow() as u:
        def n(table: type) -> int:
            return int(u.session.execute(select(func.count()).select_from(table)).scalar_one())
        return n(LoanRow), n(JournalEntryRow), n(AuditRow)


class TestImport:
    def test_a_good_file_puts_ordinary_loans_on_the_books(self, cli_bank: Bank, tmp_path: Path) -> None:
        a, b = customer(cli_bank, 1), customer(cli_bank, 2)
        path = csv_file(tmp_path, [f"{a},EI-STD,10000,0.12,12,2026-01-15,", f"{b},BL-STD,5000.50,0.096,6,2026-01-15,0"])
        result = runner.invoke(loan_app, ["import", str(path), "--tenant", "t1"])
        assert result.exit_code == 0, result.output
        assert "imported 2 loans, principal 15000.50, repaid 0.00" in result.output
        views = servicing.list_loans(cli_bank.uow(), cli_bank.who)
        assert sorted(v.principal for v in views) == [Decimal("5000.50"), Decimal("10000.00")]
        with cli_bank.uow() as u:
            actions = u.session.execute(select(AuditRow.action).where(AuditRow.action == "loan.import")).all()
        assert len(actions) == 2
        customer_ids = {v.customer_id for v in views}
        assert all(queries.customer_loans(cli_bank.uow(), cli_bank.who, c).active_loans == 1  # type: ignore[arg-type]
                   for c in customer_ids) and len(customer_ids) == 2
        trial = servicing.trial_balance(cli_bank.uow(), cli_bank.who)
        assert trial.balanced

    def test_bad_rows_are_named_and_nothing_is_imported(self, cli_bank: Bank, tmp_path: Path) -> None:
        a = customer(cli_bank, 3)
        before = counts(cli_bank)
        path = csv_file(tmp_path, [
            f"{a},EI-STD,10000,0.12,12,2026-01-10,",        # row 2: good
            "110101199001011234,EI-STD,10000,0.12,12,2026-01-10,",  # row 3: unknown customer
            f"{a},NOPE,10000,0.12,12,2026-01-10,",          # row 4: unknown product
            f"{a},EI-STD,1e30,0.12,12,2026-01-10,",         # row 5: beyond any amount
            f"{a},EI-STD,10000,0.30,12,2026-01-10,",        # row 6: above the product's rate
            f"{a},EI-STD,10000,0.12,12,2026-02-30,",        # row 7: not a date
            f"{a},EI-STD,10000,0.12,12,2027-01-10,",        # row 8: in the future
            f"{a},EI-STD,10000,0.12,twelve,2026-01-10,",    # row 9: not a term
        ])
        result = runner.invoke(loan_app, ["import", str(path), "--tenant", "t1"])
        assert result.exit_code == 2, result.output
        out = " ".join(result.output.split())
        for expected in ("row 3, id_number: no customer of this bank", "row 4, product_code: no product 'NOPE'",
                         "row 5, principal:", "beyond the largest amount", "row 6, annual_rate:",
                         "row 7, disbursed_on: '2026-02-30' is not a date", "row 8, disbursed_on: 2027-01-10 is after",
                         "row 9, term_months:"):
            assert expected in out, expected
        assert "row 2" not in out
        assert counts(cli_bank) == before

    def test_a_repaid_amount_above_what_is_owed_rolls_back_the_whole_file(self, cli_bank: Bank,
                                                                          tmp_path: Path) -> None:
        a = customer(cli_bank, 4)
        before = counts(cli_bank)
        path = csv_file(tmp_path, [f"{a},EI-STD,10000,0.12,12,2026-01-10,100",
                                   f"{a},EI-STD,10000,0.12,12,2026-01-10,99999"])
        result = runner.invoke(loan_app, ["import", str(path), "--tenant", "t1"])
        assert result.exit_code == 2
        assert "row 3, repaid_amount:" in " ".join(result.output.split())
        assert counts(cli_bank) == before

    def test_a_missing_column_is_named(self, cli_bank: Bank, tmp_path: Path) -> None:
        path = tmp_path / "book.csv"
        path.write_text("id_number,product_code,principal\n1,EI-STD,10\n", encoding="utf-8")
        result = runner.invoke(loan_app, ["import", str(path), "--tenant", "t1"])
        assert result.exit_code == 2 and "missing column(s): annual_rate, term_months, disbursed_on" in result.output

    def test_a_past_dated_loan_is_overdue_after_close_of_business(self, cli_bank: Bank, tmp_path: Path) -> None:
        """Disbursed on 15 Oct 2025, 10,000 at 12 % over 12 months: installments fell due on 15 Nov and 15 Dec
        (interest 100.00 and 92.12, principal 788.49 and 796.37), a third falls due today. 1,100 repaid pays both
        interests first (the product's order), then the first principal: after close of business the second
        installment is overdue, 31 days past due, and today's is not yet."""
        a = customer(cli_bank, 5)
        path = csv_file(tmp_path, [f"{a},EI-STD,10000,0.12,12,2025-10-15,1100"])
        result = runner.invoke(loan_app, ["import", str(path), "--tenant", "t1"])
        assert result.exit_code == 0, result.output
        [view] = servicing.list_loans(cli_bank.uow(), cli_bank.who)
        assert view.disbursed_on == date(2025, 10, 15) and view.days_past_due == 0
        ran = runner.invoke(cob_app, ["run", "--tenant", "t1", "--date", "2026-01-15", "--json"])
        assert ran.exit_code == 0, ran.output
        loan = servicing.get_loan(cli_bank.uow(), cli_bank.who, view.id)
        overdue = [i.number for i in loan.installments if i.status == "overdue"]
        assert loan.installments[0].status == "paid" and overdue == [2]
        assert loan.installments[1].principal_paid == Decimal("119.39")
        assert loan.days_past_due == 31 and loan.bucket != "M0"
        recon = servicing.reconcile(cli_bank.uow(), cli_bank.who)
        assert recon.ok
