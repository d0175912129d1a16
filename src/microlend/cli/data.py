"""`microlend data`: import datasets, infer and check contracts, quality reports, features as of a date.

Thin commands over the data module. Bad input leaves with exit code 2 and a message, never a traceback.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from microlend.cli.common import batch_engine, parquet_folder, parquet_tables, tenant_principal, user_errors
from microlend.core.errors import ValidationError

if TYPE_CHECKING:  # the data libraries load on first use, so `microlend --help` stays quick
    import pandas as pd
    import pyarrow as pa

    from microlend.batch.sources import ParquetDataset
    from microlend.data.contracts import DataContract

app = typer.Typer(
    name="data",
    help="Credit data: datasets with contracts, quality reports and features.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
)
contract_app = typer.Typer(
    help="Data contracts: infer one from a file, check a file against one.", no_args_is_help=True
)
app.add_typer(contract_app, name="contract")
accounts_app = typer.Typer(help="The bank's own accounts and transactions from core banking.", no_args_is_help=True)
app.add_typer(accounts_app, name="accounts")

console = Console(soft_wrap=True)
err_console = Console(stderr=True, soft_wrap=True)


@contextmanager
def _progress(label: str) -> Iterator[Callable[[int, int | None], None]]:
    """A Rich progress bar fed by (done, total) callbacks."""
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=True,
    ) as bar:
        task = bar.add_task(label, total=None)

        def update(done: int, total: int | None) -> None:
            bar.update(task, completed=done, total=total)

        yield update


def read_table(path: Path) -> pd.DataFrame:
    """A CSV or Parquet file as a DataFrame; anything else is a clear error."""
    from microlend.data.importer import read_source, source_for_file

    return read_source(source_for_file(path))


def _contract(value: str | None) -> DataContract | None:
    """A contract from a JSON file, or one shipped by name ('german_credit', 'lending_club')."""
    from microlend.data.contracts import load_contract, shipped_contract

    if value is None:
        return None
    if value.endswith(".json") or Path(value).exists():
        return load_contract(value)
    return shipped_contract(value)


@app.command("import")
@user_errors
def import_command(
    tenant: Annotated[str, typer.Option(help="Tenant (bank) name")],
    name: Annotated[str, typer.Option(help="Dataset name; each import is its next version")],
    file: Annotated[Path | None, typer.Option(help="CSV or Parquet file")] = None,
    sql_url: Annotated[str | None, typer.Option(help="Database URL to read from (instead of --file)")] = None,
    query: Annotated[str | None, typer.Option(help="SQL query, with --sql-url")] = None,
    contract: Annotated[str | None, typer.Option(help="Contract JSON file, or a shipped contract name")] = None,
    valid_only: Annotated[bool, typer.Option("--valid-only", help="Load valid rows, report the rest")] = False,
    rejected_out: Annotated[Path | None, typer.Option(help="Write rejected rows with reasons to CSV")] = None,
) -> None:
    """Import a dataset into the tenant's store, checked against its contract."""
    from microlend.data.importer import Source, SqlSource, import_dataset, source_for_file

    source: Source
    if file is not None and sql_url is None and query is None:
        source = source_for_file(file)
    elif file is None and sql_url is not None and query is not None:
        source = SqlSource(sql_url, query)
    else:
        raise ValidationError("source: give either --file, or --sql-url with --query", field="file")
    uow, who = tenant_principal(tenant)
    result = import_dataset(uow, who, name=name, source=source, contract=_contract(contract), valid_only=valid_only)
    info = result.dataset
    console.print(
        f"imported [bold]{info.name}[/] version {info.version}: {info.rows:,} rows, "
        f"{len(info.columns)} columns, sha256 {info.content_hash[:16]}…",
        highlight=False,
    )
    console.print(f"stored at {info.path}", highlight=False)
    if info.rejected_rows:
        console.print(f"[yellow]{info.rejected_rows:,} row(s) rejected[/]; kept at {info.rejected_path}")
        for row in result.rejected.head(10).itertuples(index=False):
            console.print(f"  row {row.source_row}: {row.reasons}", highlight=False)
        if rejected_out is not None:
            result.rejected.to_csv(rejected_out, index=False)
            console.print(f"rejected rows written to {rejected_out}")


