"""A collector on a phone (375 x 740, in Chinese): from the queue to an overdue loan's case, takes it, logs a
call with the borrower, records a promise to pay, attaches a photo and downloads it again; the borrower pays,
close of business finds the promise kept, and the case page says so."""

from __future__ import annotations

import uuid
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from tests.e2e.conftest import LiveServer
from tests.e2e.test_workbench import sign_in

from microlend.core import tenancy
from microlend.core.clock import FixedClock, SystemClock, set_clock, utcnow
from microlend.core.tables import TenantRow
from microlend.parties.tables import CustomerRow
from microlend.servicing import cob, service
from microlend.servicing.service import Disbursement, collecting

PASSWORD = "collections-2026"
PNG = b"\x89PNG\r\n\x1a\n" + bytes(120)
#: 10:00 in Shanghai, the day after the close that found the loan overdue
MORNING = datetime(2026, 2, 17, 2, 0, tzinfo=UTC)


def an_overdue_loan(server: LiveServer) -> tuple[str, int, int]:
    name = f"coll-{uuid.uuid4().hex[:6]}"
    bank = tenancy.create_tenant(server.uow(), name, business_date=date(2026, 1, 15))
    with server.uow() as u:
        admin = tenancy.principal_for(tenancy.add_user(u.session, bank.id, f"admin@{name}", PASSWORD, ["admin"]))
        tenancy.add_user(u.session, bank.id, f"collector@{name}", PASSWORD, ["collector"])
        tag = uuid.uuid4().hex
        customer = CustomerRow(tenant_id=bank.id, kind="person", name="孙老板", id_number_enc="x",
                               id_number_index=f"id-{tag}", id_number_masked="x", phone_enc="x",
                               phone_index=f"p-{tag}", phone_masked="x", marketing_consent=False, attributes={},
                               created_at=utcnow(), updated_at=utcnow())
        u.session.add(customer)
        u.session.flush()
        customer_id = int(customer.id)
        u.commit()
    loan_id = service.disburse(server.uow(), admin, Disbursement("EI-STD", Decimal("12000"), 12,
                                                                 customer_id=customer_id)).id
    with server.uow() as u:
        row = u.session.get(TenantRow, bank.id)
        assert row is not None
        row.business_date = date(2026, 2, 16)
        u.commit()
    cob.run_close_of_business(server.uow(), admin)
    [case] = [c for c in collecting.list_cases(server.uow(), admin) if c.loan_id == loan_id]
    return name, loan_id, case.id


def test_a_collector_works_a_case_on_a_phone_to_a_kept_promise(live_server: LiveServer, phone_page: Any) -> None:
    name, loan_id, case_id = an_overdue_loan(live_server)
    page = phone_page
    sign_in(page, live_server, f"collector@{name}", PASSWORD, "/collections")
    set_clock(FixedClock(MORNING))
    try:
        page.click(f"a[href='/collections/cases/{case_id}']")
        page.wait_for_url(f"**/collections/cases/{case_id}")
        assert (page.text_content("[data-testid=amount-overdue]") or "").strip()
        page.click("[data-testid=take]")
        page.wait_for_url("**done=taken")
        page.select_option("[data-testid=contact-form] select[name=party]", "borrower")
        page.select_option("[data-testid=contact-form] select[name=outcome]", "promise")
        page.click("[data-testid=contact-form] button[type=submit]")
        page.wait_for_url("**done=contact")
        page.fill("[data-testid=promise-form] input[name=amount]", "1500.00")
        page.fill("[data-testid=promise-form] input[name=promise_date]", "2026-02-19")
        page.click("[data-testid=promise-form] button[type=submit]")
        page.wait_for_url("**done=promise")
        assert "还款承诺已记录" in (page.text_content("[data-testid=done]") or "")
        assert "未到期" in page.content()  # the promise is pending
        # a photo of the shop's shutter, taken on the phone, attached to the case
        page.set_input_files("[data-testid=attachment-form] input[name=file]",
                             {"name": "卷帘门.png", "mimeType": "image/png", "buffer": PNG})
        page.click("[data-testid=attachment-form] button[type=submit]")
        page.wait_for_url("**done=attached")
        assert (page.text_content("[data-testid=attachment]") or "").strip() == "卷帘门.png"
        assert page.evaluate("document.documentElement.scrollWidth") <= 375 + 1
        with page.expect_download() as download:
            page.click("[data-testid=attachment]")
        assert download.value.path().read_bytes() == PNG

        who = _admin(live_server, name)
        service.post_repayment(live_server.uow(), who, loan_id, Decimal("1500.00"))
        assert collecting.check_promises(live_server.uow(), who, date(2026, 2, 17))["promises_kept"] == 1

        page.goto(f"{live_server.url}/collections/cases/{case_id}")
        assert "已兑现" in page.content()
        page.goto(f"{live_server.url}/collections")
        assert f"#{case_id}" in (page.text_content("[data-testid=my-case]") or "")
    finally:
        set_clock(SystemClock())


def _admin(server: LiveServer, name: str) -> Any:
    from sqlalchemy import select

    from microlend.core.tables import UserRow

    with server.uow() as u:
        row = u.session.execute(select(UserRow).where(UserRow.username == f"admin@{name}")).scalar_one()
        return tenancy.principal_for(row)
