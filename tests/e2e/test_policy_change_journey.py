"""The credit-policy analyst's journey at a bank with a history, in real browsers: analyst A moves grade A's
score cut-off in the table editor, checks it, sees the golden tests pass, simulates it on the bank's own
decisions with the money, and submits it with a note; A cannot publish it; analyst B reads the evidence (note,
changes, tests, simulation) and publishes it as a 50 % challenger; the bank lives on for six weeks (applications
decided by both arms, loans paid out and repaid or not, close of business every night); the report shows both
arms over the test window with mature outcomes; A asks to promote the challenger, cannot confirm it, B does,
and the challenger is the champion."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from sqlalchemy import update
from tests import conftest as shared
from tests.e2e.conftest import LiveServer, _free_port, csp_violations

from microlend.api.app import create_app
from microlend.core.clock import FixedClock, SystemClock, set_clock
from microlend.core.db import make_engine, make_session_factory
from microlend.core.identity import system_principal
from microlend.core.migrate import upgrade
from microlend.core.tables import TenantRow
from microlend.decisioning import service as decisioning
from microlend.demo import providers
from microlend.demo.history import live_on, simulate
from microlend.demo.seed import DEMO_PASSWORD, DEMO_TENANT, seed

pytestmark = [pytest.mark.browser, pytest.mark.slow]
SCREENS = Path("/tmp/screens")
#: The bank's first life ends this many days before today; the challenger runs from then to today.
TEST_DAYS = 45


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The whole app on a database of its own: the demo bank lives here, apart from the other browser tests."""
    folder = tmp_path_factory.mktemp("policy-journey")
    url = f"sqlite:///{folder / 'e2e.db'}"
    engine = make_engine(url)
    upgrade(engine)
    settings = shared.test_settings(url).model_copy(update={"data_dir": folder,
                                                            "login_client_max_failures": 1_000_000})
    app = create_app(settings, engine=engine)
    port = _free_port()
    srv = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=srv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 20
    while not srv.started:
        if time.monotonic() > deadline:
            raise RuntimeError("the test server did not start")
        time.sleep(0.05)
    yield LiveServer(f"http://127.0.0.1:{port}", make_session_factory(engine))
    srv.should_exit = True
    thread.join(timeout=10)
    engine.dispose()


@pytest.fixture(scope="module")
def bank(server: LiveServer) -> Iterator[dict[str, Any]]:
    """The demo bank with 35 business days lived, ending TEST_DAYS days before today, and the sandboxes
    answering for its customers while the test runs."""
    demo = seed(server.uow(), customers=520)
    today = date.today()
    with server.uow() as u:
        u.session.execute(update(TenantRow).where(TenantRow.id == demo.tenant_id)
                          .values(business_date=today - timedelta(days=TEST_DAYS)))
        u.commit()
    with providers.start(providers.anchor_of(server.uow(), demo.tenant_id)) as sandbox:
        providers.connect(server.uow(), demo.tenant_id, sandbox.base_url)
        first = simulate(server.uow(), demo.tenant_id, days=35, per_day=6)
        assert first.applications > 150 and first.disbursed > 20
        yield {"tenant_id": demo.tenant_id, "first": first}
    set_clock(SystemClock())


def desk(browser: Any, locale: str = "en-US") -> tuple[Any, Any, list[str]]:
    context = browser.new_context(viewport={"width": 1280, "height": 900}, locale=locale)
    refused = csp_violations(context)
    return context, context.new_page(), refused


def sign_in(page: Any, server: LiveServer, who: str, target: str) -> None:
    page.goto(f"{server.url}{target}")
    page.fill("input[name=username]", f"{who}@{DEMO_TENANT}")
    page.fill("input[name=password]", DEMO_PASSWORD)
    page.click("main button[type=submit]")
    page.wait_for_url(f"**{target}")


def champion_hash(server: LiveServer, tenant_id: int) -> str:
    return decisioning.policy_setup(server.uow(), system_principal(tenant_id)).champion_hash


