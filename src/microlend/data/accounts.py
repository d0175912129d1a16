"""The bank's own account data (本行账户数据): accounts and transactions exported from core banking, imported
under data contracts, and the features they give a customer as of a date.

Import: an accounts file (and optionally a transactions file), CSV or Parquet, checked against
`ACCOUNTS_CONTRACT` and `TRANSACTIONS_CONTRACT` plus row rules the contracts cannot express (a valid resident
ID or USCC, amounts in cents, a known account). By default any problem refuses the whole import, naming each
row and why (`ContractBroken`); with `valid_only` the valid rows are loaded and the rejected ones reported.
An account is matched to the bank's customer with the holder's ID number (through the blind index), within
the caller's bank; the ID number itself is kept only as its blind index and masked form. Importing the same
file again updates the accounts and skips transactions already stored (same account and journal reference).

Features (`own_account_features`): one set-based query over the whole base (no customer ids) or the same
query for a few customers (online). Windows end the day before the as-of date: the last 90 days are
`[as_of - 90, as_of)`, the last 180 `[as_of - 180, as_of)`.
- `own_avg_balance_3m`: the mean of the customer's total balance at the ends of the 3 months before the
  as-of month (each account's latest known balance on or before that day, while it was open);
- `own_inflow_3m`: credits (amount > 0) in the last 90 days; `own_turnover_credits_3m` and
  `own_salary_credits_3m`: credits of kind `turnover` and `salary`;
- `own_bounced_6m`: movements of kind `bounced` in the last 180 days;
- `own_account_months`: whole months since the oldest account (opened before the as-of date) was opened.
A customer with no account opened before the as-of date has every feature null.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from decimal import Decimal, InvalidOperation
from typing import Any

import pandas as pd
from sqlalchemy import and_, case, func, insert, or_, select

from microlend.core import audit, crypto
from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.uow import UnitOfWork
from microlend.data.contracts import ColumnContract, DataContract, Violation, validate
from microlend.data.importer import MESSAGE_LIMIT, ContractBroken, CsvSource, ParquetSource, read_source
from microlend.data.tables import BankAccountRow, BankTransactionRow
from microlend.parties import kyc
from microlend.parties.queries import customers_by_id_number

#: Kinds of movement a core banking export is mapped to.
KINDS: tuple[str, ...] = ("turnover", "salary", "transfer", "fee", "bounced", "other")
#: The features computed here (names fixed by the shared design).
OWN_FEATURES: tuple[str, ...] = (
    "own_avg_balance_3m",
    "own_inflow_3m",
    "own_turnover_credits_3m",
    "own_salary_credits_3m",
    "own_bounced_6m",
    "own_account_months",
)
_CHUNK = 500
_INSERT_CHUNK = 5_000

ACCOUNTS_CONTRACT = DataContract(
    name="bank_accounts",
    columns=(
        ColumnContract("account_no", "string", description="account number in core banking"),
        ColumnContract("holder_id_number", "string", description="resident ID or USCC of the holder"),
        ColumnContract("opened_on", "date"),
        ColumnContract("closed_on", "date", nullable=True),
        ColumnContract("product", "string", description="account product, e.g. current, savings"),
        ColumnContract("currency", "string", description="ISO 4217 code, e.g. CNY"),
    ),
    unique=("account_no",),
    description="Accounts of the bank's customers exported from core banking.",
)
TRANSACTIONS_CONTRACT = DataContract(
    name="bank_transactions",
    columns=(
        ColumnContract("account_no", "string"),
        ColumnContract("txn_ref", "string", description="journal reference, unique per account"),
        ColumnContract("booked_on", "date"),
        ColumnContract("amount", "string", description="signed amount in yuan, credit > 0, 2 decimals"),
        ColumnContract("balance_after", "string", nullable=True, description="balance after the movement"),
        ColumnContract("kind", "string", categories=KINDS),
        ColumnContract("counterparty", "string", nullable=True, description="counterparty name or account"),
    ),
    unique=("account_no", "txn_ref"),
    description="Booked movements of those accounts.",
)


@dataclass(frozen=True)
class RejectedRow:
    """A row refused by the import: which file, its row number (1-based after the header) and why."""

    file: str
    source_row: int
    reasons: str


@dataclass
class AccountImport:
    accounts_created: int = 0
    accounts_updated: int = 0
    accounts_matched: int = 0
    transactions_loaded: int = 0
    transactions_already_stored: int = 0
    rejected: list[RejectedRow] = field(default_factory=list)


Progress = Callable[[int, int | None], None]


def _amount(value: Any) -> Decimal | None:
    """A money text with at most 2 decimals as Decimal; None when it is not one."""
    try:
        amount = Decimal(str(value).strip().replace(",", ""))
    except (InvalidOperation, ValueError):
        return None
    if not amount.is_finite() or amount != amount.quantize(Decimal("0.01")) or abs(amount) >= 10**13:
        return None
    return amount


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and value != value) or value is pd.NaT or value is pd.NA


@dataclass
class _Checked:
    """The valid rows (coerced by the contract) with their source row numbers, and every violation."""

    rows: list[dict[str, Any]]
    source_rows: list[int]
    violations: list[Violation]


def _check(
    df: pd.DataFrame, contract: DataContract, rules: Callable[[dict[str, Any]], list[tuple[str, str, Any]]], file: str
) -> _Checked:
    if df.empty:
        raise ValidationError(f"{file}: the file has no rows", field=file)
    report = validate(df, contract)
    if report.table_problems:
        raise ContractBroken(f"{file}: {report.summary(MESSAGE_LIMIT)}", _in_file(report.violations, file))
    bad = set(report.bad_rows)
    frame = df.reset_index(drop=True)
    keep = [i for i in range(len(frame)) if i + 1 not in bad]
    violations = _in_file(report.violations, file)
    rows: list[dict[str, Any]] = []
    source_rows: list[int] = []
    if keep:
        coerced = validate(frame.iloc[keep], contract).data
        for position, record in zip(keep, coerced.to_dict("records"), strict=True):
            problems = rules(record)
            if problems:
                violations += [Violation(position + 1, f"{file}.{c}", check, v) for c, check, v in problems]
            else:
                rows.append(record)
                source_rows.append(position + 1)
    return _Checked(rows, source_rows, violations)


def _in_file(violations: Iterable[Violation], file: str) -> list[Violation]:
    return [Violation(v.row, f"{file}.{v.column}" if v.column else file, v.check, v.value) for v in violations]


def _day(value: Any) -> date | None:
    if _missing(value):
        return None
    return value.date() if isinstance(value, pd.Timestamp) else value  # type: ignore[no-any-return]


def _account_rules(record: dict[str, Any]) -> list[tuple[str, str, Any]]:
    problems: list[tuple[str, str, Any]] = []
    holder = str(record["holder_id_number"]).strip().upper()
    try:
        if len(holder) == 18 and holder[:17].isdigit():
            kyc.validate_resident_id(holder)
        else:
            kyc.validate_uscc(holder)
    except ValidationError:
        problems.append(("holder_id_number", "not a valid resident ID or USCC", crypto.mask(holder)))
    if not 1 <= len(str(record["account_no"]).strip()) <= 40:
        problems.append(("account_no", "must be 1-40 characters", record["account_no"]))
    if not 1 <= len(str(record["product"]).strip()) <= 40:
        problems.append(("product", "must be 1-40 characters", record["product"]))
    currency = str(record["currency"]).strip()
    if len(currency) != 3 or not currency.isalpha() or not currency.isupper():
        problems.append(("currency", "must be a 3-letter ISO code such as CNY", record["currency"]))
    opened, closed = _day(record["opened_on"]), _day(record["closed_on"])
    if opened is not None and closed is not None and closed < opened:
        problems.append(("closed_on", "before opened_on", str(closed)))
    return problems


def _transaction_rules(known: set[str]) -> Callable[[dict[str, Any]], list[tuple[str, str, Any]]]:
    def rules(record: dict[str, Any]) -> list[tuple[str, str, Any]]:
        problems: list[tuple[str, str, Any]] = []
        if str(record["account_no"]).strip() not in known:
            problems.append(
                ("account_no", "unknown account (not in the accounts file nor stored)", record["account_no"])
            )
        if not 1 <= len(str(record["txn_ref"]).strip()) <= 64:
            problems.append(("txn_ref", "must be 1-64 characters", record["txn_ref"]))
        amount = _amount(record["amount"])
        if amount is None or amount == 0:
            problems.append(("amount", "not a non-zero amount with at most 2 decimals", record["amount"]))
        if not _missing(record["balance_after"]) and _amount(record["balance_after"]) is None:
            problems.append(("balance_after", "not an amount with at most 2 decimals", record["balance_after"]))
        return problems

    return rules


def import_bank_accounts(
    uow: UnitOfWork,
    who: Principal,
    accounts: CsvSource | ParquetSource,
    transactions: CsvSource | ParquetSource | None = None,
    *,
    valid_only: bool = False,
    progress: Progress | None = None,
) -> AccountImport:
    """Load the bank's accounts (and their transactions) into the caller's bank. All or nothing unless
    `valid_only`; a refused import leaves nothing behind (no row, no audit record)."""
    who.require(Permission.MANAGE_DATASETS)
    raw_accounts = read_source(accounts, ACCOUNTS_CONTRACT)
    raw_transactions = read_source(transactions, TRANSACTIONS_CONTRACT) if transactions is not None else None
    result = AccountImport()
    with uow:
        s = uow.session
        acc = _check(raw_accounts, ACCOUNTS_CONTRACT, _account_rules, "accounts")
        known = {str(r["account_no"]).strip() for r in acc.rows}
        txn: _Checked | None = None
        if raw_transactions is not None:
            wanted = {str(a).strip() for a in raw_transactions.get("account_no", pd.Series(dtype=str)).dropna()}
            known |= _stored_accounts(uow, who, wanted - known)
            txn = _check(raw_transactions, TRANSACTIONS_CONTRACT, _transaction_rules(known), "transactions")
        violations = acc.violations + (txn.violations if txn else [])
        if violations and not valid_only:
            rows = {(str(v.column).split(".")[0], v.row) for v in violations}
            head = f"bank accounts: {len(violations)} problem(s) in {len(rows)} row(s):"
            shown = ["  " + v.describe() for v in violations[:MESSAGE_LIMIT]]
            more = [f"  ... and {len(violations) - MESSAGE_LIMIT} more"] if len(violations) > MESSAGE_LIMIT else []
            raise ContractBroken("\n".join([head, *shown, *more]), violations)
        result.rejected = _rejected(violations)
        if not acc.rows and not (txn and txn.rows):
            raise ValidationError("data: no valid rows to load", field="data")
        _store_accounts(uow, who, acc.rows, result)
        if txn is not None:
            _store_transactions(uow, who, txn.rows, result, progress)
        audit.record(
            s,
            who,
            "bank_accounts.import",
            "bank_accounts",
            who.tenant_id,
            after={
                "accounts_created": result.accounts_created,
                "accounts_updated": result.accounts_updated,
                "accounts_matched": result.accounts_matched,
                "transactions_loaded": result.transactions_loaded,
                "transactions_already_stored": result.transactions_already_stored,
                "rejected": len(result.rejected),
                "source": accounts.describe() | {"transactions": transactions.describe() if transactions else None},
            },
        )
        uow.commit()
    return result


def _rejected(violations: list[Violation]) -> list[RejectedRow]:
    by_row: dict[tuple[str, int], list[str]] = {}
    for v in violations:
        if v.row is None:
            continue
        file, _, column = str(v.column).partition(".")
        by_row.setdefault((file, v.row), []).append(f"{column}: {v.check} (value {v.value!r})")
    return [RejectedRow(f, r, "; ".join(reasons)) for (f, r), reasons in sorted(by_row.items())]


def _stored_accounts(uow: UnitOfWork, who: Principal, numbers: set[str]) -> set[str]:
    found: set[str] = set()
    ordered = sorted(numbers)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        found |= set(
            uow.session.scalars(
                select(BankAccountRow.account_no).where(
                    BankAccountRow.tenant_id == who.tenant_id, BankAccountRow.account_no.in_(chunk)
                )
            )
        )
    return found


def _store_accounts(uow: UnitOfWork, who: Principal, rows: list[dict[str, Any]], result: AccountImport) -> None:
    s = uow.session
    holders = sorted({str(r["holder_id_number"]).strip().upper() for r in rows})
    customers = customers_by_id_number(uow, who, holders)
    existing: dict[str, BankAccountRow] = {}
    numbers = sorted({str(r["account_no"]).strip() for r in rows})
    for start in range(0, len(numbers), _CHUNK):
        for row in s.scalars(
            select(BankAccountRow).where(
                BankAccountRow.tenant_id == who.tenant_id,
                BankAccountRow.account_no.in_(numbers[start : start + _CHUNK]),
            )
        ):
            existing[row.account_no] = row
    now = utcnow()
    for r in rows:
        holder = str(r["holder_id_number"]).strip().upper()
        values = {
            "customer_id": customers.get(holder),
            "holder_id_index": crypto.blind_index(holder),
            "holder_id_masked": crypto.mask(holder),
            "opened_on": _day(r["opened_on"]),
            "closed_on": _day(r["closed_on"]),
            "product": str(r["product"]).strip(),
            "currency": str(r["currency"]).strip(),
            "imported_at": now,
        }
        if values["customer_id"] is not None:
            result.accounts_matched += 1
        number = str(r["account_no"]).strip()
        if number in existing:
            for key, value in values.items():
                setattr(existing[number], key, value)
            result.accounts_updated += 1
        else:
            s.add(BankAccountRow(tenant_id=who.tenant_id, account_no=number, **values))
            result.accounts_created += 1
    s.flush()


def _store_transactions(
    uow: UnitOfWork, who: Principal, rows: list[dict[str, Any]], result: AccountImport, progress: Progress | None
) -> None:
    s = uow.session
    stored: set[tuple[str, str]] = set()
    numbers = sorted({str(r["account_no"]).strip() for r in rows})
    for start in range(0, len(numbers), _CHUNK):
        stored |= {
            (a, t)
            for a, t in s.execute(
                select(BankTransactionRow.account_no, BankTransactionRow.txn_ref).where(
                    BankTransactionRow.tenant_id == who.tenant_id,
                    BankTransactionRow.account_no.in_(numbers[start : start + _CHUNK]),
                )
            )
        }
    fresh = []
    for r in rows:
        key = (str(r["account_no"]).strip(), str(r["txn_ref"]).strip())
        if key in stored:
            result.transactions_already_stored += 1
            continue
        balance = None if _missing(r["balance_after"]) else _amount(r["balance_after"])
        counterparty = None if _missing(r["counterparty"]) else crypto.mask(str(r["counterparty"]).strip())[:64]
        fresh.append(
            {
                "tenant_id": who.tenant_id,
                "account_no": key[0],
                "txn_ref": key[1],
                "booked_on": _day(r["booked_on"]),
                "amount": _amount(r["amount"]),
                "balance_after": balance,
                "kind": str(r["kind"]),
                "counterparty": counterparty,
            }
        )
    total = len(fresh)
    for start in range(0, total, _INSERT_CHUNK):
        s.execute(insert(BankTransactionRow), fresh[start : start + _INSERT_CHUNK])
        if progress is not None:
            progress(min(start + _INSERT_CHUNK, total), total)
    result.transactions_loaded = total


# --- features -------------------------------------------------------------------------------------------------


def _month_ends(as_of: date) -> list[date]:
    """The last days of the 3 months before the as-of month, newest first."""
    first = as_of.replace(day=1)
    out = []
    for _ in range(3):
        end = first - timedelta(days=1)
        out.append(end)
        first = end.replace(day=1)
    return out


def _whole_months(start: date, end: date) -> int:
    months = (end.year - start.year) * 12 + end.month - start.month - (1 if end.day < start.day else 0)
    return max(months, 0)


def own_account_features(
    uow: UnitOfWork, who: Principal, customer_ids: Sequence[int] | None, as_of: date
) -> dict[int, dict[str, float | None]]:
    """The own-account features of these customers of the caller's bank as of a date (all customers with an
    account when `customer_ids` is None). Requested customers without an account get nulls."""
    who.require(Permission.VIEW_CUSTOMERS)
    out: dict[int, dict[str, float | None]] = {}
    if customer_ids is not None:
        out = {int(c): dict.fromkeys(OWN_FEATURES) for c in customer_ids}
        chunks: list[list[int] | None] = [sorted(out)[i : i + _CHUNK] for i in range(0, len(out), _CHUNK)]
    else:
        chunks = [None]
    with uow:
        for chunk in chunks:
            for cid, values in _features(uow, who, chunk, as_of).items():
                out[cid] = values
    return out


def _accounts(who: Principal, customer_ids: list[int] | None, as_of: date) -> Any:
    a = BankAccountRow
    where = [a.tenant_id == who.tenant_id, a.customer_id.is_not(None), a.opened_on < as_of]
    if customer_ids is not None:
        where.append(a.customer_id.in_(customer_ids))
    return and_(*where)


def _features(
    uow: UnitOfWork, who: Principal, customer_ids: list[int] | None, as_of: date
) -> dict[int, dict[str, float | None]]:
    s = uow.session
    a, t = BankAccountRow, BankTransactionRow
    accounts = _accounts(who, customer_ids, as_of)
    opened: dict[int, date] = {}
    for cid, first in s.execute(select(a.customer_id, func.min(a.opened_on)).where(accounts).group_by(a.customer_id)):
        if cid is not None:
            opened[cid] = first
    d90, d180 = as_of - timedelta(days=90), as_of - timedelta(days=180)
    credit = and_(t.booked_on >= d90, t.amount > 0)
    flows = s.execute(
        select(
            a.customer_id,
            func.sum(case((credit, t.amount))),
            func.sum(case((and_(credit, t.kind == "turnover"), t.amount))),
            func.sum(case((and_(credit, t.kind == "salary"), t.amount))),
            func.sum(case((t.kind == "bounced", 1), else_=0)),
        )
        .join(t, and_(t.tenant_id == a.tenant_id, t.account_no == a.account_no))
        .where(accounts, t.booked_on < as_of, t.booked_on >= d180)
        .group_by(a.customer_id)
    )
    flow = {int(r[0]): r[1:] for r in flows}
    balances: dict[int, Decimal] = {}
    for end in _month_ends(as_of):
        latest = (
            select(
                a.customer_id.label("customer_id"),
                t.balance_after.label("balance"),
                func.row_number()
                .over(partition_by=a.account_no, order_by=(t.booked_on.desc(), t.id.desc()))
                .label("rn"),
            )
            .join(t, and_(t.tenant_id == a.tenant_id, t.account_no == a.account_no))
            .where(
                accounts,
                a.opened_on <= end,
                or_(a.closed_on.is_(None), a.closed_on > end),
                t.booked_on <= end,
                t.balance_after.is_not(None),
            )
            .subquery()
        )
        rows = s.execute(
            select(latest.c.customer_id, func.sum(latest.c.balance))
            .where(latest.c.rn == 1)
            .group_by(latest.c.customer_id)
        )
        for cid, total in rows:
            balances[int(cid)] = balances.get(int(cid), Decimal(0)) + Decimal(total)
    out: dict[int, dict[str, float | None]] = {}
    for cid, first in opened.items():
        inflow, turnover, salary, bounced = flow.get(int(cid), (None, None, None, 0))
        balance = balances.get(int(cid))
        out[int(cid)] = {
            "own_avg_balance_3m": None if balance is None else float(balance / 3),
            "own_inflow_3m": float(inflow or 0),
            "own_turnover_credits_3m": float(turnover or 0),
            "own_salary_credits_3m": float(salary or 0),
            "own_bounced_6m": float(bounced or 0),
            "own_account_months": float(_whole_months(first, as_of)),
        }
    return out
