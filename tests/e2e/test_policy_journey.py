"""On a phone: analyst A raises the default policy's cut-off, lints, simulates and submits; A is refused
publishing their own version; analyst B publishes it. Screenshots of the simulation and the policy page go to
/tmp/screens/."""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Any

import pytest
from tests.e2e.conftest import LiveServer

from microlend.core import tenancy
from microlend.core.uow import UnitOfWork

pytestmark = pytest.mark.browser
SCREENS = Path("/tmp/screens")
PASSWORD = "policy-work-2026"

RAISE_CUTOFF = """() => {
  const area = document.querySelector('[data-testid=policy-json]');
  const doc = JSON.parse(area.value);
  doc.metadata.name = 'micro_loan_cutoff_540';
  const knockout = doc.nodes.find(n => n.id === 'knockout');
  knockout.content.rules[knockout.content.rules.length - 1].k_score = '< 540';
  for (const t of doc.tests) {
    if (t.name.startsWith('score 520')) { t.expect = {outcome: 'decline', reasons: ['SCORE_BELOW_CUTOFF']}; }
  }
  area.value = JSON.stringify(doc, null, 2);
  area.dispatchEvent(new Event('change', {bubbles: true}));
}"""


@pytest.fixture(scope="module")
def analysts(live_server: LiveServer) -> tuple[str, str]:
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(UnitOfWork(live_server.session_factory), name)
    with UnitOfWork(live_server.session_factory) as u:
        for who in ("a", "b"):
            tenancy.add_user(u.session, t.id, f"analyst-{who}@{name}", PASSWORD, ["risk_analyst"])
        u.commit()
    return f"analyst-a@{name}", f"analyst-b@{name}"


def sign_in(page: Any, url: str, username: str, target: str) -> None:
    page.goto(f"{url}{target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", PASSWORD)
    page.click("button[type=submit]")
    page.wait_for_url(f"**{target}")


def fits_a_phone(page: Any) -> bool:
    return bool(page.evaluate("document.documentElement.scrollWidth") <= 375)


def test_an_analyst_changes_the_policy_and_a_second_analyst_publishes_it(
    live_server: LiveServer, browser: Any, phone_page: Any, analysts: tuple[str, str]
) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    page = phone_page
    author, checker = analysts
    sign_in(page, live_server.url, author, "/policies")
    assert page.locator("h1").inner_text() == "授信政策"
    assert page.locator("[data-testid=policy-versions] .arm-champion").count() == 1
    assert fits_a_phone(page)

    page.click("[data-testid=new-draft]")
    page.wait_for_url("**/policies/new")
    page.evaluate(RAISE_CUTOFF)
    page.wait_for_selector("[data-testid=diff]")
    assert page.locator("[data-testid=lint-ok]").count() == 1
    assert "< 540" in page.locator("[data-testid=diff]").inner_text()

    page.click("[data-testid=simulate]")
    page.wait_for_selector("[data-testid=simulation-report] img.chart", timeout=60_000)
    assert page.locator("[data-testid=approval-rate]").inner_text().endswith("%")
    assert fits_a_phone(page)
    page.locator("#simulation").scroll_into_view_if_needed()
    page.screenshot(path=str(SCREENS / "policy-simulation.png"), full_page=True)

    page.fill("#note", "提高准入分数线至540")
    page.click("[data-testid=submit]")
    page.wait_for_selector("[data-testid=publish]")
    assert page.locator("[data-testid=status]").inner_text() == "待发布"
    page.click("[data-testid=publish-button]")
    refusal = page.locator("[data-testid=refusal]")
    assert "双人复核" in refusal.inner_text()
    version_url = page.url.split("?")[0].removesuffix("/publish")

    context = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
    second = context.new_page()
    try:
        target = version_url.removeprefix(live_server.url)
        sign_in(second, live_server.url, checker, target)
        second.click("[data-testid=publish-button]")
        second.wait_for_selector("[role=status]")
        assert second.locator("[data-testid=status]").inner_text() == "已发布"
        assert second.locator(".badge.arm-champion").count() == 1
        assert second.locator("[data-testid=golden] .badge.bad").count() == 0
        assert fits_a_phone(second)
        second.screenshot(path=str(SCREENS / "policy-version.png"), full_page=True)
    finally:
        context.close()
