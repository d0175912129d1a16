"""Each member of staff signs in onto their own work (the home page's cards), scoped to what they may see and
never empty when the bank has data; and the figures the pages share agree with each other."""

from __future__ import annotations

import re

import pytest
from sqlalchemy import update
from tests.conftest import Api
from tests.integration.origination.test_applications_api import POOR_ROW, apply, new_customer
from tests.integration.origination.test_workbench_pages import _disbursed, get, post, referred

from microlend.core.identity import STAFF_ROLES, Principal, Role
from microlend.core.tables import UserRow
from microlend.origination.tables import ApplicationRow
from microlend.servicing.tables import LoanRow
from microlend.web import workbench

#: The cards each role's home shows (keys of web/home.py's cards).
EXPECTED: dict[Role, set[str]] = {
    Role.ADMIN: {"bank", "queue", "approvals", "visits", "overdue", "cases", "early-warning", "models",
                 "monitoring", "campaigns", "jobs", "activity"},
    Role.CREDIT_OFFICER: {"queue", "visits", "overdue"},
    Role.APPROVER: {"approvals"},
    Role.OPERATIONS: {"jobs"},
    Role.RISK_ANALYST: {"early-warning", "models", "monitoring"},
    Role.MODEL_VALIDATOR: {"models"},
    Role.MARKETER: {"campaigns"},
    Role.COLLECTOR: {"cases"},
    Role.AUDITOR: {"activity"},
}


def staff(api: Api, role: str, branch: str = "") -> Principal:
    """A member of staff of the test's bank working in `branch` (head office and departments alike)."""
    _, who = api.kit.user(role)
    with api.kit.uow_factory() as u:
        u.session.execute(update(UserRow).where(UserRow.id == who.user_id).values(branch=branch))
        u.commit()
    return who


def cards(html: str) -> set[str]:
    return set(re.findall(r'data-testid="home-card" data-card="([a-z-]+)"', html))


def card(html: str, key: str) -> str:
    found = re.search(rf'data-card="{key}">(.*?)</section>', html, re.S)
    assert found, f"no {key} card"
    return found.group(1)


def count(html: str, key: str) -> int:
    found = re.search(r'data-testid="card-count">([\d,]+)<', card(html, key))
    assert found
    return int(found.group(1).replace(",", ""))


@pytest.mark.parametrize("role", [str(r) for r in STAFF_ROLES])
def test_every_role_signs_in_onto_its_own_cards_in_both_languages(api: Api, role: str) -> None:
    who = api.kit.principal(role)
    landing = get(api, "/", who)
    assert landing.status_code == 303 and landing.headers["location"] == "/home"
    for lang, title in (("en", "<h1>Home</h1>"), ("zh_CN", "<h1>首页</h1>")):
        r = get(api, "/home", who, lang=lang)
        assert r.status_code == 200, r.text
        assert title in r.text and cards(r.text) == EXPECTED[Role(role)]
        assert 'data-testid="nav-home" aria-current="page"' in r.text


def test_the_officers_home_lists_the_queue_of_the_branch_and_the_applications_of_no_branch(api: Api) -> None:
    mine = referred(api)  # a customer of 城关支行
    self_registered = referred(api)
    with api.kit.uow_factory() as u:  # a borrower who registered on their own has no branch
        u.session.execute(update(ApplicationRow).where(ApplicationRow.id == self_registered["id"]).values(branch=""))
        u.commit()
    officer = staff(api, "credit_officer", "城关支行")
    html = get(api, "/home", officer).text
    assert count(html, "queue") == 2
    assert f'href="/applications/{mine["id"]}"' in html and f'href="/applications/{self_registered["id"]}"' in html
    queue = get(api, "/workbench/queue", officer).text
    assert f'/applications/{self_registered["id"]}"' in queue and f'/applications/{mine["id"]}"' in queue
    assert "Branch</" not in queue or "城关支行" in queue


def test_head_office_and_departments_see_the_whole_bank_not_an_empty_branch(api: Api) -> None:
    done = _disbursed(api)  # the loan of a customer of 城关支行
    referred(api)
    for role, branch in (("credit_officer", "总行"), ("operations", "运营管理部"), ("admin", "总行")):
        who = staff(api, role, branch)
        portfolio = get(api, "/workbench/portfolio", who).text
        assert f'href="/loans/{done["loan_id"]}"' in portfolio, role
        assert "No loans." not in portfolio
        dashboard = get(api, "/workbench/dashboard", who).text
        assert "All branches" in dashboard and 'data-testid="stp">' in dashboard
    officer = staff(api, "credit_officer", "总行")
    assert count(get(api, "/home", officer).text, "queue") == 1


def test_the_admins_bank_at_a_glance_is_the_dashboards_query(api: Api) -> None:
    _disbursed(api), _disbursed(api)
    referred(api)
    admin = staff(api, "admin", "总行")
    html = card(get(api, "/home", admin).text, "bank")
    figures = re.findall(r'data-testid="figure">([^<]*)<', html)
    dashboard = get(api, "/workbench/dashboard?scope=all", admin).text
    active = re.search(r"(\d+)/(\d+) active loans", dashboard)
    assert active and figures[1] == active.group(2) == "2"
    assert figures[3] == "1"  # the referred one, in review


