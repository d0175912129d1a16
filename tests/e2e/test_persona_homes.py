"""Every persona signs in, in a real browser on a phone, onto the home page of their own work, in Chinese and
in English: their cards are there, a card's link opens its full page, and the page fits the phone."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.conftest import use_german_champion
from tests.e2e.conftest import LiveServer

from microlend.core import tenancy
from microlend.core.identity import Role
from microlend.core.uow import UnitOfWork

pytestmark = pytest.mark.browser

#: persona -> (the card its home must show, Chinese title, English title, the page the card opens)
PERSONAS: dict[Role, tuple[str, str, str, str]] = {
    Role.CREDIT_OFFICER: ("queue", "我的任务", "My queue", "/workbench/queue"),
    Role.APPROVER: ("approvals", "待审批", "Waiting approvals", "/workbench/approvals"),
    Role.RISK_ANALYST: ("models", "模型", "Models", "/analyst/models"),
    Role.MARKETER: ("campaigns", "营销活动", "Campaigns", "/marketing/campaigns"),
    Role.COLLECTOR: ("cases", "今日案件", "Today's cases", "/collections"),
    Role.AUDITOR: ("activity", "最近操作", "Recent activity", "/audit"),
    Role.OPERATIONS: ("jobs", "批处理作业与异常", "Jobs and exceptions", "/operations/jobs"),
    Role.ADMIN: ("bank", "全行概览", "The bank at a glance", "/workbench/dashboard"),
}
PASSWORD = "home-page-2026"


@pytest.fixture(scope="module")
def bank(live_server: LiveServer) -> dict[Role, str]:
    factory = live_server.session_factory
    name = f"home-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(UnitOfWork(factory), name)
    use_german_champion(UnitOfWork(factory), t.id)
    users: dict[Role, str] = {}
    with UnitOfWork(factory) as u:
        for role in PERSONAS:
            username = f"{role.value}@{name}"
            tenancy.add_user(u.session, t.id, username, PASSWORD, [role.value], branch="总行")
            users[role] = username
        u.commit()
    return users


def _sign_in(page: Any, url: str, username: str) -> None:
    page.context.clear_cookies()
    page.goto(f"{url}/login")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url("**/home")


@pytest.mark.parametrize("role", list(PERSONAS), ids=[r.value for r in PERSONAS])
def test_each_persona_lands_on_its_own_work_in_both_languages(
        live_server: LiveServer, phone_page: Any, bank: dict[Role, str], role: Role) -> None:
    key, zh_title, en_title, target = PERSONAS[role]
    page = phone_page
    _sign_in(page, live_server.url, bank[role])
    assert page.locator("h1").inner_text() == "首页"
    card = page.locator(f"[data-testid=home-card][data-card={key}]")
    assert card.locator("h2").inner_text() == zh_title
    assert page.locator("[data-testid=nav-home]").get_attribute("aria-current") == "page"
    width = page.evaluate("document.documentElement.scrollWidth")
    assert width <= 375, f"the home page is {width} px wide on a 375 px phone"

    page.goto(f"{live_server.url}/lang/en?next=/home")
    page.wait_for_url("**/home")
    assert page.locator("h1").inner_text() == "Home"
    assert card.locator("h2").inner_text() == en_title
    assert "首页" not in page.locator("main").inner_text()

    card.locator("[data-testid=card-link]").click()
    page.wait_for_url(f"**{target}*")
    assert page.locator("h1").count() == 1
    page.goto(f"{live_server.url}/lang/zh_CN?next=/home")
