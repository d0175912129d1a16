"""Service texts (repayment reminders use this path) go through the bank's own SMS gateway once it has one,
to the customer's registered mobile; before that the sandbox sender keeps them. On SQLite and PostgreSQL."""

from __future__ import annotations

import random
from collections.abc import Iterator
from datetime import UTC, date, datetime

import pytest
from tests.conftest import TenantKit

from microlend.core import delivery
from microlend.core.delivery import GatewayConfig
from microlend.demo import identities
from microlend.demo.message_gateway import GatewayDouble
from microlend.parties import customers, sms
from microlend.parties.notify import sandbox


@pytest.fixture(scope="module")
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="svc-key-000001", secret="svc-secret-000001") as server:
        yield server


def test_texts_go_through_the_banks_gateway_once_it_has_one(bank: TenantKit, double: GatewayDouble) -> None:
    rng = random.Random(bank.tenant.id)
    officer = bank.principal("credit_officer")
    mobile = identities.mobile(rng)
    cid = customers.create_customer(bank.uow_factory(), officer, customers.NewCustomer(
        "person", "王五", identities.resident_id(rng, identities.birth_date_for_age(rng, 40, date(2026, 1, 1))),
        mobile)).id
    at = datetime(2026, 3, 2, 4, tzinfo=UTC)
    before = sms.text_customers(bank.uow_factory(), officer, [(cid, "first")], at=at)
    assert before[0] is not None and before[0].startswith("sandbox-") and sandbox.last_to(mobile) is not None
    assert sms.sender_name(bank.uow_factory(), bank.tenant.id) == "sandbox"
    delivery.save_gateway(bank.uow_factory(), bank.principal("admin"), GatewayConfig(
        "sms", double.base_url, double.api_key, double.secret), at=at)
    ids = sms.text_customers(bank.uow_factory(), officer, [(cid, "您的贷款明日到期"), (cid + 10_000_000, "nobody")],
                             at=at)
    assert ids[1] is None and ids[0] is not None and ids[0].startswith("gw-")
    sent = next(a for a in double.accepted.values() if a.gateway_id == ids[0])
    assert (sent.to, sent.text) == (mobile, "您的贷款明日到期")
    assert sms.sender_name(bank.uow_factory(), bank.tenant.id) == "http-sms"
