"""`microlend batch`: whole-portfolio work on a batch engine — the Parquet export a cluster reads, and the
portfolio analytics (vintages, roll rates, score stability) on the local engine or on Spark."""

from __future__ import annotations

import functools
import json
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Annotated, Any, ParamSpec, TypeVar

import pyarrow as pa
import typer
from rich.console import Console
from rich.progress import Progress, SpinnerColumn, TaskID, TextColumn, TimeElapsedColumn

from microlend.cli.common import fail, is_tty, tenant_principal, user_errors

P = ParamSpec("P")
R = TypeVar("R")

app = typer.Typer(name="batch", help="Whole-portfolio jobs: Parquet export, analytics on the local engine or Spark.",
                  no_args_is_help=True, pretty_exceptions_enable=False)

EngineOption = Annotated[str, typer.Option("--engine", help="local (DuckDB, default) or spark "
                                           "(master from MICROLEND_SPARK_MASTER, default local[*])")]


@app.callback()
def batch_group() -> None:
    """Whole-portfolio jobs: Parquet export, analytics on the local engine or Spark."""


def batch_errors(fn: Callable[P, R]) -> Callable[P, R]:
    """A job's unusable input or a machine without Spark ends the command with its message and exit code 2."""

    @functools.wraps(fn)
    def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        from microlend.batch.analytics import BatchInputError
        from microlend.batch.spark_session import SparkUnavailable

        try:
            return fn(*args, **kwargs)
        except (BatchInputError, SparkUnavailable) as exc:
            raise fail(str(exc)) from None

    return wrapper


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{field}: '{value}' is not a date (use YYYY-MM-DD)") from None


def _engine(value: str) -> str:
    if value not in ("local", "spark"):
        raise fail(f"engine: '{value}' is not one of local, spark")
    return value


@app.command("export-parquet")
@user_errors
@batch_errors
def export_parquet(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    as_of: Annotated[str, typer.Option("--as-of", help="Snapshot date: what was known at its end (YYYY-MM-DD)")],
    out: Annotated[Path, typer.Option(help="Folder of the datasets (one sub-folder each)")],
    chunk_rows: Annotated[int, typer.Option(help="Rows read and written at a time")] = 50_000,
) -> None:
    """Write loans, installments, bank transactions and model scores as they stood on --as-of to Parquet
    partitioned by bank and month (DATASET/tenant_id=ID/month=YYYY-MM/), replacing this bank's earlier export."""
    from microlend.batch.analytics import write_partitioned
    from microlend.data import exports as data_exports
    from microlend.risk import monitoring_jobs
    from microlend.servicing import portfolio_jobs

    day = _date(as_of, "as-of")
    if chunk_rows < 1:
        raise fail("chunk-rows: at least 1")
    if out.exists() and not out.is_dir():
        raise fail(f"out: '{out}' is a file, not a folder")
    uow, who = tenant_principal(tenant)
    datasets: list[tuple[str, str, Callable[[], Iterator[pa.Table]]]] = [
        ("loans", portfolio_jobs.MONTH_OF["loans"],
         lambda: portfolio_jobs.loan_snapshot(uow, who, day, chunk_rows=chunk_rows)),
        ("loan_installments", portfolio_jobs.MONTH_OF["loan_installments"],
         lambda: portfolio_jobs.installment_snapshot(uow, who, day, chunk_rows=chunk_rows)),
        ("bank_transactions", data_exports.MONTH_OF["bank_transactions"],
         lambda: data_exports.transaction_snapshot(uow, who, day, chunk_rows=chunk_rows)),
        ("model_scores", monitoring_jobs.MONTH_OF["model_scores"],
         lambda: monitoring_jobs.score_snapshot(uow, who, day, chunk_rows=chunk_rows)),
    ]
    out.mkdir(parents=True, exist_ok=True)
    written: dict[str, int] = {}
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), TextColumn("{task.completed:,} rows"),
                  TimeElapsedColumn(), console=Console(stderr=True), transient=not is_tty()) as bar:
        for name, month_of, chunks in datasets:
            task = bar.add_task(name, total=None)

            def advance(rows: int, _name: str, task: TaskID = task) -> None:
                bar.update(task, completed=rows)

            written[name] = write_partitioned(out, name, who.tenant_id, chunks(), month_of=month_of,
                                              progress=advance)
            bar.update(task, completed=written[name], total=max(written[name], 1))
    typer.echo(json.dumps({"tenant_id": who.tenant_id, "as_of": day.isoformat(), "out": str(out), "rows": written}))


