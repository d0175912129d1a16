"""The borrower, not the officer, gives consents and signs the loan contract: in their own session, or with
a one-time code texted to their registered mobile that the borrower reads out to the officer in the field.
A staff acceptance without a valid code is refused, and a refused code changes nothing but its try count."""

from __future__ import annotations

import hashlib
import re
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from sqlalchemy import select, update
from tests.battery import audit_count
from tests.conftest import Api
from tests.integration.origination.test_applications_api import apply, new_customer
from tests.integration.origination.test_workbench_pages import _bureau_file, as_borrower, register
from tests.signing import code_on_phone, consent_by_code, mobile_of, send_signing_code

from microlend.core.clock import FixedClock, SystemClock, set_clock
from microlend.origination.tables import ApplicationRow, LoanContractRow
from microlend.parties.consent_texts import current
from microlend.parties.otp import MAX_ATTEMPTS
from microlend.parties.tables import OtpChallengeRow


def _approved(api: Api, amount: str = "30000.00", product: str = "EI-STD") -> dict[str, Any]:
    app = apply(api, new_customer(api), amount, product=product).json()
    assert app["status"] == "approved", app
    return dict(app)


def _accept(api: Api, app_id: int, headers: dict[str, str], **body: Any) -> Any:
    return api.client.post(f"/api/v1/applications/{app_id}/accept", headers=headers, json=body)


def _status(api: Api, app_id: int) -> str:
    return str(api.client.get(f"/api/v1/applications/{app_id}", headers=api.token("admin")).json()["status"])


def _contracts(api: Api, app_id: int) -> list[LoanContractRow]:
    with api.kit.uow_factory() as u:
        return list(u.session.execute(select(LoanContractRow).where(
            LoanContractRow.application_id == app_id)).scalars())


def _challenge(api: Api, challenge_id: int) -> OtpChallengeRow:
    with api.kit.uow_factory() as u:
        row = u.session.get(OtpChallengeRow, challenge_id)
        assert row is not None
        return row


def _wrong(code: str) -> str:
    return f"{(int(code) + 1) % 1_000_000:06d}"