def test_an_analyst_changes_a_cut_off_and_a_second_person_publishes_reviews_and_promotes_it(
    server: LiveServer, bank: dict[str, Any], browser: Any
) -> None:
    SCREENS.mkdir(parents=True, exist_ok=True)
    tenant_id = bank["tenant_id"]
    old_champion = champion_hash(server, tenant_id)
    start = date.today() - timedelta(days=TEST_DAYS)
    set_clock(FixedClock(datetime(start.year, start.month, start.day, 2, 0, tzinfo=UTC)))  # 10:00 in Shanghai

    # --- the analyst edits grade A's cut-off (660 -> 670) in the table editor and checks it ---------------------
    a_context, a, a_refused = desk(browser)
    try:
        sign_in(a, server, "analyst", f"/policies/{old_champion}")
        a.click("[data-testid=edit-table-grade]")
        a.wait_for_url("**/tables/grade")
        assert a.locator("[name=c-6-g_score]").input_value() == "[620..660)"
        assert a.locator("[name=c-7-g_score]").input_value() == ">= 660"
        a.fill("[name=c-6-g_score]", "[620..670)")
        a.fill("[name=c-7-g_score]", ">= 670")
        a.click("[data-testid=check-table]")
        a.wait_for_selector("#lint [data-testid=lint-ok]")
        a.click("[data-testid=save-table]")
        a.wait_for_url("**done=saved")
        assert a.locator("[data-testid=status]").inner_text() == "Draft"
        draft = a.url.split("?")[0].rsplit("/", 1)[1]
        assert draft != old_champion
        golden = a.locator("[data-testid=golden]")
        assert golden.locator(".badge.bad").count() == 0
        passed, total = golden.locator("h2 .muted").inner_text().split("/")
        assert passed == total and int(total) > 50
        assert ">= 670" in a.locator("main").inner_text()

        # --- simulated on the bank's own decisions, with the money -----------------------------------------------
        a.click("text=Edit as a new version")
        a.wait_for_url(f"**/policies/new?base={draft}")
        assert a.locator("[data-testid=simulation-dataset]").input_value() == "bank_history"
        a.wait_for_selector("#lint [data-testid=lint-ok]")
        assert "670" in a.locator("#lint [data-testid=diff]").inner_text()
        a.click("[data-testid=simulate]")
        a.wait_for_selector("[data-testid=simulation-report] [data-testid=simulation-money]", timeout=60_000)
        source = a.locator("[data-testid=simulation-report] [data-testid=simulation-source]").inner_text()
        assert "of this bank's applications of the last 90 days" in source
        assert int(source.split()[0].replace(",", "")) == bank["first"].applications
        profit = a.locator("[data-testid=simulation-report] [data-testid=money-profit]").inner_text()
        expected_loss = a.locator("[data-testid=simulation-report] [data-testid=money-expected_loss]").inner_text()
        assert profit.strip() and expected_loss.strip() and expected_loss.strip() != "0.00"
        a.screenshot(path=str(SCREENS / "policy-journey-simulation.png"), full_page=True)

        a.fill("#note", "Grade A from 670: fewer large limits at the top band")
        a.click("[data-testid=submit]")
        a.wait_for_url(f"**/policies/{draft}?done=submitted", timeout=60_000)
        assert a.locator("[data-testid=status]").inner_text() == "Awaiting publication"

        # --- four eyes: the author cannot publish their own version ---------------------------------------------
        assert "a second person must publish it" in a.locator("[data-testid=publish]").inner_text()
        a.click("[data-testid=publish-button]")
        assert "a second person" in a.locator("[data-testid=refusal]").inner_text()
        assert decisioning.version_of(server.uow(), system_principal(tenant_id), draft).status == "submitted"
        assert not a_refused
    finally:
        a_context.close()

    # --- the second person reads the evidence and publishes it as a challenger on half the customers -----------
    b_context, b, b_refused = desk(browser, "zh-CN")
    try:
        sign_in(b, server, "analyst2", f"/policies/{draft}")
        evidence = b.locator("[data-testid=evidence]")
        assert b.locator("[data-testid=note]").inner_text() == "Grade A from 670: fewer large limits at the top band"
        assert "analyst@demo" in evidence.inner_text()
        assert str(bank["first"].applications) in evidence.locator("[data-testid=simulation-source]").inner_text()
        assert evidence.locator("[data-testid=evidence-money] [data-testid=money-profit]").count() == 1
        assert "670" in b.locator("main").inner_text()  # the changes against the version in force
        assert b.locator("[data-testid=golden] .badge.bad").count() == 0
        b.check("input[name=arm][value=challenger]")
        b.fill("input[name=share_percent]", "50")
        b.click("[data-testid=publish-button]")
        b.wait_for_url("**done=published")
        assert b.locator("[data-testid=status]").inner_text() == "已发布"
        assert b.locator(".badge.arm-challenger").count() == 1
        assert not b_refused
    finally:
        b_context.close()
    setup = decisioning.policy_setup(server.uow(), system_principal(tenant_id))
    assert (setup.champion_hash, setup.challenger_hash, setup.challenger_share_bp) == (old_champion, draft, 5000)

    # --- six weeks pass: applications decided by both arms, loans paid out, repaid or not ---------------------
    second = live_on(server.uow(), tenant_id, days=TEST_DAYS, per_day=6)
    assert second.disbursed > 0
    set_clock(SystemClock())

    # --- the report after a month of outcomes ---------------------------------------------------------------
    b_context, b, b_refused = desk(browser)
    try:
        sign_in(b, server, "analyst2", "/policies/arms?outcome_months=1")
        comparison = b.locator("[data-testid=comparison-challenger]")
        text = comparison.inner_text()
        assert "Test window from" in text
        rows = comparison.locator("tbody tr")
        assert rows.count() == 2
        assert "Champion" in rows.nth(0).inner_text() and "Challenger" in rows.nth(1).inner_text()
        decisions = [int(rows.nth(i).locator("td").nth(1).inner_text().replace(",", "")) for i in (0, 1)]
        assert all(n > 10 for n in decisions)
        assert sum(decisions) <= second.applications  # only the test window: none of the first life's decisions
        mature = [int(rows.nth(i).locator("td").nth(6).inner_text().split()[0].replace(",", "")) for i in (0, 1)]
        assert sum(mature) > 0
        # a month on book is too soon to be 30 days past due: no bad loan in either arm, so no test is claimed
        tests = comparison.locator("ul.small li")
        assert tests.nth(0).inner_text().startswith("Approval rate")
        assert "Bad rate" in tests.nth(1).inner_text() and "not enough observations yet" in tests.nth(1).inner_text()
        assert "on book for 1 months" in b.locator("[data-testid=outcome-rule]").inner_text()
        b.screenshot(path=str(SCREENS / "policy-journey-report.png"), full_page=True)
    finally:
        b_context.close()

    # --- promote: the analyst asks, cannot confirm their own request, the second person confirms --------------
    a_context, a, a_refused = desk(browser, "zh-CN")
    try:
        sign_in(a, server, "analyst", f"/policies/{draft}")
        a.fill("[data-testid=governance] input[name=note]", "A month of outcomes: the challenger holds up")
        a.click("[data-testid=request-button]")
        a.wait_for_url("**done=requested")
        assert "analyst@demo" in a.locator("[data-testid=change-request]").inner_text()
        a.click("[data-testid=confirm-button]")
        assert "双人复核" in a.locator("[data-testid=refusal]").inner_text()
        assert champion_hash(server, tenant_id) == old_champion
        assert not a_refused
    finally:
        a_context.close()

    b_context, b, b_refused = desk(browser)
    try:
        sign_in(b, server, "analyst2", f"/policies/{draft}")
        assert "A month of outcomes" in b.locator("[data-testid=change-request]").inner_text()
        b.click("[data-testid=confirm-button]")
        b.wait_for_url("**done=approved")
        assert b.locator(".badge.arm-champion").count() == 1
        b.goto(f"{server.url}/policies")
        champion_row = b.locator("[data-testid=policy-versions] .arm-champion")
        assert champion_row.count() == 1
        assert not b_refused
    finally:
        b_context.close()
    setup = decisioning.policy_setup(server.uow(), system_principal(tenant_id))
    assert (setup.champion_hash, setup.challenger_hash) == (draft, None)
    assert decisioning.version_of(server.uow(), system_principal(tenant_id), old_champion).status == "retired"
