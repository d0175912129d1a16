"""The loan-level sub-ledger of close of business (分户账): nightly interest, penalty, off-balance and fee
postings, loan by loan, under one general-ledger entry per batch.

Close of business moves money for every loan every night. Each batch is a general-ledger entry whose lines carry
the per-account totals (no loan on them) and, in ``loan_accruals``, one row per loan and leg with the loan's
amount and both accounts. The totals are computed from the batch's own rows in the same transaction, so they
cannot differ; the reconciliations below prove it again from the stored data: per batch and account (the
general ledger against the sum of its rows), and per loan (a loan's journal lines plus its sub-ledger rows
against the loan's own balances, see ``service.ledger.reconcile_loans_in``).

A loan's postings (its statement) are its journal lines and its sub-ledger rows, each row read as a debit line
and a credit line of the same amount; both are exact integers in storage units (ten-thousandths)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from sqlalchemy import Date, bindparam, text
from sqlalchemy.orm import Session

from microlend.core.clock import utcnow
from microlend.core.identity import Principal
from microlend.core.money import DEFAULT_CURRENCY, from_storage
from microlend.servicing.ledger import UnbalancedEntryError
from microlend.servicing.tables import JournalEntryRow

#: a leg of a batch: (debit account, credit account, SQL giving (loan_id, amount) rows in storage units, one row
#: per loan at most)
Leg = tuple[str, str, str]


def post_loan_lines(
    session: Session, who: Principal, on: date, kind: str, memo: str, total: int, legs: list[Leg],
    params: dict[str, Any],
) -> int | None:
    """Post one batch, set-based: every (loan, amount) row of every leg into the sub-ledger, then the general-
    ledger entry's lines as the per-account totals of those rows. ``total`` (storage units) is what the legs add up
    to; a batch that does not is refused (nothing of it stays). Returns the entry's id, None when it is zero."""
    if not total:
        return None
    amount = from_storage(total)
    row = JournalEntryRow(
        tenant_id=who.tenant_id, business_date=on, kind=kind, memo=memo, loan_id=None, reverses_id=None,
        currency=DEFAULT_CURRENCY, total_debit=amount, total_credit=amount, created_by=who.username,
        created_at=utcnow(),
    )
    session.add(row)
    session.flush()
    entry = {**params, "e": row.id, "bd": on}
    # PostgreSQL totals each leg from the rows as its INSERT writes them (RETURNING into the same statement), not
    # by reading them back; SQLite (no RETURNING inside a WITH) reads the batch's primary-key range after
    returned = session.get_bind().dialect.name == "postgresql"
    sums: list[tuple[int, str, str, int]] = []
    # in loan order: the rows reach the primary key and the loan index in key order, page after page
    for leg, (debit_account, credit_account, rows) in enumerate(legs):
        insert = (
            "INSERT INTO loan_accruals (entry_id, leg, loan_id, tenant_id, business_date, debit_account, "
            f"credit_account, amount) SELECT :e, {leg}, x.loan_id, :t, :bd, '{debit_account}', "
            f"'{credit_account}', x.amount FROM ({rows}) x WHERE x.amount <> 0 ORDER BY x.loan_id"
        )
        if returned:
            insert = f"WITH w AS ({insert} RETURNING amount) SELECT CAST(SUM(amount) AS BIGINT) FROM w"
        written = session.execute(text(insert).bindparams(bindparam("bd", type_=Date())), entry)
        if returned:
            leg_total = written.scalar()
            if leg_total is not None:
                sums.append((leg, debit_account, credit_account, int(leg_total)))
    if not returned:
        # the entry's lines: each leg's total from the rows just written (the batch's own primary-key range)
        sums = [
            (int(r[0]), str(r[1]), str(r[2]), int(r[3]))
            for r in session.execute(
                text(
                    "SELECT leg, MIN(debit_account), MIN(credit_account), CAST(SUM(amount) AS BIGINT) "
                    "FROM loan_accruals WHERE entry_id = :e GROUP BY leg ORDER BY leg"
                ),
                {"e": row.id},
            )
        ]
    posted = sum(int(s[3]) for s in sums)
    if posted != total:
        raise UnbalancedEntryError(f"journal entry '{kind}': its loans add up to {from_storage(posted)}, not {amount}")
    lines: list[dict[str, Any]] = []
    for _, debit_account, credit_account, leg_total in sums:
        lines.append({"e": row.id, "t": who.tenant_id, "a": debit_account, "d": int(leg_total), "c": 0})
        lines.append({"e": row.id, "t": who.tenant_id, "a": credit_account, "d": 0, "c": int(leg_total)})
    session.execute(
        text(
            "INSERT INTO journal_lines (entry_id, tenant_id, account_code, loan_id, debit, credit) "
            "VALUES (:e, :t, :a, NULL, :d, :c)"
        ),
        lines,
    )
    return row.id


