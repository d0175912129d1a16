"""Revolving drawdowns (随借随还): interest on the daily-balance product (积数计息), settled monthly (按月结息).

Each day close of business adds the drawdown's outstanding principal to its balance product (in cent-days,
exact; a row per loan of ``revolving_balances``, none yet: zero). Interest to date is that product × annual rate
/ 360, rounded half up to cents once: the day's accrual is the growth of that rounded amount, so the days of a
month add up to the month's interest rounded once (a small balance is no longer charged a rounded cent every
day). On the product's settlement day (结息日, default
the 20th) the month's interest (the principal installment's accrued unpaid interest) becomes an installment of
its own, due ``interest_due_days`` later (default 1: the 21st, 付息日), which repayments settle and which falls
overdue (days past due, penalty) like any other; the product starts again from zero."""

from __future__ import annotations

from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal

from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session

#: rates are stored × 10^8 and a year has 360 days (日利率 = 年利率 / 360)
_YEAR = 360 * 10**8


def interest_on_product(product_cent_days: int, annual_rate: Decimal) -> Decimal:
    """Interest on a balance product (cent-days) at ``annual_rate``, rounded half up to cents once."""
    cents = (Decimal(product_cent_days) * annual_rate / 360).quantize(Decimal(1), rounding=ROUND_HALF_UP)
    return cents / 100


def rounded_interest_sql(product: str, rate: str, div: str = "") -> str:
    """SQL: cents of interest on a product (cent-days), half up: ``(2·x·r + Y) / (2·Y)`` on integers. ``div``: the
    name of an integer-division function for engines whose ``/`` is not integer division (``ml_div``)."""
    if div:
        return f"{div}(2 * ({product}) * {rate} + {_YEAR}, {2 * _YEAR})"
    return f"((2 * ({product}) * {rate} + {_YEAR}) / {2 * _YEAR})"


#: the table of the revolving drawdowns' balance products (a loan without a row: zero)
BALANCES = "revolving_balances"


def balance_product_sql(balances: str) -> str:
    """SQL: a loan's balance product (cent-days) from its row ``balances`` of ``BALANCES`` outer-joined (none: 0)."""
    return f"COALESCE({balances}.balance_product, 0)"


def revolving_day_interest(installment: str, loan: str, balances: str) -> str:
    """SQL for one day's interest of a revolving drawdown in storage units: how much the rounded interest on the
    balance product (the loan's row ``balances`` of ``BALANCES``, outer-joined) grows with today's outstanding
    principal."""
    today = f"({installment}.principal - {installment}.principal_paid) / 100"
    product, rate = balance_product_sql(balances), f"{loan}.rate_e8"
    return f"(100 * ({rounded_interest_sql(f'{product} + {today}', rate)} - {rounded_interest_sql(product, rate)}))"


_REVOLVING = "tenant_id = :t AND status = 'active' AND method = 'revolving'"


def write_balance_products(session: Session, source: str, params: dict[str, int], *, grow: bool) -> None:
    """Write the balance products of ``source`` (SQL of rows (loan_id, product) of the tenant :t's revolving loans):
    added to the stored products (``grow``) or replacing them. The rows there change in place (a replaced one only
    when it differs), then the loans without a row get one when their product is not zero: an update and an insert
    of the missing rows write half the log records an INSERT ... ON CONFLICT DO UPDATE does (it locks each row it
    updates)."""
    value, changed = (
        (f"{BALANCES}.balance_product + g.product", "")
        if grow
        else ("g.product", f" AND {BALANCES}.balance_product <> g.product")
    )
    session.execute(
        text(f"UPDATE {BALANCES} SET balance_product = {value} FROM ({source}) g "
             f"WHERE {BALANCES}.loan_id = g.loan_id{changed}"),
        params,
    )
    session.execute(
        text(f"INSERT INTO {BALANCES} (loan_id, tenant_id, balance_product) SELECT g.loan_id, :t, g.product "
             f"FROM ({source}) g WHERE g.product <> 0 "
             f"AND NOT EXISTS (SELECT 1 FROM {BALANCES} b WHERE b.loan_id = g.loan_id) ORDER BY g.loan_id"),
        params,
    )


