"""A STOP reply to a repayment reminder (a service text, not a campaign message) on SQLite and PostgreSQL:
the borrower is opted out of all marketing on every channel and their marketing consent is withdrawn, the
next campaign leaves them out, and the reminders about their loan still go (they are not marketing). The
reply is trusted only under the signature of the bank's own gateway and for the bank's own customer."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import polars as pl
import pytest
from sqlalchemy import select
from tests.integration.servicing.kit import Bank

from microlend.core import delivery
from microlend.core.delivery import GatewayConfig
from microlend.core.errors import AuthenticationFailed
from microlend.core.identity import Role
from microlend.demo import identities
from microlend.demo.message_gateway import GatewayDouble
from microlend.marketing import service as marketing
from microlend.marketing.campaigns import QuietHours
from microlend.marketing.contact_policy import ContactPolicy
from microlend.marketing.tables import AssignmentRow, OptOutRow
from microlend.parties.customers import NewCustomer, create_customer
from microlend.parties.queries import marketing_consented
from microlend.servicing import service
from microlend.servicing.service import Disbursement
from microlend.servicing.service import reminders as rem

_rng = random.Random(11)
MORNING = datetime(2026, 2, 12, 2, 0, tzinfo=UTC)  # 10:00 in Shanghai


@pytest.fixture(scope="module")
def double() -> Iterator[GatewayDouble]:
    with GatewayDouble(api_key="svc-key-0001", secret="svc-secret-0001") as server:
        yield server


def _borrowers(bank: Bank, n: int = 3) -> list[tuple[int, str]]:
    out = []
    for k in range(n):
        birth = identities.birth_date_for_age(_rng, 40, date(2026, 1, 1))
        phone = identities.mobile(_rng)
        cid = create_customer(bank.uow(), bank.principal(Role.CREDIT_OFFICER), NewCustomer(
            kind="person", name=f"借款人{k}", id_number=identities.resident_id(_rng, birth), phone=phone,
            marketing_consent=True)).id
        service.disburse(bank.uow(), bank.who, Disbursement("EI-STD", Decimal(10000 + k * 1000), 6, Decimal("0.12"),
                                                            customer_id=cid))
        out.append((cid, phone))
    return out


def _signed(payload: dict[str, object], secret: str) -> tuple[bytes, str, str]:
    body = json.dumps(payload, ensure_ascii=False).encode()
    h = delivery.signed_headers(secret, body, datetime.now(UTC))
    return body, h[delivery.TIMESTAMP_HEADER], h[delivery.SIGNATURE_HEADER]


def _reminded(bank: Bank, double: GatewayDouble, on: date) -> dict[str, str]:
    """Queue and send the day's reminders through the bank's gateway; the key of each text by mobile."""
    system = bank.principal(Role.SYSTEM)
    rem.queue_reminders(bank.uow(), system, on, now=MORNING)
    rem.dispatch_reminders(bank.uow(), system, now=MORNING)
    return {a.to: a.key for a in double.accepted.values() if a.key.startswith("svc-")}


@pytest.fixture
def reminded(bank: Bank, double: GatewayDouble) -> tuple[list[tuple[int, str]], dict[str, str]]:
    delivery.save_gateway(bank.uow(), bank.who, GatewayConfig("sms", double.base_url, double.api_key, double.secret),
                          at=MORNING)
    double.accepted.clear()  # each test's bank starts its ids afresh: the keys of another test's texts recur
    borrowers = _borrowers(bank)
    keys = _reminded(bank, double, date(2026, 2, 12))
    assert {phone for _, phone in borrowers} <= set(keys)
    return borrowers, keys


def test_t_to_a_reminder_stops_all_marketing_but_not_the_reminders(
        bank: Bank, double: GatewayDouble, reminded: tuple[list[tuple[int, str]], dict[str, str]]) -> None:
    borrowers, keys = reminded
    (stopper, phone), others = borrowers[0], [c for c, _ in borrowers[1:]]
    key = keys[phone]
    assert delivery.service_key_parts(key) == (bank.tenant_id, stopper)
    body, ts, sig = _signed({"id": key, "from": phone, "text": " t "}, double.secret)
    result = marketing.record_reply(bank.uow(), body, timestamp=ts, signature=sig, now=datetime.now(UTC))
    assert result.opted_out and result.tenant_id == bank.tenant_id
    with bank.uow() as u:
        channels = set(u.session.execute(select(OptOutRow.channel).where(
            OptOutRow.tenant_id == bank.tenant_id, OptOutRow.customer_id == stopper)).scalars())
    assert channels == {"sms", "push", "visit"}
    marketer = bank.principal(Role.MARKETER)
    assert marketing_consented(bank.uow(), marketer, [c for c, _ in borrowers]) == set(others)

    # the next campaign, on another channel than the one replied on, leaves the borrower out
    marketing.set_contact_policy(bank.uow(), bank.who, ContactPolicy(holdout_share_bp=0, launch_approval=False),
                                 at=MORNING)
    marketing.save_segment(bank.uow(), marketer, "adults", "age >= 18", at=MORNING)
    ids = [c for c, _ in borrowers]
    frame = pl.DataFrame({"customer_id": ids, "age": [40] * 3, "marketing_consent": [True] * 3,
                          "current_days_past_due": [0] * 3})
    for channel in ("push", "sms"):
        camp = marketing.create_campaign(bank.uow(), marketer, marketing.CampaignSpec(
            name=f"after T {channel}", channel=channel, segment_name="adults", control_share_bp=0, quiet=QuietHours()),
            at=MORNING)
        launched = marketing.launch_campaign(bank.uow(), marketer, camp.id, frame, at=MORNING + timedelta(hours=1),
                                             bank_name="Demo")
        assert launched.excluded.get("opted_out", 0) == 1
        with bank.uow() as u:
            arms = dict(u.session.execute(select(AssignmentRow.customer_id, AssignmentRow.arm).where(
                AssignmentRow.campaign_id == camp.id)).tuples().all())
        assert arms[stopper] == "excluded" and all(arms[c] == "treatment" for c in others)

    # the reminders about the loan still go: they are service notices, not marketing
    later = _reminded(bank, double, date(2026, 2, 15))
    assert later[phone] != key and sum(a.to == phone for a in double.accepted.values()) == 2


def test_a_reminder_reply_is_trusted_only_under_the_banks_own_signature(
        bank: Bank, other_bank, double: GatewayDouble,  # type: ignore[no-untyped-def]
        reminded: tuple[list[tuple[int, str]], dict[str, str]]) -> None:
    borrowers, keys = reminded
    cid, phone = borrowers[0]
    other = other_bank()
    delivery.save_gateway(other.uow(), other.who, GatewayConfig("sms", double.base_url, "other-key", "other-secret"),
                          at=MORNING)
    forged = [
        ({"id": keys[phone], "text": "T"}, "other-secret"),  # another bank's secret on this bank's text
        ({"id": f"svc-{other.tenant_id}-{cid}-0123456789abcdef", "text": "T"}, "other-secret"),  # not its customer
        ({"id": f"svc-{bank.tenant_id}-{cid}-0123456789abcdef", "text": "T"}, "wrong-secret"),
    ]
    for payload, secret in forged:
        body, ts, sig = _signed(payload, secret)
        with pytest.raises(AuthenticationFailed):
            marketing.record_reply(bank.uow(), body, timestamp=ts, signature=sig, now=datetime.now(UTC))
    with bank.uow() as u:
        assert u.session.execute(select(OptOutRow.id).where(OptOutRow.tenant_id == bank.tenant_id)).first() is None
    body, ts, sig = _signed({"id": keys[phone], "text": "谢谢"}, double.secret)  # not a STOP: nothing changes
    assert not marketing.record_reply(bank.uow(), body, timestamp=ts, signature=sig, now=datetime.now(UTC)).opted_out
    assert marketing_consented(bank.uow(), bank.principal(Role.MARKETER), [cid]) == {cid}
