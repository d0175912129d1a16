"""Reason codes as data, per bank: seeded at set-up, edited by an analyst (audited), checked at submit (a code
without text is refused), and what a declined borrower is told comes from the bank's text with the
parameters of the rule that fired."""

from __future__ import annotations

import copy
from typing import Any

import pytest
from sqlalchemy import select

from microlend.core.errors import PermissionDenied, ValidationError
from microlend.core.identity import Principal
from microlend.core.tables import AuditRow
from microlend.core.tenancy import Tenant
from microlend.core.uow import UnitOfWork
from microlend.decisioning import service
from microlend.decisioning.reasons import CATALOGUE
from microlend.decisioning.tables import ReasonCodeRow

from .test_decision_service import DEFAULT, application


def with_age_limit(limit: int) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT)
    doc["metadata"]["name"] = f"age_{limit}"
    knockout = next(n for n in doc["nodes"] if n["id"] == "knockout")
    rule = next(r for r in knockout["content"]["rules"] if r["k_reason"] == '"AGE_ABOVE_MAX"')
    rule["k_age"] = f"> {limit}"
    doc["tests"] = [t for t in doc["tests"]  # the cases about ages above the new limit no longer hold
                    if int((t["input"].get("customer") or {}).get("age", 40)) <= limit
                    and int((t["input"].get("capacity") or {}).get("age_at_maturity", 41)) <= limit]
    return doc


def with_new_code(code: str) -> dict[str, Any]:
    doc = copy.deepcopy(DEFAULT)
    doc["metadata"]["name"] = "new_code"
    knockout = next(n for n in doc["nodes"] if n["id"] == "knockout")
    rule = next(r for r in knockout["content"]["rules"] if r["k_reason"] == '"AGE_AT_MATURITY_ABOVE_MAX"')
    rule["k_reason"] = f'"{code}"'
    for test in doc["tests"]:
        if "reasons" in test["expect"]:
            test["expect"]["reasons"] = [code if r == "AGE_AT_MATURITY_ABOVE_MAX" else r
                                         for r in test["expect"]["reasons"]]
    return doc


def texts(**over: Any) -> dict[str, Any]:
    base = {"borrower_zh": "贷款到期时年龄超过{max_age}周岁", "borrower_en": "Older than {max_age} when the loan ends",
            "staff_zh": "到期年龄超限", "staff_en": "Too old at maturity", "tellable": True, "params": {}}
    return {**base, **over}


class TestTheCatalogue:
    def test_a_new_bank_starts_with_every_built_in_code(self, uow: UnitOfWork, bank: Tenant,
                                                         analyst: Principal) -> None:
        codes = service.list_reason_codes(uow, analyst)
        assert [c.code for c in codes] == sorted(CATALOGUE)
        age = next(c for c in codes if c.code == "AGE_ABOVE_MAX")
        assert "{max_age}" in age.borrower_en and age.params == (("max_age", "customer.age"),)

    def test_banks_keep_their_own_catalogues(self, uow: UnitOfWork, bank: Tenant, other_bank: Tenant,
                                             analyst: Principal) -> None:
        service.save_reason_code(uow, analyst, "MATURITY_AGE", **texts(borrower_zh="到期年龄超限",
                                                                      borrower_en="Too old at maturity"))
        with uow:
            rows = uow.session.execute(select(ReasonCodeRow.tenant_id).where(
                ReasonCodeRow.code == "MATURITY_AGE")).scalars().all()
        assert rows == [bank.id]

    def test_an_analyst_edits_a_text_and_the_change_is_audited(self, uow: UnitOfWork, bank: Tenant,
                                                                analyst: Principal) -> None:
        saved = service.save_reason_code(
            uow, analyst, "AGE_ABOVE_MAX", borrower_zh="年龄超过{max_age}周岁", borrower_en="Over {max_age}",
            staff_zh="超龄", staff_en="Over age", tellable=True, params={"max_age": "customer.age"})
        assert saved.borrower_en == "Over {max_age}" and saved.updated_by == analyst.username
        with uow:
            entry = uow.session.execute(select(AuditRow).where(AuditRow.action == "reason_code.update")).scalar_one()
        assert entry.actor == analyst.username

    def test_an_officer_may_read_but_not_edit(self, uow: UnitOfWork, bank: Tenant, officer: Principal) -> None:
        assert service.list_reason_codes(uow, officer)
        with pytest.raises(PermissionDenied):
            service.save_reason_code(uow, officer, "AGE_ABOVE_MAX", **texts())

    @pytest.mark.parametrize(("over", "message"), [
        ({"borrower_en": "  "}, "borrower_en: the text must not be empty"),
        ({"params": {}, "borrower_en": "Older than {max_age}"}, "not a declared parameter"),
        ({"params": {"max_age": "age"}}, "is not an input field"),
        ({"params": {"max_age": "customer.age", "min_age": "customer.age"}}, "'min_age' is not used"),
        ({"borrower_en": "Older than {max_age:>3}", "params": {"max_age": "customer.age"}}, "is not a parameter"),
    ])
    def test_an_entry_a_decision_could_not_explain_with_is_refused_and_nothing_written(
            self, uow: UnitOfWork, bank: Tenant, analyst: Principal, over: dict[str, Any], message: str) -> None:
        body = texts(**{"params": {"max_age": "customer.age"}, **over})
        with pytest.raises(ValidationError, match=message):
            service.save_reason_code(uow, analyst, "MATURITY_AGE", **body)
        assert "MATURITY_AGE" not in {c.code for c in service.list_reason_codes(uow, analyst)}


