"""Close of business, deferred fees: each day, set-based, the part of every installment's fee share
(``fee_amortisation``, by the effective-interest method, see ``fees``) earned to date moves from the deferred-fee
account (1305) to interest income, one debit and one credit line per loan.

A period's share is spread over its days exactly like its scheduled interest (the last day of the period reaches
the full share, so the deferred fee is zero at maturity). Only active, accruing loans amortise: a non-accrual
loan (停止计息) stops, like its interest; what is left is recognised when the loan is paid off or netted when it is
written off (both in the domain code)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from microlend.core.identity import Principal
from microlend.servicing.ledger import Acct

# elapsed days of a period by the end of day :d, capped at the period length
_ELAPSED = "(CASE WHEN :d + 1 < due_day THEN :d + 1 - start_day ELSE due_day - start_day END)"
_FEE_TO_DATE = (
    "(CASE WHEN due_day <= start_day THEN fee_amortisation ELSE 100 * ((2 * (fee_amortisation / 100) * "
    f"{_ELAPSED} + (due_day - start_day)) / (2 * (due_day - start_day))) END)"
)
_AMORTISING = (
    "tenant_id = :t AND start_day <= :d AND fee_amortised < fee_amortisation "
    f"AND {_FEE_TO_DATE} > fee_amortised AND loan_id IN (SELECT id FROM loans WHERE tenant_id = :t "
    "AND status = 'active' AND accrual_status = 'accruing')"
)
_DAY = f"({_FEE_TO_DATE} - fee_amortised)"

#: post_loan_lines of close of business: (session, who, on, kind, memo, total, legs, params) -> entry id
PostLines = Callable[..., Any]


def amortise_fees(session: Session, who: Principal, on: date, post: PostLines) -> int:
    """Recognise the day's share of deferred fees; returns it in storage units."""
    p = {"t": who.tenant_id, "d": on.toordinal()}
    total = int(session.execute(text(f"SELECT SUM({_DAY}) FROM loan_installments WHERE {_AMORTISING}"), p)
                .scalar() or 0)
    if not total:
        return 0
    post(
        session, who, on, "cob.fee_amortisation", f"deferred fees recognised for {on.isoformat()}", total,
        [(Acct.DEFERRED_FEE, Acct.INTEREST_INCOME,
          f"SELECT loan_id, SUM({_DAY}) AS amount FROM loan_installments WHERE {_AMORTISING} GROUP BY loan_id")],
        p,
    )
    session.execute(text(f"UPDATE loan_installments SET fee_amortised = {_FEE_TO_DATE} WHERE {_AMORTISING}"), p)
    return total
