"""Regulatory and finance reports over the ledger (总账) and the loan tables, set-based: the five-category table
(1104-style) by product and by branch, NPL formation and disposal, the provision movement and the interest
income reconciliation; each a roll-forward that reconciles exactly (opening + movements = closing) because
every movement is a sum of journal lines of the period, classified by its entry's kind, and what fits no
named movement is shown as "other".

A loan's balance on a date is its principal account (1301) lines up to that business date; its class on a date
is the last class change (``LoanClassChanged`` on its timeline) on or before it, ``normal`` before any."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

from sqlalchemy import Date, bindparam, select, text
from sqlalchemy.orm import Session

from microlend.core.errors import ValidationError
from microlend.core.identity import Permission, Principal
from microlend.core.money import from_storage
from microlend.core.tables import TenantRow
from microlend.core.uow import UnitOfWork
from microlend.parties import queries as parties
from microlend.servicing.delinquency import LoanClass
from microlend.servicing.ledger import Acct
from microlend.servicing.tables import LoanEventRow, LoanRow, ProductRow

ZERO = Decimal(0)
CLASSES = [c.value for c in LoanClass]
NPL = frozenset(c.value for c in LoanClass if c.non_performing)
#: how far a period may reach (one report reads every line of it)
MAX_PERIOD_DAYS = 3660


def period(uow: UnitOfWork, who: Principal, start: date | None, end: date | None) -> tuple[date, date]:
    """The period a report covers: by default from the first of the month of its end, which by default is the
    last business date closed."""
    if end is None:
        with uow:
            end = _last_closed(uow.session, who.tenant_id)
    start = start or end.replace(day=1)
    _check_period(start, end)
    return start, end


def _check_period(start: date, end: date) -> None:
    if start <= date(1900, 1, 1):
        raise ValidationError("from: a business date after 1900", field="from")
    if end < start:
        raise ValidationError("to: the period ends before it starts", field="to")
    if (end - start).days > MAX_PERIOD_DAYS:
        raise ValidationError(f"from: a period of at most {MAX_PERIOD_DAYS} days", field="from")


def _dated(sql: str) -> Any:
    return text(sql).bindparams(*(bindparam(n, type_=Date()) for n in ("a", "b", "d") if f":{n}" in sql))


def principal_by_loan(s: Session, tenant_id: int, on: date) -> dict[int, Decimal]:
    """Every loan's principal balance (account 1301) at the end of ``on``, non-zero ones only."""
    rows = s.execute(
        text(
            "SELECT l.loan_id, CAST(SUM(l.debit - l.credit) AS BIGINT) FROM journal_lines l "
            "JOIN journal_entries e ON e.id = l.entry_id WHERE l.tenant_id = :t AND e.tenant_id = :t "
            f"AND l.account_code = '{Acct.LOAN_PRINCIPAL.value}' AND e.business_date <= :d AND l.loan_id IS NOT NULL "
            "GROUP BY l.loan_id"
        ).bindparams(bindparam("d", type_=Date())),
        {"t": tenant_id, "d": on},
    )
    return {int(lid): from_storage(int(v)) for lid, v in rows if v}


def class_history(s: Session, tenant_id: int, through: date) -> dict[int, list[tuple[date, str, bool]]]:
    """Each loan's class changes up to ``through``, in order: (business date, class, by judgement). A change by
    an officer's judgement happens during its day, before that day's payments and write-off; a close of
    business's at its end. A loan without any is normal."""
    history: dict[int, list[tuple[date, str, bool]]] = defaultdict(list)
    for lid, on, data in s.execute(
        select(LoanEventRow.loan_id, LoanEventRow.business_date, LoanEventRow.data)
        .where(LoanEventRow.tenant_id == tenant_id, LoanEventRow.kind == "LoanClassChanged",
               LoanEventRow.business_date <= through)
        .order_by(LoanEventRow.business_date, LoanEventRow.id)
    ):
        to_class = (data or {}).get("to_class")
        if to_class in CLASSES:
            judged = (data or {}).get("changed_by", "close of business") != "close of business"
            history[int(lid)].append((on, str(to_class), judged))
    return history


def class_on(history: list[tuple[date, str, bool]], on: date) -> str:
    """The class at the end of ``on``."""
    current = LoanClass.NORMAL.value
    for when, klass, _ in history:
        if when > on:
            break
        current = klass
    return current


def _ratio(part: Decimal, whole: Decimal) -> str | None:
    return None if whole == 0 else str((part / whole).quantize(Decimal("0.0001"), rounding="ROUND_HALF_UP"))