def settle_revolving(session: Session, on: date, p: dict[str, int], drawn: str) -> None:
    """Close of business, after the day's revolving interest: the day's balance joins each drawdown's product;
    on a product's settlement day its drawdowns' month of interest falls due. ``drawn``: the table of the
    drawdowns open today (loan_id, open_cents: outstanding principal in whole cents) the close read once."""
    grown = f"SELECT loan_id, SUM(open_cents) AS product FROM {drawn} WHERE open_cents <> 0 GROUP BY loan_id"
    write_balance_products(session, grown, p, grow=True)
    products = session.execute(
        text("SELECT id, interest_due_days FROM servicing_products WHERE tenant_id = :t AND method = 'revolving' "
             "AND settlement_day = :day"),
        {"t": p["t"], "day": on.day},
    ).all()
    for product_id, due_days in products:
        _settle_product(session, on, int(product_id), int(due_days), p)


def _settle_product(session: Session, on: date, product_id: int, due_days: int, p: dict[str, int]) -> None:
    """按月结息 for the drawdowns of one product: the accrued unpaid interest of each one's principal installment
    becomes an interest installment due ``due_days`` after ``on``; the balance products start again."""
    due = on + timedelta(days=due_days)
    loans = f"SELECT id FROM loans WHERE {_REVOLVING} AND product_id = :product"
    params = {**p, "product": product_id, "on": on}
    insert_settled_interest(session, on, due, "i.interest - i.interest_paid",
                            f"loan_installments i WHERE i.loan_id IN ({loans}) AND i.number = 1 "
                            "AND i.interest > i.interest_paid", params)
    session.execute(
        text(
            "UPDATE loan_installments SET interest = interest_paid, interest_accrued = interest_paid, "
            "status = CASE WHEN principal_paid = principal AND fee_paid = fee THEN 'paid' ELSE status END, "
            "paid_on = CASE WHEN principal_paid = principal AND fee_paid = fee THEN :on ELSE paid_on END "
            f"WHERE loan_id IN ({loans}) AND number = 1 AND interest > interest_paid"
        ).bindparams(bindparam("on", type_=Date())),
        params,
    )
    session.execute(text(f"UPDATE {BALANCES} SET balance_product = 0 WHERE loan_id IN ({loans}) "
                         "AND balance_product <> 0"), params)


def insert_settled_interest(session: Session, on: date, due: date, interest: str, source: str,
                            params: dict[str, object]) -> None:
    """Settled on ``on``: each drawdown's month of interest (``interest``, an SQL amount over ``source``, which
    names its principal installment ``i``) becomes an installment of its own after the drawdown's others, due
    ``due``, for the period from the day after the previous settlement (or the drawdown's start) to ``due``."""
    previous = _month_before(on) + timedelta(days=1)  # the period starts the day after the last settlement
    session.execute(
        text(
            "INSERT INTO loan_installments (tenant_id, loan_id, number, period_start, due_date, start_day, due_day, "
            "principal, interest, fee, principal_paid, interest_paid, fee_paid, interest_accrued, status, "
            "fee_amortisation, fee_amortised) "
            "SELECT i.tenant_id, i.loan_id, (SELECT MAX(n.number) + 1 FROM loan_installments n "
            "WHERE n.loan_id = i.loan_id), "
            "CASE WHEN i.start_day > :prev_day THEN i.period_start ELSE :prev END, :due, "
            "CASE WHEN i.start_day > :prev_day THEN i.start_day ELSE :prev_day END, :due_day, "
            f"0, {interest}, 0, 0, 0, 0, {interest}, 'pending', 0, 0 FROM {source}"
        ).bindparams(bindparam("prev", type_=Date()), bindparam("due", type_=Date())),
        {**params, "prev": previous, "prev_day": previous.toordinal(), "due": due, "due_day": due.toordinal()},
    )


def _month_before(on: date) -> date:
    """The same day a month earlier (settlement days are 1-28, so it always exists)."""
    return date(on.year - 1, 12, on.day) if on.month == 1 else date(on.year, on.month - 1, on.day)
