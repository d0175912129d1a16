"""Bad input is stopped at the edge with a clear 4xx on SQLite and PostgreSQL: oversize bodies (413), ids and
paging values no column can hold (422), NUL characters (422), a token whose subject is not a user id (401),
a dataset whose column names shadow SQL aliases, and a customer search by phone without a server error."""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jwt
import pytest
from sqlalchemy import func, select
from tests.battery import audit_count
from tests.conftest import Api
from tests.integration.test_customers_api import person

from microlend.parties.tables import CustomerRow

MIB = 1024 * 1024


def _customers(api: Api) -> int:
    with api.kit.uow_factory() as u:
        return int(u.session.execute(
            select(func.count()).select_from(CustomerRow).where(CustomerRow.tenant_id == api.kit.tenant.id)
        ).scalar_one())


def _assert_problem(r: Any, status: int, field: str | None = None) -> None:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    body = r.json()
    assert body["status"] == status
    if field is not None:
        assert body["field"] == field, body


class TestBodySize:
    def test_a_two_mib_json_body_is_refused_and_nothing_is_stored(self, api: Api) -> None:
        h = api.token("credit_officer")
        before, customers = audit_count(api), _customers(api)
        r = api.client.post("/api/v1/customers", json=person(attributes={"notes": "x" * (2 * MIB)}), headers=h)
        _assert_problem(r, 413)
        assert audit_count(api) == before and _customers(api) == customers

    def test_a_chunked_body_without_a_length_is_cut_off_at_the_limit(self, api: Api) -> None:
        h = api.token("credit_officer")
        before, customers = audit_count(api), _customers(api)
        sent: list[int] = []

        def chunks() -> Iterator[bytes]:
            yield b'{"kind": "person", "name": "'
            for _ in range(64):  # 4 MiB in all, if it were read whole
                sent.append(1)
                yield b"x" * (64 * 1024)
            yield b'"}'

        r = api.client.post("/api/v1/customers", content=chunks(),
                            headers={**h, "Content-Type": "application/json"})
        _assert_problem(r, 413)
        assert audit_count(api) == before and _customers(api) == customers

    def test_a_chunked_upload_of_another_kind_is_cut_off_too(self, api: Api) -> None:
        def chunks() -> Iterator[bytes]:
            for _ in range(32):
                yield b"y" * (64 * 1024)

        r = api.client.post("/api/v1/customers", content=chunks(),
                            headers={**api.token("credit_officer"), "Content-Type": "application/octet-stream"})
        _assert_problem(r, 413)

    def test_a_small_body_still_goes_through(self, api: Api) -> None:
        r = api.client.post("/api/v1/customers", json=person(), headers=api.token("credit_officer"))
        assert r.status_code == 201, r.text


@pytest.mark.parametrize("path", [
    "/api/v1/loans/9223372036854775808", "/api/v1/loans/2147483648", "/api/v1/customers/2147483648",
    "/api/v1/applications/99999999999999999999", "/api/v1/decisions/2147483648", "/api/v1/loans/0",
    "/api/v1/risk/models/2147483648", "/api/v1/marketing/campaigns/-1",
])
def test_an_id_no_column_can_hold_is_a_422_naming_it(api: Api, path: str) -> None:
    r = api.client.get(path, headers=api.token("admin"))
    _assert_problem(r, 422)
    assert r.json()["field"].endswith("_id"), r.json()


def test_the_largest_id_a_column_holds_is_simply_not_found(api: Api) -> None:
    r = api.client.get("/api/v1/loans/2147483647", headers=api.token("admin"))
    assert r.status_code == 404, r.text


@pytest.mark.parametrize(("query", "field"), [
    ("/api/v1/loans?limit=-1", "limit"), ("/api/v1/loans?limit=1000000000", "limit"),
    ("/api/v1/loans?offset=-5", "offset"), ("/api/v1/loans?offset=9223372036854775808", "offset"),
    ("/api/v1/customers?page=99999999999999999999", "page"), ("/api/v1/customers?page_size=0", "page_size"),
    ("/api/v1/applications?page=9223372036854775807", "page"),
    ("/api/v1/applications?customer_id=2147483648", "customer_id"), ("/api/v1/audit?limit=0", "limit"),
])
def test_paging_out_of_range_is_a_422_naming_the_parameter(api: Api, query: str, field: str) -> None:
    _assert_problem(api.client.get(query, headers=api.token("admin")), 422, field)


def test_a_huge_page_number_on_a_page_is_refused(api: Api) -> None:
    username, _ = api.kit.user("credit_officer")
    api.client.post("/login", data={"username": username, "password": "correct-horse-1"}, follow_redirects=False)
    r = api.client.get("/customers?page_no=99999999999999999999999")
    assert r.status_code == 422, r.text
    api.client.cookies.clear()


