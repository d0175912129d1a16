"""The bank's own accounts: import under contracts (all or nothing, or the rejected rows named), matching to
customers within the bank, and the own-account features, batch equal to online, checked by hand."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from sqlalchemy import func, select
from tests.conftest import TenantKit

from microlend.core.errors import PermissionDenied
from microlend.core.tables import AuditRow
from microlend.data.accounts import OWN_FEATURES, import_bank_accounts, own_account_features
from microlend.data.importer import ContractBroken, CsvSource, ParquetSource
from microlend.data.tables import BankAccountRow, BankTransactionRow
from microlend.demo import identities
from microlend.parties.customers import NewCustomer, create_customer

AS_OF = date(2026, 12, 1)


def customer(kit: TenantKit, rng: random.Random, name: str) -> tuple[int, str]:
    id_number = identities.resident_id(rng, date(1980, 5, 5))
    made = create_customer(
        kit.uow_factory(),
        kit.principal("credit_officer"),
        NewCustomer("person", name, id_number, identities.mobile(rng)),
    )
    return made.id, id_number


def write(tmp_path: Path, name: str, rows: list[dict[str, object]]) -> Path:
    path = tmp_path / name
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def account(no: str, holder: str, opened: str = "2024-03-10", closed: str = "") -> dict[str, object]:
    return {
        "account_no": no,
        "holder_id_number": holder,
        "opened_on": opened,
        "closed_on": closed,
        "product": "current",
        "currency": "CNY",
    }


def txn(no: str, ref: str, day: str, amount: str, balance: str = "", kind: str = "turnover") -> dict[str, object]:
    return {
        "account_no": no,
        "txn_ref": ref,
        "booked_on": day,
        "amount": amount,
        "balance_after": balance,
        "kind": kind,
        "counterparty": "杭州某某商贸有限公司",
    }


@pytest.fixture
def two_banks(new_tenant: Callable[[], TenantKit]) -> tuple[TenantKit, TenantKit]:
    return new_tenant(), new_tenant()


def test_a_good_file_is_loaded_matched_and_features_hand_checked(
    two_banks: tuple[TenantKit, TenantKit], tmp_path: Path
) -> None:
    bank, _ = two_banks
    rng = random.Random(5)
    alice, alice_id = customer(bank, rng, "甲")
    bob, bob_id = customer(bank, rng, "乙")
    stranger = identities.uscc(rng)
    accounts = write(
        tmp_path,
        "accounts.csv",
        [
            account("A1", alice_id, "2024-03-10"),
            account("A2", alice_id.lower(), "2026-01-20", "2026-10-15"),
            account("B1", bob_id, "2026-11-05"),
            account("S1", stranger, "2020-01-01"),
        ],
    )
    transactions = write(
        tmp_path,
        "txns.csv",
        [
            txn("A1", "1", "2026-08-20", "1000.00", "1000.00"),  # balance at the end of August: 1000
            txn("A1", "2", "2026-09-03", "500.50", "1500.50", "salary"),
            txn("A1", "3", "2026-10-31", "-200.00", "1300.50", "fee"),
            txn("A1", "4", "2026-11-30", "300.00", "1600.50"),  # the last day counted
            txn("A1", "5", "2026-12-01", "999.00", "2599.50"),  # the as-of day: not yet
            txn("A1", "6", "2026-06-10", "-1.00", "", "bounced"),  # 174 days before: in the 180
            txn("A1", "7", "2026-05-01", "-1.00", "", "bounced"),  # 214 days before: out
            txn("A2", "1", "2026-09-30", "100.00", "400.00", "transfer"),  # closed 2026-10-15
            txn("A2", "2", "2026-09-01", "50.00", "300.00", "bounced"),  # 91 days before: not in the 90
        ],
    )
    result = import_bank_accounts(
        bank.uow_factory(), bank.principal("risk_analyst"), CsvSource(accounts), CsvSource(transactions)
    )
    assert (result.accounts_created, result.accounts_matched, result.transactions_loaded) == (4, 3, 9)
    assert result.rejected == []
    with bank.uow_factory() as u:
        rows = {r.account_no: r for r in u.session.scalars(select(BankAccountRow))}
        assert rows["A2"].customer_id == alice and rows["S1"].customer_id is None
        assert rows["S1"].holder_id_masked == stranger[:4] + "*" * 10 + stranger[-4:]
        stored = u.session.scalars(
            select(BankTransactionRow).where(BankTransactionRow.txn_ref == "2", BankTransactionRow.account_no == "A1")
        ).one()
        assert (
            str(stored.amount) == "500.5000" and stored.counterparty is not None and "商贸" not in stored.counterparty
        )
    analyst = bank.principal("risk_analyst")
    batch = own_account_features(bank.uow_factory(), analyst, None, AS_OF)
    assert set(batch) == {alice, bob}
    a = batch[alice]
    # month ends: Nov 30 (A1 1600.50; A2 closed), Oct 31 (A1 1300.50; A2 closed on 10-15), Sep 30 (A1 1500.50 +
    # A2 400.00)
    assert a["own_avg_balance_3m"] == pytest.approx((1600.50 + 1300.50 + 1900.50) / 3)
    # last 90 days = from 2026-09-02: 500.50 + 300.00 + 100.00
    assert a["own_inflow_3m"] == pytest.approx(900.50)
    assert a["own_turnover_credits_3m"] == pytest.approx(300.00)
    assert a["own_salary_credits_3m"] == pytest.approx(500.50)
    assert a["own_bounced_6m"] == 2  # 06-10 and 09-01
    assert a["own_account_months"] == 32  # 2024-03-10 -> 2026-11-10
    b = batch[bob]
    assert b == {
        "own_avg_balance_3m": None,
        "own_inflow_3m": 0.0,
        "own_turnover_credits_3m": 0.0,
        "own_salary_credits_3m": 0.0,
        "own_bounced_6m": 0.0,
        "own_account_months": 0.0,
    }
    for cid in (alice, bob):
        assert own_account_features(bank.uow_factory(), analyst, [cid], AS_OF) == {cid: batch[cid]}
    # before Bob's account was opened he has no own-account data at all
    assert own_account_features(bank.uow_factory(), analyst, [bob], date(2026, 11, 5)) == {
        bob: dict.fromkeys(OWN_FEATURES)
    }
    with bank.uow_factory() as u:
        assert (
            u.session.scalar(
                select(func.count())
                .select_from(AuditRow)
                .where(AuditRow.tenant_id == bank.tenant.id, AuditRow.action == "bank_accounts.import")
            )
            == 1
        )
    again = import_bank_accounts(bank.uow_factory(), analyst, CsvSource(accounts), CsvSource(transactions))
    assert (again.accounts_updated, again.transactions_loaded, again.transactions_already_stored) == (4, 0, 9)


def test_rejected_rows_are_named_and_nothing_is_loaded_by_default(
    two_banks: tuple[TenantKit, TenantKit], tmp_path: Path
) -> None:
    bank, _ = two_banks
    rng = random.Random(6)
    _, holder = customer(bank, rng, "丙")
    accounts = tmp_path / "accounts.parquet"
    pd.DataFrame(
        [account("A1", holder), account("A2", "110101199003071235"), account("A3", holder, "not a day")]
    ).to_parquet(accounts)
    transactions = write(
        tmp_path,
        "txns.csv",
        [
            txn("A1", "1", "2026-08-20", "1000.00"),
            txn("A1", "2", "2026-08-21", "10.001"),
            txn("ZZ", "3", "2026-08-21", "5.00"),
            txn("A1", "4", "2026-08-22", "5.00", kind="gift"),
        ],
    )
    analyst = bank.principal("risk_analyst")
    with pytest.raises(ContractBroken) as refused:
        import_bank_accounts(bank.uow_factory(), analyst, ParquetSource(accounts), CsvSource(transactions))
    where = {(v.column, v.row) for v in refused.value.violations}
    assert ("accounts.holder_id_number", 2) in where and ("accounts.opened_on", 3) in where
    assert ("transactions.amount", 2) in where and ("transactions.account_no", 3) in where
    assert ("transactions.kind", 4) in where
    with bank.uow_factory() as u:
        assert (
            u.session.scalar(
                select(func.count()).select_from(BankAccountRow).where(BankAccountRow.tenant_id == bank.tenant.id)
            )
            == 0
        )
    partial = import_bank_accounts(
        bank.uow_factory(), analyst, ParquetSource(accounts), CsvSource(transactions), valid_only=True
    )
    assert (partial.accounts_created, partial.transactions_loaded) == (1, 1)
    named = {(r.file, r.source_row): r.reasons for r in partial.rejected}
    assert set(named) == {
        ("accounts", 2),
        ("accounts", 3),
        ("transactions", 2),
        ("transactions", 3),
        ("transactions", 4),
    }
    assert "not a valid resident ID" in named[("accounts", 2)] and "unknown account" in named[("transactions", 3)]
    assert "199003071235" not in named[("accounts", 2)]  # the ID number is masked in the report


def test_another_banks_accounts_are_neither_matched_nor_seen(
    two_banks: tuple[TenantKit, TenantKit], tmp_path: Path
) -> None:
    bank, other = two_banks
    rng = random.Random(7)
    theirs, their_id = customer(other, rng, "丁")
    accounts = write(tmp_path, "a.csv", [account("A1", their_id)])
    transactions = write(tmp_path, "t.csv", [txn("A1", "1", "2026-11-20", "100.00", "100.00")])
    mine = import_bank_accounts(
        bank.uow_factory(), bank.principal("risk_analyst"), CsvSource(accounts), CsvSource(transactions)
    )
    assert mine.accounts_matched == 0  # the other bank's customer is not ours
    other_analyst = other.principal("risk_analyst")
    assert own_account_features(other.uow_factory(), other_analyst, None, AS_OF) == {}
    assert own_account_features(other.uow_factory(), other_analyst, [theirs], AS_OF) == {
        theirs: dict.fromkeys(OWN_FEATURES)
    }
    # the other bank's transactions for an account number it does not hold are refused
    with pytest.raises(ContractBroken, match="unknown account"):
        import_bank_accounts(
            other.uow_factory(),
            other_analyst,
            CsvSource(write(tmp_path, "b.csv", [account("B9", their_id)])),
            CsvSource(transactions),
        )
    with pytest.raises(PermissionDenied):
        import_bank_accounts(bank.uow_factory(), bank.principal("marketer"), CsvSource(accounts))