@app.command("list")
@user_errors
def list_command(tenant: Annotated[str, typer.Option(help="Tenant (bank) name")]) -> None:
    """The tenant's datasets, every version, newest first."""
    from microlend.data.importer import list_datasets

    uow, who = tenant_principal(tenant)
    table = Table("name", "version", "rows", "rejected", "sha256", "imported", "by")
    for d in list_datasets(uow, who):
        table.add_row(
            d.name,
            str(d.version),
            f"{d.rows:,}",
            f"{d.rejected_rows:,}",
            d.content_hash[:12],
            d.created_at.strftime("%Y-%m-%d %H:%M"),
            d.created_by,
        )
    console.print(table)


@contract_app.command("infer")
@user_errors
def contract_infer(
    file: Annotated[Path, typer.Option(help="CSV or Parquet file")],
    out: Annotated[Path, typer.Option(help="Where to write the contract JSON")],
    name: Annotated[str | None, typer.Option(help="Dataset name (default: the file name)")] = None,
    target: Annotated[str | None, typer.Option(help="Target column, recorded in the contract")] = None,
) -> None:
    """Write a starting contract inferred from a file, for you to edit (widen ranges, name keys)."""
    from microlend.data.contracts import infer_contract

    df = read_table(file)
    if target is not None and target not in df.columns:
        raise ValidationError(f"target: no column named '{target}' in {file}", field="target")
    contract = infer_contract(df, name or file.stem, target=target)
    out.write_text(contract.to_json(), encoding="utf-8")
    console.print(f"contract with {len(contract.columns)} columns written to {out}", highlight=False)


@contract_app.command("check")
@user_errors
def contract_check(
    file: Annotated[Path, typer.Option(help="CSV or Parquet file")],
    contract: Annotated[str, typer.Option(help="Contract JSON file, or a shipped contract name")],
    limit: Annotated[int, typer.Option(help="Problems to list")] = 20,
) -> None:
    """Check a file against a contract without importing it; exit code 1 when it breaks it."""
    from microlend.data.contracts import validate
    from microlend.data.importer import read_source, source_for_file

    chosen = _contract(contract)
    assert chosen is not None
    report = validate(read_source(source_for_file(file), chosen), chosen)
    if report.ok:
        console.print(f"{file}: meets contract '{chosen.name}' ({len(report.data):,} rows)", highlight=False)
        return
    err_console.print(report.summary(limit), highlight=False)
    raise typer.Exit(1)


@app.command("quality")
@user_errors
def quality_command(
    file: Annotated[Path, typer.Option(help="CSV or Parquet file")],
    out: Annotated[Path, typer.Option(help="HTML report to write")],
    target: Annotated[str | None, typer.Option(help="Target column")] = None,
    bad: Annotated[str | None, typer.Option(help="Target value meaning bad")] = None,
    against: Annotated[Path | None, typer.Option(help="Second file to measure drift (PSI) against")] = None,
    json_out: Annotated[Path | None, typer.Option("--json", help="Also write the report as JSON")] = None,
    bins: Annotated[int, typer.Option(min=2, max=50)] = 10,
) -> None:
    """A data quality report: missing, distinct, distributions, outliers, bad rates, drift."""
    from microlend.data.quality import quality_report, render_html

    if (target is None) != (bad is None):
        raise ValidationError("target: give --target and --bad together", field="target")
    df = read_table(file)
    other = read_table(against) if against is not None else None
    with _progress("profiling columns") as update:
        report = quality_report(
            df,
            name=file.name,
            target=target,
            bad=bad,
            against=other,
            against_name=against.name if against is not None else "comparison",
            bins=bins,
            progress=update,
        )
    with _progress("drawing charts") as update:
        html = render_html(report, progress=update)
    out.write_text(html, encoding="utf-8")
    if json_out is not None:
        json_out.write_text(report.to_json(), encoding="utf-8")
    drifted = [c.name for c in report.columns if c.drift_level == "act"]
    console.print(f"report on {report.rows:,} rows × {len(report.columns)} columns written to {out}", highlight=False)
    if drifted:
        console.print(f"[yellow]PSI ≥ 0.25 (act):[/] {', '.join(drifted)}", highlight=False)


