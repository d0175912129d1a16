from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl
import pyarrow.parquet as pq
import pytest
from tests.databases import pristine_sqlite_url
from typer.testing import CliRunner

from microlend.batch.analytics import write_partitioned
from microlend.cli.marketing import app
from microlend.core.db import make_engine, make_session_factory
from microlend.core.settings import get_settings
from microlend.core.tables import TenantRow
from microlend.data.features import SOURCE_MONTH_OF
from microlend.marketing.synthetic import customer_base

runner = CliRunner()


@pytest.fixture
def cli_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    url = pristine_sqlite_url(tmp_path / "cli.db")
    engine = make_engine(url)
    with make_session_factory(engine)() as s:
        s.add(TenantRow(name="demo", display_name="Demo", business_date=date(2026, 3, 1),
                        created_at=datetime(2026, 3, 1, tzinfo=UTC)))
        s.commit()
    engine.dispose()
    monkeypatch.setenv("MICROLEND_DATABASE_URL", url)
    get_settings.cache_clear()
    customers = tmp_path / "customers.parquet"
    pl.DataFrame({
        "customer_id": list(range(1, 201)),
        "age": [20 + i % 45 for i in range(200)],
        "months_on_book": [i % 30 for i in range(200)],
        "marketing_consent": [i % 8 != 0 for i in range(200)],
        "current_days_past_due": [0] * 200,
    }).write_parquet(customers)
    yield tmp_path
    get_settings.cache_clear()


def test_validate_accepts_a_good_expression() -> None:
    result = runner.invoke(app, ["segment", "validate", "age >= 25 and months_on_book > 6"])
    assert result.exit_code == 0, result.output
    assert "age, months_on_book" in result.output


@pytest.mark.parametrize("expression", ["salary > 1", "age >", '__import__("os")'])
def test_validate_refuses_with_exit_code_2(expression: str) -> None:
    result = runner.invoke(app, ["segment", "validate", expression])
    assert result.exit_code == 2
    assert "error" in result.output and "Traceback" not in result.output


def test_whole_flow_from_segment_to_report(cli_db: Path) -> None:
    customers = str(cli_db / "customers.parquet")
    ok = runner.invoke(app, ["segment", "save", "--tenant", "demo", "--name", "adults", "age >= 30"])
    assert ok.exit_code == 0, ok.output
    count = runner.invoke(app, ["segment", "count", "--tenant", "demo", "--name", "adults", "--customers", customers,
                                "--json", "--at", "2026-03-02T10:00+08:00"])
    assert count.exit_code == 0, count.output
    body = json.loads(count.output)
    assert body["selected"] == 200 - sum(1 for i in range(200) if 20 + i % 45 < 30)
    preview = runner.invoke(app, ["segment", "preview", "--tenant", "demo", "--name", "adults", "--customers",
                                  customers, "--sample", "3"])
    assert preview.exit_code == 0, preview.output
    assert "customer_id" in preview.output
    created = runner.invoke(app, ["campaign", "create", "--tenant", "demo", "--name", "spring", "--segment", "adults",
                                  "--control-share", "2000", "--locale", "en", "--department", "Retail",
                                  "--budget", "100000"])
    assert created.exit_code == 0, created.output
    step = runner.invoke(app, ["campaign", "step", "--tenant", "demo", "1", "--after-days", "3", "--condition",
                               "no_click", "--action", "visit"])
    assert step.exit_code == 0 and "step 1" in step.output, step.output
    launched = runner.invoke(app, ["campaign", "launch", "--tenant", "demo", "1", "--customers", customers,
                                   "--at", "2026-03-02T10:00+08:00"])
    assert launched.exit_code == 0, launched.output
    sent = runner.invoke(app, ["campaign", "send", "--tenant", "demo", "--now", "2026-03-02T10:00+08:00",
                               "--customers", customers])
    assert sent.exit_code == 0, sent.output
    assert "sent" in sent.output
    journeys = runner.invoke(app, ["campaign", "journeys", "--tenant", "demo", "--now", "2026-03-05T10:00+08:00",
                                   "--customers", customers])
    assert journeys.exit_code == 0 and "steps done 1" in journeys.output, journeys.output
    listed = runner.invoke(app, ["campaign", "list", "--tenant", "demo"])
    assert listed.exit_code == 0 and "spring" in listed.output
    tasks = runner.invoke(app, ["campaign", "tasks", "--tenant", "demo"])
    assert tasks.exit_code == 0, tasks.output
    out = cli_db / "report.html"
    reported = runner.invoke(app, ["report", "--tenant", "demo", "1", "--out", str(out)])
    assert reported.exit_code == 0, reported.output
    assert out.is_file() and out.with_suffix(".json").is_file()

    # conversions arrive; then an uplift model learns from the campaign and ranks the customers
    from datetime import timedelta

    from sqlalchemy import select

    from microlend.core.identity import system_principal
    from microlend.core.uow import UnitOfWork
    from microlend.marketing import service
    from microlend.marketing.tables import AssignmentRow

    factory = make_session_factory(make_engine(f"sqlite:///{cli_db / 'cli.db'}"))
    with factory() as s:
        arms = dict(s.execute(select(AssignmentRow.customer_id, AssignmentRow.arm)).all())
        tenant_id = s.execute(select(TenantRow.id)).scalar_one()
    at = datetime(2026, 3, 4, tzinfo=UTC)
    converted = [c for c, a in arms.items() if (a == "treatment" and 20 + (c - 1) % 45 > 45) or c % 9 == 0]
    service.record_events(UnitOfWork(factory), system_principal(tenant_id), [
        {"customer_id": c, "kind": "disbursed", "at": at + timedelta(hours=c)} for c in converted])
    ranked = cli_db / "ranked.parquet"
    result = runner.invoke(app, ["uplift", "--tenant", "demo", "1", "--customers", customers, "--features", "age",
                                 "--out", str(ranked)])
    assert result.exit_code == 0, result.output
    assert "AUUC" in result.output
    top = pl.read_parquet(ranked).head(10).join(pl.read_parquet(customers), on="customer_id")
    assert min(top.get_column("age").to_list()) > 45
    assert "data:image/png;base64," in ranked.with_suffix(".html").read_text(encoding="utf-8")
    bad = runner.invoke(app, ["uplift", "--tenant", "demo", "1", "--customers", customers, "--features", "salary",
                              "--out", str(ranked)])
    assert bad.exit_code == 2