class TestStaffAcceptance:
    def test_without_a_code_is_403_and_nothing_is_signed_or_paid(self, api: Api) -> None:
        app = _approved(api)
        before = audit_count(api)
        r = _accept(api, app["id"], api.token("credit_officer"))
        assert r.status_code == 403 and "one-time code" in r.json()["detail"], r.text
        r = api.client.post(f"/api/v1/applications/{app['id']}/accept", headers=api.token("credit_officer"))
        assert r.status_code == 403
        assert _status(api, app["id"]) == "approved" and not _contracts(api, app["id"])
        assert audit_count(api) == before

    def test_a_wrong_code_is_403_and_counts_a_try_until_none_are_left(self, api: Api) -> None:
        app = _approved(api)
        h = api.token("credit_officer")
        sent = send_signing_code(api, app["id"], h)
        r = _accept(api, app["id"], h, code=_wrong(sent["code"]))
        assert r.status_code == 403 and f"{MAX_ATTEMPTS - 1} tries left" in r.json()["detail"], r.text
        assert _challenge(api, sent["challenge_id"]).attempts == 1
        for _ in range(MAX_ATTEMPTS - 1):
            assert _accept(api, app["id"], h, code=_wrong(sent["code"])).status_code == 403
        assert _challenge(api, sent["challenge_id"]).attempts == MAX_ATTEMPTS
        r = _accept(api, app["id"], h, code=sent["code"])  # the right code, too late
        assert r.status_code == 403 and "too many wrong codes" in r.json()["detail"]
        assert _status(api, app["id"]) == "approved" and not _contracts(api, app["id"])

    def test_an_expired_code_is_refused(self, api: Api) -> None:
        app = _approved(api)
        h = api.token("credit_officer")
        sent = send_signing_code(api, app["id"], h)
        set_clock(FixedClock(datetime.now(UTC) + timedelta(minutes=5, seconds=5)))
        try:
            r = _accept(api, app["id"], h, code=sent["code"])
        finally:
            set_clock(SystemClock())
        assert r.status_code == 403 and "expired" in r.json()["detail"], r.text
        assert _status(api, app["id"]) == "approved"
        again = send_signing_code(api, app["id"], h)  # a new code works
        assert _accept(api, app["id"], h, code=again["code"]).status_code == 200

    def test_a_code_for_another_purpose_or_customer_does_not_sign(self, api: Api) -> None:
        app = _approved(api)
        h = api.token("credit_officer")
        r = api.client.post(f"/api/v1/customers/{app['customer_id']}/one-time-codes", headers=h,
                            json={"purpose": "consent", "scope": "marketing"})
        consent_code = code_on_phone(api, app["customer_id"], r.json()["challenge_id"])
        r = _accept(api, app["id"], h, code=consent_code)
        assert r.status_code == 403 and "no one-time code was sent" in r.json()["detail"]
        other = _approved(api)
        theirs = send_signing_code(api, other["id"], h)
        assert _accept(api, app["id"], h, code=theirs["code"]).status_code == 403
        assert _status(api, app["id"]) == "approved"

    def test_the_right_code_signs_the_contract_with_its_hash_and_pays_out(self, api: Api) -> None:
        app = _approved(api)
        h = api.token("credit_officer")
        sent = send_signing_code(api, app["id"], h)
        assert re.fullmatch(r"1\d\d\*{4}\d{4}", sent["sent_to"]), sent  # masked in the response
        assert mobile_of(api, app["customer_id"]) not in str(sent | {"code": ""})
        row = _challenge(api, sent["challenge_id"])
        assert sent["code"] not in (row.code_hash, row.salt) and len(row.code_hash) == 64  # hashed at rest
        assert row.expires_at - row.created_at == timedelta(minutes=5)
        r = _accept(api, app["id"], h, code=sent["code"], challenge_id=sent["challenge_id"])
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "disbursed" and r.json()["loan_id"]
        [signed] = _contracts(api, app["id"])
        assert signed.sha256 == hashlib.sha256(signed.document.encode()).hexdigest()
        assert signed.channel == "assisted-otp" and signed.otp_challenge_id == sent["challenge_id"]
        assert signed.evidence["sent_to"] == sent["sent_to"] and signed.evidence["assisted_by"]
        assert _challenge(api, sent["challenge_id"]).used_at is not None

        page = api.client.get(f"/api/v1/applications/{app['id']}/contract", headers=h)
        assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
        assert page.headers["x-contract-status"] == "signed" and page.headers["x-contract-sha256"] == signed.sha256
        assert signed.document.split("</body>")[0] in page.text and "@media print" in page.text
        assert signed.number in page.text and "逾期罚息利率" in page.text and signed.sha256 in page.text

    def test_a_used_code_is_not_taken_twice(self, api: Api) -> None:
        cid = new_customer(api)
        h = api.token("credit_officer")
        r = api.client.post(f"/api/v1/customers/{cid}/one-time-codes", headers=h,
                            json={"purpose": "consent", "scope": "marketing"})
        code = code_on_phone(api, cid, r.json()["challenge_id"])
        body = {"scope": "marketing", "code": code}
        assert api.client.post(f"/api/v1/customers/{cid}/consents", headers=h, json=body).status_code == 201
        r = api.client.post(f"/api/v1/customers/{cid}/consents", headers=h, json=body)
        assert r.status_code == 403 and "already used" in r.json()["detail"]
        consents = api.client.get(f"/api/v1/customers/{cid}/consents", headers=h).json()
        assert len(consents) == 1

    def test_disbursement_waits_for_a_signed_contract(self, api: Api) -> None:
        app = _approved(api)
        with api.kit.uow_factory() as u:  # an acceptance recorded without the borrower's signature
            u.session.execute(update(ApplicationRow).where(ApplicationRow.id == app["id"]).values(status="accepted"))
            u.commit()
        r = api.client.post(f"/api/v1/applications/{app['id']}/disburse", headers=api.token("approver"))
        assert r.status_code == 409 and "not signed the loan contract" in r.json()["detail"]
        assert _status(api, app["id"]) == "accepted"


class TestOffer:
    def test_the_offer_shows_the_penalty_rate_next_to_rate_and_apr(self, api: Api) -> None:
        offer = _approved(api)["offer"]
        assert offer["penalty_rate"] is not None and Decimal(offer["penalty_rate"]) > Decimal(offer["annual_rate"])
        draft = api.client.get(f"/api/v1/applications/{_approved(api)['id']}/contract",
                               headers={**api.token("credit_officer"), "Accept-Language": "en"})
        assert draft.status_code == 200 and draft.headers["x-contract-status"] == "draft"
        assert "Penalty rate on overdue amounts" in draft.text and "DRAFT" in draft.text