def _read_source_table(path: Path, table: str) -> pa.Table:
    import pyarrow as pa
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from microlend.data.features import SOURCE_SCHEMAS

    schema = SOURCE_SCHEMAS[table]
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            return pq.read_table(path)
        if suffix == ".csv":
            header = path.open(encoding="utf-8").readline().strip().split(",")
            types = {f.name: f.type for f in schema if f.name in header}
            return pacsv.read_csv(path, convert_options=pacsv.ConvertOptions(column_types=types))
    except FileNotFoundError:
        raise ValidationError(f"{table}: file not found: {path}", field=table) from None
    except pa.ArrowInvalid as exc:
        raise ValidationError(f"{table}: cannot read {path}: {exc}", field=table) from None
    raise ValidationError(f"{table}: '{path.name}' is neither .csv nor .parquet", field=table)


def _source_table(path: Path, table: str) -> pa.Table | ParquetDataset:
    """A source table from a CSV or Parquet file, read here, or from a folder of partitioned Parquet files, which
    the batch engine reads itself (on Spark, the cluster's executors in parallel)."""
    if path.is_dir():
        return parquet_folder(path, table)
    if not path.exists():
        raise ValidationError(f"{table}: no file or folder at {path}", field=table)
    return _read_source_table(path, table)


@app.command("features")
@user_errors
def features_command(
    as_of: Annotated[str | None, typer.Option(help="Compute as of this date (YYYY-MM-DD)")] = None,
    customers: Annotated[Path | None, typer.Option(help="customers table: a CSV or Parquet file, or a folder of "
                                                        "partitioned Parquet files (customers/tenant_id=1/…)")] = None,
    loans: Annotated[Path | None, typer.Option(help="loans table (file or folder, as --customers)")] = None,
    installments: Annotated[Path | None, typer.Option(help="installments table (file or folder)")] = None,
    credit_lines: Annotated[Path | None, typer.Option(help="credit_lines table (file or folder)")] = None,
    applications: Annotated[Path | None, typer.Option(help="applications table (file or folder)")] = None,
    external_scores: Annotated[Path | None, typer.Option(help="external_scores table (e.g. bureau; file or "
                                                              "folder)")] = None,
    data: Annotated[Path | None, typer.Option(help="Folder of source tables, each a Parquet file (loans.parquet) or "
                                                   "a folder of partitioned Parquet files (loans/tenant_id=1/"
                                                   "month=2024-01/…), as for `marketing preapprove --data`")] = None,
    out: Annotated[Path | None, typer.Option(help="Where to write the features (.parquet or .csv)")] = None,
    feature: Annotated[list[str] | None, typer.Option(help="Only these features (repeatable)")] = None,
    list_features: Annotated[bool, typer.Option("--list", help="List the feature library and stop")] = False,
    list_sources: Annotated[bool, typer.Option("--sources", help="List the source table columns and stop")] = False,
    engine: Annotated[str, typer.Option(help="Batch engine: local (DuckDB here) or spark (MICROLEND_SPARK_MASTER "
                                             "or MICROLEND_SPARK_REMOTE)")] = "local",
) -> None:
    """Standard features for every customer as of a date, point-in-time correct."""
    import pyarrow.csv as pacsv
    import pyarrow.parquet as pq

    from microlend.data.feature_library import STANDARD_LIBRARY
    from microlend.data.features import compute_features

    if list_sources:
        from microlend.data.features import source_catalogue

        table = Table()
        table.add_column("table", no_wrap=True)
        table.add_column("column", no_wrap=True)
        for heading in ("type", "nullable", "meaning"):
            table.add_column(heading)
        for c in source_catalogue():
            table.add_row(c["table"], c["column"], c["type"], "yes" if c["nullable"] else "no", c["doc"])
        console.print(table)
        return
    if list_features:
        table = Table()
        table.add_column("name", no_wrap=True)
        for heading in ("version", "group", "description", "说明"):
            table.add_column(heading)
        from microlend.data.business import BUSINESS_FEATURES

        for f in [*STANDARD_LIBRARY.catalogue(), *(b.describe() for b in BUSINESS_FEATURES)]:
            table.add_row(f["name"], str(f["version"]), f["group"], f["description_en"], f["description_zh"])
        console.print(table)
        return
    if as_of is None or (customers is None and data is None) or out is None:
        raise ValidationError("features: give --as-of, --customers (or --data) and --out (or --list)", field="as_of")
    try:
        day = date.fromisoformat(as_of)
    except ValueError:
        raise ValidationError(f"as_of: '{as_of}' is not a date (use YYYY-MM-DD)", field="as_of") from None
    paths = {
        "customers": customers,
        "loans": loans,
        "installments": installments,
        "credit_lines": credit_lines,
        "applications": applications,
        "external_scores": external_scores,
    }
    sources: dict[str, pa.Table | ParquetDataset] = {}
    if data is not None:
        for name, path in parquet_tables(data).items():
            if name == "profile":  # the pre-approval's customer profile may share the folder
                continue
            if paths.get(name) is not None:
                raise ValidationError(f"{name}: given both by --{name.replace('_', '-')} and in {data}", field=name)
            sources[name] = _source_table(path, name)
        if "customers" not in sources and customers is None:
            raise ValidationError(f"data: {data} has no customers.parquet or customers/ folder", field="data")
    sources.update({name: _source_table(p, name) for name, p in paths.items() if p is not None})
    batch = batch_engine(engine)
    with _progress(f"computing features ({batch.name})") as update:
        result = compute_features(sources, as_of=day, features=feature, engine=batch, chunk_rows=200_000,
                                  progress=update)
    if out.suffix.lower() == ".csv":
        pacsv.write_csv(result, out)
    elif out.suffix.lower() == ".parquet":
        pq.write_table(result, out)
    else:
        raise ValidationError(f"out: '{out.name}' must end in .csv or .parquet", field="out")
    console.print(
        f"{result.num_rows:,} customers × {result.num_columns - 2} features as of {day} written to {out}",
        highlight=False,
    )


