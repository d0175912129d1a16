"""The borrower's side of a field visit in tests: the code the bank texted to the registered mobile is read
off the sandbox SMS sender (the borrower's phone), as the borrower would read it out to the officer."""

from __future__ import annotations

from typing import Any

from microlend.core import crypto
from microlend.parties.notify import sandbox
from microlend.parties.tables import CustomerRow, OtpChallengeRow


def mobile_of(api: Any, customer_id: int) -> str:
    with api.kit.uow_factory() as u:
        row = u.session.get(CustomerRow, customer_id)
        assert row is not None
        return crypto.decrypt(row.phone_enc)


def code_on_phone(api: Any, customer_id: int, challenge_id: int | None = None) -> str:
    """The code in the text for `challenge_id` (two banks may have customers with the same mobile), else the
    last text to the customer's mobile."""
    mobile = mobile_of(api, customer_id)
    if challenge_id is None:
        code = sandbox.last_code(mobile)
    else:
        with api.kit.uow_factory() as u:
            row = u.session.get(OtpChallengeRow, challenge_id)
            assert row is not None and row.customer_id == customer_id
            message = sandbox.message(row.message_id)
        assert message is not None and message.mobile == mobile
        code = message.code
    assert code is not None, "no code was texted to this customer"
    return code


def consent_by_code(api: Any, customer_id: int, scope: str = "credit_report",
                    headers: dict[str, str] | None = None) -> Any:
    """An officer asks for a consent code, the borrower reads it out, the officer records the consent."""
    h = headers or api.token("credit_officer")
    r = api.client.post(f"/api/v1/customers/{customer_id}/one-time-codes", headers=h,
                        json={"purpose": "consent", "scope": scope})
    assert r.status_code == 201, r.text
    code = code_on_phone(api, customer_id, r.json()["challenge_id"])
    r = api.client.post(f"/api/v1/customers/{customer_id}/consents", headers=h, json={"scope": scope, "code": code})
    assert r.status_code == 201, r.text
    return r.json()


def send_signing_code(api: Any, application_id: int, headers: dict[str, str] | None = None) -> Any:
    h = headers or api.token("credit_officer")
    app = api.client.get(f"/api/v1/applications/{application_id}", headers=h).json()
    r = api.client.post(f"/api/v1/customers/{app['customer_id']}/one-time-codes", headers=h,
                        json={"purpose": "contract", "application_id": application_id})
    assert r.status_code == 201, r.text
    return {**r.json(), "code": code_on_phone(api, app["customer_id"], r.json()["challenge_id"])}


def accept_by_code(api: Any, application_id: int, headers: dict[str, str] | None = None) -> Any:
    """The borrower signs the contract with the code texted to them; an officer enters it. The response."""
    h = headers or api.token("credit_officer")
    sent = send_signing_code(api, application_id, h)
    return api.client.post(f"/api/v1/applications/{application_id}/accept", headers=h,
                           json={"code": sent["code"], "challenge_id": sent["challenge_id"]})


def signing_code(api: Any, application_id: int) -> dict[str, Any]:
    """The body of an assisted acceptance: the code texted to the borrower for this contract."""
    sent = send_signing_code(api, application_id, api.token("credit_officer"))
    return {"code": sent["code"], "challenge_id": sent["challenge_id"]}


def consent_code(api: Any, customer_id: int) -> dict[str, Any]:
    """The body of an assisted consent: the code texted to the borrower for the credit report."""
    r = api.client.post(f"/api/v1/customers/{customer_id}/one-time-codes", headers=api.token("credit_officer"),
                        json={"purpose": "consent", "scope": "credit_report"})
    assert r.status_code == 201, r.text
    return {"scope": "credit_report", "code": code_on_phone(api, customer_id, r.json()["challenge_id"])}


def consents_snapshot(api: Any, customer_id: int) -> Any:
    return api.client.get(f"/api/v1/customers/{customer_id}/consents", headers=api.token("admin")).json()