# --- five-category table (贷款五级分类情况表, 1104-style) ----------------------------------------------------


def five_category(uow: UnitOfWork, who: Principal, on: date | None = None) -> dict[str, Any]:
    """Loans with principal on the books at the end of ``on`` (default: the last closed business date), by
    class: count and balance, in total, by product and by branch, with the NPL balance and ratio."""
    who.require(Permission.VIEW_LEDGER)
    with uow:
        s = uow.session
        on = on or _last_closed(s, who.tenant_id)
        balances = principal_by_loan(s, who.tenant_id, on)
        history = class_history(s, who.tenant_id, on)
        loans = {int(r.id): (r.product_id, r.customer_id) for r in s.execute(
            select(LoanRow.id, LoanRow.product_id, LoanRow.customer_id).where(LoanRow.tenant_id == who.tenant_id))}
        products = {int(r.id): (r.code, r.name, r.name_zh) for r in s.execute(
            select(ProductRow.id, ProductRow.code, ProductRow.name, ProductRow.name_zh)
            .where(ProductRow.tenant_id == who.tenant_id))}
    customer_ids = sorted({c for lid in balances for c in [loans.get(lid, (0, None))[1]] if c is not None})
    cards = parties.contact_cards(uow, who, customer_ids) if customer_ids else {}
    total = _Table()
    by_product: dict[str, _Table] = defaultdict(_Table)
    by_branch: dict[str, _Table] = defaultdict(_Table)
    for lid, balance in balances.items():
        product_id, customer_id = loans.get(lid, (0, None))
        klass = class_on(history.get(lid, []), on)
        code = products.get(product_id, ("", "", ""))[0]
        card = cards.get(customer_id) if customer_id is not None else None
        branch = (card.branch if card is not None else "") or ""
        for table in (total, by_product[code], by_branch[branch]):
            table.add(klass, balance)
    names = products_by_code(products)
    return {
        "as_of": on.isoformat(),
        "classes": CLASSES,
        "total": total.public(),
        "by_product": [
            {"product": code, "name": names.get(code, ("", ""))[0], "name_zh": names.get(code, ("", ""))[1],
             **t.public()}
            for code, t in sorted(by_product.items())
        ],
        "by_branch": [{"branch": b, **t.public()} for b, t in sorted(by_branch.items())],
    }


def products_by_code(products: dict[int, tuple[str, str, str]]) -> dict[str, tuple[str, str]]:
    return {code: (name, name_zh) for code, name, name_zh in products.values()}


@dataclass
class _Table:
    def __post_init__(self) -> None:
        self.count = dict.fromkeys(CLASSES, 0)
        self.balance = dict.fromkeys(CLASSES, ZERO)

    def add(self, klass: str, balance: Decimal) -> None:
        self.count[klass] += 1
        self.balance[klass] += balance

    def public(self) -> dict[str, Any]:
        outstanding = sum(self.balance.values(), ZERO)
        npl = sum((v for k, v in self.balance.items() if k in NPL), ZERO)
        return {
            "count": dict(self.count),
            "balance": {k: str(v) for k, v in self.balance.items()},
            "loans": sum(self.count.values()),
            "outstanding": str(outstanding),
            "npl_count": sum(v for k, v in self.count.items() if k in NPL),
            "npl_balance": str(npl),
            "npl_ratio": _ratio(npl, outstanding),
        }


def _last_closed(s: Session, tenant_id: int) -> date:
    """The last business date a close of business closed (the open date when none has run yet)."""
    row = s.get(TenantRow, tenant_id)
    assert row is not None
    return row.business_date - timedelta(days=1) if _closed(s, tenant_id) else row.business_date


def _closed(s: Session, tenant_id: int) -> bool:
    return bool(s.execute(text("SELECT COUNT(*) FROM cob_runs WHERE tenant_id = :t"), {"t": tenant_id}).scalar())


# --- NPL formation and disposal (不良贷款生成与处置) ------------------------------------------------------------


