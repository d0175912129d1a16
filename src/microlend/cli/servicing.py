"""`microlend loan`, `microlend ledger` and `microlend cob`: thin commands over the servicing module."""

from __future__ import annotations

import csv
import json
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from microlend.cli.common import (
    batch_engine,
    fail,
    is_tty,
    open_uow,
    tenant_principal,
    user_errors,
    user_principal,
)
from microlend.core.money import parse_amount, quantum
from microlend.servicing.apr import apr
from microlend.servicing.schedules import FeeMode, RepaymentMethod, Schedule, build_schedule

if TYPE_CHECKING:
    from microlend.batch.engine import BatchEngine

app = typer.Typer(
    name="loan",
    help="Loans: repayment schedules and APR, importing an existing book.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@app.callback()
def loan_group() -> None:
    """Loans: repayment schedules and APR."""


def _amount(value: str, field: str) -> Decimal:
    return parse_amount(value, field)


def _date(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise fail(f"{field}: '{value}' is not a date (use YYYY-MM-DD)") from None


def _money(amount: Decimal, currency: str) -> str:
    return str(amount.quantize(quantum(currency)))


def schedule_json(schedule: Schedule) -> dict[str, Any]:
    """The schedule as the CLI and API show it: amounts as decimal strings."""
    c = schedule.currency
    return {
        "method": schedule.method.value,
        "principal": _money(schedule.principal, c),
        "annual_rate": str(schedule.annual_rate),
        "term_months": schedule.term_months,
        "upfront_fee": _money(schedule.upfront_fee, c),
        "fee_mode": schedule.fee_mode.value,
        "net_disbursed": _money(schedule.net_disbursed, c),
        "installments": [
            {
                "number": i.number,
                "due_date": i.due_date.isoformat(),
                "principal": _money(i.principal, c),
                "interest": _money(i.interest, c),
                "fee": _money(i.fee, c),
                "payment": _money(i.payment, c),
                "balance": _money(i.balance, c),
            }
            for i in schedule.installments
        ],
        "total_interest": _money(schedule.total_interest, c),
        "total_payment": _money(schedule.total_payment, c),
        "apr": str(apr(schedule)),
    }


@app.command("schedule")
@user_errors
def schedule_command(
    principal: Annotated[str, typer.Option(help="Loan amount, e.g. 10000 or 10000.50")],
    annual_rate: Annotated[str, typer.Option(help="Annual interest rate as a ratio: 0.12 = 12%")],
    term_months: Annotated[str, typer.Option(help="Number of monthly periods")],
    method: Annotated[str, typer.Option(help="equal-installment | equal-principal | interest-only | bullet")] = (
        RepaymentMethod.EQUAL_INSTALLMENT.value
    ),
    start_date: Annotated[str, typer.Option(help="Disbursement date, YYYY-MM-DD")] = "",
    upfront_fee: Annotated[str, typer.Option(help="One-off fee amount")] = "0",
    fee_mode: Annotated[str, typer.Option(help="deduct (from the disbursement) | first-installment")] = (
        FeeMode.DEDUCT.value
    ),
    currency: Annotated[str, typer.Option(help="ISO currency code")] = "CNY",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """Print the repayment schedule (还款计划) and APR of a loan offer."""
    if not start_date:
        raise fail("start_date: give the disbursement date with --start-date YYYY-MM-DD")
    try:
        months = int(term_months)
    except ValueError:
        raise fail(f"term_months: '{term_months}' is not a whole number") from None
    amount = _amount(principal, "principal")
    rate = _amount(annual_rate, "annual_rate")
    fee = _amount(upfront_fee, "upfront_fee")
    start = _date(start_date, "start_date")
    schedule = build_schedule(
        method, amount, rate, months, start, upfront_fee=fee, fee_mode=fee_mode, currency=currency
    )
    shown = schedule_json(schedule)
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    table = Table(
        title=f"{schedule.method.value} · {shown['principal']} {currency} · {schedule.annual_rate} · {months} months"
    )
    for col in ("#", "due date", "principal", "interest", "fee", "payment", "balance"):
        table.add_column(col, justify="right")
    for row in shown["installments"]:
        table.add_row(
            str(row["number"]),
            row["due_date"],
            row["principal"],
            row["interest"],
            row["fee"],
            row["payment"],
            row["balance"],
        )
    console = Console()
    console.print(table)
    console.print(
        f"total interest {shown['total_interest']}  ·  net disbursed {shown['net_disbursed']}  ·  "
        f"APR {Decimal(shown['apr']) * 100:.4f}%"
    )


# ------------------------------------------------------------------------------------------ ledger and COB

ledger_app = typer.Typer(
    name="ledger",
    help="The general ledger: trial balance and reconciliation.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
cob_app = typer.Typer(
    name="cob", help="Close of business (日终).", no_args_is_help=True, pretty_exceptions_enable=False
)


@ledger_app.callback()
def ledger_group() -> None:
    """The general ledger: trial balance and reconciliation."""


@cob_app.callback()
def cob_group() -> None:
    """Close of business (日终)."""


@ledger_app.command("trial-balance")
@user_errors
def trial_balance_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """试算平衡表 per-account debits, credits and balances, and whether the totals agree."""
    from microlend.servicing.service import trial_balance

    uow, who = tenant_principal(tenant)
    tb = trial_balance(uow, who)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "accounts": [
                        {
                            "code": r.code,
                            "name": r.name,
                            "name_zh": r.name_zh,
                            "type": r.type,
                            "debit": _money(r.debit, "CNY"),
                            "credit": _money(r.credit, "CNY"),
                            "balance": _money(r.balance, "CNY"),
                        }
                        for r in tb.rows
                    ],
                    "total_debit": _money(tb.total_debit, "CNY"),
                    "total_credit": _money(tb.total_credit, "CNY"),
                    "balanced": tb.balanced,
                },
                ensure_ascii=False,
            )
        )
    else:
        table = Table(title=f"trial balance · {tenant}")
        for col in ("code", "account", "debit", "credit", "balance"):
            table.add_column(col, justify="right" if col in ("debit", "credit", "balance") else "left")
        for r in tb.rows:
            table.add_row(
                r.code,
                f"{r.name} {r.name_zh}",
                _money(r.debit, "CNY"),
                _money(r.credit, "CNY"),
                _money(r.balance, "CNY"),
            )
        table.add_row("", "total", _money(tb.total_debit, "CNY"), _money(tb.total_credit, "CNY"), "")
        Console().print(table)
    if not tb.balanced:
        raise typer.Exit(code=1)


@ledger_app.command("reconcile")
@user_errors
def reconcile_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """对账 prove the loan sub-ledger equals the general ledger; exit code 1 when it does not."""
    from microlend.servicing.service import reconcile

    uow, who = tenant_principal(tenant)
    recon = reconcile(uow, who)
    if as_json:
        typer.echo(
            json.dumps(
                {
                    "accounts": [
                        {
                            "code": r.account,
                            "name": r.name,
                            "general_ledger": _money(r.general_ledger, "CNY"),
                            "sub_ledger": _money(r.sub_ledger, "CNY"),
                            "difference": _money(r.difference, "CNY"),
                        }
                        for r in recon.rows
                    ],
                    "trial_balance_balanced": recon.trial_balance_balanced,
                    "ok": recon.ok,
                },
                ensure_ascii=False,
            )
        )
    else:
        table = Table(title=f"reconciliation · {tenant}")
        for col in ("code", "account", "general ledger", "sub-ledger", "difference"):
            table.add_column(col)
        for r in recon.rows:
            table.add_row(
                r.account,
                r.name,
                _money(r.general_ledger, "CNY"),
                _money(r.sub_ledger, "CNY"),
                _money(r.difference, "CNY"),
            )
        Console().print(table)
        Console().print("[green]reconciled[/green]" if recon.ok else "[red]NOT reconciled[/red]")
    if not recon.ok:
        raise typer.Exit(code=1)


@ledger_app.command("reconcile-batches")
@user_errors
def reconcile_batches_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    start: Annotated[str, typer.Option("--from", help="First business date, YYYY-MM-DD")] = "",
    end: Annotated[str, typer.Option("--to", help="Last business date, YYYY-MM-DD")] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON instead of a table")] = False,
) -> None:
    """分户账对账 prove every close-of-business batch entry equals the sum of its loans' sub-ledger rows, per
    account and business date; exit code 1 when one does not."""
    from microlend.servicing.service import reconcile_batches

    first = _date(start, "from") if start else None
    last = _date(end, "to") if end else None
    uow, who = tenant_principal(tenant)
    differences = reconcile_batches(uow, who, first, last)
    if as_json:
        typer.echo(json.dumps({
            "differences": [
                {"entry_id": d.entry_id, "business_date": d.business_date.isoformat(), "account": d.account,
                 "general_ledger": _money(d.general_ledger, "CNY"), "sub_ledger": _money(d.sub_ledger, "CNY")}
                for d in differences
            ],
            "ok": not differences,
        }))
    else:
        table = Table(title=f"sub-ledger batches · {tenant}")
        for col in ("entry", "business date", "account", "general ledger", "sub-ledger"):
            table.add_column(col)
        for d in differences:
            table.add_row(str(d.entry_id), d.business_date.isoformat(), d.account, _money(d.general_ledger, "CNY"),
                          _money(d.sub_ledger, "CNY"))
        Console().print(table)
        Console().print("[red]NOT reconciled[/red]" if differences else "[green]reconciled[/green]")
    if differences:
        raise typer.Exit(code=1)


