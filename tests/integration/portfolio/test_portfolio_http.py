"""The portfolio API and pages over the hand-counted book: the JSON figures, the same figures on the pages
(zh-CN and English), the Excel export, the roles that may see them and bad input."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from fastapi.testclient import TestClient
from openpyxl import load_workbook
from tests.conftest import Api, sign_in_page
from tests.integration.portfolio.hand_book import AS_OF, BOOK, MONTHS, OTHER, put_loans

QUERY = f"as_of={AS_OF.isoformat()}&months={MONTHS}"


@pytest.fixture
def booked(api: Api, new_tenant) -> Api:  # type: ignore[no-untyped-def]
    put_loans(api.kit.uow_factory(), api.kit.tenant.id, BOOK)
    other = new_tenant()
    put_loans(other.uow_factory(), other.tenant.id, {"X": OTHER})
    return api


def test_the_api_returns_the_hand_counted_figures(booked: Api) -> None:
    r = booked.client.get(f"/api/v1/portfolio/vintages?{QUERY}", headers=booked.token("risk_analyst"))
    assert r.status_code == 200, r.text
    cohorts = {c["month"]: c for c in r.json()["cohorts"]}
    assert list(cohorts) == ["2025-01", "2025-02", "2025-03"]
    assert cohorts["2025-01"]["loans"] == 4
    assert cohorts["2025-01"]["ever_30"] == [0, 0, 2, 2]
    assert cohorts["2025-01"]["rate_30"] == ["0.0000", "0.0000", "0.5000", "0.5000"]
    assert cohorts["2025-01"]["rate_90"] == ["0.0000", "0.0000", "0.2500", "0.2500"]

    r = booked.client.get(f"/api/v1/portfolio/roll-rates?{QUERY}", headers=booked.token("operations"))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["states"] == ["M0", "M1", "M2", "M3", "M3+", "written_off", "paid"]
    mar = next(t for t in body["transitions"] if t["month"] == "2025-03")
    assert mar["counts"]["M1"] == {"M0": 1, "M1": 0, "M2": 1, "M3": 0, "M3+": 0, "written_off": 1, "paid": 0}
    assert mar["rates"]["M1"]["written_off"] == "0.3333"
    assert mar["flow_rates"]["M1>M2"] == "0.3333" and mar["flow_rates"]["M3>M3+"] is None
    assert mar["cure_rate"] == "0.2500"
    assert body["total"]["counts"]["M0"]["M1"] == 4  # B C H in February, A in April


def test_the_pages_show_the_api_figures_in_both_languages(booked: Api) -> None:
    client: TestClient = booked.client
    username, _ = booked.kit.user("risk_analyst")
    api_v = client.get(f"/api/v1/portfolio/vintages?{QUERY}", headers=booked.token_for(username)).json()
    api_r = client.get(f"/api/v1/portfolio/roll-rates?{QUERY}", headers=booked.token_for(username)).json()
    sign_in_page(client, username)
    for lang, heading in (("en", "Vintages"), ("zh_CN", "账龄分析")):
        client.cookies.set("ml_lang", lang)
        page = client.get(f"/portfolio/vintages?{QUERY}")
        assert page.status_code == 200, page.text
        assert heading in page.text and "<polyline" in page.text
        for c in api_v["cohorts"]:
            row = re.search(rf'<tr data-cohort="{c["month"]}">(.*?)</tr>', page.text, re.S)
            assert row is not None
            shown = re.findall(r'data-rate="([^"]*)"', row.group(1))
            assert shown == c["rate_30"]
        page90 = client.get(f"/portfolio/vintages?{QUERY}&measure=90").text
        jan = re.search(r'<tr data-cohort="2025-01">(.*?)</tr>', page90, re.S)
        assert jan is not None and re.findall(r'data-rate="([^"]*)"', jan.group(1)) == api_v["cohorts"][0]["rate_90"]

        for t in [None, *api_r["transitions"]]:
            m = api_r["total"] if t is None else t
            url = f"/portfolio/roll-rates?{QUERY}" + ("" if t is None else f"&month={t['month']}")
            page = client.get(url)
            assert page.status_code == 200, page.text
            assert ("Roll rates" if lang == "en" else "迁徙率") in page.text
            cells = re.findall(r'<tr data-from="([^"]+)">(.*?)</tr>', page.text, re.S)
            counts = {a: dict(re.findall(r'data-to="([^"]+)" data-count="(\d+)"', row)) for a, row in cells}
            assert {a: {b: int(n) for b, n in row.items()} for a, row in counts.items()} == m["counts"]
        cures = dict(re.findall(r'<tr data-month="([^"]+)">.*?data-cure="([^"]*)"', page.text, re.S))
        assert cures == {t["month"]: t["cure_rate"] or "" for t in api_r["transitions"]}


def test_the_excel_export_carries_the_same_figures(booked: Api) -> None:
    username, _ = booked.kit.user("operations")
    sign_in_page(booked.client, username)
    booked.client.cookies.set("ml_lang", "en")
    r = booked.client.get(f"/portfolio/export.xlsx?{QUERY}")
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/vnd.openxmlformats")
    wb = load_workbook(io.BytesIO(r.content))
    assert wb.sheetnames == ["Vintages 30+", "Vintages 90+", "Roll rates", "Flow and cure rates",
                             "Collections performance"]
    rows = list(wb["Vintages 30+"].iter_rows(values_only=True))
    assert rows[1][:6] == ("2025-01", 4, 0, 0, 0.5, 0.5)
    flows = {row[0]: row for row in wb["Flow and cure rates"].iter_rows(values_only=True)}
    assert Decimal(str(flows["2025-03"][-1])) == Decimal("0.25")


@pytest.mark.parametrize("role", ["credit_officer", "collector", "marketer", "auditor", "approver"])
def test_other_roles_are_refused(booked: Api, role: str) -> None:
    headers = booked.token(role)
    for path in ("vintages", "roll-rates"):
        assert booked.client.get(f"/api/v1/portfolio/{path}?{QUERY}", headers=headers).status_code == 403
    username, _ = booked.kit.user(role)
    sign_in_page(booked.client, username)
    for path in ("/portfolio/vintages", "/portfolio/roll-rates", "/portfolio/export.xlsx"):
        assert booked.client.get(path).status_code == 403


def test_bad_input_is_a_clear_4xx(booked: Api) -> None:
    headers = booked.token("admin")
    for query in ("months=1", "months=61", "as_of=2025-13-01", "months=abc"):
        r = booked.client.get(f"/api/v1/portfolio/vintages?{query}", headers=headers)
        assert r.status_code in (400, 422), (query, r.status_code)
    username, _ = booked.kit.user("admin")
    sign_in_page(booked.client, username)
    for query in ("months=1", "as_of=yesterday", "months=x"):
        r = booked.client.get(f"/portfolio/roll-rates?{query}")
        assert r.status_code in (400, 422), (query, r.status_code)


def test_the_menu_offers_the_pages_to_risk_only(booked: Api) -> None:
    username, _ = booked.kit.user("risk_analyst")
    sign_in_page(booked.client, username)
    assert 'href="/portfolio/vintages"' in booked.client.get("/portfolio/roll-rates").text
    username, _ = booked.kit.user("credit_officer")
    sign_in_page(booked.client, username)
    assert 'href="/portfolio/vintages"' not in booked.client.get("/customers").text