def test_the_portfolio_counts_what_the_dashboard_counts_and_pages_through_every_loan(
        api: Api, monkeypatch: pytest.MonkeyPatch) -> None:
    loans = [_disbursed(api) for _ in range(3)]
    with api.kit.uow_factory() as u:
        u.session.execute(update(LoanRow).where(LoanRow.id == loans[0]["loan_id"]).values(status="closed"))
        u.commit()
    monkeypatch.setattr(workbench, "PORTFOLIO_PAGE", 2)
    who = api.kit.principal("approver")
    first = get(api, "/workbench/portfolio?scope=all", who).text
    second = get(api, "/workbench/portfolio?scope=all&page_no=2", who).text
    shown = set(re.findall(r'href="/loans/(\d+)"', first)) | set(re.findall(r'href="/loans/(\d+)"', second))
    assert shown == {str(x["loan_id"]) for x in loans}
    assert 'rel="next"' in first and 'rel="prev"' in second and 'rel="next"' not in second
    header = re.search(r'data-testid="active-loans">Active loans (\d+)', first)
    dashboard = re.search(r"(\d+)/(\d+) active loans", get(api, "/workbench/dashboard?scope=all", who).text)
    assert header and dashboard and header.group(1) == dashboard.group(2) == "2"


def test_an_empty_dashboard_shows_dashes_and_no_bars(api: Api) -> None:
    html = get(api, "/workbench/dashboard?scope=all", api.kit.principal("approver")).text
    assert 'data-testid="stp">—' in html
    rates = html.split('data-testid="rates"', 1)[1].split("</section>", 1)[0]
    assert '<rect class="series-' not in rates and rates.count(">—<") >= 3
    assert "data:image/png;base64," not in html and "0.0%" not in html


def test_the_straight_through_rate_counts_decided_applications_and_shows_the_waiting_apart(api: Api) -> None:
    _disbursed(api)
    apply(api, new_customer(api, POOR_ROW), "30000.00")
    waiting = [referred(api) for _ in range(2)]
    html = get(api, "/workbench/dashboard?scope=all", api.kit.principal("approver")).text
    decided = re.search(r"(\d+)/(\d+) decided with no person", html)
    assert decided and decided.group(2) == "2"  # approved + declined; the referred ones are not decided yet
    assert f"{len(waiting)} still in review, not counted" in html
    queue = get(api, "/workbench/queue?scope=all", api.kit.principal("credit_officer")).text
    assert all(f'/applications/{w["id"]}"' in queue for w in waiting)


def test_the_staff_loan_page_names_the_customer(api: Api) -> None:
    done = _disbursed(api)
    html = get(api, f"/loans/{done['loan_id']}", api.kit.principal("collector")).text
    name = re.search(r'data-testid="loan-customer">([^<]*)<', html)
    assert name and name.group(1) == "周老板"


def test_a_repayment_on_the_disbursement_day_shows_no_negative_interest(api: Api) -> None:
    done = _disbursed(api)
    officer = api.kit.principal("credit_officer")
    page = get(api, f"/loans/{done['loan_id']}", officer).text
    key = re.search(r'name="key" value="([0-9a-f]+)"', page).group(1)  # type: ignore[union-attr]
    assert post(api, f"/loans/{done['loan_id']}/repayments", officer,
                {"amount": "3000.00", "key": key}).status_code == 303
    html = get(api, f"/loans/{done['loan_id']}", officer).text
    receivable = re.search(r'data-testid="interest-receivable">([^<]*)<', html)
    assert receivable and "-" not in receivable.group(1)
    ahead = re.search(r'data-testid="interest-paid-ahead">([^<]*)<', html)
    assert ahead and re.search(r"\d\.\d\d$", ahead.group(1))


def test_the_status_badge_follows_the_button(api: Api) -> None:
    app = referred(api)
    officer = api.kit.principal("credit_officer")
    r = post(api, f"/applications/{app['id']}/recommend", officer,
             {"recommendation": "approve", "amount": "300000", "annual_rate": "9"}, htmx=True)
    assert r.status_code == 200
    badge = re.search(r'<span id="app-status"[^>]*hx-swap-oob="true">(.*?)</span>\s*</span>', r.text, re.S)
    assert badge and 'data-status="recommended"' in badge.group(1) and "Recommended" in badge.group(1)


def test_a_refused_home_card_link_is_never_shown(api: Api) -> None:
    """Every link the home shows (cards and items), for every role of a bank with work to do, opens."""
    done = _disbursed(api)
    referred(api)
    with api.kit.uow_factory() as u:
        u.session.execute(update(LoanRow).where(LoanRow.id == done["loan_id"]).values(days_past_due=12))
        u.commit()
    for role in STAFF_ROLES:
        who = api.kit.principal(str(role))
        html = get(api, "/home", who).text
        main = html.split('<main class="container">', 1)[1]
        for path in sorted(set(re.findall(r'href="(/[^"#]*)"', main))):
            status = get(api, path, who).status_code
            assert status in (200, 303), f"{role} is shown {path}: {status}"
