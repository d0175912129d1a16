"""The web sessions and the browser-facing defences over HTTP: a forged cross-site form is refused, the app's
own forms and htmx requests work, signing out or losing one's access ends a session at once, every answer
carries the security headers, and the API documentation is off in production."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from fastapi.testclient import TestClient
from sqlalchemy import Engine, func, select, update
from tests.battery import audit_count
from tests.conftest import TEST_ORIGIN, Api
from tests.conftest import test_settings as settings_for
from tests.integration.origination.test_workbench_pages import referred
from tests.integration.test_customers_api import person

from microlend.api.app import create_app
from microlend.api.deps import SESSION_COOKIE
from microlend.api.security import REPORT_CSP, report_page
from microlend.core.clock import FixedClock, SystemClock, set_clock
from microlend.core.settings import Settings
from microlend.core.tables import UserRow, WebSessionRow
from microlend.origination.tables import ApplicationRow

TEMPLATES = Path(__file__).parents[2] / "src" / "microlend" / "web" / "templates"
EVIL = "https://evil.example"
RECOMMEND = {"recommendation": "approve", "amount": "250000", "annual_rate": "8.5", "notes": "shop visited"}
HTML = {"Accept": "text/html,application/xhtml+xml"}


def browser(api: Api, *roles: str) -> tuple[TestClient, str, int]:
    """A browser of its own, signed in on the sign-in page: (client, its session cookie, the user's id). It
    sends no Origin or token of itself: each request says what it sends."""
    username, who = api.kit.user(*roles)
    client = TestClient(api.client.app, raise_server_exceptions=False)
    client.cookies.set("ml_lang", "en")
    r = client.post("/login", data={"username": username, "password": "correct-horse-1", "next": "/customers"},
                    follow_redirects=False)
    assert r.status_code == 303, r.text
    session = client.cookies.get(SESSION_COOKIE)
    assert session
    return client, session, who.user_id


def page_token(client: TestClient, path: str) -> str:
    """The anti-forgery token as the page shows it: in its forms and in the header htmx sends."""
    html = client.get(path).text
    in_form = re.findall(r'name="csrf_token" value="([0-9a-f]+)"', html)
    for_htmx = re.findall(r'hx-headers=\'\{"X-CSRF-Token": "([0-9a-f]+)"\}\'', html)
    assert in_form and for_htmx and set(in_form) == set(for_htmx), html[:500]
    return in_form[0]


def status_of(api: Api, app_id: int) -> str:
    with api.kit.uow_factory() as u:
        return str(u.session.get(ApplicationRow, app_id).status)  # type: ignore[union-attr]


def signed_in(client: TestClient) -> bool:
    r = client.get("/customers", follow_redirects=False)
    assert r.status_code in (200, 303), r.text
    return r.status_code == 200


class TestForgedRequests:
    def test_a_cross_site_post_with_the_session_cookie_is_refused_and_records_nothing(self, api: Api) -> None:
        app = referred(api)
        path = f"/applications/{app['id']}"
        client, _, _ = browser(api, "credit_officer")
        token = page_token(client, path)
        before = audit_count(api)
        for sent in ({"Origin": EVIL}, {"Referer": f"{EVIL}/a-page"}, {"Origin": "null"},
                     {"Origin": "http://testserver.evil.example"}, {}):
            r = client.post(f"{path}/recommend", data={**RECOMMEND, "csrf_token": token}, headers={**HTML, **sent},
                            follow_redirects=False)
            assert r.status_code == 403, (sent, r.text)
            assert 'data-testid="csrf-refused"' in r.text and "did not come from a page of this site" in r.text
        # from the app's own origin but without the page's token (another site cannot read it): refused too
        for data, headers in (({**RECOMMEND}, {}), ({**RECOMMEND, "csrf_token": "0" * 64}, {}),
                              ({**RECOMMEND}, {"X-CSRF-Token": token + "0", "HX-Request": "true"})):
            r = client.post(f"{path}/recommend", data=data, headers={"Origin": TEST_ORIGIN, **headers})
            assert r.status_code == 403
            assert r.json()["type"] == "about:blank#csrf_refused"
        assert status_of(api, app["id"]) == "referred" and audit_count(api) == before
        assert signed_in(client)  # the refusal does not sign the victim out

    def test_the_refusal_speaks_the_readers_language(self, api: Api) -> None:
        client, _, _ = browser(api, "credit_officer")
        client.cookies.set("ml_lang", "zh_CN")
        r = client.post("/logout", headers={**HTML, "Origin": EVIL})
        assert r.status_code == 403 and "请求被拒绝" in r.text and 'lang="zh-CN"' in r.text
        assert signed_in(client)

    def test_a_form_of_the_page_with_its_token_works(self, api: Api) -> None:
        app = referred(api)
        path = f"/applications/{app['id']}"
        client, _, _ = browser(api, "credit_officer")
        token = page_token(client, path)
        r = client.post(f"{path}/recommend", data={**RECOMMEND, "csrf_token": token},
                        headers={**HTML, "Origin": TEST_ORIGIN}, follow_redirects=False)
        assert r.status_code in (200, 303), r.text
        assert status_of(api, app["id"]) == "recommended"

    def test_an_htmx_request_with_the_token_header_works(self, api: Api) -> None:
        app = referred(api)
        path = f"/applications/{app['id']}"
        client, _, _ = browser(api, "credit_officer")
        token = page_token(client, path)
        r = client.post(f"{path}/recommend", data=RECOMMEND, headers={
            "HX-Request": "true", "X-CSRF-Token": token, "Referer": f"{TEST_ORIGIN}{path}"})
        assert r.status_code == 200 and "Recommendation recorded" in r.text
        assert status_of(api, app["id"]) == "recommended"

    def test_an_upload_form_carries_its_token_before_the_file(self, api: Api) -> None:
        client, _, _ = browser(api, "risk_analyst")
        token = page_token(client, "/analyst/datasets")
        files = {"file": ("tiny.csv", b"a,b\n1,2\n", "text/csv")}
        refused = client.post("/analyst/datasets", data={"name": "tiny"}, files=files,
                              headers={"Origin": TEST_ORIGIN})
        assert refused.status_code == 403
        r = client.post("/analyst/datasets", data={"csrf_token": token, "name": "tiny"}, files=files,
                        headers={"Origin": TEST_ORIGIN}, follow_redirects=False)
        assert r.status_code != 403, r.text

    def test_the_api_with_a_bearer_token_is_not_subject_to_the_check(self, api: Api) -> None:
        h = api.token("credit_officer")
        r = api.client.post("/api/v1/customers", json=person(), headers={**h, "Origin": EVIL})
        assert r.status_code == 201, r.text

    def test_the_api_with_only_the_session_cookie_is(self, api: Api) -> None:
        client, _, _ = browser(api, "credit_officer")
        assert client.get("/api/v1/me").status_code == 200  # reading with the cookie is fine
        r = client.post("/api/v1/customers", json=person(), headers={"Origin": TEST_ORIGIN})
        assert r.status_code == 403 and r.json()["type"] == "about:blank#csrf_refused"
        token = page_token(client, "/customers")
        r = client.post("/api/v1/customers", json=person(), headers={"Origin": TEST_ORIGIN, "X-CSRF-Token": token})
        assert r.status_code == 201, r.text

    def test_a_cross_site_sign_in_is_refused(self, api: Api) -> None:
        username, _ = api.kit.user("credit_officer")
        client = TestClient(api.client.app, raise_server_exceptions=False)
        r = client.post("/login", data={"username": username, "password": "correct-horse-1"},
                        headers={"Origin": EVIL}, follow_redirects=False)
        assert r.status_code == 403 and not client.cookies.get(SESSION_COOKIE)


def test_every_post_form_of_every_template_carries_the_token_and_no_template_has_inline_script() -> None:
    forms = 0
    for template in TEMPLATES.rglob("*.html"):
        text = template.read_text(encoding="utf-8")
        for form in re.finditer(r"<form\b[^>]*>(.{0,20})", text, flags=re.S):
            if 'method="post"' in form.group(0):
                forms += 1
                assert form.group(1).startswith("{{ csrf_field() }}"), (template.name, form.group(0))
        assert not re.search(r"<script(?![^>]*\bsrc=)|<style|\sstyle=|\son[a-z]+=|javascript:", text), template
    assert forms >= 25


class TestSessionsEnd:
    def test_signing_out_ends_the_session_for_every_copy_of_the_cookie(self, api: Api) -> None:
        client, session, _ = browser(api, "credit_officer")
        token = page_token(client, "/customers")
        r = client.post("/logout", data={"csrf_token": token}, headers={"Origin": TEST_ORIGIN},
                        follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"] == "/login"
        stolen = TestClient(api.client.app, raise_server_exceptions=False)
        stolen.cookies.set(SESSION_COOKIE, session)
        r = stolen.get("/customers", follow_redirects=False)
        assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")
        assert stolen.get("/api/v1/me").status_code == 401

    def test_deactivating_a_user_ends_their_live_session_and_tokens_at_once(self, api: Api) -> None:
        client, _, user_id = browser(api, "credit_officer")
        username = client.get("/api/v1/me").json()["username"]
        bearer = api.token_for(username)
        assert signed_in(client) and api.client.get("/api/v1/me", headers=bearer).status_code == 200
        r = api.client.patch(f"/api/v1/users/{user_id}", json={"active": False}, headers=api.token("admin"))
        assert r.status_code == 200 and r.json()["active"] is False
        assert not signed_in(client)
        assert api.client.get("/api/v1/me", headers=bearer).status_code == 401
        with api.kit.uow_factory() as u:
            assert u.session.execute(select(func.count()).select_from(WebSessionRow)
                                     .where(WebSessionRow.user_id == user_id)).scalar_one() == 0

    def test_a_user_deactivated_in_the_database_is_signed_out_too(self, api: Api) -> None:
        client, _, user_id = browser(api, "credit_officer")
        with api.kit.uow_factory() as u:
            u.session.execute(update(UserRow).where(UserRow.id == user_id).values(active=False))
            u.commit()
        assert not signed_in(client)

    def test_a_new_password_or_new_roles_end_sessions_and_tokens(self, api: Api) -> None:
        admin = api.token("admin")
        for change in ({"password": "a-new-password-42"}, {"roles": ["marketer"]}):
            client, _, user_id = browser(api, "credit_officer")
            bearer = api.token_for(client.get("/api/v1/me").json()["username"])
            assert api.client.patch(f"/api/v1/users/{user_id}", json=change, headers=admin).status_code == 200
            assert not signed_in(client), change
            assert api.client.get("/api/v1/me", headers=bearer).status_code == 401, change

    def test_an_admin_cannot_lock_themselves_out(self, api: Api) -> None:
        admin_name, admin = api.kit.user("admin")
        h = api.token_for(admin_name)
        r = api.client.patch(f"/api/v1/users/{admin.user_id}", json={"active": False}, headers=h)
        assert r.status_code == 422 and r.json()["field"] == "active"
        r = api.client.patch(f"/api/v1/users/{admin.user_id}", json={"roles": ["sorcerer"]}, headers=h)
        assert r.status_code == 422

    def test_a_session_ends_after_its_idle_time_and_its_lifetime(self, api: Api) -> None:
        clock = FixedClock(datetime.now(UTC))
        set_clock(clock)
        try:
            idle, _, _ = browser(api, "credit_officer")
            busy, _, _ = browser(api, "credit_officer")
            for _ in range(23):  # a request every 20 minutes keeps a session alive, for 8 hours at most
                clock.advance(timedelta(minutes=20))
                assert signed_in(busy)
            assert not signed_in(idle)  # 30 minutes without a request ended it
            clock.advance(timedelta(minutes=20))
            assert not signed_in(busy)
        finally:
            set_clock(SystemClock())


def _headers_of(r: Any) -> dict[str, str]:
    return {k.lower(): v for k, v in r.headers.items()}


class TestHeaders:
    def test_pages_api_answers_and_errors_carry_the_security_headers_and_no_store(self, api: Api) -> None:
        client, _, _ = browser(api, "credit_officer")
        answers = [client.get("/customers"), client.get("/login"), api.client.get("/api/v1/me", headers=api.token(
            "credit_officer")), client.get("/no-such-page"), client.post("/logout", headers={"Origin": EVIL})]
        for r in answers:
            h = _headers_of(r)
            csp = h["content-security-policy"]
            assert "default-src 'self'" in csp and "script-src 'self'" in csp and "frame-ancestors 'none'" in csp
            assert "unsafe-inline" not in csp and "unsafe-eval" not in csp
            assert h["x-content-type-options"] == "nosniff" and h["x-frame-options"] == "DENY"
            assert h["referrer-policy"] == "same-origin" and h["cache-control"] == "no-store"
            assert "strict-transport-security" not in h  # only in production
        static = _headers_of(client.get("/static/app.css"))
        assert static["x-content-type-options"] == "nosniff" and "no-store" not in static.get("cache-control", "")

    def test_a_report_may_be_framed_by_the_apps_own_pages_only(self, api: Api) -> None:
        r = report_page("<html></html>")
        assert r.headers["content-security-policy"] == REPORT_CSP and "frame-ancestors 'self'" in REPORT_CSP
        assert r.headers["x-frame-options"] == "SAMEORIGIN" and "script" not in REPORT_CSP


def test_production_turns_the_api_docs_off_and_strict_transport_on(db_url: str, engine: Engine) -> None:
    production = settings_for(db_url).model_copy(update={"mode": "production", "api_docs": False})
    with TestClient(create_app(production, engine=engine), raise_server_exceptions=False) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == 404, path
        h = _headers_of(client.get("/healthz"))
        assert h["strict-transport-security"].startswith("max-age=31536000")
    local = settings_for(db_url)
    assert local.api_docs is True
    with TestClient(create_app(local, engine=engine), raise_server_exceptions=False) as client:
        docs = client.get("/docs")
        assert docs.status_code == 200 and '<script src="/static/docs.js">' in docs.text and "<script>" not in docs.text
        assert client.get("/openapi.json").status_code == 200
        assert client.get("/static/docs.js").status_code == 200


def test_the_setting_turns_the_docs_off_in_production_by_default() -> None:
    assert Settings(mode="production", secret_key="x" * 40, audit_key="k" * 40).api_docs is False
    assert Settings(mode="local").api_docs is True
    assert Settings(mode="production", secret_key="x" * 40, audit_key="k" * 40, api_docs=True).api_docs is True
