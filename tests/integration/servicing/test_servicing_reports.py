"""Regulatory and finance reports on SQLite and PostgreSQL, over a portfolio lived through close of business
with a judgement downgrade, a collection on a non-performing loan, a write-off against the allowance, a
recovery and a loan falling into NPL by days past due: every roll-forward reconciles exactly, ties to the
ledger's accounts and to the loans' own figures; the Excel workbook carries the same figures; only the roles
that read the ledger may read them."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from io import BytesIO
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.api import errors
from microlend.api.routers import reports as reports_api
from microlend.bootstrap import load_modules
from microlend.core import tenancy
from microlend.core.db import make_session_factory
from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.identity import Principal, Role
from microlend.core.settings import Settings
from microlend.core.tables import TenantRow
from microlend.demo import identities
from microlend.parties.customers import NewCustomer, create_customer
from microlend.servicing import cob, provisions, reports, service
from microlend.servicing.ledger import Acct
from microlend.servicing.repository import loans
from microlend.servicing.service import Disbursement
from microlend.servicing.tables import ProvisionRunRow

D = Decimal
ZERO = D(0)
JANUARY_END = date(2026, 1, 31)
START, END = date(2026, 2, 1), date(2026, 6, 30)
SECRET = "reports-api-test-secret-0123456789abcdef"
_rng = random.Random(16)


@pytest.fixture(autouse=True)
def _handlers() -> None:
    load_modules()  # class changes join the loans' timelines as the application registers it


@dataclass
class Lived:
    bank: Bank
    written_off: int
    kept: int
    interest_only: int
    npl_at_downgrade: Decimal
    principal_written_off: Decimal
    against_allowance: Decimal
    shortfall: Decimal
    recovered: Decimal


def _today(bank: Bank) -> date:
    with bank.uow() as u:
        row = u.session.get(TenantRow, bank.tenant_id)
        assert row is not None
        return row.business_date


def _customer(bank: Bank, name: str, branch: str) -> int:
    birth = identities.birth_date_for_age(_rng, 40, date(2026, 1, 1))
    return create_customer(bank.uow(), bank.principal(Role.CREDIT_OFFICER), NewCustomer(
        kind="person", name=name, id_number=identities.resident_id(_rng, birth), phone=identities.mobile(_rng),
        branch=branch)).id


def _balances(bank: Bank) -> dict[str, Decimal]:
    tb = service.trial_balance(bank.uow(), bank.who)
    assert tb.balanced
    return {r.code: r.balance for r in tb.rows}


def _close(bank: Bank, last: date) -> None:
    cob.run_close_of_business(bank.uow(), bank.who, through=last)


def _pay_due(bank: Bank, loan_id: int) -> None:
    """Pay what is due today (arrears, penalty and the current installment)."""
    on = _today(bank)
    with bank.uow() as u:
        loan = loans(u).get(bank.tenant_id, loan_id)
        owed = sum((d.amount for d in loan.current_dues(on)), ZERO) - loan.credit_balance
    service.post_repayment(bank.uow(), bank.who, loan_id, owed)


def live(bank: Bank) -> Lived:
    """Three loans from 15 January to 30 June 2026: one written off, one repaid on time, one falling into NPL."""
    a, b = _customer(bank, "张三", "城关支行"), _customer(bank, "李四", "城南支行")
    l1 = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("12000"), 12, D("0.12"), customer_id=a)).id
    l2 = service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", D("6000"), 6, D("0.12"), customer_id=b)).id
    l3 = service.disburse(bank.uow(), bank.who, Disbursement("IO-STD", D("10000"), 12, D("0.12"))).id
    _close(bank, JANUARY_END)
    provisions.run_provisioning(bank.uow(), bank.who)  # 1 February
    _close(bank, date(2026, 2, 14))
    _pay_due(bank, l2)
    _close(bank, date(2026, 3, 10))
    officer = Principal(user_id=55, tenant_id=bank.tenant_id, username="loan-officer",
                        roles=frozenset({Role.CREDIT_OFFICER}))
    service.downgrade_loan(bank.uow(), officer, l1, "doubtful", "the borrower's shop burnt down")  # 11 March
    npl_at_downgrade = service.get_loan(bank.uow(), bank.who, l1).outstanding_principal
    service.post_repayment(bank.uow(), bank.who, l1, D("3000"))
    provisions.run_provisioning(bank.uow(), bank.who)
    asked = service.request_write_off(bank.uow(), bank.who, l1, "uncollectable after the fire")
    done = service.approve_write_off(bank.uow(), bank.principal(Role.APPROVER), asked.id)
    for month in (3, 4, 5):
        _close(bank, date(2026, month, 14))
        _pay_due(bank, l2)
    _close(bank, date(2026, 5, 31))  # the interest-only loan passes 90 days past due: substandard
    service.post_repayment(bank.uow(), bank.who, l1, D("1000"))  # 1 June: a recovery
    _close(bank, date(2026, 6, 14))
    _pay_due(bank, l2)
    _close(bank, END - timedelta(days=1))
    provisions.run_provisioning(bank.uow(), bank.who)  # 30 June
    _close(bank, END)
    return Lived(bank, l1, l2, l3, npl_at_downgrade, done.principal, done.against_allowance, done.shortfall,
                 D("1000"))


@pytest.fixture
def lived(bank: Bank) -> Lived:
    return live(bank)


class TestFiveCategory:
    def test_by_class_product_and_branch_tie_to_the_loans_and_the_ledger(self, lived: Lived) -> None:
        bank = lived.bank
        table = reports.five_category(bank.uow(), bank.who, END)
        total = table["total"]
        kept = service.get_loan(bank.uow(), bank.who, lived.kept)
        io = service.get_loan(bank.uow(), bank.who, lived.interest_only)
        assert io.loan_class == "substandard" and kept.loan_class == "normal"
        assert total["count"][io.loan_class] >= 1
        assert D(total["outstanding"]) == _balances(bank)[Acct.LOAN_PRINCIPAL]
        assert D(total["outstanding"]) == kept.outstanding_principal + io.outstanding_principal
        assert D(total["npl_balance"]) == io.outstanding_principal == D("10000")
        assert total["npl_ratio"] == str((D("10000") / D(total["outstanding"])).quantize(D("0.0001")))
        assert total["loans"] == 2 and total["npl_count"] == 1
        products = {p["product"]: p for p in table["by_product"]}
        assert set(products) == {"EI-STD", "IO-STD"}
        assert D(products["IO-STD"]["balance"]["substandard"]) == D("10000")
        assert D(products["EI-STD"]["outstanding"]) == kept.outstanding_principal
        branches = {b["branch"]: b for b in table["by_branch"]}
        assert set(branches) == {"城南支行", ""}  # the written-off loan of 城关支行 has nothing on the books
        assert branches["城南支行"]["loans"] == 1
        assert sum(D(b["outstanding"]) for b in table["by_branch"]) == D(total["outstanding"])

    def test_a_past_date_shows_the_classes_and_balances_of_then(self, lived: Lived) -> None:
        bank = lived.bank
        march = reports.five_category(bank.uow(), bank.who, date(2026, 3, 11))
        assert D(march["total"]["npl_balance"]) == ZERO  # downgraded and written off the same day
        before = reports.five_category(bank.uow(), bank.who, date(2026, 3, 10))
        assert before["total"]["npl_count"] == 0 and before["total"]["loans"] == 3
        january = reports.five_category(bank.uow(), bank.who, JANUARY_END)
        assert D(january["total"]["outstanding"]) == D("28000")
        assert january["total"]["count"]["normal"] == 3


class TestNplMovement:
    def test_the_roll_forward_reconciles_exactly_with_each_movement_from_the_loans(self, lived: Lived) -> None:
        bank = lived.bank
        r = reports.npl_movement(bank.uow(), bank.who, START, END)
        f = {k: D(r[k]) for k in ("opening", "new", "cured", "collections", "written_off", "other", "closing")}
        assert r["reconciled"]
        assert f["opening"] + f["new"] - f["cured"] - f["collections"] - f["written_off"] + f["other"] == f["closing"]
        assert f["opening"] == ZERO
        assert f["new"] == lived.npl_at_downgrade + D("10000")  # the judgement downgrade and 90 days past due
        assert r["counts"]["new"] == 2 and r["counts"]["written_off"] == 1
        assert f["written_off"] == lived.principal_written_off
        assert f["collections"] == lived.npl_at_downgrade - lived.principal_written_off  # the 3,000's principal
        assert f["cured"] == ZERO
        closing = reports.five_category(bank.uow(), bank.who, END)["total"]["npl_balance"]
        assert f["closing"] == D(closing) == D("10000")

    def test_consecutive_periods_chain(self, lived: Lived) -> None:
        bank = lived.bank
        first = reports.npl_movement(bank.uow(), bank.who, START, date(2026, 5, 20))
        second = reports.npl_movement(bank.uow(), bank.who, date(2026, 5, 21), END)
        assert first["reconciled"] and second["reconciled"]
        assert first["closing"] == second["opening"]
        assert D(first["new"]) + D(second["new"]) == lived.npl_at_downgrade + D("10000")
        mid = reports.five_category(bank.uow(), bank.who, date(2026, 5, 20))["total"]["npl_balance"]
        assert D(first["closing"]) == D(mid)

    def test_a_period_ending_before_it_starts_is_refused(self, lived: Lived) -> None:
        with pytest.raises(ValidationError, match="to:"):
            reports.npl_movement(lived.bank.uow(), lived.bank.who, END, START)
        with pytest.raises(ValidationError, match="from:"):
            reports.interest_income(lived.bank.uow(), lived.bank.who, date.min, END)
        with pytest.raises(ValidationError, match="from:"):
            reports.provision_movement(lived.bank.uow(), lived.bank.who, date(2000, 1, 1), END)  # over ten years


class TestProvisionMovement:
    def test_closing_is_the_allowance_account_and_each_movement_its_source(self, lived: Lived) -> None:
        bank = lived.bank
        r = reports.provision_movement(bank.uow(), bank.who, START, END)
        f = {k: D(r[k]) for k in ("opening", "charge", "written_off", "recoveries", "releases", "other", "closing")}
        assert r["reconciled"]
        assert f["opening"] + f["charge"] - f["written_off"] + f["recoveries"] - f["releases"] + f["other"] \
            == f["closing"]
        assert f["closing"] == _balances(bank)[Acct.LOAN_LOSS_ALLOWANCE]
        with bank.uow() as u:
            assert f["closing"] == provisions.allowance_balance(u.session, bank.tenant_id)
            runs = list(u.session.execute(select(ProvisionRunRow).where(
                ProvisionRunRow.tenant_id == bank.tenant_id, ProvisionRunRow.as_of.between(START, END))).scalars())
        assert len(runs) >= 3  # on demand, and each month end's close of business
        assert f["charge"] - f["releases"] == sum((r.change for r in runs), ZERO)
        assert f["closing"] == runs[-1].total  # the last run's total: nothing moved the allowance since
        with bank.uow() as u:
            january = u.session.execute(select(ProvisionRunRow.total).where(
                ProvisionRunRow.tenant_id == bank.tenant_id, ProvisionRunRow.as_of < START)
                .order_by(ProvisionRunRow.as_of.desc(), ProvisionRunRow.id.desc()).limit(1)).scalar_one()
        assert f["opening"] == january > 0  # the month-end run of 31 January
        assert f["other"] == ZERO
        assert f["written_off"] == lived.against_allowance > 0
        assert f["recoveries"] == lived.recovered
        assert D(r["write_off_shortfall"]) == lived.shortfall


class TestInterestIncome:
    def test_income_and_memo_accounts_roll_forward_to_the_ledger(self, lived: Lived) -> None:
        bank = lived.bank
        r = reports.interest_income(bank.uow(), bank.who, START, END)
        assert r["reconciled"]
        tb = _balances(bank)
        for part, acct in (("interest", Acct.INTEREST_INCOME), ("penalty", Acct.PENALTY_INCOME)):
            f = {k: D(v) for k, v in r["income"][part].items() if k != "account"}
            assert f["opening"] + f["accrued"] - f["reversed"] + f["cash_basis"] + f["other"] == f["closing"]
            assert f["closing"] == tb[acct]
        for part, acct in (("interest", Acct.OFF_BALANCE_INTEREST), ("penalty", Acct.OFF_BALANCE_PENALTY)):
            f = {k: D(v) for k, v in r["memo"][part].items() if k != "account"}
            assert f["opening"] + f["accrued_off_balance"] + f["moved_from_income"] - f["collected"] + f["other"] \
                == f["closing"] == tb[acct]
        interest = {k: D(v) for k, v in r["income"]["interest"].items() if k != "account"}
        assert interest["accrued"] > 0 and interest["reversed"] > 0
        assert D(r["memo"]["interest"]["accrued_off_balance"]) > 0  # the non-accrual interest-only loan
        january = reports.interest_income(bank.uow(), bank.who, date(2026, 1, 15), JANUARY_END)
        assert january["income"]["interest"]["closing"] == r["income"]["interest"]["opening"]
        assert D(january["income"]["interest"]["reversed"]) == ZERO
        assert D(january["income"]["interest"]["cash_basis"]) == ZERO


def test_reading_the_reports_needs_the_ledger_permission(lived: Lived) -> None:
    bank = lived.bank
    for role in (Role.MARKETER, Role.CREDIT_OFFICER, Role.COLLECTOR):
        with pytest.raises(PermissionDenied):
            reports.five_category(bank.uow(), bank.principal(role), END)
        with pytest.raises(PermissionDenied):
            reports.npl_movement(bank.uow(), bank.principal(role), START, END)
        with pytest.raises(PermissionDenied):
            reports.provision_movement(bank.uow(), bank.principal(role), START, END)
        with pytest.raises(PermissionDenied):
            reports.interest_income(bank.uow(), bank.principal(role), START, END)


# --- HTTP and Excel --------------------------------------------------------------------------------------------


@pytest.fixture
def client(bank: Bank) -> Iterator[TestClient]:
    settings = Settings(mode="test", database_url=bank.engine.url.render_as_string(hide_password=False),
                        secret_key=SECRET)
    app = FastAPI()
    app.state.settings = settings
    app.state.session_factory = make_session_factory(bank.engine)
    errors.install(app)
    app.include_router(reports_api.router)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def token_for(bank: Bank) -> Callable[..., dict[str, str]]:
    settings = Settings(mode="test", secret_key=SECRET)
    counter = iter(range(10_000))

    def make(*roles: Role) -> dict[str, str]:
        with bank.uow() as u:
            row = tenancy.add_user(u.session, bank.tenant_id, f"report-user-{next(counter)}", "correct-horse-1",
                                   [r.value for r in roles])
            who = tenancy.principal_for(row)
            u.commit()
        return {"Authorization": f"Bearer {tenancy.issue_token(who, settings)}"}

    return make


PERIOD = {"from": START.isoformat(), "to": END.isoformat()}
ROUTES: list[tuple[str, dict[str, str]]] = [
    ("/api/v1/reports/five-category", {"date": END.isoformat()}),
    ("/api/v1/reports/npl-movement", PERIOD),
    ("/api/v1/reports/provision-movement", PERIOD),
    ("/api/v1/reports/interest-income", PERIOD),
]


def _cells(content: bytes) -> dict[str, dict[Any, Any]]:
    wb = load_workbook(BytesIO(content))
    return {ws.title: {row[0]: row[1:] for row in ws.iter_rows(values_only=True)} for ws in wb.worksheets}


def test_the_api_answers_the_ledger_roles_and_refuses_the_others(
    lived: Lived, client: TestClient, token_for: Callable[..., dict[str, str]]
) -> None:
    allowed = [token_for(r) for r in (Role.ADMIN, Role.OPERATIONS, Role.RISK_ANALYST)]
    refused = [token_for(r) for r in (Role.MARKETER, Role.CREDIT_OFFICER, Role.COLLECTOR)]
    for path, params in ROUTES:
        assert client.get(path, params=params).status_code == 401
        for h in refused:
            assert client.get(path, params=params, headers=h).status_code == 403, path
        for h in allowed:
            got = client.get(path, params=params, headers=h)
            assert got.status_code == 200, (path, got.text)
    bad = client.get("/api/v1/reports/npl-movement", params={"from": "2026-06-30", "to": "2026-02-01"},
                     headers=allowed[0])
    assert bad.status_code == 422 and "period" in bad.text
    default = client.get("/api/v1/reports/provision-movement", headers=allowed[1]).json()
    assert (default["from"], default["to"]) == ("2026-06-01", END.isoformat())  # the month to the last close
    assert client.get("/api/v1/reports/npl-movement", params={"from": "x", "to": "2026-02-01"},
                      headers=allowed[0]).status_code == 422


def test_the_excel_workbooks_carry_the_figures_of_the_json(
    lived: Lived, client: TestClient, token_for: Callable[..., dict[str, str]]
) -> None:
    h = token_for(Role.OPERATIONS)
    npl = client.get("/api/v1/reports/npl-movement", params=PERIOD, headers=h).json()
    book = client.get("/api/v1/reports/npl-movement", params={**PERIOD, "format": "xlsx"}, headers=h)
    assert book.status_code == 200 and book.headers["content-type"].startswith(
        "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet")
    cells = _cells(book.content)["npl-movement"]
    for key in ("opening", "new", "cured", "collections", "written_off", "other", "closing"):
        assert D(str(cells[key][0])) == D(npl[key]), key
    table = client.get("/api/v1/reports/five-category", params={"date": END.isoformat()}, headers=h).json()
    sheets = _cells(client.get("/api/v1/reports/five-category", params={"date": END.isoformat(),
                                                                           "format": "xlsx"}, headers=h).content)
    total = sheets["total"]["total"]
    # the columns: five counts, five balances, loans, outstanding, NPL balance, NPL ratio
    assert list(total[:5]) == [table["total"]["count"][c] for c in reports.CLASSES]
    assert [D(str(v)) for v in total[5:10]] == [D(table["total"]["balance"][c]) for c in reports.CLASSES]
    assert D(str(total[12])) == D(table["total"]["npl_balance"]) == D("10000")
    assert set(sheets["by product"]) - {None} == {"EI-STD", "IO-STD"}
    income = client.get("/api/v1/reports/interest-income", params=PERIOD, headers=h).json()
    sheets = _cells(client.get("/api/v1/reports/interest-income", params={**PERIOD, "format": "xlsx"},
                               headers=h).content)
    assert D(str(sheets["income interest"]["closing"][0])) == D(income["income"]["interest"]["closing"])
    assert D(str(sheets["memo penalty"]["closing"][0])) == D(income["memo"]["penalty"]["closing"])