@dataclass(frozen=True)
class BatchDifference:
    """One account of one batch whose general-ledger line does not equal the sum of its sub-ledger rows."""

    entry_id: int
    business_date: date
    account: str
    general_ledger: Decimal
    sub_ledger: Decimal


def _day(value: Any) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value))  # SQLite answers text


#: a batch's sub-ledger rows as signed lines per account (debit positive): each row debits one account and
#: credits the other
_SIGNED_ROWS = (
    "SELECT entry_id, loan_id, business_date, debit_account AS account, amount AS signed FROM loan_accruals "
    "WHERE tenant_id = :t{w} "
    "UNION ALL SELECT entry_id, loan_id, business_date, credit_account, -amount FROM loan_accruals "
    "WHERE tenant_id = :t{w}"
)


def batch_differences(
    session: Session, tenant_id: int, first: date | None = None, last: date | None = None
) -> list[BatchDifference]:
    """对账 the general ledger against the sub-ledger per batch, per account and per business date (between
    ``first`` and ``last`` when given): every batch entry's line on an account against the sum of its rows on it,
    and no batch entry without rows. Returns the differences (none: they agree)."""
    where = ""
    params: dict[str, Any] = {"t": tenant_id}
    if first is not None:
        where += " AND business_date >= :a"
        params["a"] = first
    if last is not None:
        where += " AND business_date <= :b"
        params["b"] = last
    dated = [bindparam(n, type_=Date()) for n in ("a", "b") if n in params]
    sub: dict[tuple[int, str], int] = {}
    days: dict[int, date] = {}
    for entry_id, on, account, signed in session.execute(
        text(
            f"SELECT entry_id, business_date, account, CAST(SUM(signed) AS BIGINT) FROM "
            f"({_SIGNED_ROWS.format(w=where)}) r GROUP BY entry_id, business_date, account"
        ).bindparams(*dated),
        params,
    ):
        sub[(int(entry_id), str(account))] = int(signed or 0)
        days[int(entry_id)] = _day(on)
    # the batch entries: those with sub-ledger rows, and any cob entry whose lines name no loan
    entry_where = where.replace("business_date", "e.business_date")
    gl: dict[tuple[int, str], int] = {}
    for entry_id, on, account, signed in session.execute(
        text(
            "SELECT e.id, e.business_date, l.account_code, CAST(SUM(l.debit - l.credit) AS BIGINT) "
            "FROM journal_entries e JOIN journal_lines l ON l.entry_id = e.id "
            f"WHERE e.tenant_id = :t AND l.tenant_id = :t AND l.loan_id IS NULL AND e.kind LIKE 'cob.%'{entry_where} "
            "GROUP BY e.id, e.business_date, l.account_code"
        ).bindparams(*dated),
        params,
    ):
        gl[(int(entry_id), str(account))] = int(signed or 0)
        days[int(entry_id)] = _day(on)
    out = [
        BatchDifference(key[0], days[key[0]], key[1], from_storage(gl.get(key, 0)), from_storage(sub.get(key, 0)))
        for key in sorted(set(gl) | set(sub))
        if gl.get(key, 0) != sub.get(key, 0)
    ]
    return out