def _close_on_engine(engine: BatchEngine, tenant: str, through: date | None, partition_loans: int) -> dict[str, Any]:
    """Close of business on a batch engine for the tenant named, or every tenant as its own system identity."""
    from microlend.core.identity import system_principal
    from microlend.core.tenancy import list_tenants
    from microlend.servicing.cob_engine import run_close_of_business_on

    if tenant:
        uow, who = tenant_principal(tenant)
        return {tenant: run_close_of_business_on(uow, who, engine, through=through, partition_loans=partition_loans)}
    uow = open_uow()
    return {
        t.name: run_close_of_business_on(uow, system_principal(t.id, "cob"), engine, through=through,
                                         partition_loans=partition_loans)
        for t in list_tenants(uow)
    }


@cob_app.command("run")
@user_errors
def cob_run_command(
    tenant: Annotated[str, typer.Option(help="Tenant name; omit to close every tenant")] = "",
    on: Annotated[
        str,
        typer.Option(
            "--date", help="Close every open date up to this one (YYYY-MM-DD); default: the current business date"
        ),
    ] = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
    engine: Annotated[
        str,
        typer.Option(
            help="Compute each date on a batch engine, local or spark, partition by partition (restartable; "
            "several processes running it at once share the partitions); default: in the database, one "
            "transaction per date"
        ),
    ] = "",
    partition_loans: Annotated[
        int, typer.Option(help="Loan ids per partition with --engine (one transaction each)")
    ] = 50_000,
) -> None:
    """Run close of business for each open date in order; a closed date is never run twice."""
    from microlend.servicing.cob import close_all_tenants, run_close_of_business

    through = _date(on, "date") if on else None
    if engine:
        by_tenant = _close_on_engine(batch_engine(engine), tenant, through, partition_loans)
    elif tenant:
        uow, who = tenant_principal(tenant)
        by_tenant = {tenant: run_close_of_business(uow, who, through=through)}
    else:
        by_tenant = close_all_tenants(open_uow(), through=through)
    rows = [
        {
            "tenant": name,
            "business_date": r.business_date.isoformat(),
            "loans_active": r.loans_active,
            "interest_accrued": _money(r.interest_accrued, "CNY"),
            "penalty_accrued": _money(r.penalty_accrued, "CNY"),
            "newly_overdue": r.newly_overdue,
            "bucket_changes": r.bucket_changes,
            "seconds": round(r.seconds, 3),
            "skipped": r.skipped,
        }
        for name, results in by_tenant.items()
        for r in results
    ]
    if as_json:
        typer.echo(json.dumps({"runs": rows}))
        return
    if not rows:
        Console().print("nothing to close: every date up to the one given is closed")
    for row in rows:
        Console().print(
            f"{row['tenant']} {row['business_date']}: {row['loans_active']} active loans, interest "
            f"{row['interest_accrued']}, penalty {row['penalty_accrued']}, newly overdue "
            f"{row['newly_overdue']}, bucket changes {row['bucket_changes']} ({row['seconds']}s)"
        )


