"""Extension and restructuring on the staff loan page (展期/重组), in Chinese and in English: an officer asks, the
page then shows the request waiting; the same officer cannot decide it, an approver approves it there and the
loan runs on its new schedule; a collector may neither ask nor decide. A schedule on a fixed repayment day shows
its broken first period."""

from __future__ import annotations

from decimal import Decimal

from tests.conftest import Api, sign_in_page

from microlend.core.identity import Principal
from microlend.core.tables import TenantRow
from microlend.servicing import service
from microlend.servicing.service import Disbursement

D = Decimal


def _sign_in(api: Api, role: str, next: str) -> Principal:
    api.client.cookies.clear()
    username, who = api.kit.user(role)
    sign_in_page(api.client, username, next=next)
    return who


def test_an_officer_asks_and_an_approver_extends_a_loan_on_its_page(api: Api) -> None:
    _, admin = api.kit.user("admin")
    uow = api.kit.uow_factory
    loan_id = service.disburse(uow(), admin, Disbursement("EI-STD", D("12000"), 12, D("0.12"))).id
    before = service.get_loan(uow(), admin, loan_id)
    _sign_in(api, "credit_officer", f"/loans/{loan_id}")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get(f"/loans/{loan_id}")
    assert page.status_code == 200 and 'data-testid="restructure"' in page.text and "展期" in page.text
    assert "style=" not in page.text.split('data-testid="restructure"')[1].split("</section>")[0]
    api.client.cookies.set("ml_lang", "en")
    assert "Capitalise the arrears" in api.client.get(f"/loans/{loan_id}").text
    assert api.client.post(f"/loans/{loan_id}/restructure", data={
        "kind": "rollover", "term_months": "18", "reason": "x"}).status_code == 422
    assert api.client.post(f"/loans/{loan_id}/restructure", data={
        "kind": "extension", "term_months": "6", "reason": "shorter"}).status_code == 422
    done = api.client.post(f"/loans/{loan_id}/restructure", data={
        "kind": "extension", "term_months": "18", "annual_rate": "10", "reason": "a longer trading cycle"},
        follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/loans/{loan_id}"
    [asked] = service.list_restructures(uow(), admin, loan_id=loan_id)
    assert asked.status == "pending" and asked.annual_rate == D("0.10")
    waiting = api.client.get(f"/loans/{loan_id}").text
    assert f'data-restructure="{asked.id}"' in waiting and 'data-testid="approve-restructure"' not in waiting
    assert api.client.post(f"/loans/{loan_id}/restructures/{asked.id}/approve").status_code == 403
    _sign_in(api, "collector", f"/loans/{loan_id}")
    assert 'data-testid="restructure"' not in api.client.get(f"/loans/{loan_id}").text
    assert api.client.post(f"/loans/{loan_id}/restructure", data={
        "kind": "extension", "term_months": "18", "reason": "x"}).status_code == 403
    _sign_in(api, "approver", f"/loans/{loan_id}")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get(f"/loans/{loan_id}")
    assert 'data-testid="approve-restructure"' in page.text and "待审批的展期/重组申请" in page.text
    ok = api.client.post(f"/loans/{loan_id}/restructures/{asked.id}/approve", follow_redirects=False)
    assert ok.status_code == 303
    after = service.get_loan(uow(), admin, loan_id)
    assert after.maturity_date > before.maturity_date and after.annual_rate == D("0.10")
    assert service.get_restructure(uow(), admin, asked.id).status == "approved"
    api.client.cookies.clear()


def test_a_schedule_on_a_repayment_day_shows_its_broken_first_period(api: Api) -> None:
    _, admin = api.kit.user("admin")
    with api.kit.uow_factory() as u:
        tenant = u.session.get(TenantRow, api.kit.tenant.id)
        assert tenant is not None
        day = 27 if tenant.business_date.day == 28 else 28  # never the disbursement day: a broken period
    loan = service.disburse(api.kit.uow_factory(), admin, Disbursement("EI-STD", D("12000"), 6, D("0.12"),
                                                                        repayment_day=day))
    first = loan.installments[0]
    assert first.broken_period and first.due_date.day == day
    _sign_in(api, "credit_officer", f"/loans/{loan.id}")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get(f"/loans/{loan.id}").text
    assert f"{first.days} 天，非整月期" in page and page.count('data-testid="broken-period"') == 1
    api.client.cookies.set("ml_lang", "en")
    assert f"{first.days} days, broken period" in api.client.get(f"/loans/{loan.id}").text
    api.client.cookies.clear()