def npl_movement(uow: UnitOfWork, who: Principal, start: date | None = None, end: date | None = None
                 ) -> dict[str, Any]:
    """The NPL balance's roll-forward over ``start``..``end`` (business dates, inclusive): opening (end of the
    day before), new NPL (a loan's balance on the day it is downgraded into 次级/可疑/损失), cures and upgrades out
    (its balance on the day it leaves), collections and write-offs of principal while NPL, other principal
    movements while NPL, closing; opening + new − out − collections − write-offs + other = closing exactly."""
    who.require(Permission.VIEW_LEDGER)
    start, end = period(uow, who, start, end)
    with uow:
        s = uow.session
        before = start - timedelta(days=1)
        history = class_history(s, who.tenant_id, end)
        opening_bal = principal_by_loan(s, who.tenant_id, before)
        # loans NPL at some point of the period: NPL at its start or changing class within it
        candidates = {lid for lid in opening_bal if class_on(history.get(lid, []), before) in NPL}
        candidates |= {lid for lid, h in history.items() if any(start <= d <= end for d, _, _ in h)}
        moves: dict[int, dict[date, tuple[Decimal, Decimal, Decimal]]] = defaultdict(dict)
        for lid, on, wo, debit, credit in s.execute(_dated(
            "SELECT l.loan_id, e.business_date, CASE WHEN e.kind = 'write_off' THEN 1 ELSE 0 END, "
            "CAST(SUM(l.debit) AS BIGINT), CAST(SUM(l.credit) AS BIGINT) FROM journal_lines l "
            "JOIN journal_entries e ON e.id = l.entry_id WHERE l.tenant_id = :t AND e.tenant_id = :t "
            f"AND l.account_code = '{Acct.LOAN_PRINCIPAL.value}' AND e.business_date BETWEEN :a AND :b "
            "AND l.loan_id IS NOT NULL GROUP BY l.loan_id, e.business_date, "
            "CASE WHEN e.kind = 'write_off' THEN 1 ELSE 0 END"
        ), {"t": who.tenant_id, "a": start, "b": end}):
            lid = int(lid)
            if lid not in candidates:
                continue
            on = on if isinstance(on, date) else date.fromisoformat(str(on))  # SQLite answers text
            d, c = from_storage(int(debit or 0)), from_storage(int(credit or 0))
            prior = moves[lid].get(on, (ZERO, ZERO, ZERO))
            moves[lid][on] = (prior[0] + d, prior[1] + (ZERO if wo else c), prior[2] + (c if wo else ZERO))
    f = dict.fromkeys(("opening", "new", "cured", "collections", "written_off", "other", "closing"), ZERO)
    counts = dict.fromkeys(("opening", "new", "cured", "written_off", "closing"), 0)
    for lid in candidates:
        h = history.get(lid, [])
        bal = opening_bal.get(lid, ZERO)
        npl = class_on(h, before) in NPL
        if npl:
            f["opening"] += bal
            counts["opening"] += bal != 0
        judged: dict[date, str] = {}  # the day's last judgement, before its payments
        closed: dict[date, str] = {}  # the day's close of business, after them
        for when, klass, by_judgement in h:
            if start <= when <= end:
                (judged if by_judgement else closed)[when] = klass

        for day in sorted(set(judged) | set(closed) | set(moves[lid])):
            if day in judged:
                npl = _turn(f, counts, bal, npl, judged[day] in NPL)
            debit, collected, wrote = moves[lid].get(day, (ZERO, ZERO, ZERO))
            if npl:
                f["other"] += debit
                f["collections"] += collected
                f["written_off"] += wrote
                counts["written_off"] += wrote != 0
            bal += debit - collected - wrote
            if day in closed:
                npl = _turn(f, counts, bal, npl, closed[day] in NPL)
        if npl:
            f["closing"] += bal
            counts["closing"] += bal != 0
    out = f["opening"] + f["new"] - f["cured"] - f["collections"] - f["written_off"] + f["other"]
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        **{k: str(v) for k, v in f.items()},
        "counts": counts,
        "reconciled": out == f["closing"],
    }


def _turn(f: dict[str, Decimal], counts: dict[str, int], bal: Decimal, was: bool, now: bool) -> bool:
    """A loan entering NPL adds its balance to new NPL; one leaving it, to cures and upgrades."""
    if now and not was:
        f["new"] += bal
        counts["new"] += 1
    elif was and not now:
        f["cured"] += bal
        counts["cured"] += 1
    return now


# --- account roll-forwards: provision movement, interest income -------------------------------------------------