class TestACodeWithoutTextIsRefused:
    def test_submit_refuses_a_policy_giving_a_code_the_bank_has_no_text_for(
            self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        with pytest.raises(ValidationError, match=r"unknown_reason.*'MATURITY_AGE' is not in the bank's reason"):
            service.submit(uow, analyst, with_new_code("MATURITY_AGE"))
        assert [v.status for v in service.list_versions(uow, analyst)] == ["published"]  # nothing stored

    def test_once_the_code_has_its_texts_the_policy_is_submitted(self, uow: UnitOfWork, bank: Tenant,
                                                                 analyst: Principal) -> None:
        service.save_reason_code(uow, analyst, "MATURITY_AGE", **texts(borrower_zh="到期年龄超限",
                                                                      borrower_en="Too old at maturity"))
        version = service.submit(uow, analyst, with_new_code("MATURITY_AGE"))
        assert version.status == "submitted"

    def test_lint_for_the_bank_reports_it_as_an_error(self, uow: UnitOfWork, bank: Tenant,
                                                      analyst: Principal) -> None:
        report = service.lint_for_bank(uow, analyst, with_new_code("MATURITY_AGE"), run_tests=False)
        assert not report.ok and {f.kind for f in report.errors} == {"unknown_reason"}


class TestWhatTheBorrowerIsTold:
    def publish(self, uow: UnitOfWork, maker: Principal, checker: Principal, doc: dict[str, Any]) -> None:
        version = service.submit(uow, maker, doc)
        service.publish(uow, checker, version.content_hash)

    def test_the_age_limit_comes_from_the_rule_that_fired(self, uow: UnitOfWork, bank: Tenant,
                                                          analyst: Principal, second_analyst: Principal) -> None:
        self.publish(uow, analyst, second_analyst, with_age_limit(60))
        applicant = application({"customer": {"customer_id": "c64", "age": 64},
                                 "capacity": {"age_at_maturity": 65}})
        record = service.decide(uow, analyst, applicant, locale="en")
        assert record.outcome == "decline" and record.reasons == ("AGE_ABOVE_MAX",)
        assert record.borrower_reasons == ("The applicant is older than the product allows (60)",)
        again = service.get_decision(uow, analyst, record.id, locale="zh_CN")
        assert again.borrower_reasons == ("申请人年龄超过产品上限（60周岁）",)

    def test_the_bank_s_own_text_is_what_the_borrower_reads(self, uow: UnitOfWork, bank: Tenant,
                                                            analyst: Principal) -> None:
        service.save_reason_code(uow, analyst, "AGE_ABOVE_MAX", borrower_zh="年龄超过{max_age}周岁",
                                 borrower_en="You are older than {max_age}, our limit for this loan",
                                 staff_zh="超龄（>{max_age}）", staff_en="Over age (>{max_age})", tellable=True,
                                 params={"max_age": "customer.age"})
        record = service.decide(uow, analyst, application({"customer": {"age": 70},
                                                           "capacity": {"age_at_maturity": 71}}), locale="en")
        assert record.borrower_reasons[0] == "You are older than 65, our limit for this loan"
        assert record.reason_texts[0] == ("AGE_ABOVE_MAX", "Over age (>65)", True)

    def test_a_code_the_bank_does_not_tell_is_never_told(self, uow: UnitOfWork, bank: Tenant,
                                                          analyst: Principal) -> None:
        service.save_reason_code(uow, analyst, "AGE_ABOVE_MAX", **texts(
            borrower_zh="年龄超过{max_age}周岁", borrower_en="Older than {max_age}", tellable=False,
            params={"max_age": "customer.age"}))
        record = service.decide(uow, analyst, application({"customer": {"age": 70},
                                                           "capacity": {"age_at_maturity": 71}}), locale="en")
        assert "AGE_ABOVE_MAX" in record.reasons
        assert all("Older than" not in told for told in record.borrower_reasons)

    def test_many_decisions_read_at_once_each_keep_their_own_reasons(self, uow: UnitOfWork, bank: Tenant,
                                                                     analyst: Principal) -> None:
        """A list page reads the catalogue once for all its decisions: each still gets its own reasons' words,
        with its own rule's parameters."""
        from microlend.decisioning.queries import reason_messages

        old = service.decide(uow, analyst, application({"customer": {"age": 70},
                                                        "capacity": {"age_at_maturity": 71}}), locale="en")
        young = service.decide(uow, analyst, application({"customer": {"customer_id": "c17", "age": 17}}),
                               locale="en")
        assert old.reasons != young.reasons
        read = reason_messages(uow, analyst, [old.id, young.id], locale="en")
        assert [r["code"] for r in read[old.id]] == list(old.reasons)
        assert [r["code"] for r in read[young.id]] == list(young.reasons)
        assert [r["message"] for r in read[old.id] if r["tellable"]] == list(old.borrower_reasons)

    def test_a_list_words_reasons_with_and_without_parameters_as_each_decision_s_own_page_does(
            self, uow: UnitOfWork, bank: Tenant, analyst: Principal) -> None:
        """A list reads a decision's trace only for reasons whose text takes a parameter: a text without one
        is worded from the catalogue alone, and both read as the decision's own page words them."""
        from microlend.decisioning.queries import reason_messages

        service.save_reason_code(uow, analyst, "AGE_ABOVE_MAX", **texts(
            borrower_zh="年龄过大", borrower_en="Too old for this loan", staff_zh="超龄", staff_en="Over age",
            params={}))
        plain = service.decide(uow, analyst, application({"customer": {"age": 70},
                                                          "capacity": {"age_at_maturity": 71}}), locale="en")
        young = service.decide(uow, analyst, application({"customer": {"customer_id": "c17", "age": 17}}),
                               locale="en")
        assert "AGE_ABOVE_MAX" in plain.reasons
        for locale in ("en", "zh_CN"):
            read = reason_messages(uow, analyst, [plain.id, young.id], locale=locale)
            for decided in (plain, young):
                shown = service.get_decision(uow, analyst, decided.id, locale=locale)
                assert [(r["code"], r["staff_message"], r["tellable"]) for r in read[decided.id]] == list(
                    shown.reason_texts)
                assert [r["message"] for r in read[decided.id] if r["tellable"]] == list(shown.borrower_reasons)
        assert any(r["message"] == "Too old for this loan" for r in reason_messages(
            uow, analyst, [plain.id], locale="en")[plain.id])
