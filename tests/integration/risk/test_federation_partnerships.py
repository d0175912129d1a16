"""The bank's record of its data partners on SQLite and PostgreSQL: recorded with the key's fingerprint (never the
key), tenant-scoped, only by a risk analyst or admin, every change audited; suspended and active again; through
the service, the HTTP API and the CLI."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from typer.testing import CliRunner

from microlend.cli.main import app as main_app
from microlend.core.audit import AuditRow
from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.settings import get_settings
from microlend.core.tenancy import create_tenant
from microlend.risk.federation.keys import generate_key
from microlend.risk.federation.partnerships import (
    PartnershipCreate,
    get_partnership,
    list_partnerships,
    partnership_for_training,
    register_partnership,
    set_status,
)
from microlend.risk.tables import PartnershipRow

from .conftest import Bank, _person, open_bank

runner = CliRunner()


def telecom(**changes: Any) -> PartnershipCreate:
    base: dict[str, Any] = {"name": "城关电信", "endpoint_url": "http://10.0.0.5:8700/",
                            "key_fingerprint": "0A1B2C3D4E5F6071",
                            "purpose": "joint PD model for micro-business loans", "contract_ref": "DP-2026-007",
                            "valid_from": date(2026, 1, 1), "valid_to": date(2027, 6, 30),
                            "features": ("pay_flow_12m", "bill_arrears_6m"),
                            "consent_basis": "the applicant's partner_scoring consent (联合建模评分授权书)"}
    return PartnershipCreate(**{**base, **changes})


def audits(bank: Bank, action: str) -> int:
    with bank.uow as u:
        return int(u.session.execute(select(func.count()).select_from(AuditRow).where(
            AuditRow.tenant_id == bank.tenant_id, AuditRow.action == action)).scalar_one())


def test_an_analyst_records_a_partner_by_its_key_fingerprint_and_it_is_audited(bank: Bank) -> None:
    p = register_partnership(bank.uow, bank.people["wang"], telecom(features=(" pay_flow_12m", "bill_arrears_6m",
                                                                              "pay_flow_12m")))
    assert (p.status, p.endpoint_url, p.key_fingerprint) == ("active", "http://10.0.0.5:8700", "0a1b2c3d4e5f6071")
    assert p.features == ("pay_flow_12m", "bill_arrears_6m") and "partner_scoring" in p.consent_basis
    assert p.created_by_name == bank.people["wang"].username
    assert get_partnership(bank.uow, bank.people["sun"], p.id) == p  # a validator reads it
    assert audits(bank, "partnership.register") == 1
    assert p.usable_on(date(2026, 12, 1)) is None
    assert "ended on 2027-06-30" in (p.usable_on(date(2027, 7, 1)) or "")
    assert "starts on 2026-01-01" in (p.usable_on(date(2025, 12, 31)) or "")


def test_suspended_then_active_again_each_with_its_reason_on_the_audit_trail(bank: Bank) -> None:
    p = register_partnership(bank.uow, bank.people["wang"], telecom())
    suspended = set_status(bank.uow, bank.people["admin"], p.id, "suspended", reason="consent basis under review")
    assert suspended.status == "suspended" and "is suspended" in (suspended.usable_on(date(2026, 6, 1)) or "")
    assert [x.id for x in list_partnerships(bank.uow, bank.people["zhao"], status="suspended")] == [p.id]
    with pytest.raises(Conflict, match="already suspended"):
        set_status(bank.uow, bank.people["admin"], p.id, "suspended", reason="again")
    active = set_status(bank.uow, bank.people["li"], p.id, "active", reason="review done")
    assert active.status == "active" and active.status_reason == "review done"
    assert audits(bank, "partnership.suspend") == 1 and audits(bank, "partnership.activate") == 1


@pytest.mark.parametrize("who", ["zhao", "chen", "sun"])
def test_only_a_risk_analyst_or_admin_records_or_changes_one(bank: Bank, who: str) -> None:
    with pytest.raises(PermissionDenied):
        register_partnership(bank.uow, bank.people[who], telecom())
    p = register_partnership(bank.uow, bank.people["wang"], telecom())
    with pytest.raises(PermissionDenied):
        set_status(bank.uow, bank.people[who], p.id, "suspended", reason="x")
    assert get_partnership(bank.uow, bank.people["wang"], p.id).status == "active"
    assert audits(bank, "partnership.register") == 1


@pytest.mark.parametrize(("changes", "field"), [
    ({"name": "  "}, "name"),
    ({"endpoint_url": "ftp://10.0.0.5"}, "endpoint_url"),
    ({"endpoint_url": "http://user:secret@10.0.0.5"}, "endpoint_url"),
    ({"key_fingerprint": "microlend-federation-key-v1:00ff"}, "key_fingerprint"),
    ({"purpose": ""}, "purpose"),
    ({"contract_ref": ""}, "contract_ref"),
    ({"valid_to": date(2025, 12, 31)}, "valid_to"),
    ({"features": ()}, "features"),
    ({"features": (" ", "")}, "features"),
    ({"features": ("monthly spend",)}, "features"),
    ({"consent_basis": " "}, "consent_basis"),
])
def test_a_wrong_field_is_named_and_nothing_is_written(bank: Bank, changes: dict[str, Any], field: str) -> None:
    with pytest.raises(ValidationError) as caught:
        register_partnership(bank.uow, bank.people["wang"], telecom(**changes))
    assert caught.value.field == field
    with bank.uow as u:
        assert u.session.execute(select(func.count()).select_from(PartnershipRow)).scalar_one() == 0


def test_another_bank_neither_sees_nor_changes_it_and_names_are_unique_per_bank(bank: Bank) -> None:
    p = register_partnership(bank.uow, bank.people["wang"], telecom())
    with pytest.raises(Conflict, match="already exists"):
        register_partnership(bank.uow, bank.people["li"], telecom())
    other = create_tenant(bank.uow, "other-bank")
    stranger = _person(bank.uow, other.id, "wang@other-bank", ["risk_analyst"])
    with pytest.raises(NotFound):
        get_partnership(bank.uow, stranger, p.id)
    with pytest.raises(NotFound):
        set_status(bank.uow, stranger, p.id, "suspended", reason="not mine")
    assert list_partnerships(bank.uow, stranger) == []
    assert register_partnership(bank.uow, stranger, telecom()).name == "城关电信"  # its own, same name
    assert get_partnership(bank.uow, bank.people["wang"], p.id).status == "active"


@pytest.fixture
def cli_bank(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Bank]:
    bank = open_bank(tmp_path, monkeypatch)
    monkeypatch.setenv("MICROLEND_DATABASE_URL", f"sqlite:///{tmp_path / 'microlend.db'}")
    monkeypatch.setenv("MICROLEND_DATA_DIR", str(tmp_path / "var"))
    get_settings.cache_clear()
    yield bank
    get_settings.cache_clear()
    bank.engine.dispose()


def test_the_cli_records_a_partner_from_its_key_file_without_storing_the_key(cli_bank: Bank, tmp_path: Path) -> None:
    key = tmp_path / "partner.key"
    fingerprint = generate_key(key)
    analyst = cli_bank.people["wang"].username
    base = ["federation", "partnership", "add", "--tenant", "rural-bank", "--user", analyst, "--name", "tax-data",
            "--endpoint", "https://tax.example.cn:8700", "--purpose", "joint model", "--contract", "C-9",
            "--from", "2026-01-01", "--to", "2026-12-31", "--features", "vat_sales_12m,vat_grade",
            "--consent-basis", "partner_scoring consent"]
    result = runner.invoke(main_app, [*base, "--key-file", str(key)])
    assert result.exit_code == 0, result.output
    assert fingerprint in result.output
    secret = key.read_text().strip().split(":")[1]
    with cli_bank.uow as u:
        row = u.session.execute(select(PartnershipRow)).scalar_one()
        assert row.key_fingerprint == fingerprint and secret not in repr(vars(row))
    listed = runner.invoke(main_app, ["federation", "partnership", "list", "--tenant", "rural-bank", "--user", analyst])
    assert "tax-data" in listed.output and "active" in listed.output
    assert "vat_sales_12m,vat_grade" in listed.output and "partner_scoring consent" in listed.output
    suspended = runner.invoke(main_app, ["federation", "partnership", "suspend", "--tenant", "rural-bank",
                                         "--user", analyst, "--id", str(row.id), "--reason", "audit"])
    assert suspended.exit_code == 0 and "suspended" in suspended.output
    bad_date = runner.invoke(main_app, [*base[:18], "2026-13-01", *base[19:], "--fingerprint", "00ff00ff00ff00ff"])
    assert bad_date.exit_code == 2 and "is not a date" in bad_date.output
    both = runner.invoke(main_app, [*base, "--key-file", str(key), "--fingerprint", "00ff00ff00ff00ff"])
    assert both.exit_code == 2
    officer = runner.invoke(main_app, ["federation", "partnership", "activate", "--tenant", "rural-bank", "--user",
                                       cli_bank.people["zhao"].username, "--id", str(row.id), "--reason", "x"])
    assert officer.exit_code != 0 and get_partnership(cli_bank.uow, cli_bank.people["wang"], row.id).status == \
        "suspended"


def test_the_analyst_page_lists_the_partners_in_both_languages(app_client: Any, new_tenant: Any) -> None:
    from fastapi.testclient import TestClient
    from tests.conftest import sign_in_page

    kit = new_tenant()
    p = register_partnership(kit.uow_factory(), kit.principal("risk_analyst"), telecom())
    set_status(kit.uow_factory(), kit.principal("admin"), p.id, "suspended", reason="合同续签中")
    pages = {}
    for lang in ("en", "zh_CN"):
        username, _ = kit.user("model_validator")
        client = TestClient(app_client.app, raise_server_exceptions=False)
        client.cookies.set("ml_lang", lang)
        sign_in_page(client, username)
        pages[lang] = client.get("/analyst/partnerships")
        assert pages[lang].status_code == 200
        assert "城关电信" in pages[lang].text and "0a1b2c3d4e5f6071" in pages[lang].text
        assert "合同续签中" in pages[lang].text and "DP-2026-007" in pages[lang].text
    assert "Data partners" in pages["en"].text and "Suspended" in pages["en"].text
    assert "联合建模合作方" in pages["zh_CN"].text and "已暂停" in pages["zh_CN"].text
    assert "Suspended" not in pages["zh_CN"].text
    username, _ = kit.user("marketer")
    outsider = TestClient(app_client.app, raise_server_exceptions=False)
    sign_in_page(outsider, username)
    assert outsider.get("/analyst/partnerships").status_code == 403


def test_a_joint_training_runs_only_under_an_active_partnership_within_its_dates(bank: Bank) -> None:
    p = register_partnership(bank.uow, bank.people["wang"], telecom())
    ask = {"on": date(2026, 12, 1), "key_fingerprint": "0a1b2c3d4e5f6071", "endpoint_url": "http://10.0.0.5:8700/"}
    assert partnership_for_training(bank.uow, bank.people["wang"], "城关电信", **ask).id == p.id
    with pytest.raises(Conflict, match="ended on 2027-06-30; no joint training"):
        partnership_for_training(bank.uow, bank.people["wang"], "城关电信", **{**ask, "on": date(2027, 7, 1)})
    with pytest.raises(Conflict, match="not 00ff00ff00ff00ff"):
        partnership_for_training(bank.uow, bank.people["wang"], "城关电信",
                                 **{**ask, "key_fingerprint": "00ff00ff00ff00ff"})
    with pytest.raises(Conflict, match="answers at"):
        partnership_for_training(bank.uow, bank.people["wang"], "城关电信",
                                 **{**ask, "endpoint_url": "http://10.0.0.6:8700"})
    with pytest.raises(NotFound):
        partnership_for_training(bank.uow, bank.people["wang"], "nobody", **ask)
    with pytest.raises(PermissionDenied):
        partnership_for_training(bank.uow, bank.people["zhao"], "城关电信", **ask)
    set_status(bank.uow, bank.people["admin"], p.id, "suspended", reason="consent basis under review")
    with pytest.raises(Conflict, match="is suspended; no joint training"):
        partnership_for_training(bank.uow, bank.people["wang"], "城关电信", **ask)


def test_the_cli_refuses_to_train_under_a_suspended_or_expired_partnership(cli_bank: Bank, tmp_path: Path) -> None:
    key = tmp_path / "partner.key"
    fingerprint = generate_key(key)
    today = date.today()
    analyst = cli_bank.people["wang"].username
    suspended = register_partnership(cli_bank.uow, cli_bank.people["wang"], telecom(
        name="suspended-one", key_fingerprint=fingerprint, endpoint_url="http://127.0.0.1:9",
        valid_from=today.replace(year=today.year - 1), valid_to=today.replace(year=today.year + 1)))
    set_status(cli_bank.uow, cli_bank.people["admin"], suspended.id, "suspended", reason="contract lapsed")
    register_partnership(cli_bank.uow, cli_bank.people["wang"], telecom(
        name="expired-one", key_fingerprint=fingerprint, endpoint_url="http://127.0.0.1:9",
        valid_from=today.replace(year=today.year - 2), valid_to=today.replace(year=today.year - 1)))
    data = tmp_path / "bank.csv"
    data.write_text("id_number,x,y\n1,1,good\n2,2,bad\n")
    args = ["federation", "train", "--partner", "http://127.0.0.1:9", "--key-file", str(key), "--data", str(data),
            "--id-column", "id_number", "--target", "y", "--bad", "bad", "--out", str(tmp_path / "model"),
            "--tenant", "rural-bank", "--user", analyst]
    for name, why in (("suspended-one", "is suspended"), ("expired-one", "ended on")):
        result = runner.invoke(main_app, [*args, "--partnership", name])
        assert result.exit_code != 0, result.output
        assert why in result.output and "no joint training" in result.output
        assert "not reachable" not in result.output  # refused before the partner is called
    assert not (tmp_path / "model" / "model.json").exists()
    alone = runner.invoke(main_app, [*args[:-4], "--partnership", "expired-one"])
    assert alone.exit_code == 2 and "--tenant and --user" in alone.output


def test_the_analyst_page_records_a_partner_and_suspends_and_reactivates_it(app_client: Any,
                                                                            new_tenant: Any) -> None:
    from fastapi.testclient import TestClient
    from tests.conftest import sign_in_page

    kit = new_tenant()
    username, analyst = kit.user("risk_analyst")
    client = TestClient(app_client.app, raise_server_exceptions=False)
    client.cookies.set("ml_lang", "zh_CN")
    sign_in_page(client, username)
    page = client.get("/analyst/partnerships")
    assert page.status_code == 200 and 'data-testid="partnership-form"' in page.text and "登记合作方" in page.text
    form = {"name": "城关电信", "endpoint_url": "https://telecom.example.cn:8700",
            "key_fingerprint": "0A1B2C3D4E5F6071", "features": "bill_arrears_6m, tenure_months",
            "purpose": "joint PD model",
            "consent_basis": "申请人的联合建模评分授权", "contract_ref": "DP-2026-007", "valid_from": "2026-01-01",
            "valid_to": "2030-06-30"}
    bad = client.post("/analyst/partnerships", data={**form, "features": "monthly spend"})
    assert bad.status_code == 422 and "monthly spend" in bad.text and 'value="DP-2026-007"' in bad.text
    assert list_partnerships(kit.uow_factory(), analyst) == []
    added = client.post("/analyst/partnerships", data=form, follow_redirects=False)
    assert added.status_code == 303 and added.headers["location"] == "/analyst/partnerships?done=added"
    [p] = list_partnerships(kit.uow_factory(), analyst)
    assert p.features == ("bill_arrears_6m", "tenure_months") and p.consent_basis == "申请人的联合建模评分授权"
    shown = client.get("/analyst/partnerships?done=added").text
    assert "合作方已登记" in shown and "bill_arrears_6m, tenure_months" in shown and "授权依据" in shown
    no_reason = client.post(f"/analyst/partnerships/{p.id}/status", data={"status": "suspended", "reason": " "})
    assert no_reason.status_code == 422 and get_partnership(kit.uow_factory(), analyst, p.id).status == "active"
    off = client.post(f"/analyst/partnerships/{p.id}/status", data={"status": "suspended", "reason": "合同续签中"},
                      follow_redirects=False)
    assert off.status_code == 303 and get_partnership(kit.uow_factory(), analyst, p.id).status == "suspended"
    assert "合作已暂停" in client.get(off.headers["location"]).text
    on = client.post(f"/analyst/partnerships/{p.id}/status", data={"status": "active", "reason": "续签完成"},
                     follow_redirects=False)
    assert on.status_code == 303 and get_partnership(kit.uow_factory(), analyst, p.id).status == "active"

    validator, _ = kit.user("model_validator")  # reads the page, changes nothing
    reader = TestClient(app_client.app, raise_server_exceptions=False)
    reader.cookies.set("ml_lang", "en")
    sign_in_page(reader, validator)
    seen = reader.get("/analyst/partnerships")
    assert seen.status_code == 200 and "Consent basis" in seen.text
    assert 'data-testid="partnership-form"' not in seen.text
    refused = reader.post(f"/analyst/partnerships/{p.id}/status", data={"status": "suspended", "reason": "x"})
    assert refused.status_code == 403 and get_partnership(kit.uow_factory(), analyst, p.id).status == "active"
