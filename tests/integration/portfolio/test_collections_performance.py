"""Collections performance of a small book against figures worked out by hand (see `collections_book`), on
SQLite and PostgreSQL: the service, the API, the page in both languages and the Excel sheet."""

from __future__ import annotations

import io
import re
from decimal import Decimal

import pytest
from openpyxl import load_workbook
from tests.conftest import Api, TenantKit, sign_in_page
from tests.integration.portfolio.collections_book import seed, seed_other_bank

from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.uow import UnitOfWork
from microlend.servicing import collections_performance as cp

PERIOD = cp.Period((2025, 1), (2025, 3))


@pytest.fixture
def book(bank: TenantKit, new_tenant) -> tuple[TenantKit, dict[str, str]]:  # type: ignore[no-untyped-def]
    users = seed(bank)
    seed_other_bank(new_tenant())
    return bank, users


def figures(f: cp.Figures) -> dict[str, object]:
    return {"worked": f.cases_worked, "contacts": f.contacts, "made": f.promises_made, "kept": f.promises_kept,
            "broken": f.promises_broken, "pending": f.promises_pending, "lapsed": f.promises_lapsed,
            "promised": f.promised_amount, "kept_amount": f.kept_amount, "repayments": f.repayments,
            "recovered": f.amount_recovered, "closed": f.cases_closed, "cured": f.cases_cured}


def test_the_figures_match_the_hand_count(book: tuple[TenantKit, dict[str, str]], uow: UnitOfWork) -> None:
    kit, users = book
    r = cp.collections_performance(uow, kit.principal("risk_analyst"), PERIOD)
    assert r.months == ("2025-01", "2025-02", "2025-03")
    assert [(c.username, c.name) for c in r.collectors] == [(users["alice"], "Alice Wang"), (users["bob"], "Bob Li")]
    alice, bob = r.collectors
    zero = Decimal("0.00")
    assert [figures(f) for f in alice.months] == [
        {"worked": 1, "contacts": 2, "made": 1, "kept": 1, "broken": 0, "pending": 0, "lapsed": 0,
         "promised": Decimal("150.00"), "kept_amount": Decimal("150.00"), "repayments": 1,
         "recovered": Decimal("150.00"), "closed": 0, "cured": 0},
        {"worked": 1, "contacts": 1, "made": 1, "kept": 0, "broken": 1, "pending": 0, "lapsed": 0,
         "promised": Decimal("200.00"), "kept_amount": zero, "repayments": 0, "recovered": zero,
         "closed": 0, "cured": 0},
        {"worked": 1, "contacts": 0, "made": 0, "kept": 0, "broken": 0, "pending": 0, "lapsed": 0,
         "promised": zero, "kept_amount": zero, "repayments": 0, "recovered": zero, "closed": 1, "cured": 0},
    ]
    assert alice.months[0].contacts_by_outcome == {"promise": 1, "refused": 0, "no_answer": 1, "wrong_number": 0}
    assert [figures(f) for f in bob.months] == [
        {"worked": 1, "contacts": 1, "made": 1, "kept": 1, "broken": 0, "pending": 0, "lapsed": 0,
         "promised": Decimal("30.00"), "kept_amount": Decimal("30.00"), "repayments": 0, "recovered": zero,
         "closed": 0, "cured": 0},
        # 10 Feb (the day of the reassignment) and 15 Feb on case 1, 1 Feb on case 2
        {"worked": 1, "contacts": 1, "made": 2, "kept": 1, "broken": 0, "pending": 0, "lapsed": 1,
         "promised": Decimal("125.00"), "kept_amount": Decimal("100.00"), "repayments": 3,
         "recovered": Decimal("130.00"), "closed": 1, "cured": 1},
        # 5 Mar on case 2 came after its re-route: nobody's
        {"worked": 1, "contacts": 0, "made": 1, "kept": 0, "broken": 0, "pending": 1, "lapsed": 0,
         "promised": Decimal("80.00"), "kept_amount": zero, "repayments": 0, "recovered": zero,
         "closed": 0, "cured": 0},
    ]
    assert (alice.total.cases_worked, bob.total.cases_worked) == (3, 2)
    assert (alice.total.kept_rate, bob.total.kept_rate) == (Decimal("0.5"), Decimal("1"))
    assert bob.months[2].kept_rate is None  # only a pending promise
    assert alice.total.amount_recovered == Decimal("150.00") and bob.total.amount_recovered == Decimal("130.00")
    # everyone: a case worked by both collectors counts once
    assert [f.cases_worked for f in r.by_month] == [2, 2, 2]
    assert figures(r.total) == {
        "worked": 3, "contacts": 5, "made": 6, "kept": 3, "broken": 1, "pending": 1, "lapsed": 1,
        "promised": Decimal("585.00"), "kept_amount": Decimal("280.00"), "repayments": 4,
        "recovered": Decimal("280.00"), "closed": 2, "cured": 1}
    assert r.total.kept_rate == Decimal("0.75")
    assert r.total.contacts_by_outcome == {"promise": 2, "refused": 1, "no_answer": 1, "wrong_number": 1}