@accounts_app.command("import")
@user_errors
def accounts_import_command(
    file: Annotated[Path, typer.Argument(help="Accounts file (CSV or Parquet)")],
    tenant: Annotated[str, typer.Option(help="Tenant (bank) name")],
    transactions: Annotated[Path | None, typer.Option(help="Transactions file (CSV or Parquet)")] = None,
    valid_only: Annotated[bool, typer.Option("--valid-only", help="Load valid rows, report the rest")] = False,
    rejected_out: Annotated[Path | None, typer.Option(help="Write rejected rows with reasons to CSV")] = None,
) -> None:
    """Import the bank's accounts (and their transactions), matched to customers by ID number."""
    import pandas as pd

    from microlend.data.accounts import ACCOUNTS_CONTRACT, import_bank_accounts
    from microlend.data.importer import ContractBroken, source_for_file

    uow, who = tenant_principal(tenant)
    try:
        with _progress("loading transactions") as update:
            result = import_bank_accounts(
                uow,
                who,
                source_for_file(file),
                source_for_file(transactions) if transactions is not None else None,
                valid_only=valid_only,
                progress=update,
            )
    except ContractBroken as exc:
        err_console.print(f"[red]{ACCOUNTS_CONTRACT.name}: nothing imported[/]")
        raise ValidationError(exc.message, field="data") from None
    console.print(
        f"accounts: {result.accounts_created:,} new, {result.accounts_updated:,} updated, "
        f"{result.accounts_matched:,} matched to customers; transactions: {result.transactions_loaded:,} loaded, "
        f"{result.transactions_already_stored:,} already stored",
        highlight=False,
    )
    if result.rejected:
        console.print(f"[yellow]{len(result.rejected):,} row(s) rejected[/]")
        for r in result.rejected[:10]:
            console.print(f"  {r.file} row {r.source_row}: {r.reasons}", highlight=False)
        if rejected_out is not None:
            pd.DataFrame([vars(r) for r in result.rejected]).to_csv(rejected_out, index=False)
            console.print(f"rejected rows written to {rejected_out}")
providers_app = typer.Typer(
    help="External data providers: where each kind is reached, with which key, and what the calls cost.",
    no_args_is_help=True,
)
app.add_typer(providers_app, name="providers")


