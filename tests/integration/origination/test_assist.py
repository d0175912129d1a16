"""Model assistance, the customer 360 view, the branch portfolio and dashboard, and borrower self-service."""

from __future__ import annotations

import random
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import func, select, update
from tests.conftest import Api, TenantKit
from tests.integration.origination.test_applications_api import GOOD_ROW, POOR_ROW, apply, new_customer
from tests.signing import accept_by_code

from microlend.core.errors import Conflict, NotFound, PermissionDenied, ValidationError
from microlend.core.identity import Role
from microlend.core.tables import AuditRow
from microlend.demo import identities
from microlend.origination import acceptance, assist, borrowers
from microlend.origination import service as svc
from microlend.origination.tables import ApplicationRow
from microlend.servicing.tables import LoanRow, RepaymentRow

_rng = random.Random(7)


@pytest.fixture
def other(app_client: Any, new_tenant: Callable[[], TenantKit]) -> Api:
    return Api(app_client, new_tenant())


def _approved_and_disbursed(api: Api, row: int = GOOD_ROW, amount: str = "30000.00") -> dict[str, Any]:
    cid = new_customer(api, row)
    app = apply(api, cid, amount).json()
    assert app["status"] == "approved", app
    r = accept_by_code(api, app["id"])
    assert r.json()["status"] == "disbursed", r.text
    return dict(r.json())


def _set_dpd(api: Api, loan_id: int, dpd: int, status: str = "active") -> None:
    with api.kit.uow_factory() as u:
        u.session.execute(update(LoanRow).where(LoanRow.id == loan_id).values(days_past_due=dpd, status=status))
        u.commit()


class TestModelAssistance:
    def test_shows_score_reasons_the_policys_suggestion_and_how_similar_applicants_performed(self, api: Api) -> None:
        good = _approved_and_disbursed(api)
        _set_dpd(api, good["loan_id"], 45)  # gone bad: more than 30 days past due
        second = apply(api, new_customer(api), "20000.00").json()  # approved, never taken up
        assert second["status"] == "approved"
        poor = apply(api, new_customer(api, POOR_ROW), "30000.00").json()
        assert poor["status"] == "declined"
        subject = apply(api, new_customer(api), "300000.00", product="EP-STD").json()
        assert subject["status"] == "referred"

        help_ = assist.model_assistance(api.kit.uow_factory(), api.kit.principal("credit_officer"), subject["id"])
        assert help_.score is not None and help_.pd is not None and help_.model_version
        assert help_.reasons and all(r["message"] for r in help_.reasons)
        assert help_.suggested_limit == Decimal(subject["decision"]["limit"])
        assert abs(Decimal(poor["decision"]["score"]) - help_.score) > assist.SIMILAR_SCORE_BAND  # not similar
        sim = help_.similar
        assert sim is not None
        assert (sim.count, sim.decided, sim.approved, sim.disbursed, sim.bad) == (2, 2, 2, 1, 1)
        assert sim.approval_rate == Decimal(1) and sim.bad_rate == Decimal(1)

    def test_a_loan_written_off_is_bad_and_one_30_days_late_is_not(self, api: Api) -> None:
        first, second = _approved_and_disbursed(api), _approved_and_disbursed(api)
        _set_dpd(api, first["loan_id"], 30)
        _set_dpd(api, second["loan_id"], 0, status="written_off")
        sim = assist.similar_cases(api.kit.uow_factory(), api.kit.principal("credit_officer"),
                                   Decimal(first["decision"]["score"]))
        assert (sim.disbursed, sim.bad, sim.bad_rate) == (2, 1, Decimal("0.5"))

    @pytest.mark.parametrize("role", ["marketer", "borrower"])
    def test_people_without_the_right_to_see_applications_are_refused(self, api: Api, role: str) -> None:
        app = apply(api, new_customer(api), "30000.00").json()
        with pytest.raises((PermissionDenied, NotFound)):
            assist.model_assistance(api.kit.uow_factory(), api.kit.principal(role), app["id"])

    def test_another_banks_application_is_not_found(self, api: Api, other: Api) -> None:
        app = apply(other, new_customer(other), "30000.00").json()
        with pytest.raises(NotFound):
            assist.model_assistance(api.kit.uow_factory(), api.kit.principal("credit_officer"), app["id"])


