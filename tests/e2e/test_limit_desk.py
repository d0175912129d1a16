"""增信提额 on phones: the review proposes a decrease from a poor behaviour score; the customer's officer sees
the evidence and supports it with a note; the officer cannot approve it; an approver reads the case and
approves, and only then is the limit lowered."""

from __future__ import annotations

import random
import uuid
from collections.abc import Iterator
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.conftest import LiveServer, csp_violations
from tests.e2e.test_workbench import sign_in

from microlend.core import tenancy
from microlend.core.tenancy import business_date
from microlend.core.uow import UnitOfWork
from microlend.demo import identities
from microlend.origination.limit_review import review_credit_lines
from microlend.parties.customers import NewCustomer, create_customer
from microlend.servicing import service as servicing
from microlend.servicing.tables import CreditLineRow, InstallmentRow, LoanRow

pytestmark = pytest.mark.browser
PASSWORD = "limit-desk-2026"


@pytest.fixture
def phones(browser: Any) -> Iterator[Any]:
    contexts: list[Any] = []
    refused: list[list[str]] = []

    def open_phone(locale: str = "zh-CN") -> Any:
        ctx = browser.new_context(viewport={"width": 375, "height": 740}, is_mobile=True, has_touch=True,
                                  locale=locale)
        contexts.append(ctx)
        refused.append(csp_violations(ctx))
        return ctx.new_page()

    yield open_phone
    for ctx in contexts:
        ctx.close()
    assert not [m for seen in refused for m in seen]


def a_line_with_poor_behaviour(server: LiveServer) -> tuple[str, int]:
    """A bank with an officer, an approver and a line whose drawdowns were repaid late months ago."""
    name = f"e2e-ld-{uuid.uuid4().hex[:6]}"
    bank = tenancy.create_tenant(UnitOfWork(server.session_factory), name)
    with server.uow() as u:
        officer = tenancy.principal_for(tenancy.add_user(u.session, bank.id, f"officer@{name}", PASSWORD,
                                                         ["credit_officer"]))
        tenancy.add_user(u.session, bank.id, f"approver@{name}", PASSWORD, ["approver"])
        runner = tenancy.principal_for(tenancy.add_user(u.session, bank.id, f"runner@{name}", PASSWORD,
                                                        ["approver"]))
        admin = tenancy.principal_for(tenancy.add_user(u.session, bank.id, f"admin@{name}", PASSWORD, ["admin"]))
        u.commit()
    rng = random.Random(61)
    birth = identities.birth_date_for_age(rng, 45, date(2026, 1, 1))
    customer = create_customer(server.uow(), officer, NewCustomer(
        "person", "钱老板", identities.resident_id(rng, birth), identities.mobile(rng),
        officer_user_id=officer.user_id))
    line = servicing.open_credit_line(server.uow(), admin, "RV-STD", Decimal("40000"), customer_id=customer.id)
    for _ in range(4):
        servicing.draw_down(server.uow(), admin, line.id, Decimal("3000"))
    with server.uow() as u:
        on = business_date(u.session, bank.id)
        rows = u.session.execute(select(InstallmentRow, LoanRow).join(LoanRow, LoanRow.id == InstallmentRow.loan_id)
                                 .where(LoanRow.credit_line_id == line.id)).all()
        for k, (inst, loan) in enumerate(rows):
            loan.disbursed_on = on - timedelta(days=330)
            inst.due_date = on - timedelta(days=300 - 25 * k)
            inst.due_day = inst.due_date.toordinal()
            inst.paid_on = inst.due_date + timedelta(days=20)
        u.commit()
    run = review_credit_lines(server.uow(), runner, apply=True)
    assert [(r.action, r.status) for r in run.lines] == [("decrease", "pending")]
    return name, line.id


def limit_of(server: LiveServer, line_id: int) -> Decimal:
    with server.uow() as u:
        row = u.session.get(CreditLineRow, line_id)
        assert row is not None
        return row.limit


def test_officer_recommends_and_another_person_approves_a_decrease(live_server: LiveServer, phones: Any) -> None:
    bank, line_id = a_line_with_poor_behaviour(live_server)
    officer = phones()
    sign_in(officer, live_server, f"officer@{bank}", PASSWORD, "/limit-desk/candidates")
    card = officer.locator("[data-testid=candidate]")
    assert card.count() == 1
    assert "降额" in card.inner_text() and "近12个月逾期4期及以上" in card.inner_text()
    assert officer.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    card.locator("input[value=support]").check()
    card.locator("[data-testid=note]").fill("近期流水下降，同意降额")
    card.locator("[data-testid=recommend]").click()
    officer.wait_for_url("**/limit-desk/candidates?done=recommended")
    assert officer.locator("[role=status]").inner_text() == "推荐意见已记录"
    officer.goto(f"{live_server.url}/limit-desk/cases/{card_id(officer, live_server)}")
    assert officer.locator("[data-testid=approve]").count() == 0  # the officer cannot decide
    assert limit_of(live_server, line_id) == Decimal("40000.00")

    approver = phones("en-US")
    sign_in(approver, live_server, f"approver@{bank}", PASSWORD, "/limit-desk/approvals")
    approver.locator("[data-testid=approval] a").first.click()
    assert "近期流水下降，同意降额" in approver.locator("[data-testid=officer-note]").inner_text()
    assert "Four or more late instalments in 12 months" in approver.locator("[data-testid=factors]").inner_text()
    assert approver.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
    approver.locator("[data-testid=approve]").click()
    approver.wait_for_url("**/limit-desk/approvals?done=approved")
    assert approver.locator("[data-testid=done]").inner_text() == "Limit change approved and applied"
    assert approver.locator("[data-testid=approval]").count() == 0
    assert limit_of(live_server, line_id) == Decimal("28000.00")


def card_id(page: Any, server: LiveServer) -> str:
    """The change id of the (single) candidate on the officer's list."""
    href = page.locator("[data-testid=candidate] h2 a").get_attribute("href")
    assert href is not None
    return href.rsplit("/", 1)[1]
