"""A field officer assists a borrower on the officer's phone: the borrower gives the credit-report consent and
signs the loan contract with the one-time codes the bank texts to the borrower's registered mobile (read
here off the sandbox SMS sender, as the borrower reads them out). A wrong code is refused; the officer never
signs for the borrower."""

from __future__ import annotations

import random
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select
from tests.e2e.conftest import LiveServer
from tests.e2e.test_borrower_journey import (
    GOOD_ROW,
    Bank,
    _german,
    bank,  # noqa: F401  (the module's bank fixture)
    fits_the_phone,
    shot,
)
from tests.e2e.test_workbench import sign_in

from microlend.core.identity import system_principal
from microlend.demo import identities
from microlend.origination import service as applications
from microlend.parties import customers as customer_svc
from microlend.parties.notify import sandbox
from microlend.parties.tables import OtpChallengeRow

pytestmark = pytest.mark.browser


def _customer(server: LiveServer, the_bank: Bank) -> tuple[int, str]:
    """A shopkeeper the branch already knows: on file with a mobile and the bureau's profile."""
    rng = random.Random(42)
    mobile = identities.mobile(rng)
    profile = {k: (v.item() if hasattr(v, "item") else v) for k, v in _german[GOOD_ROW].items()}
    birth = identities.birth_date_for_age(rng, 44, date(2026, 1, 1))
    made = customer_svc.create_customer(server.uow(), system_principal(the_bank.tenant_id, "branch"),
                                        customer_svc.NewCustomer(
        kind="person", name="郑老板", id_number=identities.resident_id(rng, birth), phone=mobile,
        branch="城关支行", industry="retail",
        attributes={**profile, "annual_turnover": "600000", "years_in_business": 8}))
    return made.id, mobile


def _code_on_the_borrowers_phone(server: LiveServer, customer_id: int, mobile: str) -> str:
    with server.uow() as u:
        message_id = u.session.execute(select(OtpChallengeRow.message_id).where(
            OtpChallengeRow.customer_id == customer_id).order_by(OtpChallengeRow.id.desc()).limit(1)).scalar_one()
    message = sandbox.message(message_id)
    assert message is not None and message.mobile == mobile and message.code is not None
    return message.code


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


def test_a_field_officer_takes_the_borrowers_consent_and_signature_by_their_texted_codes(
    live_server: LiveServer, phone_page: Any, bank: Bank  # noqa: F811
) -> None:
    cid, mobile = _customer(live_server, bank)
    officer = phone_page
    sign_in(officer, live_server, bank.staff("officer", "approver"), bank.password, f"/customers/{cid}/360")

    # the consent: the code goes to the borrower's phone, the borrower reads it out
    officer.select_option("[data-testid=consent-code-form] select[name=scope]", "credit_report")
    officer.click("[data-testid=send-consent-code]")
    sent = officer.locator("[data-testid=code-sent]")
    sent.wait_for()
    assert mobile[:3] + "****" + mobile[-4:] in sent.inner_text() and mobile not in officer.content()
    code = _code_on_the_borrowers_phone(live_server, cid, mobile)
    officer.fill("[data-testid=consent-code]", _wrong(code))
    officer.click("[data-testid=give-consent]")
    assert "4" in officer.locator("[data-testid=refusal]").inner_text()  # tries left
    officer.fill("[data-testid=consent-code]", code)
    officer.click("[data-testid=give-consent]")
    officer.wait_for_url(f"**/customers/{cid}/360")
    given = officer.locator("[data-testid=consents] li[data-scope=credit_report]")
    assert given.get_attribute("data-active") == "yes" and "短信验证码" in given.inner_text()
    assert fits_the_phone(officer)
    shot(officer, "11-field-consent")

    # the application the officer keys in for the borrower is decided with that consent
    app = applications.submit(live_server.uow(), system_principal(bank.tenant_id, "field-tablet"),
                              applications.NewApplication(customer_id=cid, product_code="EI-STD",
                                                          amount=Decimal("30000"), term_months=12, purpose="进货",
                                                          consents=("credit_report",), channel="officer"))
    assert app.status == "approved", app

    officer.goto(f"{live_server.url}/applications/{app.id}")
    assert "%" in officer.locator("[data-testid=penalty-rate]").inner_text()
    officer.click("[data-testid=code-form] button[type=submit]")  # no code: the browser asks for it first
    assert officer.locator("[data-testid=code-form] input[name=code]").evaluate("e => !e.validity.valid")
    officer.click("[data-testid=send-code]")
    officer.locator("[data-testid=code-sent]").wait_for()
    code = _code_on_the_borrowers_phone(live_server, cid, mobile)
    officer.fill("[data-testid=code]", _wrong(code))
    officer.click("[data-testid=sign]")
    refusal = officer.locator("[data-testid=refusal]")
    refusal.wait_for()
    assert "4" in refusal.inner_text()  # tries left
    shot(officer, "12-field-wrong-code")
    officer.fill("[data-testid=code]", code)
    officer.click("[data-testid=sign]")
    officer.locator("text=合同已签署").wait_for()
    assert officer.locator("[data-testid=loan-link]").is_visible()  # small enough to be paid out at once
    assert fits_the_phone(officer)
    shot(officer, "13-field-signed")

    officer.click("[data-testid=contract-link]")
    officer.wait_for_url(f"**/applications/{app.id}/contract")
    signature = officer.locator("[data-testid=signature]")
    assert len(signature.get_attribute("data-sha256") or "") == 64
    assert "短信验证码" in signature.inner_text() and mobile[-4:] in signature.inner_text()
    assert "借款合同" in officer.locator("h1").inner_text()
    shot(officer, "14-signed-contract")
