"""The finance report pages and the write-off queue as staff see them: each report renders in Chinese and in
English with its table and chart, its Excel download opens with the page's figures, the roles without the
ledger are refused; a write-off request is approved or rejected by a second person on the queue page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import BytesIO

from openpyxl import load_workbook
from tests.conftest import Api, sign_in_page

from microlend.core.identity import Principal
from microlend.core.tables import TenantRow
from microlend.servicing import cob, reports, service
from microlend.servicing.service import Disbursement

D = Decimal


def _portfolio(api: Api) -> tuple[Principal, list[int]]:
    """Two loans through close of business; one downgraded to doubtful by judgement on the second day."""
    _, admin = api.kit.user("admin")
    _, officer = api.kit.user("credit_officer")
    uow = api.kit.uow_factory
    ids = [service.disburse(uow(), admin, Disbursement("EI-STD", D(a), 12, D("0.12"))).id for a in ("12000", "8000")]
    with uow() as u:
        row = u.session.get(TenantRow, api.kit.tenant.id)
        assert row is not None
        today = row.business_date
    cob.run_close_of_business(uow(), admin, through=today + timedelta(days=1))
    service.downgrade_loan(uow(), officer, ids[0], "doubtful", "the borrower's shop burnt down")
    cob.run_close_of_business(uow(), admin, through=today + timedelta(days=2))  # reports show closed days
    return admin, ids


def _sign_in(api: Api, role: str, next: str) -> Principal:
    api.client.cookies.clear()
    username, who = api.kit.user(role)
    sign_in_page(api.client, username, next=next)
    return who


def test_the_report_pages_in_both_languages_with_a_chart_and_their_excel(api: Api) -> None:
    admin, _ = _portfolio(api)
    _sign_in(api, "operations", "/reports/five-category")
    table = reports.five_category(api.kit.uow_factory(), admin)
    for name, zh, en in (("five-category", "贷款五级分类情况表", "Five-category table"),
                         ("npl-movement", "不良贷款生成与处置", "NPL formation and disposal"),
                         ("provision-movement", "贷款损失准备变动", "Provision movement"),
                         ("interest-income", "利息收入核对", "Interest income reconciliation")):
        api.client.cookies.set("ml_lang", "zh_CN")
        page = api.client.get(f"/reports/{name}")
        assert page.status_code == 200, page.text
        assert zh in page.text and "<svg" in page.text
        assert name == "five-category" or "期末" in page.text
        assert en not in page.text
        api.client.cookies.set("ml_lang", "en")
        page = api.client.get(f"/reports/{name}")
        assert page.status_code == 200 and en in page.text and zh not in page.text and "<svg" in page.text
        book = api.client.get(f"/reports/{name}.xlsx")
        assert book.status_code == 200
        assert load_workbook(BytesIO(book.content)).worksheets
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get("/reports/five-category")
    assert "不良贷款余额" in page.text and "可疑" in page.text
    assert D(table["total"]["npl_balance"]) == D("12000") and D(table["total"]["outstanding"]) == D("20000")
    sheet = load_workbook(BytesIO(api.client.get("/reports/five-category.xlsx").content))["total"]
    values = [c.value for c in sheet[2]]
    assert D(str(values[13])) == D("12000") and D(str(values[12])) == D("20000")  # NPL, outstanding
    bad = api.client.get("/reports/npl-movement", params={"start": "2026-06-30", "end": "2026-02-01"})
    assert bad.status_code == 422 and "period" in bad.text
    assert api.client.get("/reports/npl-movement", params={"start": "soon"}).status_code == 422
    assert api.client.get("/reports/nothing").status_code == 404
    for role in ("marketer", "credit_officer"):
        _sign_in(api, role, "/")
        assert api.client.get("/reports/five-category").status_code == 403
        assert api.client.get("/reports/five-category.xlsx").status_code == 403
    api.client.cookies.clear()
    assert api.client.get("/reports/five-category", follow_redirects=False).status_code == 303


def test_the_write_off_queue_needs_a_second_person(api: Api) -> None:
    admin, ids = _portfolio(api)
    asked = service.request_write_off(api.kit.uow_factory(), admin, ids[0], "uncollectable after the fire")
    other = service.request_write_off(api.kit.uow_factory(), admin, ids[1], "absconded", reason_code="fraud",
                                      documents=["police report 2026-17"])
    _sign_in(api, "approver", "/workbench/write-offs")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get("/workbench/write-offs")
    assert page.status_code == 200 and "核销审批" in page.text
    assert f'data-write-off="{asked.id}"' in page.text and f'data-write-off="{other.id}"' in page.text
    api.client.cookies.set("ml_lang", "en")
    assert "Write-off queue" in api.client.get("/workbench/write-offs").text
    done = api.client.post(f"/workbench/write-offs/{asked.id}/approve", follow_redirects=False)
    assert done.status_code == 303
    assert service.get_loan(api.kit.uow_factory(), admin, ids[0]).status == "written_off"
    empty = api.client.post(f"/workbench/write-offs/{other.id}/reject", data={"reason": " "})
    assert empty.status_code == 422
    no = api.client.post(f"/workbench/write-offs/{other.id}/reject", data={"reason": "the police found him"},
                         follow_redirects=False)
    assert no.status_code == 303
    assert service.get_write_off(api.kit.uow_factory(), admin, other.id).status == "rejected"
    assert service.get_loan(api.kit.uow_factory(), admin, ids[1]).status == "active"
    page = api.client.get("/workbench/write-offs")
    assert f'data-write-off="{asked.id}"' not in page.text and f'data-write-off="{other.id}"' not in page.text
    # a collector can neither see the queue nor decide
    third = service.request_write_off(api.kit.uow_factory(), admin, ids[1], "absconded again", reason_code="fraud",
                                      documents=["police report 2026-18"])
    _sign_in(api, "collector", "/")
    assert api.client.get("/workbench/write-offs").status_code == 403
    assert api.client.post(f"/workbench/write-offs/{third.id}/approve").status_code == 403
    assert service.get_write_off(api.kit.uow_factory(), admin, third.id).status == "pending"
    api.client.cookies.clear()


def test_an_officer_downgrades_a_loan_by_judgement_on_its_page(api: Api) -> None:
    admin, ids = _portfolio(api)
    _sign_in(api, "credit_officer", f"/loans/{ids[1]}")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get(f"/loans/{ids[1]}")
    assert page.status_code == 200 and 'data-testid="downgrade"' in page.text and "人工下调分类" in page.text
    api.client.cookies.set("ml_lang", "en")
    assert "Judgement downgrade" in api.client.get(f"/loans/{ids[1]}").text
    # the doubtful loan offers only loss
    doubtful = api.client.get(f"/loans/{ids[0]}").text
    assert 'value="loss"' in doubtful and 'value="substandard"' not in doubtful
    assert api.client.post(f"/loans/{ids[1]}/classification",
                           data={"to_class": "substandard", "reason": " "}).status_code == 422
    assert api.client.post(f"/loans/{ids[1]}/classification",
                           data={"to_class": "excellent", "reason": "x"}).status_code == 422
    done = api.client.post(f"/loans/{ids[1]}/classification",
                           data={"to_class": "substandard", "reason": "main customer failed"},
                           follow_redirects=False)
    assert done.status_code == 303 and done.headers["location"] == f"/loans/{ids[1]}"
    assert service.get_loan(api.kit.uow_factory(), admin, ids[1]).loan_class == "substandard"
    again = api.client.post(f"/loans/{ids[1]}/classification", data={"to_class": "special_mention", "reason": "x"})
    assert again.status_code == 409
    _sign_in(api, "collector", f"/loans/{ids[1]}")
    assert 'data-testid="downgrade"' not in api.client.get(f"/loans/{ids[1]}").text
    assert api.client.post(f"/loans/{ids[1]}/classification",
                           data={"to_class": "loss", "reason": "x"}).status_code == 403
    assert service.get_loan(api.kit.uow_factory(), admin, ids[1]).loan_class == "substandard"
    api.client.cookies.clear()