@providers_app.command("list")
@user_errors
def providers_list(tenant: Annotated[str, typer.Option(help="Tenant (bank) name")]) -> None:
    """Every provider kind of the bank: address, whether a key is set, limits and cost per call."""
    from microlend.data.provider_service import provider_settings

    uow, who = tenant_principal(tenant)
    table = Table("kind", "address", "key", "timeout", "retries", "breaker", "cache", "cost/call", "enabled")
    for p in provider_settings(uow, who):
        if not p.configured:
            table.add_row(p.kind, "[dim]not set up[/]", "", "", "", "", "", "", "")
            continue
        table.add_row(
            p.kind,
            p.base_url or "",
            "set" if p.api_key_set else "[yellow]none[/]",
            f"{p.timeout_ms} ms",
            str(p.retries),
            f"{p.breaker_failures} fails / {p.breaker_seconds} s",
            f"{p.cache_ttl_seconds} s",
            f"{p.cost_per_call} {p.currency}",
            "yes" if p.enabled else "no",
        )
    console.print(table)


@providers_app.command("set")
@user_errors
def providers_set(
    kind: Annotated[str, typer.Argument(help="bureau, tax, einvoice, merchant, registry or enforcement")],
    tenant: Annotated[str, typer.Option(help="Tenant (bank) name")],
    url: Annotated[str | None, typer.Option(help="Base URL (http:// or https://)")] = None,
    key_env: Annotated[str | None, typer.Option(help="Read the API key from this environment variable")] = None,
    timeout_ms: Annotated[int | None, typer.Option(help="Timeout per attempt, 50-30000 ms")] = None,
    retries: Annotated[int | None, typer.Option(help="Retries on 5xx and timeouts, 0-3")] = None,
    breaker_failures: Annotated[int | None, typer.Option(help="Failures in a row that open the breaker")] = None,
    breaker_seconds: Annotated[int | None, typer.Option(help="Seconds the breaker stays open")] = None,
    cache_ttl: Annotated[int | None, typer.Option(help="Seconds an answer is reused (0: never)")] = None,
    cost: Annotated[str | None, typer.Option(help="Cost per call in the bank's currency, e.g. 1.50")] = None,
    enabled: Annotated[bool | None, typer.Option("--enable/--disable", help="Call this provider or not")] = None,
) -> None:
    """Set up or change one provider kind (the key is taken from an environment variable, never the command
    line, and stored encrypted)."""
    import os

    from microlend.core.money import parse_amount
    from microlend.data.provider_service import ProviderChanges, set_provider

    api_key = None
    if key_env is not None:
        api_key = os.environ.get(key_env)
        if api_key is None:
            raise ValidationError(f"--key-env: the environment variable {key_env} is not set", field="key_env")
    changes = ProviderChanges(
        base_url=url,
        api_key=api_key,
        timeout_ms=timeout_ms,
        retries=retries,
        breaker_failures=breaker_failures,
        breaker_seconds=breaker_seconds,
        cache_ttl_seconds=cache_ttl,
        cost_per_call=None if cost is None else parse_amount(cost, "cost"),
        enabled=enabled,
    )
    uow, who = tenant_principal(tenant)
    p = set_provider(uow, who, kind, changes)
    console.print(
        f"{p.kind}: {p.base_url} (key {'set' if p.api_key_set else 'not set'}, timeout {p.timeout_ms} ms, "
        f"{p.retries} retries, cost {p.cost_per_call} {p.currency}, "
        f"{'enabled' if p.enabled else 'disabled'})",
        highlight=False,
    )


@providers_app.command("usage")
@user_errors
def providers_usage(
    tenant: Annotated[str, typer.Option(help="Tenant (bank) name")],
    days: Annotated[int, typer.Option(min=1, max=3660, help="Over the last this many days")] = 30,
) -> None:
    """Calls per provider kind over the last days: how many, cached, by status, cost, p50/p99 latency."""
    from datetime import timedelta

    from microlend.core.clock import utcnow
    from microlend.data.provider_service import provider_usage

    uow, who = tenant_principal(tenant)
    table = Table("kind", "calls", "cached", "statuses", "cost", "p50 ms", "p99 ms")
    for u in provider_usage(uow, who, utcnow() - timedelta(days=days)):
        statuses = ", ".join(f"{k} {v}" for k, v in sorted(u.by_status.items()))
        table.add_row(
            u.kind,
            f"{u.calls:,}",
            f"{u.cached:,}",
            statuses,
            f"{u.cost} {u.currency}",
            "" if u.p50_latency_ms is None else str(u.p50_latency_ms),
            "" if u.p99_latency_ms is None else str(u.p99_latency_ms),
        )
    console.print(table)
