"""Segments see the bank's data: the marketing customer view carries every field the segment builder lists
(products, balances, loans, repayment behaviour, offers and applications with their dates), the three example
segments can be built, and a field the view does not carry is refused when the segment is saved."""

from __future__ import annotations

import random
from datetime import date, timedelta
from decimal import Decimal

import polars as pl
import pytest
from tests.conftest import Api
from tests.integration.origination.test_applications_api import GOOD_ROW, apply, new_customer
from tests.signing import accept_by_code, consent_by_code

from microlend.core.clock import utcnow
from microlend.core.errors import ValidationError
from microlend.data.tables import BankAccountRow, BankTransactionRow
from microlend.demo import identities
from microlend.marketing import service
from microlend.marketing.bank_preapproval import run_bank_preapproval
from microlend.marketing.customerbase import customer_frame
from microlend.marketing.preapproval import OfferParameters
from microlend.marketing.segments import DEFAULT_NAMESPACE

_rng = random.Random(77)
BUSINESS_WITH_DEPOSITS = 'customer_kind == "business" and deposit_balance_3m > 0 and has_loan == false'
REPAID_EARLY_6M = "days_since_early_repayment <= 183"
PREAPPROVED_NOT_APPLIED_30D = "days_since_offer >= 30 and applied_since_offer == false"
_TYPES = {"number": pl.Float64, "string": pl.Utf8, "boolean": pl.Boolean}


def _business(api: Api) -> int:
    body = {"kind": "business", "name": "城关镇五金店", "id_number": identities.uscc(_rng),
            "phone": identities.mobile(_rng), "industry": "retail", "branch": "城关支行",
            "attributes": {"annual_turnover": "400000", "years_in_business": 5}}
    r = api.client.post("/api/v1/customers", json=body, headers=api.token("credit_officer"))
    assert r.status_code == 201, r.text
    return int(r.json()["id"])


def _deposit(api: Api, customer_id: int, balance: str, today: date) -> None:
    """A current account at the bank with a balance held over the last months."""
    number = f"6222{customer_id:012d}"
    with api.kit.uow_factory() as u:
        u.session.add(BankAccountRow(
            tenant_id=api.kit.tenant.id, account_no=number, customer_id=customer_id, holder_id_index=f"h{customer_id}",
            holder_id_masked="9****1", opened_on=today - timedelta(days=400), closed_on=None, product="current",
            currency="CNY", imported_at=utcnow()))
        u.session.add(BankTransactionRow(
            tenant_id=api.kit.tenant.id, account_no=number, txn_ref=f"t{customer_id}",
            booked_on=today - timedelta(days=150), amount=Decimal(balance), balance_after=Decimal(balance),
            kind="turnover", counterparty=None))
        u.commit()


def _borrower(api: Api) -> tuple[int, int]:
    customer = new_customer(api, GOOD_ROW)
    app = apply(api, customer, "30000.00").json()
    assert app["status"] == "approved", app
    done = accept_by_code(api, app["id"]).json()
    assert done["status"] == "disbursed", done
    return customer, int(done["loan_id"])


def _members(frame: pl.DataFrame, expression: str) -> set[int]:
    from microlend.marketing.segments import Segment

    return set(Segment("x", 1, expression).select(frame).get_column("customer_id").to_list())


def _frame(api: Api) -> pl.DataFrame:
    return customer_frame(api.kit.uow_factory(), api.kit.principal("marketer"), utcnow().date())