def loan_account_sums(session: Session, tenant_id: int) -> dict[tuple[int | None, str], Decimal]:
    """Per loan and account, the signed sum (debit positive) of everything posted for the loan: its journal lines
    and its sub-ledger rows; lines naming no loan outside a batch entry come under loan None (they should not
    exist on a loan account)."""
    out: dict[tuple[int | None, str], int] = {}
    for loan_id, account, signed in session.execute(
        text(
            "SELECT loan_id, account_code, CAST(SUM(debit - credit) AS BIGINT) FROM journal_lines "
            "WHERE tenant_id = :t AND (loan_id IS NOT NULL OR entry_id NOT IN "
            "(SELECT id FROM journal_entries WHERE tenant_id = :t AND kind LIKE 'cob.%' "
            "AND EXISTS (SELECT 1 FROM loan_accruals a WHERE a.entry_id = journal_entries.id))) "
            "GROUP BY loan_id, account_code"
        ),
        {"t": tenant_id},
    ):
        key = (None if loan_id is None else int(loan_id), str(account))
        out[key] = out.get(key, 0) + int(signed or 0)
    for loan_id, account, signed in session.execute(
        text(
            f"SELECT loan_id, account, CAST(SUM(signed) AS BIGINT) FROM ({_SIGNED_ROWS.format(w='')}) r "
            "GROUP BY loan_id, account"
        ),
        {"t": tenant_id},
    ):
        key = (int(loan_id), str(account))
        out[key] = out.get(key, 0) + int(signed or 0)
    return {k: from_storage(v) for k, v in out.items()}


@dataclass(frozen=True)
class LoanPosting:
    """One line of a loan's statement of postings: a journal line of the loan or one side of a sub-ledger row."""

    business_date: date
    entry_id: int
    kind: str
    account: str
    debit: Decimal
    credit: Decimal


def loan_postings(session: Session, tenant_id: int, loan_id: int, account: str | None = None) -> list[LoanPosting]:
    """Everything posted for one loan (optionally on one account), oldest first: the loan's journal lines and both
    sides of its sub-ledger rows, so its nightly interest and penalty income can be traced day by day."""
    acct = " AND l.account_code = :a" if account else ""
    sub_d = " AND a.debit_account = :a" if account else ""
    sub_c = " AND a.credit_account = :a" if account else ""
    found = session.execute(
        text(
            "SELECT e.business_date, e.id, e.kind, l.account_code, CAST(l.debit AS BIGINT), CAST(l.credit AS BIGINT), "
            "l.id FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id "
            f"WHERE l.tenant_id = :t AND e.tenant_id = :t AND l.loan_id = :l{acct} "
            "UNION ALL SELECT a.business_date, e.id, e.kind, a.debit_account, CAST(a.amount AS BIGINT), 0, 0 "
            "FROM loan_accruals a JOIN journal_entries e ON e.id = a.entry_id "
            f"WHERE a.loan_id = :l AND a.tenant_id = :t AND e.tenant_id = :t{sub_d} "
            "UNION ALL SELECT a.business_date, e.id, e.kind, a.credit_account, 0, CAST(a.amount AS BIGINT), 1 "
            "FROM loan_accruals a JOIN journal_entries e ON e.id = a.entry_id "
            f"WHERE a.loan_id = :l AND a.tenant_id = :t AND e.tenant_id = :t{sub_c}"
        ),
        {"t": tenant_id, "l": loan_id, **({"a": account} if account else {})},
    ).all()
    rows = sorted(found, key=lambda r: (_day(r[0]), int(r[1]), int(r[6])))
    return [
        LoanPosting(_day(r[0]), int(r[1]), str(r[2]), str(r[3]), from_storage(int(r[4])), from_storage(int(r[5])))
        for r in rows
    ]


def loan_account_balance(session: Session, tenant_id: int, loan_id: int, account: str) -> Decimal:
    """One loan's signed balance (debit positive) on ``account`` over everything posted for it."""
    value = session.execute(
        text(
            "SELECT (SELECT COALESCE(CAST(SUM(debit - credit) AS BIGINT), 0) FROM journal_lines "
            "WHERE tenant_id = :t AND loan_id = :l AND account_code = :a) "
            "+ (SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM loan_accruals "
            "WHERE loan_id = :l AND tenant_id = :t AND debit_account = :a) "
            "- (SELECT COALESCE(CAST(SUM(amount) AS BIGINT), 0) FROM loan_accruals "
            "WHERE loan_id = :l AND tenant_id = :t AND credit_account = :a)"
        ),
        {"t": tenant_id, "l": loan_id, "a": account},
    ).scalar()
    return from_storage(int(value or 0))