def _account_moves(s: Session, tenant_id: int, accounts: list[str], start: date, end: date
                   ) -> tuple[dict[str, Decimal], dict[str, dict[str, tuple[Decimal, Decimal]]], dict[str, Decimal]]:
    """Per account: the net debit balance at the end of the day before ``start``, the period's debits and
    credits by entry kind, and the net debit balance at the end of ``end``."""
    codes = ", ".join(f"'{a}'" for a in accounts)
    base = ("FROM journal_lines l JOIN journal_entries e ON e.id = l.entry_id "
            f"WHERE l.tenant_id = :t AND e.tenant_id = :t AND l.account_code IN ({codes}) ")
    p = {"t": tenant_id, "a": start, "b": end, "d": start - timedelta(days=1)}
    opening = dict.fromkeys(accounts, ZERO)
    for code, net in s.execute(_dated(
            f"SELECT l.account_code, CAST(SUM(l.debit - l.credit) AS BIGINT) {base}AND e.business_date <= :d "
            "GROUP BY l.account_code"), p):
        opening[str(code)] = from_storage(int(net or 0))
    moves: dict[str, dict[str, tuple[Decimal, Decimal]]] = {a: {} for a in accounts}
    for code, kind, debit, credit in s.execute(_dated(
            f"SELECT l.account_code, e.kind, CAST(SUM(l.debit) AS BIGINT), CAST(SUM(l.credit) AS BIGINT) {base}"
            "AND e.business_date BETWEEN :a AND :b GROUP BY l.account_code, e.kind"), p):
        moves[str(code)][str(kind)] = (from_storage(int(debit or 0)), from_storage(int(credit or 0)))
    closing = dict.fromkeys(accounts, ZERO)
    for code, net in s.execute(_dated(
            f"SELECT l.account_code, CAST(SUM(l.debit - l.credit) AS BIGINT) {base}AND e.business_date <= :b "
            "GROUP BY l.account_code"), p):
        closing[str(code)] = from_storage(int(net or 0))
    return opening, moves, closing


def _sum(moves: dict[str, tuple[Decimal, Decimal]], kinds: set[str] | None, side: int,
         exclude: frozenset[str] | set[str] = frozenset()) -> Decimal:
    return sum((v[side] for k, v in moves.items() if (kinds is None or k in kinds) and k not in exclude), ZERO)


def provision_movement(uow: UnitOfWork, who: Principal, start: date | None = None, end: date | None = None
                       ) -> dict[str, Any]:
    """The loan-loss allowance (1304) over ``start``..``end``: opening, charge (provisioning runs' increases,
    Dr 6702), releases (their decreases), used by write-offs, recoveries back to it, other, and closing, the
    allowance account's balance at the end of ``end``."""
    who.require(Permission.VIEW_LEDGER)
    start, end = period(uow, who, start, end)
    acct = Acct.LOAN_LOSS_ALLOWANCE.value
    impairment = Acct.CREDIT_IMPAIRMENT_LOSS.value
    with uow:
        opening, moves, closing = _account_moves(uow.session, who.tenant_id, [acct], start, end)
        loss = _account_moves(uow.session, who.tenant_id, [impairment], start, end)[1][impairment]
    m = moves[acct]
    charge = _sum(m, {"provision"}, 1)
    release = _sum(m, {"provision"}, 0)
    used = _sum(m, {"write_off"}, 0)
    recovered = _sum(m, {"recovery"}, 1)
    other = _sum(m, None, 1, {"provision", "recovery"}) - _sum(m, None, 0, {"provision", "write_off"})
    f = {"opening": -opening[acct], "charge": charge, "written_off": used, "recoveries": recovered,
         "releases": release, "other": other, "closing": -closing[acct]}
    shortfall = _sum(loss, {"write_off"}, 0)
    return {
        "from": start.isoformat(), "to": end.isoformat(),
        **{k: str(v) for k, v in f.items()},
        "write_off_shortfall": str(shortfall),
        "reconciled": f["opening"] + charge - used + recovered - release + other == f["closing"],
    }


#: entry kinds of close of business that accrue income day by day (deferred fees recognised by the
#: effective-interest method are interest income accrued as well)
ACCRUAL_KINDS = {"cob.accrual", "cob.penalty", "cob.fee_amortisation"}
#: entry kinds that move accrued income off-balance when a loan stops accruing or is written off
REVERSAL_KINDS = {"cob.non_accrual", "write_off"}
INCOME = {"interest": Acct.INTEREST_INCOME.value, "penalty": Acct.PENALTY_INCOME.value}
MEMO = {"interest": Acct.OFF_BALANCE_INTEREST.value, "penalty": Acct.OFF_BALANCE_PENALTY.value}


