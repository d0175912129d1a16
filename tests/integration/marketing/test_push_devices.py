"""App pushes on SQLite and PostgreSQL: the borrower's app registers and unregisters its push tokens through
the API, each borrower only their own; a push campaign goes to every active device of each customer through
the gateway test double; a token the gateway refuses as invalid, or whose receipt says so, is disabled and
gets nothing more; an unregistered token gets nothing; a customer without a device is not pushed to."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import Api, TenantKit
from tests.integration.marketing.test_delivery_policy import NOON, Desk, register_app

from microlend.core import delivery, tenancy
from microlend.core.errors import PermissionDenied
from microlend.core.identity import Principal, Role
from microlend.demo.message_gateway import GatewayDouble
from microlend.marketing import service
from microlend.parties import devices
from microlend.parties.tables import DeviceRow


@pytest.fixture(scope="module")
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="push-key-0001", secret="push-secret-0001", receipts_url="http://unused") as server:
        yield server


def _device(kit: TenantKit, device_id: int) -> DeviceRow:
    with kit.uow_factory() as u:
        row = u.session.get(DeviceRow, device_id)
        assert row is not None
        u.session.expunge(row)
        return row


def _token() -> str:
    return f"fcm:{uuid.uuid4().hex}{uuid.uuid4().hex}"


class TestTheBorrowersApp:
    def _borrower(self, api: Api, kit: TenantKit, desk: Desk, index: int) -> dict[str, str]:
        customer_id = int(desk.frame["customer_id"][index])
        username = f"{kit.tenant.name}-app-{customer_id}"
        with kit.uow_factory() as u:
            tenancy.add_user(u.session, kit.tenant.id, username, "correct-horse-1", ["borrower"],
                             customer_id=customer_id)
            u.commit()
        return api.token_for(username)

    def test_a_borrower_registers_lists_and_unregisters_only_their_own_tokens(
            self, app_client: TestClient, bank: TenantKit) -> None:
        desk = Desk(bank, n=2)
        api = Api(app_client, bank)
        mine, theirs = self._borrower(api, bank, desk, 0), self._borrower(api, bank, desk, 1)
        token = _token()
        r = app_client.post("/api/v1/messages/devices", json={"token": token, "platform": "ios"}, headers=mine)
        assert r.status_code == 201, r.text
        body = r.json()
        assert body["status"] == "active" and token not in json.dumps(body) and body["token"].startswith(token[:4])
        again = app_client.post("/api/v1/messages/devices", json={"token": token, "platform": "ios"}, headers=mine)
        assert again.status_code == 201 and again.json()["id"] == body["id"]  # one row per token
        listed = app_client.get("/api/v1/messages/devices", headers=mine).json()
        assert [d["id"] for d in listed if d["status"] == "active"].count(body["id"]) == 1
        assert body["id"] not in [d["id"] for d in app_client.get("/api/v1/messages/devices", headers=theirs).json()]
        # another borrower cannot remove it, staff cannot register one, a malformed token is refused
        assert app_client.post("/api/v1/messages/devices/unregister", json={"token": token},
                               headers=theirs).status_code == 404
        assert app_client.post("/api/v1/messages/devices", json={"token": _token(), "platform": "ios"},
                               headers=api.token("marketer")).status_code == 403
        for bad in ({"token": "short", "platform": "ios"}, {"token": "x" * 20 + " ;--", "platform": "ios"},
                    {"token": _token(), "platform": "symbian"}, {"token": _token(), "platform": "ios", "x": 1}):
            assert app_client.post("/api/v1/messages/devices", json=bad, headers=mine).status_code == 422
        gone = app_client.post("/api/v1/messages/devices/unregister", json={"token": token}, headers=mine)
        assert gone.status_code == 200 and gone.json()["status"] == "disabled"
        assert _device(bank, body["id"]).disabled_reason == devices.UNREGISTERED

    def test_staff_never_read_a_borrowers_tokens_through_the_borrower_calls(self, bank: TenantKit) -> None:
        with pytest.raises(PermissionDenied):
            devices.my_devices(bank.uow_factory(), bank.principal("marketer"))
        with pytest.raises(PermissionDenied):
            devices.register_device(bank.uow_factory(), bank.principal("admin"), _token(), "ios", at=NOON)


class TestPushDelivery:
    def _campaign(self, desk: Desk, double: GatewayDouble) -> int:
        desk.policy()
        desk.gateway(double, channel="push")
        cid = desk.campaign(f"push {uuid.uuid4().hex[:6]}", channel="push")
        desk.launch(cid)
        return cid

    def test_a_push_goes_to_every_active_device_and_not_to_an_unregistered_one(
            self, bank: TenantKit, double: GatewayDouble) -> None:
        desk = Desk(bank, n=6)
        ids = [int(c) for c in desk.frame["customer_id"]]
        second = register_app(bank, ids[0], _token(), "ios")  # a second phone
        old_token = desk.tokens[ids[1]][1]
        borrower = devices_principal(bank, ids[1])
        devices.unregister_device(bank.uow_factory(), borrower, old_token, at=NOON)
        cid = self._campaign(desk, double)
        summary = desk.dispatch(NOON + timedelta(minutes=1))
        rows = {r.customer_id: r for r in desk.outbox(cid)}
        assert summary.sent == 5 and summary.failed == 1
        first = rows[ids[0]]
        assert {k for k in double.accepted if k.startswith(f"mkt-{first.id}.")} == {
            f"mkt-{first.id}.{desk.tokens[ids[0]][0]}", f"mkt-{first.id}.{second}"}
        assert rows[ids[1]].status == "failed" and rows[ids[1]].last_error == "no registered device"
        assert old_token not in {a.to for a in double.accepted.values()}

    def test_a_token_refused_as_invalid_is_disabled_and_gets_nothing_more(
            self, bank: TenantKit, double: GatewayDouble) -> None:
        desk = Desk(bank, n=4)
        ids = [int(c) for c in desk.frame["customer_id"]]
        dead_id, dead = desk.tokens[ids[2]]
        double.reject_to.add(dead)
        try:
            cid = self._campaign(desk, double)
            summary = desk.dispatch(NOON + timedelta(minutes=1))
        finally:
            double.reject_to.discard(dead)
        assert summary.sent == 3 and summary.failed == 1
        device = _device(bank, dead_id)
        assert device.status == "disabled" and device.disabled_reason == devices.INVALID_TOKEN
        assert {r.customer_id: r.status for r in desk.outbox(cid)}[ids[2]] == "failed"
        later = desk.campaign("later push", channel="push")
        desk.launch(later, at=NOON + timedelta(hours=1))
        before = sum(a.to == dead for a in double.accepted.values())
        desk.dispatch(NOON + timedelta(hours=1, minutes=1))
        assert sum(a.to == dead for a in double.accepted.values()) == before == 0

    def test_a_receipt_saying_the_token_is_invalid_disables_it(self, bank: TenantKit, double: GatewayDouble) -> None:
        desk = Desk(bank, n=3)
        ids = [int(c) for c in desk.frame["customer_id"]]
        stale_id, stale = desk.tokens[ids[0]]
        fresh = register_app(bank, ids[0], _token(), "ios")
        double.invalid_tokens.add(stale)
        double.pending_receipts.clear()
        try:
            cid = self._campaign(desk, double)
            assert desk.dispatch(NOON + timedelta(minutes=1)).sent == 3
        finally:
            double.invalid_tokens.discard(stale)
        row = next(r for r in desk.outbox(cid) if r.customer_id == ids[0])
        mine = [r for r in double.pending_receipts if str(r["id"]).startswith(f"mkt-{row.id}.")]
        double.pending_receipts.clear()
        assert {r["status"] for r in mine} == {"delivered", "undeliverable"}
        mine.sort(key=lambda r: r["status"])  # delivered first, then the invalid token's receipt
        body = json.dumps({"receipts": mine}).encode()
        headers = delivery.signed_headers(double.secret, body, datetime.now(UTC))
        result = service.record_receipts(bank.uow_factory(), body, timestamp=headers[delivery.TIMESTAMP_HEADER],
                                         signature=headers[delivery.SIGNATURE_HEADER], now=datetime.now(UTC))
        assert result.recorded == 2
        assert _device(bank, stale_id).status == "disabled" and _device(bank, fresh).status == "active"
        assert _device(bank, stale_id).disabled_reason == devices.INVALID_TOKEN
        with bank.uow_factory() as u:  # the message reached one of the customer's phones: it stays delivered
            from microlend.marketing.tables import OutboxRow

            assert u.session.execute(select(OutboxRow.delivery_status).where(OutboxRow.id == row.id)).scalar() \
                == "delivered"


def devices_principal(kit: TenantKit, customer_id: int) -> Principal:
    return Principal(user_id=0, tenant_id=kit.tenant.id, username=f"app-{customer_id}",
                     roles=frozenset({Role.BORROWER}), customer_id=customer_id)
