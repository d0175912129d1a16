"""Datasets through the HTTP API on SQLite and PostgreSQL: upload under a contract, refusals naming rows and
columns, valid-only loads, quality reports, and the permission battery on every object endpoint."""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from tests.battery import audit_count
from tests.conftest import Api, TenantKit

CSV = "id,age,segment,outcome\n1,34,retail,good\n2,51,farming,bad\n3,29,retail,good\n4,45,trade,good\n"
CONTRACT = {"name": "loans", "unique": ["id"], "columns": [
    {"name": "id", "dtype": "int"},
    {"name": "age", "dtype": "int", "min": 18, "max": 70},
    {"name": "segment", "dtype": "string", "categories": ["retail", "farming", "trade"]},
    {"name": "outcome", "dtype": "string", "categories": ["good", "bad"]},
]}
BROKEN = CSV + "5,17,retail,good\n6,40,fishing,bad\n"


@pytest.fixture(autouse=True)
def _data_dir(app_client: Any, tmp_path: Path) -> Iterator[None]:
    """Uploaded files land in a per-test folder, not in the working tree."""
    app = app_client.app
    original = app.state.settings
    app.state.settings = original.model_copy(update={"data_dir": tmp_path})
    yield
    app.state.settings = original


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def upload(api: Api, name: str, content: str | bytes = CSV, *, filename: str = "loans.csv",
           contract: dict[str, Any] | None = None, valid_only: bool = False,
           headers: dict[str, str] | None = None) -> Any:
    data: dict[str, str] = {"name": name, "valid_only": "true" if valid_only else "false"}
    if contract is not None:
        data["contract"] = json.dumps(contract)
    raw = content.encode() if isinstance(content, str) else content
    return api.client.post("/api/v1/datasets", data=data, files={"file": (filename, raw, "text/csv")},
                           headers=headers if headers is not None else api.token("risk_analyst"))


def make_dataset(api: Api) -> str:
    name = f"ds-{uuid.uuid4().hex[:8]}"
    r = upload(api, name, contract=CONTRACT)
    assert r.status_code == 201, r.text
    return name


class TestUpload:
    def test_a_csv_under_its_contract_becomes_version_1_with_one_audit_row(self, api: Api) -> None:
        before = audit_count(api)
        r = upload(api, "loans", contract=CONTRACT)
        assert r.status_code == 201, r.text
        d = r.json()["dataset"]
        assert (d["name"], d["version"], d["rows"], d["rejected_rows"]) == ("loans", 1, 4, 0)
        assert [c["name"] for c in d["columns"]] == ["id", "age", "segment", "outcome"]
        assert d["contract"]["unique"] == ["id"] and len(d["content_hash"]) == 64
        assert "path" not in d["source"]
        assert audit_count(api) == before + 1
        again = upload(api, "loans", contract=CONTRACT)
        assert again.json()["dataset"]["version"] == 2

    def test_a_parquet_file_without_a_contract_gets_one_inferred(self, api: Api) -> None:
        buf = io.BytesIO()
        pd.read_csv(io.StringIO(CSV)).to_parquet(buf, index=False)
        r = upload(api, "loans-pq", buf.getvalue(), filename="loans.parquet")
        assert r.status_code == 201, r.text
        assert {c["name"] for c in r.json()["dataset"]["contract"]["columns"]} == {"id", "age", "segment",
                                                                                    "outcome"}

    def test_a_broken_contract_is_422_naming_each_row_and_column_and_nothing_is_stored(self, api: Api) -> None:
        before = audit_count(api)
        r = upload(api, "broken", BROKEN, contract=CONTRACT)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["field"] == "data"
        faults = {(e["row"], e["column"]) for e in body["errors"]}
        assert faults == {(5, "age"), (6, "segment")}
        assert "17" in body["detail"] and "fishing" in body["detail"]
        assert audit_count(api) == before
        listed = api.client.get("/api/v1/datasets", headers=api.token("risk_analyst")).json()
        assert "broken" not in [d["name"] for d in listed]

    def test_valid_only_loads_the_good_rows_and_reports_the_rejected(self, api: Api) -> None:
        r = upload(api, "partly", BROKEN, contract=CONTRACT, valid_only=True)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["dataset"]["rows"] == 4 and body["dataset"]["rejected_rows"] == 2
        assert [x["source_row"] for x in body["rejected"]] == [5, 6]
        assert "age" in body["rejected"][0]["reasons"]

    @pytest.mark.parametrize(("filename", "content", "contract", "field"), [
        ("loans.xlsx", CSV, None, "file"),
        ("loans.csv", "", None, "file"),
        ("loans.csv", CSV, "{not json", "contract"),
        ("loans.csv", CSV, json.dumps({"columns": [{"name": "id", "dtype": "money"}]}), "contract"),
    ])
    def test_unusable_input_is_422_naming_the_field(self, api: Api, filename: str, content: str,
                                                    contract: str | None, field: str) -> None:
        data = {"name": "bad-input"}
        if contract is not None:
            data["contract"] = contract
        r = api.client.post("/api/v1/datasets", data=data, files={"file": (filename, content.encode(), "text/csv")},
                            headers=api.token("risk_analyst"))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field

    def test_a_bad_dataset_name_is_422(self, api: Api) -> None:
        r = upload(api, "Loans With Spaces")
        assert r.status_code == 422 and r.json()["field"] == "name"