class TestTheExampleSegments:
    def test_the_three_example_segments_are_saved_and_select_the_right_customers(self, api: Api) -> None:
        today = utcnow().date()
        marketer = api.kit.principal("marketer")
        # pre-approved 40 days ago: one applied since, one did not
        waiting = new_customer(api, GOOD_ROW)
        consent_by_code(api, waiting, "credit_report")
        applied = new_customer(api, GOOD_ROW)
        consent_by_code(api, applied, "credit_report")
        summary = run_bank_preapproval(api.kit.uow_factory(), marketer, as_of=today - timedelta(days=40),
                                       started_at=utcnow(), params=OfferParameters(product_code="EI-STD"))
        offered = {o.customer_id for o in service.list_offers(api.kit.uow_factory(), marketer, summary.run_id)}
        assert {waiting, applied} <= offered
        assert apply(api, applied, "20000.00").status_code == 201
        # a shop with deposits and no loan, a person with deposits, a borrower who repaid early and one who did not
        shop, person = _business(api), new_customer(api, GOOD_ROW)
        _deposit(api, shop, "85000.00", today)
        _deposit(api, person, "85000.00", today)
        early, early_loan = _borrower(api)
        owing, _ = _borrower(api)
        r = api.client.post(f"/api/v1/loans/{early_loan}/early-repayments", json={},
                            headers={**api.token("collector"), "Idempotency-Key": f"early-{early_loan}"})
        assert r.status_code == 201, r.text

        for name, expression in (("business with deposits no loan", BUSINESS_WITH_DEPOSITS),
                                 ("repaid early in 6 months", REPAID_EARLY_6M),
                                 ("pre-approved not applied in 30 days", PREAPPROVED_NOT_APPLIED_30D)):
            saved = service.save_segment(api.kit.uow_factory(), marketer, name, expression, at=utcnow())
            assert saved.version == 1
        frame = _frame(api)
        assert _members(frame, BUSINESS_WITH_DEPOSITS) == {shop}
        assert _members(frame, REPAID_EARLY_6M) == {early}
        assert _members(frame, PREAPPROVED_NOT_APPLIED_30D) == {waiting}
        repaid = frame.filter(pl.col("customer_id") == early).to_dicts()[0]
        assert not repaid["has_loan"] and repaid["loans_count"] == 1 and repaid["days_since_early_repayment"] == 0
        row = frame.filter(pl.col("customer_id") == owing).to_dicts()[0]
        assert row["has_loan"] and row["active_loans_count"] == 1 and row["loans_count"] == 1
        assert row["outstanding_principal"] == 30000 and row["days_since_last_loan"] == 0
        waiting_row = frame.filter(pl.col("customer_id") == waiting).to_dicts()[0]
        assert waiting_row["days_since_offer"] == 40 and waiting_row["offer_limit"] > 0

    def test_every_listed_field_is_a_column_of_the_view_with_its_type(self, api: Api) -> None:
        _business(api)
        frame = _frame(api)
        for name, kind in DEFAULT_NAMESPACE.items():
            assert name in frame.columns, name
            assert frame.schema[name] == _TYPES[kind], name


class TestSavingASegment:
    @pytest.mark.parametrize("expression", ["late_installments_3m > 0", "credit_line_utilisation > 0.5",
                                            "age >= 30 and declines_90d == 0"])
    def test_a_field_the_view_does_not_carry_is_refused_with_its_name(self, api: Api, expression: str) -> None:
        with pytest.raises(ValidationError) as caught:
            service.save_segment(api.kit.uow_factory(), api.kit.principal("marketer"), "unusable", expression,
                                 at=utcnow())
        bad = expression.split()[0] if "declines" not in expression else "declines_90d"
        assert bad in caught.value.message and "customer view" in caught.value.message
        assert service.list_segments(api.kit.uow_factory(), api.kit.principal("marketer")) == []

    def test_the_page_lists_exactly_the_view_fields_and_saves_an_example(self, api: Api) -> None:
        username, _ = api.kit.user("marketer")
        from tests.conftest import page_headers, sign_in_page

        sign_in_page(api.client, username)
        page = api.client.get("/marketing/segments/new")
        assert page.status_code == 200
        for name in DEFAULT_NAMESPACE:
            assert name in page.text
        for gone in ("late_installments_3m", "credit_line_utilisation", "declines_90d"):
            assert gone not in page.text
        saved = api.client.post("/marketing/segments", headers=page_headers(api.client),
                                data={"name": "deposits", "expression": BUSINESS_WITH_DEPOSITS},
                                follow_redirects=False)
        assert saved.status_code == 303, saved.text
        refused = api.client.post("/marketing/segments", headers=page_headers(api.client),
                                  data={"name": "old", "expression": "late_installments_3m > 0"},
                                  follow_redirects=False)
        assert refused.status_code == 422 and "late_installments_3m" in refused.text

