"""Vintages, roll rates and PSI/CSI give the same figures on the local engine and on Spark: over generated
books and populations held as Arrow tables, over the Parquet export partitioned by bank and month, and against
the database's own figures (SQLite and PostgreSQL) after exporting a seeded book."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest
from tests.analytics_books import generated_book, generated_population
from tests.conftest import TenantKit
from tests.integration.portfolio.hand_book import put_loans
from tests.integration.portfolio.test_portfolio_reference import random_book

from microlend.batch.analytics import run_query, write_partitioned
from microlend.core.uow import UnitOfWork
from microlend.risk.monitoring_jobs import stability_on
from microlend.servicing import portfolio
from microlend.servicing.portfolio_jobs import (
    INSTALLMENT_SNAPSHOT,
    LOAN_SNAPSHOT,
    MONTH_OF,
    installment_snapshot,
    loan_snapshot,
    portfolio_parquet,
    roll_counts_on,
    roll_rates_on,
    vintage_counts_on,
    vintages_on,
)
from microlend.servicing.portfolio_sql import Window

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

AS_OF = date(2026, 11, 30)
WINDOW = Window(AS_OF, 18)


@pytest.fixture(scope="module")
def book() -> dict[str, pa.Table]:
    return generated_book(3000, 18, seed=7, as_of=AS_OF)


def test_vintages_and_roll_rates_are_the_same_on_both_engines(spark: Any, book: dict[str, pa.Table]) -> None:
    tenant = 1
    local_v = vintage_counts_on("local", WINDOW, tenant, book)
    spark_v = vintage_counts_on("spark", WINDOW, tenant, book, spark=spark)
    assert spark_v == local_v  # the same rows in the same order
    local_r = roll_counts_on("local", WINDOW, tenant, book)
    assert roll_counts_on("spark", WINDOW, tenant, book, spark=spark) == local_r
    loans = sum(1 for t in book["loans"].column("tenant_id").to_pylist() if t == tenant)
    assert sum(n for *_, n in local_v) == loans  # every loan of the bank, none of the other's
    assert any(k90 is not None for _, _, k90, _ in local_v)  # the book has loans that went 90+
    assert {a for _, a, _, _ in local_r} >= {"M0", "M1", "M2", "M3", "M3+"}
    assert vintages_on("spark", WINDOW, tenant, book, spark=spark) == vintages_on("local", WINDOW, tenant, book)


def _export(book: dict[str, pa.Table], out: Path) -> None:
    """Each bank's part of the book written in chunks, as the export writes the database's rows."""
    for name in ("loans", "loan_installments"):
        table = book[name]
        for tenant in (1, 2):
            mine = table.filter(pc.equal(table.column("tenant_id"), tenant))
            chunks = [pa.Table.from_batches([b]) for b in mine.to_batches(max_chunksize=700)]
            write_partitioned(out, name, tenant, chunks, month_of=MONTH_OF[name])


def test_the_parquet_export_reads_the_same_on_both_engines(spark: Any, book: dict[str, pa.Table],
                                                            tmp_path: Path) -> None:
    _export(book, tmp_path)
    months = sorted(p.name for p in (tmp_path / "loans" / "tenant_id=1").iterdir())
    assert months[0] == f"month={WINDOW.labels[0]}" and months[-1] == f"month={WINDOW.labels[-1]}"
    sources = portfolio_parquet(tmp_path)
    tenant = 2  # the other bank's partitions are in the folder too
    from_arrow = vintage_counts_on("local", WINDOW, tenant, book)
    assert vintage_counts_on("local", WINDOW, tenant, sources) == from_arrow
    assert vintage_counts_on("spark", WINDOW, tenant, sources, spark=spark) == from_arrow
    rolls = roll_counts_on("local", WINDOW, tenant, book)
    assert roll_counts_on("local", WINDOW, tenant, sources) == rolls
    assert roll_counts_on("spark", WINDOW, tenant, sources, spark=spark) == rolls
    # money read back exactly, to the cent, by both engines
    sql = "SELECT tenant_id, SUM(principal) AS total, COUNT(*) AS n FROM loans GROUP BY tenant_id ORDER BY tenant_id"
    local = run_query("local", sql, sources).to_pylist()
    on_spark = run_query("spark", sql, sources, spark=spark).to_pylist()
    exact: dict[int, Decimal] = {}
    for t, p in zip(book["loans"].column("tenant_id").to_pylist(), book["loans"].column("principal").to_pylist(),
                    strict=True):
        exact[t] = exact.get(t, Decimal(0)) + p
    assert [(r["tenant_id"], Decimal(r["total"]), r["n"]) for r in local] == \
        [(r["tenant_id"], Decimal(r["total"]), r["n"]) for r in on_spark]
    assert {r["tenant_id"]: Decimal(r["total"]) for r in local} == exact


COLUMNS: dict[str, Any] = {"score": "score", "income": "numeric", "region": "categorical"}


@pytest.mark.parametrize(("seed", "shift"), [(1, 0.0), (4, 0.7)])
def test_stability_is_the_same_on_both_engines(spark: Any, seed: int, shift: float) -> None:
    expected = generated_population(3000, seed)
    actual = generated_population(2000, seed + 50, shift=shift)
    local = stability_on("local", expected, actual, COLUMNS)
    on_spark = stability_on("spark", expected, actual, COLUMNS, spark=spark)
    assert [s.column for s in on_spark] == list(COLUMNS)
    for a, b in zip(local, on_spark, strict=True):
        assert b.bins == a.bins and b.status == a.status
        assert b.psi == pytest.approx(a.psi, abs=1e-12)
        assert b.expected == pytest.approx(a.expected, abs=1e-15) and b.actual == pytest.approx(a.actual, abs=1e-15)


@pytest.mark.parametrize("seed", [21])
def test_the_database_figures_survive_the_export_on_both_engines(spark: Any, bank: TenantKit, uow: UnitOfWork,
                                                                 tmp_path: Path, seed: int) -> None:
    as_of = date(2025, 9, 20)
    window = Window(as_of, 9)
    put_loans(bank.uow_factory(), bank.tenant.id, random_book(seed, 80))
    who = bank.principal("risk_analyst")
    from_db = portfolio.vintages(uow, who, window)
    rolls_db = portfolio.roll_rates(uow, who, window)
    admin = bank.principal("admin")
    for name, chunks in (("loans", loan_snapshot(uow, admin, as_of, chunk_rows=25)),
                         ("loan_installments", installment_snapshot(uow, admin, as_of, chunk_rows=40))):
        write_partitioned(tmp_path, name, bank.tenant.id, chunks, month_of=MONTH_OF[name])
    sources = portfolio_parquet(tmp_path)
    assert vintages_on("local", window, bank.tenant.id, sources) == from_db
    assert vintages_on("spark", window, bank.tenant.id, sources, spark=spark) == from_db
    assert roll_rates_on("local", window, bank.tenant.id, sources) == rolls_db
    assert roll_rates_on("spark", window, bank.tenant.id, sources, spark=spark) == rolls_db
    total = run_query("spark", "SELECT SUM(principal) AS p, COUNT(*) AS n FROM loans", sources, spark=spark)
    assert total.to_pylist() == [{"p": Decimal("80000.0000"), "n": 80}]
    assert set(LOAN_SNAPSHOT.names) | {"tenant_id", "month"} == set(sources["loans"].columns)  # type: ignore[union-attr]
    assert set(INSTALLMENT_SNAPSHOT.names) < set(sources["loan_installments"].columns)  # type: ignore[union-attr]


def test_the_export_command_writes_each_dataset_by_bank_and_month(bank: TenantKit, db_url: str, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from typer.testing import CliRunner

    from microlend.cli.main import app

    monkeypatch.setenv("MICROLEND_DATABASE_URL", db_url)
    from microlend.core.settings import get_settings

    get_settings.cache_clear()
    put_loans(bank.uow_factory(), bank.tenant.id, random_book(5, 12))
    runner = CliRunner()
    result = runner.invoke(app, ["batch", "export-parquet", "--tenant", bank.tenant.name, "--as-of", "2025-09-20",
                                 "--out", str(tmp_path)])
    assert result.exit_code == 0, result.output
    shown = json.loads(result.stdout.strip().splitlines()[-1])
    assert shown["rows"]["loans"] == 12
    assert (tmp_path / "loans" / f"tenant_id={bank.tenant.id}").is_dir()
    assert all(p.name.startswith("month=") for p in (tmp_path / "loans" / f"tenant_id={bank.tenant.id}").iterdir())
    again = runner.invoke(app, ["batch", "export-parquet", "--tenant", bank.tenant.name, "--as-of", "2025-09-20",
                                "--out", str(tmp_path)])
    assert again.exit_code == 0
    counted = run_query("local", "SELECT COUNT(*) AS n FROM loans", portfolio_parquet(tmp_path)).to_pylist()
    assert counted == [{"n": 12}]  # written again, not twice
    bad = runner.invoke(app, ["batch", "export-parquet", "--tenant", bank.tenant.name, "--as-of", "2025-13-01",
                              "--out", str(tmp_path)])
    assert bad.exit_code == 2 and "as-of" in bad.output
    engine = runner.invoke(app, ["batch", "vintages", "--tenant", bank.tenant.name, "--parquet", str(tmp_path),
                                 "--as-of", "2025-09-20", "--months", "9", "--engine", "hadoop"])
    assert engine.exit_code == 2 and "engine" in engine.output


def test_an_earlier_snapshot_gives_the_figures_the_database_gives_for_that_day(bank: TenantKit, uow: UnitOfWork,
                                                                              tmp_path: Path) -> None:
    """Repayments, closings and write-offs after the snapshot day are not in it: its figures are the day's."""
    put_loans(bank.uow_factory(), bank.tenant.id, random_book(33, 80))
    day = date(2025, 6, 30)
    window = Window(day, 6)
    admin = bank.principal("admin")
    for name, chunks in (("loans", loan_snapshot(uow, admin, day)),
                         ("loan_installments", installment_snapshot(uow, admin, day))):
        write_partitioned(tmp_path, name, bank.tenant.id, chunks, month_of=MONTH_OF[name])
    sources = portfolio_parquet(tmp_path)
    later = run_query("local", "SELECT COUNT(*) AS n FROM loan_installments WHERE paid_on > DATE '2025-06-30'",
                      sources).to_pylist()
    assert later == [{"n": 0}]
    who = bank.principal("risk_analyst")
    assert vintages_on("local", window, bank.tenant.id, sources) == portfolio.vintages(uow, who, window)
    assert roll_rates_on("local", window, bank.tenant.id, sources) == portfolio.roll_rates(uow, who, window)