class TestCustomer360:
    def test_lists_loans_applications_and_repayment_behaviour_with_personal_data_masked(self, api: Api) -> None:
        done = _approved_and_disbursed(api)
        cid = done["customer_id"]
        apply(api, cid, "9000.00")
        r = api.client.post(f"/api/v1/loans/{done['loan_id']}/repayments", json={"amount": "1000.00"},
                            headers={**api.token("credit_officer"), "Idempotency-Key": "k-360"})
        assert r.status_code == 201, r.text
        view = assist.customer_360(api.kit.uow_factory(), api.kit.principal("credit_officer"), cid)
        assert view.customer.masked and "*" in view.customer.id_number
        assert [loan.id for loan in view.loans] == [done["loan_id"]]
        loan = view.loans[0]
        assert loan.principal == Decimal("30000") and loan.outstanding <= loan.principal
        assert {a.id for a in view.applications} >= {done["id"]} and len(view.applications) == 2
        assert view.behaviour.repaid_total == Decimal("1000.00")
        assert view.behaviour.max_days_past_due == 0

    def test_a_borrower_cannot_open_the_staff_view(self, api: Api) -> None:
        with pytest.raises(PermissionDenied):
            assist.customer_360(api.kit.uow_factory(), api.kit.principal("borrower"), new_customer(api))


class TestBranchViews:
    def test_portfolio_lists_the_branchs_loans_overdue_first(self, api: Api) -> None:
        a, b = _approved_and_disbursed(api), _approved_and_disbursed(api)
        _set_dpd(api, a["loan_id"], 3)
        _set_dpd(api, b["loan_id"], 40)
        who = api.kit.principal("credit_officer")
        lines = assist.branch_portfolio(api.kit.uow_factory(), who, branch="城关支行")
        assert [x.id for x in lines] == [b["loan_id"], a["loan_id"]]
        assert assist.branch_portfolio(api.kit.uow_factory(), who, branch="另一支行") == []

    def test_dashboard_counts_straight_through_approval_time_to_decision_and_overdue(self, api: Api) -> None:
        auto = _approved_and_disbursed(api)
        apply(api, new_customer(api, POOR_ROW), "30000.00")  # declined automatically
        big = apply(api, new_customer(api, turnover="3000000"), "300000.00", product="EP-STD").json()
        pending = apply(api, new_customer(api), "300000.00", product="EP-STD").json()  # still in the queue
        assert big["status"] == pending["status"] == "referred"
        uow = api.kit.uow_factory
        svc.recommend(uow(), api.kit.principal("credit_officer"), big["id"], "approve", Decimal("250000"),
                      Decimal("0.0850"), "checked")
        svc.approve(uow(), api.kit.principal("approver"), big["id"])
        _set_dpd(api, auto["loan_id"], 12)

        now = datetime.now(UTC)
        d = assist.branch_dashboard(uow(), api.kit.principal("credit_officer"), now, branch="城关支行")
        assert (d.submitted, d.decided, d.automatic, d.approved) == (4, 3, 2, 2)
        assert d.stp_rate == Decimal("0.6667") and d.approval_rate == Decimal("0.6667")
        assert sum(n for _, n in d.per_day) == 4 and d.per_day[-1] == (now.date(), 4)
        assert d.median_decision_seconds is not None and d.p90_decision_seconds is not None
        assert d.p90_decision_seconds >= d.median_decision_seconds
        with uow() as u:  # the reviewed one took until the approver's decision
            approved_at = u.session.execute(select(func.max(AuditRow.at)).where(
                AuditRow.action == "application.approve", AuditRow.object_id == str(big["id"]))).scalar_one()
            submitted_at = u.session.get(ApplicationRow, big["id"]).submitted_at  # type: ignore[union-attr]
        assert d.p90_decision_seconds <= (approved_at - submitted_at).total_seconds() + 1e-6
        assert (d.active_loans, d.overdue_loans, d.overdue_rate) == (1, 1, Decimal(1))

    def test_applications_older_than_the_window_are_left_out(self, api: Api) -> None:
        app = apply(api, new_customer(api), "30000.00").json()
        with api.kit.uow_factory() as u:
            u.session.execute(update(ApplicationRow).where(ApplicationRow.id == app["id"]).values(
                submitted_at=datetime.now(UTC) - timedelta(days=45)))
            u.commit()
        d = assist.branch_dashboard(api.kit.uow_factory(), api.kit.principal("approver"), datetime.now(UTC))
        assert d.submitted == 0 and d.stp_rate is None

    def test_percentile_interpolates(self) -> None:
        assert assist.percentile([], 50) is None
        assert assist.percentile([1.0, 2.0, 3.0, 4.0], 50) == 2.5
        assert assist.percentile([5.0], 90) == 5.0


def registration(api: Api, **kw: Any) -> borrowers.Registration:
    birth = identities.birth_date_for_age(_rng, 38, date(2026, 1, 1))
    base: dict[str, Any] = {"bank": api.kit.tenant.name, "kind": "person", "name": "李小店",
                            "id_number": identities.resident_id(_rng, birth), "mobile": identities.mobile(_rng),
                            "password": "borrower-pass-1", "industry": "retail",
                            "annual_turnover": Decimal("500000"), "years_in_business": Decimal("6")}
    return borrowers.Registration(**{**base, **kw})


