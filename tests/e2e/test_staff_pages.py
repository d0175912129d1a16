"""A staff member signs in on a phone, finds a customer and switches language."""

from __future__ import annotations

import random
import uuid
from datetime import date
from typing import Any

import pytest
from playwright.sync_api import expect
from tests.conftest import use_german_champion
from tests.e2e.conftest import LiveServer

from microlend.core import tenancy
from microlend.core.identity import system_principal
from microlend.core.uow import UnitOfWork
from microlend.demo import identities
from microlend.parties.customers import NewCustomer, create_customer

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def officer(live_server: LiveServer) -> dict[str, str]:
    factory = live_server.session_factory
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(UnitOfWork(factory), name)
    use_german_champion(UnitOfWork(factory), t.id)
    username = f"officer@{name}"
    with UnitOfWork(factory) as u:
        tenancy.add_user(u.session, t.id, username, "field-work-2026", ["credit_officer"])
        u.commit()
    rng = random.Random(3)
    who = system_principal(t.id)
    for i in range(3):
        birth = identities.birth_date_for_age(rng, 30 + i, date(2026, 1, 1))
        create_customer(UnitOfWork(factory), who, NewCustomer(
            kind="person", name=f"测试客户{i}", id_number=identities.resident_id(rng, birth),
            phone=identities.mobile(rng), industry="retail"))
    return {"username": username, "password": "field-work-2026"}


def test_an_officer_signs_in_finds_a_customer_and_switches_language(
    live_server: LiveServer, phone_page: Any, officer: dict[str, str]
) -> None:
    page = phone_page
    page.goto(f"{live_server.url}/customers")
    assert "/login" in page.url
    assert page.locator("h1").inner_text() == "登录"
    page.fill("input[name=username]", officer["username"])
    page.fill("input[name=password]", "wrong-password")
    page.click("button[type=submit]")
    assert page.locator("[role=alert]").inner_text() == "wrong username or password"
    page.fill("input[name=password]", officer["password"])
    page.click("button[type=submit]")
    page.wait_for_url("**/customers")
    assert page.locator("h1").inner_text() == "客户"
    rows = page.locator("[data-testid=customer-list] li")
    assert rows.count() == 3
    # the page fits a 375 px phone: nothing scrolls sideways
    assert page.evaluate("document.documentElement.scrollWidth") <= 375

    page.fill("input[type=search]", "测试客户1")
    # (locators, not a JS string: the pages' Content-Security-Policy allows no eval, the test's neither)
    expect(page.locator("[data-testid=customer-list] li")).to_have_count(1)
    page.locator("[data-testid=customer-list] a").first.click()
    page.wait_for_url("**/customers/*")
    assert "*" in page.locator("[data-testid=id-number]").inner_text()
    page.get_by_role("button", name="查看完整证件号和手机号").click()
    expect(page.locator("[data-testid=id-number]")).not_to_contain_text("*")

    page.get_by_role("link", name="English").click()
    page.wait_for_load_state()
    assert page.locator("dt").first.inner_text() == "ID number"
    # on a phone the menu folds behind its button, which names the current item in the page's language
    expect(page.get_by_test_id("menu-button")).to_contain_text("Customers")
    page.get_by_role("link", name="中文").click()
    page.wait_for_load_state()
    assert page.locator("dt").first.inner_text() == "证件号码"


def test_the_api_documentation_runs_under_its_content_security_policy(live_server: LiveServer,
                                                                      phone_page: Any) -> None:
    """Swagger UI starts from a script file of ours: no inline script, no eval (the fixture fails the test
    on any refusal the browser reports)."""
    phone_page.goto(f"{live_server.url}/docs")
    expect(phone_page.locator(".swagger-ui .info .title")).to_contain_text("Microlend")
    expect(phone_page.locator(".opblock").first).to_be_visible()