def interest_income(uow: UnitOfWork, who: Principal, start: date | None = None, end: date | None = None
                    ) -> dict[str, Any]:
    """Interest (6011) and penalty (6012) income over ``start``..``end``: opening, accrued to income by close
    of business, reversed when loans stop accruing or are written off, recognised on the cash basis
    (collections on non-accrual and written-off loans), other adjustments, closing; and the off-balance memo
    accounts (7101/7102): opening, accrued off-balance, moved there from income, collected, other, closing."""
    who.require(Permission.VIEW_LEDGER)
    start, end = period(uow, who, start, end)
    accounts = list(INCOME.values()) + list(MEMO.values())
    with uow:
        opening, moves, closing = _account_moves(uow.session, who.tenant_id, accounts, start, end)
    income: dict[str, dict[str, str]] = {}
    memo: dict[str, dict[str, str]] = {}
    ok = True
    for part, acct in INCOME.items():
        m = moves[acct]
        accrued = _sum(m, ACCRUAL_KINDS, 1)
        reversed_ = _sum(m, REVERSAL_KINDS, 0)
        cash = _sum(m, None, 1, ACCRUAL_KINDS)
        other = _sum(m, ACCRUAL_KINDS, 0) * -1 - _sum(m, None, 0, ACCRUAL_KINDS | REVERSAL_KINDS)
        f = {"opening": -opening[acct], "accrued": accrued, "reversed": reversed_, "cash_basis": cash,
             "other": other, "closing": -closing[acct]}
        ok = ok and f["opening"] + accrued - reversed_ + cash + other == f["closing"]
        income[part] = {"account": acct, **{k: str(v) for k, v in f.items()}}
    for part, acct in MEMO.items():
        m = moves[acct]
        added = _sum(m, {"cob.off_balance"}, 0)
        moved = _sum(m, REVERSAL_KINDS, 0)
        collected = _sum(m, None, 1)
        other = _sum(m, None, 0, {"cob.off_balance"} | REVERSAL_KINDS)
        f = {"opening": opening[acct], "accrued_off_balance": added, "moved_from_income": moved,
             "collected": collected, "other": other, "closing": closing[acct]}
        ok = ok and f["opening"] + added + moved - collected + other == f["closing"]
        memo[part] = {"account": acct, **{k: str(v) for k, v in f.items()}}
    return {"from": start.isoformat(), "to": end.isoformat(), "income": income, "memo": memo, "reconciled": ok}


# --- Excel -------------------------------------------------------------------------------------------------------


def to_xlsx(title: str, sheets: dict[str, list[list[Any]]]) -> bytes:
    """A workbook of one sheet per table (first row the header); amounts are written as exact decimals."""
    from openpyxl import Workbook

    wb = Workbook()
    first = True
    for name, rows in sheets.items():
        ws = wb.active if first else wb.create_sheet()
        assert ws is not None
        ws.title = name[:31]
        first = False
        for row in rows:
            ws.append(list(row))
    wb.properties.title = title
    buf = BytesIO()
    wb.save(buf)
    return buf.getvalue()


__all__ = [
    "class_history",
    "class_on",
    "five_category",
    "interest_income",
    "npl_movement",
    "principal_by_loan",
    "provision_movement",
    "sheets",
    "to_xlsx",
]


def sheets(name: str, report: dict[str, Any]) -> dict[str, list[list[Any]]]:
    """A report's tables for the workbook, amounts as exact decimals (the same figures the JSON carries)."""
    if name == "five-category":
        head = ["", *(f"{c} count" for c in CLASSES), *(f"{c} balance" for c in CLASSES),
                "loans", "outstanding", "npl_balance", "npl_ratio"]

        def row(label: str, t: dict[str, Any]) -> list[Any]:
            return [label, *(t["count"][c] for c in CLASSES), *(Decimal(t["balance"][c]) for c in CLASSES),
                    t["loans"], Decimal(t["outstanding"]), Decimal(t["npl_balance"]),
                    None if t["npl_ratio"] is None else Decimal(t["npl_ratio"])]

        return {
            "total": [head, row("total", report["total"])],
            "by product": [head, *(row(p["product"], p) for p in report["by_product"])],
            "by branch": [head, *(row(b["branch"], b) for b in report["by_branch"])],
        }
    if name == "interest-income":
        out: dict[str, list[list[Any]]] = {}
        for group in ("income", "memo"):
            for part, figures in report[group].items():
                out[f"{group} {part}"] = [["item", "amount"], ["account", figures["account"]],
                                          *([k, Decimal(v)] for k, v in figures.items() if k != "account")]
        return out
    rows: list[list[Any]] = [["item", "amount"]]
    rows += [[k, Decimal(v)] for k, v in report.items() if k not in ("from", "to", "counts", "reconciled")]
    return {name: rows}
