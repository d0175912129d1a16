"""A risk analyst reads the vintage curves and the roll rates on a phone, in Chinese and in English."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from tests.e2e.conftest import LiveServer
from tests.integration.portfolio.hand_book import AS_OF, BOOK, MONTHS, put_loans

from microlend.core import tenancy
from microlend.core.uow import UnitOfWork

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def analyst(live_server: LiveServer) -> dict[str, str]:
    factory = live_server.session_factory
    name = f"e2e-{uuid.uuid4().hex[:6]}"
    t = tenancy.create_tenant(UnitOfWork(factory), name)
    put_loans(UnitOfWork(factory), t.id, BOOK)
    username = f"risk@{name}"
    with UnitOfWork(factory) as u:
        tenancy.add_user(u.session, t.id, username, "field-work-2026", ["risk_analyst"])
        u.commit()
    return {"username": username, "password": "field-work-2026"}


def test_an_analyst_reads_vintages_and_roll_rates_on_a_phone(
    live_server: LiveServer, phone_page: Any, analyst: dict[str, str]
) -> None:
    page = phone_page
    query = f"as_of={AS_OF.isoformat()}&months={MONTHS}"
    page.goto(f"{live_server.url}/login?next=/portfolio/vintages%3F{query.replace('&', '%26')}")
    page.fill("input[name=username]", analyst["username"])
    page.fill("input[name=password]", analyst["password"])
    page.click("button[type=submit]")
    page.wait_for_url("**/portfolio/vintages**")
    assert page.locator("h1").inner_text() == "账龄分析"
    assert page.locator("svg.lines polyline").count() == 3  # January, February and March's loans
    assert page.locator("tr[data-cohort='2025-01'] td[data-mob='2']").inner_text() == "50.0%"
    # the page fits the phone: wide tables scroll inside their frame, the page itself does not
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1

    page.goto(f"{live_server.url}/portfolio/roll-rates?{query}&month=2025-03")
    assert page.locator("h1").inner_text() == "迁徙率"
    cell = page.locator("tr[data-from='M1'] td[data-to='written_off']")
    assert cell.inner_text() == "33.3%" and "heat-" in (cell.get_attribute("class") or "")
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1

    page.goto(f"{live_server.url}/lang/en?next=/portfolio/roll-rates%3F{query.replace('&', '%26')}")
    assert page.locator("h1").inner_text() == "Roll rates"
    assert page.locator("tr[data-month='2025-03'] td[data-cure]").inner_text() == "25.0%"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1

    page.goto(f"{live_server.url}/portfolio/vintages?{query}")
    assert page.locator("h1").inner_text() == "Vintages"
    assert page.locator("svg.lines polyline").count() == 3
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
