"""Staff pages through HTTP: sign-in with a cookie, language switch, customers, audit page."""

from __future__ import annotations

from tests.battery import audit_count
from tests.conftest import Api, sign_in_page
from tests.integration.test_customers_api import make_customer


def _sign_in(api: Api, *roles: str) -> None:
    username, _ = api.kit.user(*roles)
    sign_in_page(api.client, username, "/customers")


def test_pages_need_a_sign_in(api: Api) -> None:
    api.client.cookies.clear()
    r = api.client.get("/customers", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_an_officer_sees_customers_masked_in_both_languages(api: Api) -> None:
    api.client.cookies.clear()
    cid = make_customer(api)
    _sign_in(api, "credit_officer")
    api.client.cookies.set("ml_lang", "zh_CN")
    page = api.client.get("/customers").text
    assert "客户" in page and "共 1 户" in page
    detail = api.client.get(f"/customers/{cid}").text
    assert "**********" in detail and "查看完整证件号和手机号" in detail
    api.client.get("/lang/en?next=/customers", follow_redirects=False)
    api.client.cookies.set("ml_lang", "en")
    assert "1 in total" in api.client.get("/customers").text
    api.client.cookies.clear()


def test_an_open_redirect_is_not_possible(api: Api) -> None:
    r = api.client.get("/lang/en?next=//evil.example", follow_redirects=False)
    assert r.headers["location"] == "/"


def test_the_audit_page_is_for_auditors(api: Api) -> None:
    api.client.cookies.clear()
    _sign_in(api, "auditor")
    records = audit_count(api)
    assert records > 0
    api.client.cookies.set("ml_lang", "zh_CN")
    r = api.client.get("/audit")
    assert r.status_code == 200
    assert f"链完整：{records} 条记录" in r.text and "Chain intact" not in r.text
    api.client.cookies.set("ml_lang", "en")
    r = api.client.get("/audit")
    assert r.status_code == 200
    assert f"Chain intact: {records} records" in r.text and "链完整" not in r.text
    api.client.cookies.clear()
    _sign_in(api, "marketer")
    assert api.client.get("/audit").status_code == 403
    api.client.cookies.clear()