class TestNul:
    def test_nul_in_a_json_field_is_a_422_naming_it(self, api: Api) -> None:
        before, customers = audit_count(api), _customers(api)
        r = api.client.post("/api/v1/customers", json=person(name="王\x00小明"), headers=api.token("credit_officer"))
        _assert_problem(r, 422, "name")
        r = api.client.post("/api/v1/customers", json=person(address="城关镇\x001号", attributes={"k": ["a", "\x00"]}),
                            headers=api.token("credit_officer"))
        _assert_problem(r, 422, "address")
        r = api.client.post("/api/v1/customers", json=person(attributes={"k": ["a", "b\x00"]}),
                            headers=api.token("credit_officer"))
        _assert_problem(r, 422, "attributes.k.1")
        assert audit_count(api) == before and _customers(api) == customers

    def test_an_escaped_backslash_before_u0000_is_not_a_nul(self, api: Api) -> None:
        body = json.dumps(person(address="C:\\u0000 street"))
        assert "\\\\u0000" in body
        r = api.client.post("/api/v1/customers", content=body, headers={
            **api.token("credit_officer"), "Content-Type": "application/json"})
        assert r.status_code == 201, r.text

    def test_nul_in_a_query_string_is_a_422_naming_it(self, api: Api) -> None:
        r = api.client.get("/api/v1/customers", params={"q": "王\x00"}, headers=api.token("credit_officer"))
        _assert_problem(r, 422, "q")
        r = api.client.get("/api/v1/loans?status=%00", headers=api.token("admin"))
        _assert_problem(r, 422, "status")

    def test_nul_in_a_page_form_and_a_page_query_is_refused(self, api: Api) -> None:
        api.client.cookies.clear()
        username, _ = api.kit.user("credit_officer")
        r = api.client.post("/login", data={"username": username + "\x00", "password": "correct-horse-1"},
                            follow_redirects=False)
        _assert_problem(r, 422, "username")
        api.client.post("/login", data={"username": username, "password": "correct-horse-1"}, follow_redirects=False)
        r = api.client.get("/customers?q=%00abc")
        _assert_problem(r, 422, "q")
        browser = {"Accept": "text/html,application/xhtml+xml"}
        r = api.client.get("/customers?q=%00<b>", headers=browser)
        assert r.status_code == 422 and r.headers["content-type"].startswith("text/html")
        assert "q: must not contain a NUL character" in r.text
        r = api.client.post("/login", data={"user<i>name": "a\x00"}, headers=browser)
        assert r.status_code == 422 and "user&lt;i&gt;name: must not contain" in r.text
        api.client.cookies.clear()


def test_a_token_whose_subject_is_not_a_user_id_is_a_401(api: Api) -> None:
    settings = api.client.app.state.settings  # type: ignore[attr-defined]
    now = datetime.now(UTC)
    for subject in ("abc", "99999999999999999999", "-1"):
        token = jwt.encode({"sub": subject, "tid": api.kit.tenant.id, "iat": int(now.timestamp()),
                            "exp": int((now + timedelta(minutes=5)).timestamp())},
                           settings.secret_key, algorithm="HS256")
        r = api.client.get("/api/v1/customers", headers={"Authorization": f"Bearer {token}"})
        _assert_problem(r, 401)


SHADOWING = ["b", "t", "n", "v", "bin", "count", "weird name", 'quote"d']


class TestQualityWithAnyColumnName:
    @pytest.fixture(autouse=True)
    def _data_dir(self, app_client: Any, tmp_path: Path) -> Iterator[None]:
        app = app_client.app
        original = app.state.settings
        app.state.settings = original.model_copy(update={"data_dir": tmp_path})
        yield
        app.state.settings = original

    def test_the_quality_report_renders(self, api: Api) -> None:
        header = ",".join('"' + c.replace('"', '""') + '"' for c in [*SHADOWING, "outcome"])
        rows = [",".join([str(i), str(i * 2), f"cat{i % 3}", str(i % 4), str(i * 1.5), f"x{i % 2}", str(i % 5),
                          f"q{i % 3}", "bad" if i % 3 == 0 else "good"]) for i in range(1, 41)]
        name = f"ds-{uuid.uuid4().hex[:8]}"
        h = api.token("risk_analyst")
        r = api.client.post("/api/v1/datasets", data={"name": name, "valid_only": "false"},
                            files={"file": ("odd.csv", ("\n".join([header, *rows]) + "\n").encode(), "text/csv")},
                            headers=h)
        assert r.status_code == 201, r.text
        r = api.client.get(f"/api/v1/datasets/{name}/quality?target=outcome&bad=bad", headers=h)
        assert r.status_code == 200, r.text
        columns = {c["name"]: c for c in r.json()["columns"]}
        assert set(SHADOWING) <= set(columns)
        assert sum(b["count"] for b in columns["b"]["distribution"]) == 40
        assert sum(b["count"] for b in columns["t"]["distribution"]) == 40
        assert sum(b["count"] for b in columns["n"]["distribution"]) == 40
        html = api.client.get(f"/api/v1/datasets/{name}/quality.html?target=outcome&bad=bad", headers=h)
        assert html.status_code == 200, html.text


def test_a_customer_search_by_phone_finds_the_customer_without_a_server_error(
        api: Api, caplog: pytest.LogCaptureFixture) -> None:
    body = person()
    h = api.token("credit_officer")
    r = api.client.post("/api/v1/customers", json=body, headers=h)
    assert r.status_code == 201, r.text
    cid = r.json()["id"]
    with caplog.at_level(logging.DEBUG):
        r = api.client.get("/api/v1/customers", params={"q": body["phone"]}, headers=h)
        assert r.status_code == 200, r.text
        assert [c["id"] for c in r.json()["items"]] == [cid]
        username, _ = api.kit.user("credit_officer")
        api.client.post("/login", data={"username": username, "password": "correct-horse-1"},
                        follow_redirects=False)
        page = api.client.get("/customers", params={"q": body["phone"]})
        assert page.status_code == 200
        api.client.cookies.clear()
    bad = [rec for rec in caplog.records if rec.levelno >= logging.ERROR or rec.exc_info]
    assert not bad, [(rec.name, rec.getMessage()) for rec in bad]
