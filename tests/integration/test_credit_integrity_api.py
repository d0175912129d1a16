"""Credit integrity through the HTTP API, on SQLite and PostgreSQL: amounts within what can be stored,
repayments within the payoff, products and offers within the bank's rate cap, and direct bookings that move
money only after a second person approves them."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import func, select
from tests.conftest import Api, TenantKit

from microlend.servicing.tables import JournalEntryRow, LoanRow, RepaymentRow

LOAN = {"product_code": "EI-STD", "principal": "5000", "term_months": 12, "annual_rate": "0.12"}
BULLET = {"code": "BULLET-X", "name": "Bullet", "method": "bullet", "min_amount": "1000", "max_amount": "50000",
          "min_term_months": 1, "max_term_months": 12, "annual_rate": "0.12"}


def count(kit: TenantKit, table: Any) -> int:
    with kit.uow_factory() as u:
        return int(u.session.execute(select(func.count()).select_from(table)
                                     .where(table.tenant_id == kit.tenant.id)).scalar_one())


def book(api: Api, body: dict[str, Any], path: str = "/api/v1/loans") -> dict[str, Any]:
    r = api.client.post(path, json=body, headers=api.token("operations"))
    assert r.status_code == 202, r.text
    return dict(r.json())


def approve(api: Api, booking_id: int) -> dict[str, Any]:
    r = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=api.token("approver"))
    assert r.status_code == 201, r.text
    return dict(r.json())


def loan(api: Api, body: dict[str, Any] = LOAN) -> int:
    return int(approve(api, book(api, body)["id"])["loan_id"])


def problem(r: Any, status: int) -> str:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/problem+json")
    return str(r.json()["detail"])


class TestMoneyBounds:
    def test_a_repayment_above_the_payoff_is_refused_naming_it(self, api: Api) -> None:
        """Found: 1e10 on a 5,000 loan was posted as a 9,999,999,144.95 credit balance."""
        loan_id = loan(api)
        staff = api.token("collector")
        before = (count(api.kit, RepaymentRow), count(api.kit, JournalEntryRow))
        for amount in ("1e10", "10000000000", "99999999"):
            r = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": amount}, headers=staff)
            assert "above the payoff amount 5330.93" in problem(r, 422)
        assert (count(api.kit, RepaymentRow), count(api.kit, JournalEntryRow)) == before
        ok = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "5330.93"}, headers=staff)
        assert ok.status_code == 201 and ok.json()["loan_status"] == "active"
        more = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "0.01"}, headers=staff)
        assert "payoff amount 0.00" in problem(more, 422)

    def test_a_borrower_cannot_repay_a_fortune_on_a_small_loan(self, api: Api) -> None:
        """Found: a borrower "repaid" 99,999,999 on a 20,000 loan."""
        loan_id = loan(api, {**LOAN, "principal": "20000"})
        r = api.client.post(f"/api/v1/loans/{loan_id}/early-repayments", json={"amount": "99999999"},
                            headers=api.token("credit_officer"))
        assert "above the payoff amount" in problem(r, 422)

    def test_amounts_beyond_the_storage_range_are_422_not_500(self, api: Api) -> None:
        loan_id = loan(api)
        huge = "99999999999999999999999999999"
        r = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": huge},
                            headers=api.token("collector"))
        assert "beyond the largest amount" in problem(r, 422)
        for field in ("max_amount", "min_amount"):
            r = api.client.post("/api/v1/products", json={**BULLET, field: "1e30"}, headers=api.token("admin"))
            assert "beyond the largest amount" in problem(r, 422)
        r = api.client.post("/api/v1/loans", json={**LOAN, "principal": "Infinity"}, headers=api.token("operations"))
        assert "not a finite amount" in problem(r, 422)

    def test_an_exponent_form_within_range_reads_exactly(self, api: Api) -> None:
        r = api.client.post("/api/v1/products", json={**BULLET, "max_amount": "5E+4"}, headers=api.token("admin"))
        assert r.status_code == 201, r.text
        assert r.json()["max_amount"] == "50000.00"

    def test_a_products_tolerance_lets_a_little_more_be_held_as_credit(self, api: Api) -> None:
        r = api.client.post("/api/v1/products", json={**BULLET, "overpayment_tolerance": "100"},
                            headers=api.token("admin"))
        assert r.status_code == 201, r.text
        loan_id = loan(api, {"product_code": "BULLET-X", "principal": "10000", "term_months": 12})
        staff = api.token("collector")
        r = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "11300.01"}, headers=staff)
        assert "above the payoff amount 11200.00 plus the product's tolerance 100.00" in problem(r, 422)
        r = api.client.post(f"/api/v1/loans/{loan_id}/repayments", json={"amount": "11300.00"}, headers=staff)
        assert r.status_code == 201 and r.json()["credit"] == "100.00"


class TestRateCap:
    def test_the_found_product_is_refused_naming_the_cap(self, api: Api) -> None:
        """Found: 35.9 % with a 19 % fee and a 3× penalty multiplier was accepted."""
        body = {**BULLET, "annual_rate": "0.359", "max_rate": "0.359", "upfront_fee_rate": "0.19",
                "penalty_multiplier": "3"}
        assert "rate cap 0.24" in problem(api.client.post("/api/v1/products", json=body,
                                                          headers=api.token("admin")), 422)
        body = {**BULLET, "annual_rate": "0.18", "max_rate": "0.18"}  # penalty 0.18 × 1.5 = 0.27
        assert "0.27 is above the bank's rate cap 0.24" in problem(
            api.client.post("/api/v1/products", json=body, headers=api.token("admin")), 422)

    def test_a_product_change_beyond_the_cap_is_refused(self, api: Api) -> None:
        admin = api.token("admin")
        r = api.client.patch("/api/v1/products/EI-STD", json={"max_rate": "0.30"}, headers=admin)
        assert "rate cap 0.24" in problem(r, 422)
        r = api.client.patch("/api/v1/products/EI-STD", json={"max_rate": "0.15", "penalty_multiplier": "1.6"},
                             headers=admin)
        assert r.status_code == 200 and r.json()["max_rate"] == "0.15"

    def test_the_standard_catalogue_has_no_penalty_rate_above_the_cap(self, api: Api) -> None:
        """Found: the standard catalogue gave a 27 % penalty rate on an 18 % loan."""
        products = api.client.get("/api/v1/products", headers=api.token("credit_officer")).json()
        assert products and all(
            float(p["max_rate"]) * float(p["penalty_multiplier"]) <= 0.24 + 1e-12 for p in products)

    def test_a_bank_may_lower_its_cap_but_not_raise_it(self, api: Api) -> None:
        admin = api.token("admin")
        assert api.client.get("/api/v1/rate-cap", headers=admin).json() == {"rate_cap": "0.24"}
        assert "at most 0.24" in problem(api.client.put("/api/v1/rate-cap", json={"rate_cap": "0.36"},
                                                        headers=admin), 422)
        r = api.client.put("/api/v1/rate-cap", json={"rate_cap": "0.20"}, headers=admin)
        assert "product EI-STD prices above 0.20" in problem(r, 422)  # 0.16 × 1.5 = 0.24
        for code in ("EI-STD", "EP-STD", "IO-STD", "BL-STD", "RV-STD", "TAX_LOAN", "FLOW_LOAN", "INVOICE_LINE"):
            r = api.client.patch(f"/api/v1/products/{code}", json={"penalty_multiplier": "1.2"}, headers=admin)
            assert r.status_code == 200, r.text
        r = api.client.put("/api/v1/rate-cap", json={"rate_cap": "0.20"}, headers=admin)
        assert r.status_code == 200 and r.json() == {"rate_cap": "0.20"}
        r = api.client.patch("/api/v1/products/EI-STD", json={"upfront_fee_rate": "0.02"}, headers=admin)
        assert "APR at 3 months" in problem(r, 422) and "rate cap 0.20" in r.json()["detail"]

    def test_a_bullet_loan_without_fees_discloses_its_rate_as_apr(self, api: Api) -> None:
        """Found: a bullet loan at 18 % showed an APR of 16.67 %; 0 % showed -0.000000."""
        admin = api.token("admin")
        body = {**BULLET, "annual_rate": "0.16", "max_rate": "0.16", "min_rate": "0"}
        assert api.client.post("/api/v1/products", json=body, headers=admin).status_code == 201
        audits = []
        for rate in ("0.16", "0"):
            loan_id = loan(api, {"product_code": "BULLET-X", "principal": "10000", "term_months": 12,
                                 "annual_rate": rate})
            r = api.client.get(f"/api/v1/audit?entity_type=loan&entity_id={loan_id}", headers=api.token("auditor"))
            audits.append(r)
        with api.kit.uow_factory() as u:
            from microlend.core.tables import AuditRow
            rows = u.session.execute(select(AuditRow.after).where(AuditRow.tenant_id == api.kit.tenant.id,
                                                                  AuditRow.action == "loan.disburse")
                                     .order_by(AuditRow.id)).scalars().all()
        assert [r["apr"] for r in rows] == ["0.160000", "0.000000"]


class TestDirectBooking:
    def test_nothing_moves_until_a_second_person_approves(self, api: Api) -> None:
        loans_before = count(api.kit, LoanRow)
        booker_name, _ = api.kit.user("operations")
        booker = api.token_for(booker_name)
        r = api.client.post("/api/v1/loans", json=LOAN, headers=booker)
        assert r.status_code == 202 and r.json()["status"] == "pending" and r.json()["loan_id"] is None
        booking_id = r.json()["id"]
        assert count(api.kit, LoanRow) == loans_before
        refused = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=booker)
        assert "four eyes" in problem(refused, 403)
        approved = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=api.token("operations"))
        assert approved.status_code == 201 and approved.json()["status"] == "approved"
        assert approved.json()["booked_by"] == booker_name and approved.json()["decided_by"] != booker_name
        assert count(api.kit, LoanRow) == loans_before + 1
        again = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=api.token("approver"))
        assert "already approved" in problem(again, 409)
        assert count(api.kit, LoanRow) == loans_before + 1

    def test_only_operations_books_and_neither_officers_nor_admins_approve_their_way_around(self, api: Api) -> None:
        for role in ("admin", "approver", "credit_officer", "risk_analyst"):
            assert api.client.post("/api/v1/loans", json=LOAN, headers=api.token(role)).status_code == 403
        booking_id = book(api, LOAN)["id"]
        for role in ("credit_officer", "collector", "marketer", "auditor"):
            r = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=api.token(role))
            assert r.status_code == 403

    def test_a_rejected_booking_never_pays_out(self, api: Api) -> None:
        booking_id = book(api, LOAN)["id"]
        r = api.client.post(f"/api/v1/bookings/{booking_id}/rejection", json={"reason": "wrong customer"},
                            headers=api.token("approver"))
        assert r.status_code == 201 and r.json()["status"] == "rejected"
        r = api.client.post(f"/api/v1/bookings/{booking_id}/approval", headers=api.token("approver"))
        assert "already rejected" in problem(r, 409)
        listed = api.client.get("/api/v1/bookings?status=rejected", headers=api.token("operations")).json()
        assert [b["id"] for b in listed] == [booking_id]

    def test_a_booking_stays_within_the_products_limits(self, api: Api) -> None:
        staff = api.token("operations")
        for change, field in (({"principal": "300000.01"}, "amount"), ({"term_months": 48}, "term_months"),
                              ({"annual_rate": "0.20"}, "annual_rate")):
            r = api.client.post("/api/v1/loans", json={**LOAN, **change}, headers=staff)
            assert r.status_code == 422 and r.json()["field"] == field, r.text
        r = api.client.post("/api/v1/credit-lines", json={"product_code": "RV-STD", "limit": "300000.01"},
                            headers=staff)
        assert r.status_code == 422

    def test_another_banks_application_is_not_found(self, api: Api, new_tenant: Callable[[], TenantKit]) -> None:
        other = Api(api.client, new_tenant())
        theirs = _application(other)
        r = api.client.post("/api/v1/loans", json={**LOAN, "application_id": theirs},
                            headers=api.token("operations"))
        assert r.status_code == 404 and r.json()["field"] == "application_id"
        assert f"application {theirs} not found" in r.json()["detail"]
        assert count(api.kit, LoanRow) == 0

    def test_a_booked_credit_line_opens_on_approval(self, api: Api) -> None:
        booking = book(api, {"product_code": "RV-STD", "limit": "50000"}, "/api/v1/credit-lines")
        assert booking["kind"] == "credit_line" and booking["credit_line_id"] is None
        approved = approve(api, booking["id"])
        assert approved["credit_line_id"] is not None
        r = api.client.post(f"/api/v1/credit-lines/{approved['credit_line_id']}/drawdowns", json={"amount": "1000"},
                            headers=api.token("approver"))
        assert r.status_code == 201, r.text


def _application(api: Api) -> int:
    from tests.integration.test_route_battery import application

    return int(application("50000.00")(api))  # type: ignore[arg-type]
