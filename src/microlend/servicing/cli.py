"""`microlend loan`, `microlend ledger` and `microlend cob`: thin commands over the servicing module."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import date
from decimal import Decimal
from typing import Annotated, Any, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from microlend.core.errors import DomainError
from microlend.core.money import parse_amount, quantum
from microlend.servicing.apr import apr
from microlend.servicing.schedules import FeeMode, RepaymentMethod, Schedule, build_schedule

app = typer.Typer(
    name="loan",
    help="Loans: repayment schedules and APR.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)

T = TypeVar("T")


@app.callback()
def loan_group() -> None:
    """Loans: repayment schedules and APR."""


def fail(message: str) -> typer.Exit:
    """Print a user error on stderr and leave with exit code 2 (bad input), never a traceback."""
    Console(stderr=True).print(f"[red]error:[/red] {message}", highlight=False)
    return typer.Exit(code=2)


def guarded(action: Callable[[], T]) -> T:
    try:
        return action()
    except DomainError as err:
        raise fail(err.message) from None


def _amount(value: str, field: str) -> Decimal:
    return guarded(lambda: parse_amount(value, field))


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
    schedule = guarded(
        lambda: build_schedule(
            method, amount, rate, months, start, upfront_fee=fee, fee_mode=fee_mode, currency=currency
        )
    )
    shown = guarded(lambda: schedule_json(schedule))
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