class TestBorrowerSelfService:
    def test_registration_creates_a_customer_and_a_borrower_sign_in_and_is_audited(self, api: Api) -> None:
        reg = borrowers.register(api.kit.uow_factory(), registration(api))
        assert reg.principal.customer_id == reg.customer_id and reg.principal.has_role(Role.BORROWER)
        customer = svc.get(api.kit.uow_factory(), reg.principal, apply_as(api, reg)["id"])
        assert customer.customer_id == reg.customer_id
        with api.kit.uow_factory() as u:
            actions = set(u.session.execute(select(AuditRow.action).where(
                AuditRow.tenant_id == api.kit.tenant.id)).scalars())
        assert {"customer.register", "user.create"} <= actions
        r = api.client.post("/api/v1/auth/token", data={"username": reg.username, "password": "borrower-pass-1"})
        assert r.status_code == 200

    def test_a_known_id_number_is_refused_with_a_clear_message(self, api: Api) -> None:
        first = registration(api)
        borrowers.register(api.kit.uow_factory(), first)
        with pytest.raises(Conflict) as err:
            borrowers.register(api.kit.uow_factory(), registration(api, id_number=first.id_number))
        assert err.value.field == "id_number" and "already registered" in err.value.message
        with pytest.raises(Conflict) as err:
            borrowers.register(api.kit.uow_factory(), registration(api, mobile=first.mobile))
        assert err.value.field == "mobile"

    def test_bad_input_is_refused_and_stores_nothing(self, api: Api) -> None:
        with pytest.raises(ValidationError):
            borrowers.register(api.kit.uow_factory(), registration(api, id_number="110101199001011234"))
        with pytest.raises(ValidationError):
            borrowers.register(api.kit.uow_factory(), registration(api, years_in_business=Decimal("-1")))
        with pytest.raises(NotFound):
            borrowers.register(api.kit.uow_factory(), registration(api, bank="no-such-bank"))

    def test_a_borrower_sees_and_repays_only_their_own_loans(self, api: Api) -> None:
        mine = borrowers.register(api.kit.uow_factory(), registration(api))
        theirs = borrowers.register(api.kit.uow_factory(), registration(api))
        loan_id = _borrower_loan(api, mine)
        uow = api.kit.uow_factory
        assert [x.id for x in borrowers.my_loans(uow(), mine.principal)] == [loan_id]
        assert borrowers.my_loans(uow(), theirs.principal) == []
        with pytest.raises(NotFound):
            borrowers.my_loan(uow(), theirs.principal, loan_id)
        with pytest.raises(NotFound):
            borrowers.repay(uow(), theirs.principal, loan_id, "100.00", "k1")
        with pytest.raises(PermissionDenied):
            borrowers.my_loans(uow(), api.kit.principal("credit_officer"))
        first = borrowers.repay(uow(), mine.principal, loan_id, "100.00", "form-1")
        again = borrowers.repay(uow(), mine.principal, loan_id, "100.00", "form-1")  # a double tap
        assert first.id == again.id
        with uow() as u:
            n = u.session.execute(select(func.count()).select_from(RepaymentRow)
                                  .where(RepaymentRow.loan_id == loan_id)).scalar_one()
            actor = u.session.execute(select(AuditRow.actor).where(AuditRow.action == "repayment.post",
                                      AuditRow.object_id == str(first.id))).scalar_one()
        assert n == 1 and mine.username in actor


def _profile(api: Api, customer_id: int) -> None:
    """The bureau's file on the borrower (here a German credit row held as the customer's credit profile)."""
    from tests.integration.origination.test_applications_api import customer_body

    attrs = customer_body(GOOD_ROW)["attributes"]
    r = api.client.patch(f"/api/v1/customers/{customer_id}", json={"attributes": attrs},
                         headers=api.token("credit_officer"))
    assert r.status_code == 200, r.text


def apply_as(api: Api, reg: borrowers.Registered, amount: str = "30000.00") -> dict[str, Any]:
    _profile(api, reg.customer_id)
    app = svc.submit(api.kit.uow_factory(), reg.principal, svc.NewApplication(
        customer_id=reg.customer_id, product_code="EI-STD", amount=Decimal(amount), term_months=12,
        consents=("credit_report",), channel="borrower"))
    return {"id": app.id, "status": app.status}


def _borrower_loan(api: Api, reg: borrowers.Registered) -> int:
    app = apply_as(api, reg)
    assert app["status"] == "approved", app
    done = acceptance.accept(api.kit.uow_factory(), reg.principal, app["id"])
    assert done.loan_id is not None
    return done.loan_id