def test_preapprove_on_a_synthetic_base(cli_db: Path) -> None:
    result = runner.invoke(app, ["preapprove", "--tenant", "demo", "--as-of", "2026-03-01", "--synthetic", "2000",
                                 "--chunk-rows", "500"])
    assert result.exit_code == 0, result.output
    assert "completed" in result.output and "2,000 customers" in result.output


def test_preapprove_reads_files_or_folders_partitioned_by_tenant_and_month(cli_db: Path) -> None:
    tables, profile = customer_base(1500, seed=5, as_of=date(2026, 3, 1))
    files, folders = cli_db / "files", cli_db / "folders"
    files.mkdir()
    for name, table in {**tables, "profile": profile}.items():
        pq.write_table(table, files / f"{name}.parquet")
    for name, table in tables.items():
        write_partitioned(folders, name, 1, [table], month_of=SOURCE_MONTH_OF[name])
    pq.write_table(profile, folders / "profile.parquet")  # a small table may stay one file
    assert len(list((folders / "installments" / "tenant_id=1").iterdir())) > 12
    counts = []
    for data in (files, folders):
        result = runner.invoke(app, ["preapprove", "--tenant", "demo", "--as-of", "2026-03-01", "--data", str(data),
                                     "--chunk-rows", "500"])
        assert result.exit_code == 0, result.output
        counts.append(result.output.rsplit(":", 1)[1].strip())
    assert counts[0].startswith("1,500 customers") and not counts[0].endswith(" 0 offers")
    assert counts[1] == counts[0]
    (folders / "customers.parquet").write_bytes((files / "customers.parquet").read_bytes())
    both = runner.invoke(app, ["preapprove", "--tenant", "demo", "--as-of", "2026-03-01", "--data", str(folders)])
    assert both.exit_code == 2 and "both customers.parquet and a customers/ folder" in both.output


@pytest.mark.parametrize("args", [
    ["preapprove", "--tenant", "demo", "--as-of", "yesterday", "--synthetic", "10"],
    ["preapprove", "--tenant", "demo", "--as-of", "2026-03-01"],
    ["preapprove", "--tenant", "nobody", "--as-of", "2026-03-01", "--synthetic", "10"],
    ["campaign", "create", "--tenant", "demo", "--name", "x", "--channel", "fax", "--segment", "a"],
    ["campaign", "create", "--tenant", "demo", "--name", "x", "--segment", "a", "--cost-per-message", "cheap"],
    ["campaign", "launch", "--tenant", "demo", "99", "--customers", "/no/such/file.parquet"],
    ["campaign", "create", "--tenant", "demo", "--name", "x", "--segment", "a", "--budget", "lots"],
    ["campaign", "step", "--tenant", "demo", "1", "--after-days", "0", "--condition", "no_click", "--action", "sms"],
    ["report", "--tenant", "demo", "42", "--out", "r.html"],
])
def test_bad_input_exits_with_code_2(cli_db: Path, args: list[str]) -> None:
    result = runner.invoke(app, args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