@cob_app.command("engine")
@user_errors
def cob_engine_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    engine: Annotated[
        str | None,
        typer.Option(help="The batch engine the nightly close of business runs on: local, spark, or database "
                          "(no engine); omit to show the current one"),
    ] = None,
) -> None:
    """Show or set the engine the worker's nightly close of business runs on."""
    from microlend.servicing.cob_engine import IN_DATABASE, bank_cob_engine, set_cob_engine

    uow, who = tenant_principal(tenant)
    if engine is not None:
        set_cob_engine(uow, who, IN_DATABASE if engine == "database" else engine)
    with uow.read_only():
        current = bank_cob_engine(uow.session, who.tenant_id)
    typer.echo(f"{tenant}: close of business runs {f'on the {current} engine' if current else 'in the database'}")


@app.command("import")
@user_errors
def import_command(
    file: Annotated[Path, typer.Argument(help="CSV: id_number,product_code,principal,annual_rate,term_months,"
                                              "disbursed_on[,repaid_amount]")],
    tenant: Annotated[str, typer.Option(help="Tenant name (the bank whose book this is)")],
) -> None:
    """Import an existing loan book, all or nothing: each loan on its schedule from the day it was disbursed,
    what was repaid posted; close of business then marks what is unpaid and past due overdue."""
    from rich.progress import Progress

    from microlend.servicing.service.imports import check_header, import_loans

    with file.open(newline="", encoding="utf-8-sig") as handle:
        reader = csv.DictReader(handle)
        check_header([c.strip() for c in reader.fieldnames or []])
        records = [{(k or "").strip(): (v or "") for k, v in r.items()} for r in reader]
    uow, who = tenant_principal(tenant, username="loan-import")
    with Progress(console=Console(stderr=True), transient=not is_tty()) as bar:
        task = bar.add_task("importing loans", total=len(records))
        result = import_loans(uow, who, records, source=file.name, progress=lambda n: bar.advance(task, n))
    Console().print(
        f"imported {len(result.loan_ids)} loans, principal {_money(result.principal, 'CNY')}, repaid "
        f"{_money(result.repaid, 'CNY')}; run `microlend cob run --tenant {tenant}` to bring them to today's state"
    )


