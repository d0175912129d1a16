"""Customers through the HTTP API on SQLite and PostgreSQL, under the permission battery."""

import itertools
import random
from collections.abc import Callable
from datetime import date
from typing import Any

import pytest
from tests.battery import audit_count
from tests.conftest import Api, TenantKit

from microlend.demo import identities

_rng = random.Random(42)
_seq = itertools.count()


def person(**over: Any) -> dict[str, Any]:
    birth = identities.birth_date_for_age(_rng, 35, date(2026, 1, 1))
    body = {"kind": "person", "name": "王小明", "id_number": identities.resident_id(_rng, birth),
            "phone": identities.mobile(_rng), "industry": "retail", "address": "城关镇1号"}
    body.update(over)
    return body


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def make_customer(api: Api) -> int:
    r = api.client.post("/api/v1/customers", json=person(), headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def snapshot(api: Api, cid: int) -> Any:
    return api.client.get(f"/api/v1/customers/{cid}", headers=api.token("admin")).json()


class TestCreate:
    def test_a_person_is_created_with_masked_identity(self, api: Api) -> None:
        body = person()
        r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
        assert r.status_code == 201, r.text
        c = r.json()
        assert c["id_number"] == body["id_number"][:4] + "*" * 10 + body["id_number"][-4:]
        assert c["phone"] == body["phone"][:3] + "****" + body["phone"][-4:]
        assert c["masked"] is True
        assert c["birth_date"] == f"{body['id_number'][6:10]}-{body['id_number'][10:12]}-{body['id_number'][12:14]}"

    def test_a_business_is_created_with_its_uscc(self, api: Api) -> None:
        r = api.client.post("/api/v1/customers", headers=api.token("credit_officer"),
                            json={"kind": "business", "name": "李记农资店", "id_number": identities.uscc(_rng),
                                  "phone": identities.mobile(_rng)})
        assert r.status_code == 201, r.text
        assert r.json()["birth_date"] is None

    @pytest.mark.parametrize(("over", "field", "message"), [
        ({"id_number": "110105194912310023"}, "id_number", "the check digit does not match"),
        ({"id_number": "110105199902310021"}, "id_number", "does not exist"),
        ({"phone": "12345"}, "phone", "mainland mobile"),
        ({"kind": "robot"}, "kind", "person"),
        ({"name": ""}, "name", "at least 1"),
        ({"status": "vip"}, "status", "Extra inputs are not permitted"),
    ])
    def test_bad_input_is_422_naming_the_field(self, api: Api, over: dict[str, Any], field: str,
                                               message: str) -> None:
        before = audit_count(api)
        r = api.client.post("/api/v1/customers", json=person(**over), headers=api.token("credit_officer"))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert message in r.json()["detail"]
        assert audit_count(api) == before

    def test_a_duplicate_id_number_in_the_same_bank_is_409(self, api: Api) -> None:
        body = person()
        headers = api.token("credit_officer")
        assert api.client.post("/api/v1/customers", json=body, headers=headers).status_code == 201
        r = api.client.post("/api/v1/customers", json=person(id_number=body["id_number"]), headers=headers)
        assert r.status_code == 409
        assert r.json()["field"] == "id_number"

    def test_the_same_person_may_bank_with_two_banks(self, api: Api, other: Api) -> None:
        body = person()
        assert api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer")).status_code == 201
        assert other.client.post("/api/v1/customers", json=body,
                                 headers=other.token("credit_officer")).status_code == 201

    def test_a_malformed_json_body_is_422_not_500(self, api: Api) -> None:
        r = api.client.post("/api/v1/customers", content=b"{not json", headers={
            **api.token("credit_officer"), "content-type": "application/json"})
        assert r.status_code == 422


class TestRead:
    def test_reveal_shows_full_data_and_is_audited(self, api: Api) -> None:
        body = person()
        headers = api.token("credit_officer")
        cid = api.client.post("/api/v1/customers", json=body, headers=headers).json()["id"]
        before = audit_count(api)
        r = api.client.get(f"/api/v1/customers/{cid}?reveal=true", headers=headers)
        assert r.status_code == 200
        assert r.json()["id_number"] == body["id_number"] and r.json()["phone"] == body["phone"]
        assert audit_count(api) == before + 1

    def test_a_marketer_cannot_reveal(self, api: Api) -> None:
        cid = make_customer(api)
        r = api.client.get(f"/api/v1/customers/{cid}?reveal=true", headers=api.token("marketer"))
        assert r.status_code == 403

    def test_the_list_is_paged_capped_and_searchable(self, api: Api) -> None:
        headers = api.token("credit_officer")
        body = person(name=f"搜索{next(_seq)}号")
        for _ in range(3):
            make_customer(api)
        api.client.post("/api/v1/customers", json=body, headers=headers)
        page = api.client.get("/api/v1/customers?page_size=2", headers=headers).json()
        assert page["total"] == 4 and len(page["items"]) == 2
        assert api.client.get("/api/v1/customers?page_size=1000", headers=headers).status_code == 422
        found = api.client.get(f"/api/v1/customers?q={body['phone']}", headers=headers).json()
        assert [c["name"] for c in found["items"]] == [body["name"]]
        found = api.client.get(f"/api/v1/customers?q={body['id_number']}", headers=headers).json()
        assert found["total"] == 1

    def test_another_banks_customers_never_appear(self, api: Api, other: Api) -> None:
        make_customer(other)
        assert api.client.get("/api/v1/customers", headers=api.token("admin")).json()["total"] == 0


class TestUpdate:
    def test_allowed_fields_change_and_the_change_is_audited_masked(self, api: Api) -> None:
        cid = make_customer(api)
        r = api.client.patch(f"/api/v1/customers/{cid}", headers=api.token("credit_officer"),
                             json={"phone": "13900001111", "address": "新街村8号"})
        assert r.status_code == 200, r.text
        assert r.json()["phone"] == "139****1111" and r.json()["version"] == 2

    def test_identity_cannot_be_patched(self, api: Api) -> None:
        cid = make_customer(api)
        r = api.client.patch(f"/api/v1/customers/{cid}", headers=api.token("credit_officer"),
                             json={"id_number": "11010519491231002X"})
        assert r.status_code == 422

    def test_a_null_name_is_refused(self, api: Api) -> None:
        cid = make_customer(api)
        r = api.client.patch(f"/api/v1/customers/{cid}", headers=api.token("credit_officer"), json={"name": None})
        assert r.status_code == 422 and r.json()["field"] == "name"


def test_a_borrower_sees_no_other_customer(api: Api) -> None:
    cid = make_customer(api)
    r = api.client.get(f"/api/v1/customers/{cid}", headers=api.token("borrower"))
    assert r.status_code == 404