@app.command("vintages")
@user_errors
@batch_errors
def vintages_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    parquet: Annotated[Path, typer.Option(help="Folder written by export-parquet")],
    as_of: Annotated[str, typer.Option("--as-of", help="Last day of the window (YYYY-MM-DD)")],
    months: Annotated[int, typer.Option(help="Months in the window (2-60)")] = 12,
    engine: EngineOption = "local",
) -> None:
    """Vintage curves (ever 30+/90+ by month on book) and the window's roll rates from the Parquet export."""
    from microlend.servicing.portfolio import ensure_viewer
    from microlend.servicing.portfolio_jobs import portfolio_parquet, roll_rates_on, vintages_on
    from microlend.servicing.portfolio_sql import Window

    _uow, who = tenant_principal(tenant)
    ensure_viewer(who)
    window = Window(_date(as_of, "as-of"), months)
    sources = portfolio_parquet(parquet)
    v = vintages_on(_engine(engine), window, who.tenant_id, sources)
    r = roll_rates_on(engine, window, who.tenant_id, sources)
    shown: dict[str, Any] = {
        "engine": engine, "as_of": window.as_of.isoformat(), "months": months,
        "cohorts": [{"month": c.month, "loans": c.loans, "ever_30": list(c.ever_30), "ever_90": list(c.ever_90)}
                    for c in v.cohorts],
        "flow_rates": {k: None if x is None else str(x) for k, x in r.total.flow_rates.items()},
        "cure_rate": None if r.total.cure_rate is None else str(r.total.cure_rate),
    }
    typer.echo(json.dumps(shown))


@app.command("score-stability")
@user_errors
@batch_errors
def score_stability_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    parquet: Annotated[Path, typer.Option(help="Folder written by export-parquet")],
    version: Annotated[int, typer.Option(help="Model version id")],
    as_of: Annotated[str, typer.Option("--as-of", help="Last day of the recent window (YYYY-MM-DD)")],
    recent_days: Annotated[int, typer.Option(help="Days of recent scores compared")] = 90,
    engine: EngineOption = "local",
) -> None:
    """PSI of a model version's recent scores against the ones before them, from the Parquet export."""
    from microlend.core.identity import Permission
    from microlend.risk.monitoring_jobs import scores_parquet, stability_on

    _uow, who = tenant_principal(tenant)
    who.require(Permission.VIEW_MODELS)
    day = _date(as_of, "as-of")
    if recent_days < 1:
        raise fail("recent-days: at least 1")
    start = day - timedelta(days=recent_days - 1)
    scope = f"tenant_id = {int(who.tenant_id)} AND model_version_id = {int(version)}"
    source = scores_parquet(parquet)
    (row,) = stability_on(
        _engine(engine), source, source, {"score": "score"},
        expected_where=f"{scope} AND scored_at < TIMESTAMP '{start.isoformat()} 00:00:00'",
        actual_where=f"{scope} AND scored_at >= TIMESTAMP '{start.isoformat()} 00:00:00' "
                     f"AND scored_at < TIMESTAMP '{(day + timedelta(days=1)).isoformat()} 00:00:00'")
    typer.echo(json.dumps({"engine": engine, "version": version, "psi": row.psi, "status": row.status,
                           "edges": row.bins, "expected": row.expected, "actual": row.actual}))
