"""A large loan on phones: referred, recommended by an officer, refused to the same officer (four eyes),
approved by an approver, accepted by the borrower, released by staff and visible as a loan."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from tests.e2e.conftest import LiveServer, csp_violations
from tests.e2e.test_borrower_journey import (
    Bank,
    apply_on_phone,
    bank,  # noqa: F401  (the module's bank fixture)
    bureau_file_arrives,
    fits_the_phone,
    register_on_phone,
    shot,
)

pytestmark = pytest.mark.browser


@pytest.fixture
def phones(browser: Any) -> Iterator[Any]:
    """Separate phones (browser contexts) for the borrower and each member of staff."""
    contexts: list[Any] = []
    refused: list[list[str]] = []

    def open_phone() -> Any:
        ctx = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  locale="zh-CN")
        contexts.append(ctx)
        refused.append(csp_violations(ctx))
        return ctx.new_page()

    yield open_phone
    for ctx in contexts:
        ctx.close()
    assert not [m for seen in refused for m in seen]


def sign_in(page: Any, server: LiveServer, username: str, password: str, target: str) -> None:
    page.goto(f"{server.url}{target}")
    page.fill("input[name=username]", username)
    page.fill("input[name=password]", password)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{target}")


def test_large_loan_is_referred_reviewed_with_four_eyes_and_disbursed(
    live_server: LiveServer, phone_page: Any, phones: Any, bank: Bank  # noqa: F811
) -> None:
    borrower = phone_page
    who = register_on_phone(borrower, live_server, bank, turnover="3000000")  # room for 250,000 under the cap
    bureau_file_arrives(live_server, bank, who["mobile"])
    apply_on_phone(borrower, "300000", product="EP-STD")
    assert borrower.locator("[data-testid=decision]").get_attribute("data-status") == "referred"
    application_url = borrower.url
    app_id = application_url.rsplit("/", 1)[1]
    shot(borrower, "05-borrower-referred")

    officer = phones()
    sign_in(officer, live_server, bank.staff("officer", "approver"), bank.password, "/workbench/queue")
    officer.click(f"a[href='/applications/{app_id}']")
    officer.wait_for_url(f"**/applications/{app_id}")
    assert "AMOUNT_ABOVE_AUTHORITY" in officer.locator("[data-testid=assistance]").inner_text()
    assert fits_the_phone(officer)
    shot(officer, "06-officer-application")
    officer.fill("input[name=amount]", "250000")
    officer.fill("input[name=annual_rate]", "8.5")
    officer.select_option("select[name=premises]", "owned")
    officer.select_option("select[name=stock_matches]", "yes")
    officer.fill("textarea[name=findings]", "店面自有，库存与账目相符")
    officer.click("[data-testid=recommend-form] button[type=submit]")
    officer.locator("text=调查意见已提交").wait_for()
    officer.click("[data-testid=approve]")  # the same person tries to approve
    refusal = officer.locator("[data-testid=refusal]")
    refusal.wait_for()
    assert "双人审批" in refusal.inner_text()
    shot(officer, "07-four-eyes-refusal")

    approver = phones()
    sign_in(approver, live_server, bank.staff("approver"), bank.password, "/workbench/approvals")
    assert approver.locator(f"a[href='/applications/{app_id}']").count() == 1
    shot(approver, "08-approver-queue")
    approver.click(f"a[href='/applications/{app_id}']")
    approver.wait_for_url(f"**/applications/{app_id}")
    approver.click("[data-testid=approve]")
    approver.locator("text=已批准").first.wait_for()

    borrower.reload()
    assert borrower.locator("[data-testid=decision]").get_attribute("data-status") == "approved"
    assert "250,000" in borrower.locator("[data-testid=offer-amount]").inner_text()
    borrower.check("[data-testid=agree]")
    borrower.click("[data-testid=accept]")
    borrower.wait_for_url(application_url)  # above the automatic disbursement authority: staff release it
    assert borrower.locator("[data-testid=awaiting-release]").is_visible()

    approver.goto(f"{live_server.url}/workbench/approvals")
    approver.click(f"a[href='/applications/{app_id}']")
    approver.click("[data-testid=disburse]")
    approver.locator("[data-testid=loan-link]").wait_for()
    approver.click("[data-testid=loan-link]")
    approver.wait_for_url("**/loans/*")
    assert approver.locator("[data-testid=schedule] tbody tr").count() == 12
    assert fits_the_phone(approver)
    shot(approver, "09-staff-loan-page")

    borrower.goto(f"{live_server.url}/b")
    assert borrower.locator("[data-testid=my-loans] a").count() == 1

    approver.goto(f"{live_server.url}/workbench/dashboard?scope=all")
    assert approver.locator("[data-testid=stp]").inner_text().endswith("%")
    assert fits_the_phone(approver)
    shot(approver, "10-dashboard")
