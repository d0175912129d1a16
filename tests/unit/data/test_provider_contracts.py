"""The provider payload contracts: a good answer of each kind becomes its typed record; a broken one is a
`ProviderDataError` naming the kind, the field and the row, never a crash."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from tests.provider_server import breaking, payload

from microlend.core.errors import ValidationError
from microlend.data.providers import (
    KINDS,
    BureauReport,
    EInvoiceSummary,
    EnforcementRecord,
    MerchantFlows,
    ProviderDataError,
    RegistryRecord,
    TaxRecord,
    consent_missing,
    parse,
)

AS_OF = date(2026, 11, 30)
USCC = "91330102MA2H8B3X4A"


def answer(kind: str, **changes: Any) -> dict[str, Any]:
    return {**payload(kind, USCC, AS_OF), **changes}


def text(body: dict[str, Any]) -> str:
    return json.dumps(body, ensure_ascii=False)


def problem(kind: str, body: dict[str, Any] | str) -> ProviderDataError:
    with pytest.raises(ProviderDataError) as err:
        parse(kind, body if isinstance(body, str) else text(body))
    assert err.value.kind == kind and err.value.message.startswith(f"{kind}: ")
    return err.value


class TestGoodAnswers:
    def test_bureau(self) -> None:
        r = parse("bureau", text(answer("bureau")))
        assert isinstance(r, BureauReport)
        assert r.total_balance == Decimal("123000.00") and r.guarantee_amount == Decimal(0)
        assert r.report_date == AS_OF and r.as_of == AS_OF and r.subject == USCC and r.bad_debt is False

    def test_tax_declarations_are_months_in_order(self) -> None:
        r = parse("tax", text(answer("tax")))
        assert isinstance(r, TaxRecord) and r.credit_grade == "A" and len(r.declarations) == 24
        periods = [d.period for d in r.declarations]
        assert periods == sorted(periods) and periods[0] == date(2024, 11, 1) and periods[-1] == date(2026, 10, 1)
        assert all(isinstance(d.sales, Decimal) and d.sales > 0 for d in r.declarations)

    def test_einvoice(self) -> None:
        r = parse("einvoice", text(answer("einvoice")))
        assert isinstance(r, EInvoiceSummary) and len(r.months) == 24 and r.counterparties_12m == 23
        assert [c.amount for c in r.top_customers_12m] == [Decimal(f"{100_000 - i * 10_000}.00") for i in range(5)]

    def test_merchant(self) -> None:
        r = parse("merchant", text(answer("merchant")))
        assert isinstance(r, MerchantFlows) and r.merchant_since == date(2021, 4, 1)
        assert r.days and all(d.date < AS_OF for d in r.days)

    def test_registry(self) -> None:
        r = parse("registry", text(answer("registry")))
        assert isinstance(r, RegistryRecord) and r.capital == Decimal("500000.00") and r.status == "存续"
        assert r.changes[0].date == date(2025, 6, 1) and r.changes[0].item == "address"

    def test_enforcement_without_cases_is_a_clean_record(self) -> None:
        r = parse("enforcement", text(answer("enforcement", cases=[])))
        assert isinstance(r, EnforcementRecord) and r.cases == ()
        r = parse("enforcement", text(answer("enforcement")))
        assert isinstance(r, EnforcementRecord) and r.cases[0].amount == Decimal("50000.00")

    @pytest.mark.parametrize("kind", KINDS)
    def test_an_unknown_subject_is_none(self, kind: str) -> None:
        assert parse(kind, text(payload(kind, USCC, AS_OF, found=False))) is None

    @pytest.mark.parametrize("kind", KINDS)
    def test_more_fields_than_the_contract_are_ignored(self, kind: str) -> None:
        assert parse(kind, text(answer(kind, extra={"new": 1}))) is not None


class TestBrokenAnswers:
    @pytest.mark.parametrize("kind", KINDS)
    def test_each_kind_names_what_is_broken(self, kind: str) -> None:
        expected = {
            "bureau": "bureau: total_balance: an amount is a string with 2 decimals ('123.45'), got 123000.5",
            "tax": "tax: declarations[3].sales: wrong type or missing, got 12.5",
            "einvoice": "einvoice: months[2].issued_count: a count is a whole number, 0 or more, got -1",
            "merchant": "merchant: days[1].amount: an amount is a string with 2 decimals ('123.45'), got '12.3'",
            "registry": "registry: status: Input should be '存续', '在业', '吊销' or '注销', got 'unknown'",
            "enforcement": "enforcement: cases[0].status: a status is open or closed, got 'pending'",
        }
        assert problem(kind, breaking(kind, answer(kind))).message == expected[kind]

    def test_not_json(self) -> None:
        err = problem("tax", '{"found": tru')
        assert err.message == "tax: payload: not valid JSON" and err.field == "payload"

    def test_a_missing_envelope_field(self) -> None:
        body = answer("bureau")
        del body["as_of"]
        assert problem("bureau", body).message == "bureau: as_of: missing"

    def test_the_wrong_schema(self) -> None:
        assert "expected 'tax/1'" in problem("tax", answer("tax", schema="tax/2")).message

    def test_an_answer_about_someone_else(self) -> None:
        with pytest.raises(ProviderDataError, match="another subject"):
            parse("bureau", text(answer("bureau")), subject="91110000600037341L")

    def test_a_number_as_a_string(self) -> None:
        assert problem("bureau", answer("bureau", open_accounts="3")).field == "open_accounts"

    def test_a_missing_column_in_a_table(self) -> None:
        body = answer("tax")
        for row in body["declarations"]:
            del row["vat_paid"]
        assert problem("tax", body).message == "tax: declarations.vat_paid: missing"

    def test_a_row_missing_a_value(self) -> None:
        body = answer("merchant")
        del body["days"][4]["count"]
        assert problem("merchant", body).field == "days[4].count"

    def test_a_month_twice(self) -> None:
        body = answer("tax")
        body["declarations"][1]["period"] = body["declarations"][0]["period"]
        assert "appears twice" in problem("tax", body).message

    def test_nothing_after_as_of(self) -> None:
        body = answer("tax")
        body["declarations"][5]["period"] = "2026-11"
        assert (
            problem("tax", body).message == "tax: declarations[5].period: 2026-11 is not before as_of's month 2026-11"
        )
        body = answer("merchant")
        body["days"][0]["date"] = "2026-12-01"
        assert problem("merchant", body).field == "days[0].date"

    def test_an_impossible_date(self) -> None:
        body = answer("enforcement")
        body["cases"][0]["filed_on"] = "2024-02-30"
        assert problem("enforcement", body).field == "cases[0].filed_on"

    def test_top_customers_out_of_order(self) -> None:
        body = answer("einvoice")
        body["top_customers_12m"].reverse()
        assert problem("einvoice", body).field == "top_customers_12m[1].amount"

    def test_an_overdue_level_beyond_7(self) -> None:
        assert problem("bureau", answer("bureau", max_overdue_level_24m=8)).field == "max_overdue_level_24m"

    def test_not_an_object(self) -> None:
        assert problem("registry", "[1, 2]").field == "payload"

    def test_is_a_validation_error(self) -> None:
        assert issubclass(ProviderDataError, ValidationError)

    def test_an_unknown_kind(self) -> None:
        with pytest.raises(ValidationError, match="unknown provider kind"):
            parse("weather", "{}")


@given(st.decimals(min_value=0, max_value=Decimal("999999999999.99"), places=2))
def test_money_arrives_exactly(amount: Decimal) -> None:
    r = parse("bureau", text(answer("bureau", total_balance=f"{amount:.2f}", guarantee_amount=f"{amount:.2f}")))
    assert isinstance(r, BureauReport) and r.total_balance == amount and r.guarantee_amount == amount


def test_consent_per_kind() -> None:
    assert consent_missing("bureau", {"external_data"}) == "credit_report"
    assert consent_missing("tax", {"credit_report"}) == "external_data"
    assert consent_missing("registry", set()) is None and consent_missing("enforcement", set()) is None
    assert all(consent_missing(k, {"credit_report", "external_data"}) is None for k in KINDS)
