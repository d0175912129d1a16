"""A risk analyst reads the collectors' performance on a phone, in Chinese and in English."""

from __future__ import annotations

import itertools
import uuid
from typing import Any

import pytest
from tests.conftest import TenantKit
from tests.e2e.conftest import LiveServer
from tests.integration.portfolio.collections_book import seed

from microlend.core import tenancy
from microlend.core.uow import UnitOfWork

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def analyst(live_server: LiveServer) -> dict[str, str]:
    factory = live_server.session_factory
    t = tenancy.create_tenant(UnitOfWork(factory), f"e2e-{uuid.uuid4().hex[:6]}")
    kit = TenantKit(t, lambda: UnitOfWork(factory), itertools.count())
    users = seed(kit, names=("王丽娟", "Bartholomew Livingstone-Harrington"))
    username, _ = kit.user("risk_analyst")
    return {"username": username, "password": "correct-horse-1", "bob": users["bob"]}


def test_an_analyst_reads_collections_performance_on_a_phone(
    live_server: LiveServer, phone_page: Any, analyst: dict[str, str]
) -> None:
    page = phone_page
    query = "from=2025-01&to=2025-03"
    page.goto(f"{live_server.url}/login?next=/portfolio/collections%3F{query.replace('&', '%26')}")
    page.fill("input[name=username]", analyst["username"])
    page.fill("input[name=password]", analyst["password"])
    page.click("button[type=submit]")
    page.wait_for_url("**/portfolio/collections**")
    assert page.locator("h1").inner_text() == "催收绩效"
    assert page.locator("svg.lines polyline").count() == 2  # a kept-rate line per collector
    bob = page.locator(f"table[data-testid=collectors] tr[data-collector='{analyst['bob']}']")
    assert bob.locator("td[data-figure=kept_rate]").inner_text() == "100.0%"
    # the page fits the phone: wide tables scroll inside their frame, the page itself does not
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1

    page.goto(f"{live_server.url}/lang/en?next=/portfolio/collections%3F{query.replace('&', '%26')}%26month=2025-02")
    assert page.locator("h1").inner_text() == "Collections performance"
    assert bob.locator("td[data-figure=amount_recovered]").get_attribute("data-value") == "130.00"
    assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
