"""Real delivery end to end over HTTP: the worker's messages job sends a launched SMS campaign through the
bank's gateway (the test double on its own port), the double posts signed delivery receipts to the running
application, and a customer's 退订 reply comes back through it and opts the customer out. A callback signed
with the wrong secret, or naming no message, is refused with 401 and changes nothing."""

from __future__ import annotations

import itertools
import json
import random
import uuid
from collections.abc import Iterator
from datetime import UTC, date, datetime, time

import httpx
import polars as pl
import pytest
from sqlalchemy import select
from tests.e2e.conftest import LiveServer

from microlend.core import delivery, tenancy
from microlend.core.delivery import GatewayConfig
from microlend.core.identity import system_principal
from microlend.demo import identities
from microlend.demo.message_gateway import GatewayDouble
from microlend.marketing import service
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import ContactPolicy
from microlend.marketing.tables import OptOutRow, OutboxRow
from microlend.parties import customers as parties
from microlend.parties.queries import marketing_consented
from microlend.worker import send_messages

_n = itertools.count(1)
NEVER_QUIET = QuietHours(time(3, 0), time(3, 0), "UTC")  # the test runs at any hour


@pytest.fixture
def gateway_double(live_server: LiveServer) -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="e2e-key-123456", secret="e2e-secret-123456",
                       receipts_url=f"{live_server.url}/api/v1/messages/receipts",
                       replies_url=f"{live_server.url}/api/v1/messages/replies") as double:
        yield double


def _bank_with_a_campaign(server: LiveServer, double: GatewayDouble, customers: int = 12) -> tuple[int, int]:
    """A bank with a policy, its SMS gateway (the double), customers who consent, and an approved, launched
    SMS campaign; (tenant id, campaign id)."""
    tenant = tenancy.create_tenant(server.uow(), f"e2e-msg-{uuid.uuid4().hex[:8]}")
    with server.uow() as u:
        users = {role: tenancy.principal_for(tenancy.add_user(u.session, tenant.id, f"{role}-{next(_n)}",
                                                              "correct-horse-1", [role]))
                 for role in ("marketer", "admin", "credit_officer")}
        u.commit()
    checker = system_principal(tenant.id, "checker")
    rng = random.Random(tenant.id)
    ids = [parties.create_customer(server.uow(), users["credit_officer"], parties.NewCustomer(
        "person", f"客户{i}", identities.resident_id(rng, identities.birth_date_for_age(rng, 35, date(2026, 1, 1))),
        identities.mobile(rng), marketing_consent=True)).id for i in range(customers)]
    service.set_contact_policy(server.uow(), users["admin"], ContactPolicy(
        holdout_share_bp=0, quiet=NEVER_QUIET, public_host="https://www.bank.example.cn"),
        at=datetime.now(UTC))
    delivery.save_gateway(server.uow(), users["admin"], GatewayConfig(
        "sms", double.base_url, double.api_key, double.secret, batch_size=5, throttle_per_s=100),
        at=datetime.now(UTC))
    service.save_segment(server.uow(), users["marketer"], "everyone", "age >= 18", at=datetime.now(UTC))
    camp = service.create_campaign(server.uow(), users["marketer"], service.CampaignSpec(
        name="spring", channel="sms", segment_name="everyone", control_share_bp=0,
        quiet=NEVER_QUIET), at=datetime.now(UTC))
    service.approve_campaign(server.uow(), checker, camp.id, at=datetime.now(UTC))
    frame = pl.DataFrame({"customer_id": ids, "age": [40] * customers, "marketing_consent": [True] * customers,
                          "current_days_past_due": [0] * customers})
    service.launch_campaign(server.uow(), users["marketer"], camp.id, frame, at=datetime.now(UTC), bank_name="示范银行")
    return tenant.id, camp.id


def _outbox(server: LiveServer, campaign_id: int) -> list[OutboxRow]:
    with server.uow() as u:
        rows = list(u.session.execute(select(OutboxRow).where(OutboxRow.campaign_id == campaign_id)
                                      .order_by(OutboxRow.id)).scalars())
        u.session.expunge_all()
    return rows


def test_the_worker_sends_and_receipts_and_a_stop_reply_come_back_over_http(
        live_server: LiveServer, gateway_double: GatewayDouble) -> None:
    tenant_id, campaign_id = _bank_with_a_campaign(live_server, gateway_double)
    figures = send_messages(live_server.uow(), system_principal(tenant_id, "worker"), date.today())
    assert figures["campaign_sent"] == 12
    rows = _outbox(live_server, campaign_id)
    assert all(r.status == "sent" and r.gateway_id for r in rows)
    texts = [gateway_double.accepted[f"mkt-{r.id}"].text for r in rows]
    assert all("https://www.bank.example.cn/t/" in t and "回T退订" in t for t in texts)

    answers = gateway_double.post_receipts()
    assert [a.status_code for a in answers] == [200]
    assert answers[0].json() == {"recorded": 12, "unknown": 0, "opted_out": False}
    assert {r.delivery_status for r in _outbox(live_server, campaign_id)} == {"delivered"}

    replied = rows[3]
    answer = gateway_double.reply(f"mkt-{replied.id}", "退订")
    assert answer.status_code == 200 and answer.json()["opted_out"] is True
    with live_server.uow() as u:
        assert set(u.session.execute(select(OptOutRow.channel).where(
            OptOutRow.tenant_id == tenant_id, OptOutRow.customer_id == replied.customer_id)).scalars()) \
            == {"sms", "push", "visit"}  # a STOP stops all marketing, every channel
    who = system_principal(tenant_id)
    assert marketing_consented(live_server.uow(), who, [replied.customer_id]) == set()
    assert marketing_consented(live_server.uow(), who, [rows[4].customer_id]) == {rows[4].customer_id}


def test_a_callback_with_a_wrong_signature_or_no_message_is_refused(
        live_server: LiveServer, gateway_double: GatewayDouble) -> None:
    _, campaign_id = _bank_with_a_campaign(live_server, gateway_double, customers=2)
    row = _outbox(live_server, campaign_id)[0]
    url = f"{live_server.url}/api/v1/messages/replies"
    body = json.dumps({"id": f"mkt-{row.id}", "text": "T"}).encode()
    forged = delivery.signed_headers("not-the-banks-secret", body, datetime.now(UTC))
    r = httpx.post(url, content=body, headers={"Content-Type": "application/json", **forged})
    assert r.status_code == 401 and r.headers["content-type"].startswith("application/problem+json")
    nobody = json.dumps({"id": "mkt-999999999", "text": "T"}).encode()
    r = httpx.post(url, content=nobody, headers=delivery.signed_headers(gateway_double.secret, nobody,
                                                                         datetime.now(UTC)))
    assert r.status_code == 401
    assert httpx.post(url, content=b"{}").status_code == 422  # no signature headers at all
    with live_server.uow() as u:
        assert u.session.execute(select(OptOutRow.id).where(OptOutRow.customer_id == row.customer_id)).first() is None