# ------------------------------------------------------------------------------------------ provisions

servicing_app = typer.Typer(
    name="servicing", help="Servicing runs: provisioning (拨备).", no_args_is_help=True, pretty_exceptions_enable=False
)
portfolio_app = typer.Typer(
    name="portfolio", help="Portfolio reports: five categories, NPL, provisions.", no_args_is_help=True,
    pretty_exceptions_enable=False,
)


@servicing_app.callback()
def servicing_group() -> None:
    """Servicing runs: provisioning (拨备)."""


@portfolio_app.callback()
def portfolio_group() -> None:
    """Portfolio reports: five categories, NPL, provisions."""


@servicing_app.command("provision")
@user_errors
def provision_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    on: Annotated[str, typer.Option("--date", help="Booking date (not after the open one); default: the open date")]
    = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Run provisioning: every active loan's expected credit loss; posts only the allowance's change."""
    from microlend.servicing.provisions import run_provisioning

    uow, who = tenant_principal(tenant)
    run = run_provisioning(uow, who, _date(on, "date") if on else None)
    shown = {
        "run_id": run.id, "as_of": run.as_of.isoformat(), "loans": run.loans, "total": _money(run.total, "CNY"),
        "change": _money(run.change, "CNY"), "by_stage": {k: _money(v, "CNY") for k, v in run.by_stage.items()},
        "seconds": round(run.seconds, 3),
    }
    if as_json:
        typer.echo(json.dumps(shown))
        return
    Console().print(
        f"provisions as of {shown['as_of']}: {run.loans} loans, total {shown['total']}, change {shown['change']}"
    )


@portfolio_app.command("report")
@user_errors
def portfolio_report_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    on: Annotated[str, typer.Option("--date", help="As of the latest provisioning run on or before this date")]
    = "",
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """The portfolio by five categories, NPL ratio, provisions by stage and coverage."""
    from microlend.servicing.provisions import portfolio_report

    uow, who = tenant_principal(tenant)
    report = portfolio_report(uow, who, _date(on, "date") if on else None)
    if as_json:
        typer.echo(json.dumps(report, ensure_ascii=False))
        return
    table = Table(title=f"portfolio · {tenant} · {report['as_of']}")
    table.add_column("figure")
    table.add_column("value", justify="right")
    for key, value in report.items():
        table.add_row(key, json.dumps(value, ensure_ascii=False) if isinstance(value, dict) else str(value))
    Console().print(table)


# ------------------------------------------------------------------------------------------ write-off, classes


def _write_off_json(view: Any) -> dict[str, Any]:
    return {
        "id": view.id, "loan_id": view.loan_id, "status": view.status, "reason_code": view.reason_code,
        "reason": view.reason, "documents": view.documents, "loan_class": view.loan_class,
        "requested_by": view.requested_by, "decided_by": view.decided_by,
        "written_off_on": view.written_off_on.isoformat() if view.written_off_on else None,
        "principal": _money(view.principal, "CNY"), "charged": _money(view.charged, "CNY"),
        "against_allowance": _money(view.against_allowance, "CNY"), "shortfall": _money(view.shortfall, "CNY"),
        "recovered": _money(view.recovered, "CNY"),
    }


def _show_write_off(view: Any, as_json: bool) -> None:
    shown = _write_off_json(view)
    if as_json:
        typer.echo(json.dumps(shown, ensure_ascii=False))
        return
    Console().print(f"write-off {view.id} of loan {view.loan_id}: {view.status}; charged off {shown['charged']} "
                    f"(allowance {shown['against_allowance']}, shortfall {shown['shortfall']})", highlight=False)


@app.command("write-off")
@user_errors
def write_off_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    user: Annotated[str, typer.Option("--user", help="The requester (needs the write-off permission)")],
    loan: Annotated[int, typer.Option("--loan", help="Loan id")],
    reason: Annotated[str, typer.Option(help="Why the loan is written off")],
    reason_code: Annotated[str, typer.Option("--reason-code", help="A documented reason of the bank's")] = "",
    document: Annotated[list[str] | None, typer.Option("--document", help="A supporting document (repeat)")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """核销 request a write-off; a second person approves it with `loan write-off-approve`."""
    from microlend.servicing import service

    uow = open_uow()
    who = user_principal(uow, user, tenant)
    view = service.request_write_off(uow, who, loan, reason, reason_code=reason_code, documents=document or [])
    _show_write_off(view, as_json)


@app.command("write-off-approve")
@user_errors
def write_off_approve_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    user: Annotated[str, typer.Option("--user", help="The approver: not the requester")],
    write_off: Annotated[int, typer.Option("--write-off", help="Write-off request id")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """四眼 approve a write-off request: the loan leaves the books against the allowance."""
    from microlend.servicing import service

    uow = open_uow()
    who = user_principal(uow, user, tenant)
    _show_write_off(service.approve_write_off(uow, who, write_off), as_json)


@app.command("write-off-reject")
@user_errors
def write_off_reject_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    user: Annotated[str, typer.Option("--user", help="The approver: not the requester")],
    write_off: Annotated[int, typer.Option("--write-off", help="Write-off request id")],
    reason: Annotated[str, typer.Option(help="Why it is rejected")],
    as_json: Annotated[bool, typer.Option("--json", help="Print JSON")] = False,
) -> None:
    """Reject a write-off request; nothing moves."""
    from microlend.servicing import service

    uow = open_uow()
    who = user_principal(uow, user, tenant)
    _show_write_off(service.reject_write_off(uow, who, write_off, reason), as_json)


@app.command("downgrade")
@user_errors
def downgrade_command(
    tenant: Annotated[str, typer.Option(help="Tenant name")],
    user: Annotated[str, typer.Option("--user", help="The officer (needs the classify-loans permission)")],
    loan: Annotated[int, typer.Option("--loan", help="Loan id")],
    to_class: Annotated[str, typer.Option("--to-class", help="special_mention, substandard, doubtful or loss")],
    reason: Annotated[str, typer.Option(help="Why the loan is downgraded")],
) -> None:
    """五级分类 a judgement downgrade of a loan's class, with the reason (audited, an event)."""
    from microlend.servicing import service

    uow = open_uow()
    who = user_principal(uow, user, tenant)
    view = service.downgrade_loan(uow, who, loan, to_class, reason)
    Console().print(f"loan {view.id} is now {view.loan_class}", highlight=False)