class TestRead:
    def test_list_get_and_versions(self, api: Api) -> None:
        name = make_dataset(api)
        upload(api, name, contract=CONTRACT)
        h = api.token("risk_analyst")
        listed = [d for d in api.client.get("/api/v1/datasets", headers=h).json() if d["name"] == name]
        assert [d["version"] for d in listed] == [2, 1]
        assert api.client.get(f"/api/v1/datasets/{name}", headers=h).json()["version"] == 2
        assert api.client.get(f"/api/v1/datasets/{name}?version=1", headers=h).json()["version"] == 1
        assert api.client.get(f"/api/v1/datasets/{name}?version=9", headers=h).status_code == 404

    def test_the_quality_report_as_json_and_html(self, api: Api) -> None:
        name = make_dataset(api)
        h = api.token("risk_analyst")
        r = api.client.get(f"/api/v1/datasets/{name}/quality?target=outcome&bad=bad", headers=h)
        assert r.status_code == 200, r.text
        q = r.json()
        assert q["rows"] == 4 and q["bad_rows"] == 1
        age = next(c for c in q["columns"] if c["name"] == "age")
        assert age["missing_rate"] == 0 and age["minimum"] == 29 and age["maximum"] == 51
        html = api.client.get(f"/api/v1/datasets/{name}/quality.html", headers=h)
        assert html.status_code == 200 and html.headers["content-type"].startswith("text/html")
        assert "data:image/png;base64," in html.text


class TestPermissions:
    def test_upload_needs_a_token_and_the_right_role(self, api: Api) -> None:
        assert upload(api, "x", headers={}).status_code == 401
        before = audit_count(api)
        assert upload(api, "x", headers=api.token("credit_officer")).status_code == 403
        assert audit_count(api) == before

    def test_another_banks_datasets_are_not_listed(self, api: Api, other: Api) -> None:
        name = make_dataset(other)
        listed = api.client.get("/api/v1/datasets", headers=api.token("risk_analyst")).json()
        assert name not in [d["name"] for d in listed]


BANK_ACCOUNTS = (
    "account_no,holder_id_number,opened_on,closed_on,product,currency\n"
    "A1,91410184BXKFLJ2K0E,2025-01-01,,current,CNY\n"
    "A2,91410184BXKFLJ2K0F,2025-01-01,,current,CNY\n"
)


class TestBankAccountsImport:
    def test_refused_with_each_row_named_then_loaded_valid_only(self, api: Api) -> None:
        files = {"accounts": ("accounts.csv", BANK_ACCOUNTS, "text/csv")}
        refused = api.client.post("/api/v1/data/bank-accounts/import", files=files, headers=api.token("risk_analyst"))
        assert refused.status_code == 422
        assert [(e["row"], e["column"]) for e in refused.json()["errors"]] == [(2, "accounts.holder_id_number")]
        loaded = api.client.post("/api/v1/data/bank-accounts/import", files=files, data={"valid_only": "true"},
                                 headers=api.token("risk_analyst"))
        assert loaded.status_code == 201, loaded.text
        body = loaded.json()
        assert body["accounts_created"] == 1 and body["rejected"][0]["source_row"] == 2
        assert body["rejected"][0]["file"] == "accounts"

    def test_a_file_that_is_not_csv_or_parquet_is_refused(self, api: Api) -> None:
        answer = api.client.post("/api/v1/data/bank-accounts/import",
                                 files={"accounts": ("accounts.xlsx", b"x", "application/octet-stream")},
                                 headers=api.token("risk_analyst"))
        assert answer.status_code == 422 and answer.json()["field"] == "accounts"