class TestConsents:
    def test_a_consent_given_with_a_code_records_channel_text_and_evidence(self, api: Api) -> None:
        cid = new_customer(api)
        given = consent_by_code(api, cid, "credit_report")
        text = current("credit_report")
        assert given["channel"] == "assisted-otp" and given["active"] is True
        assert given["text_version"] == text.version and given["text_hash"] == text.sha256(given["locale"])
        ev = given["evidence"]
        assert ev["otp_challenge_id"] and re.fullmatch(r"1\d\d\*{4}\d{4}", ev["sent_to"]) and ev["assisted_by"]
        assert ev["officer"]["session_id"] and "user_agent" in ev["officer"]

    def test_staff_cannot_give_a_consent_without_the_borrowers_code(self, api: Api) -> None:
        cid = new_customer(api)
        r = api.client.post(f"/api/v1/customers/{cid}/consents", headers=api.token("credit_officer"),
                            json={"scope": "credit_report"})
        assert r.status_code == 403
        # nor can the application's body stand in for the borrower
        r = api.client.post("/api/v1/applications", headers=api.token("credit_officer"), json={
            "customer_id": cid, "product_code": "EI-STD", "amount": "30000", "term_months": 12,
            "consents": ["credit_report"]})
        assert r.status_code == 403 and "has not given 'credit_report'" in r.json()["detail"]

    def test_a_revoked_consent_no_longer_counts_for_the_decision(self, api: Api) -> None:
        cid = new_customer(api)
        consent_by_code(api, cid, "credit_report")
        seen = apply(api, cid, "300000.00", product="EP-STD", consents=()).json()
        assert "THIN_FILE" not in [x["code"] for x in seen["decision"]["reasons"]]  # the bureau file was read
        h = api.token("credit_officer")
        # the offer counts in the borrower's exposure: withdrawn, it leaves the headroom to the next application
        assert api.client.post(f"/api/v1/applications/{seen['id']}/withdraw", headers=h).status_code == 200
        r = api.client.delete(f"/api/v1/customers/{cid}/consents/credit_report", headers=h)
        assert r.status_code == 204, r.text
        [revoked] = api.client.get(f"/api/v1/customers/{cid}/consents", headers=h).json()
        assert revoked["active"] is False and revoked["revoked_at"] and revoked["revoked_by"]
        after = apply(api, cid, "300000.00", product="EP-STD", consents=()).json()
        assert "THIN_FILE" in [x["code"] for x in after["decision"]["reasons"]]
        assert api.client.delete(f"/api/v1/customers/{cid}/consents/credit_report", headers=h).status_code == 404


class TestBorrowerInSession:
    def test_the_borrower_consents_and_signs_in_their_own_session(self, api: Api) -> None:
        token, _ = register(api)
        cid = _bureau_file(api, token)
        h = as_borrower(api, token)
        r = api.client.post(f"/api/v1/customers/{cid}/consents", headers=h, json={"scope": "credit_report"})
        assert r.status_code == 201 and r.json()["channel"] == "self" and r.json()["evidence"]["session_id"]
        app = api.client.post("/api/v1/applications", headers=h, json={
            "customer_id": cid, "product_code": "EI-STD", "amount": "30000", "term_months": 12}).json()
        assert app["status"] == "approved", app
        draft = api.client.get(f"/api/v1/applications/{app['id']}/contract", headers=h)
        r = _accept(api, app["id"], h, contract_sha256="0" * 64)  # not the contract they read
        assert r.status_code == 409
        r = _accept(api, app["id"], h, contract_sha256=draft.headers["x-contract-sha256"])
        assert r.status_code == 200 and r.json()["status"] == "disbursed", r.text
        [signed] = _contracts(api, app["id"])
        assert signed.channel == "self" and signed.sha256 == draft.headers["x-contract-sha256"]
        assert signed.evidence["session_id"] and signed.otp_challenge_id is None
        page = api.client.get(f"/b/applications/{app['id']}/contract", headers=as_borrower(api, token))
        assert page.status_code == 200 and signed.sha256 in page.text
        home = api.client.get("/b", headers=as_borrower(api, token)).text
        assert 'data-testid="revoke-credit_report"' in home and "Authorisation to query the credit report" in home
        r = api.client.post("/b/consents/credit_report/revoke", headers=as_borrower(api, token), follow_redirects=False)
        assert r.status_code == 303
        given = api.client.get(f"/api/v1/customers/{cid}/consents", headers=h).json()
        assert given and not any(c["active"] for c in given)
        assert 'data-testid="revoke-credit_report"' not in api.client.get("/b", headers=as_borrower(api, token)).text