def test_a_month_without_work_and_the_roles(book: tuple[TenantKit, dict[str, str]], uow: UnitOfWork) -> None:
    kit, _ = book
    r = cp.collections_performance(uow, kit.principal("operations"), cp.Period((2024, 6), (2024, 6)))
    assert r.collectors == () and r.total.cases_worked == 0 and r.total.kept_rate is None
    with pytest.raises(PermissionDenied):
        cp.collections_performance(uow, kit.principal("collector"), PERIOD)
    with pytest.raises(ValidationError):
        cp.Period.of("2025-03", "2025-01")
    with pytest.raises(ValidationError):
        cp.Period.of("2020-01", "2025-02")  # more than 60 months


def test_the_api_the_pages_and_the_sheet(api: Api, new_tenant) -> None:  # type: ignore[no-untyped-def]
    users = seed(api.kit)
    seed_other_bank(new_tenant())
    client = api.client
    username, _ = api.kit.user("risk_analyst")
    r = client.get("/api/v1/portfolio/collections-performance?from=2025-01&to=2025-03",
                   headers=api.token_for(username))
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["months"] == ["2025-01", "2025-02", "2025-03"]
    bob = next(c for c in body["collectors"] if c["username"] == users["bob"])
    assert bob["name"] == "Bob Li"
    assert bob["months"][1]["amount_recovered"] == "130.00" and bob["total"]["kept_rate"] == "1.0000"
    assert body["total"]["kept_rate"] == "0.7500" and body["total"]["promised_amount"] == "585.00"
    assert body["total"]["contacts_by_outcome"]["refused"] == 1
    for bad in ("from=2025-13&to=2025-03", "from=2025-03&to=2025-01", "from=jan&to=2025-01"):
        assert client.get(f"/api/v1/portfolio/collections-performance?{bad}",
                          headers=api.token_for(username)).status_code in (400, 422), bad
    assert client.get("/api/v1/portfolio/collections-performance", headers=api.token("collector")).status_code == 403

    sign_in_page(client, username)
    for lang, heading, total in (("en", "Collections performance", "All collectors"),
                                 ("zh_CN", "催收绩效", "全部催收人员")):
        client.cookies.set("ml_lang", lang)
        page = client.get("/portfolio/collections?from=2025-01&to=2025-03")
        assert page.status_code == 200, page.text
        assert heading in page.text and total in page.text and "<polyline" in page.text
        assert "Bob Li" in page.text and "Alice Wang" in page.text and 'style="' not in page.text
        for c in body["collectors"]:
            row = re.search(rf'<table data-testid="collectors".*?<tr data-collector="{c["username"]}">(.*?)</tr>',
                            page.text, re.S)
            assert row is not None
            shown = dict(re.findall(r'data-figure="([^"]+)" data-value="([^"]*)"', row.group(1)))
            assert shown["amount_recovered"] == c["total"]["amount_recovered"]
            assert shown["kept_rate"] == (c["total"]["kept_rate"] or "")
            assert shown["cases_worked"] == str(c["total"]["cases_worked"])
        feb = client.get("/portfolio/collections?from=2025-01&to=2025-03&month=2025-02").text
        row = re.search(rf'<tr data-collector="{users["bob"]}">(.*?)</tr>', feb, re.S)
        assert row is not None and 'data-figure="amount_recovered" data-value="130.00"' in row.group(1)
    assert client.get("/portfolio/collections?from=2025-13").status_code == 422

    client.cookies.set("ml_lang", "en")
    x = client.get("/portfolio/export.xlsx?as_of=2025-03-31&months=3")
    assert x.status_code == 200
    ws = load_workbook(io.BytesIO(x.content))["Collections performance"]
    rows = [list(r) for r in ws.iter_rows(values_only=True)]
    assert rows[0][:4] == ["Collector", "Username", "Month", "Cases worked"]
    bob_feb = next(r for r in rows if r[1] == users["bob"] and r[2] == "2025-02")
    heads = rows[0]
    assert Decimal(str(bob_feb[heads.index("Amount recovered")])) == Decimal("130.00")
    everyone = next(r for r in rows if r[0] == "All collectors" and r[2] == "All months")
    assert everyone[heads.index("Cases worked")] == 3
    assert Decimal(str(everyone[heads.index("Kept rate")])) == Decimal("0.75")
