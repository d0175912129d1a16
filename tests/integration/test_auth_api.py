"""Signing in: tokens, wrong passwords, rate limiting, and tenants kept apart."""

from fastapi.testclient import TestClient
from sqlalchemy import Engine, update
from tests.conftest import Api, TenantKit
from tests.conftest import test_settings as settings_for

from microlend.api.app import create_app
from microlend.core.tables import UserRow
from microlend.core.tenancy import TrustedTokens


def test_a_user_gets_a_bearer_token_and_sees_itself(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    r = api.client.post("/api/v1/auth/token", data={"username": username, "password": "correct-horse-1"})
    assert r.status_code == 200
    body = r.json()
    assert body["token_type"] == "bearer"
    me = api.client.get("/api/v1/me", headers={"Authorization": f"Bearer {body['access_token']}"}).json()
    assert me["username"] == username and me["roles"] == ["credit_officer"]
    assert me["tenant_id"] == api.kit.tenant.id


def test_a_wrong_password_is_401_with_a_problem_body(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    r = api.client.post("/api/v1/auth/token", data={"username": username, "password": "wrong-password"})
    assert r.status_code == 401
    assert r.headers["content-type"].startswith("application/problem+json")
    assert r.json()["detail"] == "wrong username or password"


def test_repeated_failures_are_rate_limited_even_with_the_right_password(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    for _ in range(5):
        assert api.client.post("/api/v1/auth/token",
                               data={"username": username, "password": "nope-nope"}).status_code == 401
    r = api.client.post("/api/v1/auth/token", data={"username": username, "password": "correct-horse-1"})
    assert r.status_code == 429
    assert "too many failed logins" in r.json()["detail"]


def test_a_forged_token_is_refused(app_client: TestClient) -> None:
    r = app_client.get("/api/v1/me", headers={"Authorization": "Bearer not.a.token"})
    assert r.status_code == 401


def test_an_admin_creates_users_only_in_its_own_bank(api: Api, new_tenant: object) -> None:
    headers = api.token("admin")
    name = f"{api.kit.tenant.name}-new"
    r = api.client.post("/api/v1/users", headers=headers,
                        json={"username": name, "password": "long-enough-1", "roles": ["approver"]})
    assert r.status_code == 201, r.text
    users = api.client.get("/api/v1/users", headers=headers).json()
    assert name in [u["username"] for u in users]
    assert all(u["username"].startswith(api.kit.tenant.name) for u in users)


def test_unknown_roles_are_named(api: Api) -> None:
    r = api.client.post("/api/v1/users", headers=api.token("admin"),
                        json={"username": "someone-x", "password": "long-enough-1", "roles": ["boss"]})
    assert r.status_code == 422
    assert "unknown role 'boss'" in r.json()["detail"]


def test_users_need_the_admin_role(api: Api) -> None:
    r = api.client.get("/api/v1/users", headers=api.token("credit_officer"))
    assert r.status_code == 403


def test_the_openapi_document_is_served(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    assert "/api/v1/customers" in doc["paths"]


def test_bank_kits_are_isolated(bank: TenantKit, new_tenant: object) -> None:
    assert bank.tenant.name.startswith("t")


def test_the_api_docs_load_no_asset_from_outside(app_client: TestClient) -> None:
    page = app_client.get("/docs")
    assert page.status_code == 200
    assert "cdn" not in page.text.lower() and "/static/vendor/swagger-ui/swagger-ui-bundle.js" in page.text
    assert app_client.get("/static/vendor/swagger-ui/swagger-ui-bundle.js").status_code == 200


def test_every_operation_declares_its_responses_and_every_reference_resolves(app_client: TestClient) -> None:
    doc = app_client.get("/openapi.json").json()
    assert doc["openapi"].startswith("3.")
    schemas = doc.get("components", {}).get("schemas", {})
    text = str(doc)
    import re

    for ref in set(re.findall(r"#/components/schemas/([A-Za-z0-9_.-]+)", text)):
        assert ref in schemas, f"unresolved $ref {ref}"
    for path, ops in doc["paths"].items():
        for method, op in ops.items():
            assert op.get("responses"), f"{method.upper()} {path} declares no responses"


def _deactivate(kit: TenantKit, username: str) -> None:
    with kit.uow_factory() as u:
        u.session.execute(update(UserRow).where(UserRow.username == username).values(active=False))
        u.commit()


class FakeMonotonic:
    """A monotonic clock that moves only when the test says so."""

    def __init__(self) -> None:
        self.at = 1000.0

    def __call__(self) -> float:
        return self.at

    def advance(self, seconds: float) -> None:
        self.at += seconds


def test_a_deactivated_user_is_refused_within_the_recheck_window(api: Api, engine: Engine) -> None:
    """Each server process re-reads a token's user at most `user_recheck_seconds` after it last did."""
    for seconds in (0.0, 0.5):
        settings = settings_for(engine.url.render_as_string(hide_password=False))
        settings.user_recheck_seconds = seconds
        clock = FakeMonotonic()
        app = create_app(settings, engine=engine)
        app.state.trusted_tokens = TrustedTokens(seconds, now=clock)
        with TestClient(app, raise_server_exceptions=False) as client:
            username, _ = api.kit.user("credit_officer")
            r = client.post("/api/v1/auth/token", data={"username": username, "password": "correct-horse-1"})
            headers = {"Authorization": f"Bearer {r.json()['access_token']}"}
            assert client.get("/api/v1/me", headers=headers).status_code == 200
            _deactivate(api.kit, username)
            if seconds:
                assert client.get("/api/v1/me", headers=headers).status_code == 200  # still trusted here
                clock.advance(seconds - 0.01)
                assert client.get("/api/v1/me", headers=headers).status_code == 200  # and just before the end
                clock.advance(0.02)
            r = client.get("/api/v1/me", headers=headers)
            assert r.status_code == 401
            assert r.json()["detail"] == "the access token is not valid"
