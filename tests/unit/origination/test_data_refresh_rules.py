"""What a re-pull compares and whom it may ask: an enforcement case or a dishonest listing new since the
previous answer, an overdue at other lenders new or worse; the consents that cover post-loan monitoring by
the text the borrower agreed to, the sources they open, and which sources are stale."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from microlend.origination.data_refresh import allowed_kinds, post_loan_scopes, stale_kinds
from microlend.origination.early_warning import new_enforcement, overdue_worsened
from microlend.parties.consents import Consent


def case(no: str, status: str = "open", dishonest: bool = False) -> dict[str, Any]:
    return {"case_no": no, "filed_on": "2026-01-05", "amount": "50000.00", "status": status, "dishonest": dishonest}


def enforcement(*cases: dict[str, Any]) -> dict[str, Any]:
    return {"found": True, "cases": list(cases)}


def bureau(overdue: int, level: int = 0) -> dict[str, Any]:
    return {"found": True, "overdue_accounts_now": overdue, "max_overdue_level_24m": level}


class TestNewEnforcement:
    def test_an_open_case_seen_before_is_not_new(self) -> None:
        assert new_enforcement(enforcement(case("A")), enforcement(case("A"))) == (0, False)

    def test_a_case_filed_since_the_previous_pull_is_new(self) -> None:
        assert new_enforcement(enforcement(case("A"), case("B")), enforcement(case("A"))) == (1, False)

    def test_a_closed_new_case_or_a_reopened_known_one_is_not_counted(self) -> None:
        assert new_enforcement(enforcement(case("A"), case("B", "closed")), enforcement(case("A", "closed"))) == (
            0, False)

    def test_a_listing_as_dishonest_is_new_once(self) -> None:
        listed = enforcement(case("A", dishonest=True))
        assert new_enforcement(listed, enforcement(case("A"))) == (0, True)
        assert new_enforcement(listed, listed) == (0, False)

    def test_the_first_answer_counts_every_open_case(self) -> None:
        assert new_enforcement(enforcement(case("A"), case("B", "closed"), case("C", dishonest=True)), None) == (
            2, True)
        assert new_enforcement({"found": False}, None) == (0, False)

    def test_a_clean_record_after_cases_is_quiet(self) -> None:
        assert new_enforcement(enforcement(), enforcement(case("A"))) == (0, False)


class TestOverdueWorsened:
    def test_a_new_overdue_and_more_accounts_warn(self) -> None:
        assert overdue_worsened(bureau(1), bureau(0)) == 1
        assert overdue_worsened(bureau(2), bureau(1)) == 2

    def test_the_same_overdue_is_quiet_unless_deeper(self) -> None:
        assert overdue_worsened(bureau(1, 2), bureau(1, 2)) == 0
        assert overdue_worsened(bureau(1, 3), bureau(1, 2)) == 1

    def test_fewer_or_none_is_quiet(self) -> None:
        assert overdue_worsened(bureau(1, 4), bureau(2, 2)) == 0
        assert overdue_worsened(bureau(0, 3), bureau(0, 1)) == 0
        assert overdue_worsened({"found": False}, bureau(1)) == 0

    def test_the_first_report_counts_what_is_overdue(self) -> None:
        assert overdue_worsened(bureau(2), None) == 2


def consent(scope: str, version: str, *, channel: str = "self", revoked: bool = False) -> Consent:
    at = datetime(2026, 11, 1, tzinfo=UTC)
    return Consent(1, 7, scope, at, "borrower", channel, "zh_CN", version, "h", {}, None,
                   at if revoked else None, "borrower" if revoked else None)


class TestConsents:
    def test_only_a_standing_consent_to_a_text_naming_post_loan_management_counts(self) -> None:
        assert post_loan_scopes([consent("credit_report", "credit_report/2026-11")]) == {"credit_report"}
        assert post_loan_scopes([consent("external_data", "external_data/2026-11")]) == set()  # the application
        assert post_loan_scopes([consent("external_data", "external_data/2026-11-30")]) == {"external_data"}
        assert post_loan_scopes([consent("credit_report", "credit_report/2026-11", revoked=True)]) == set()
        assert post_loan_scopes([consent("credit_report", "credit_report/2026-11", channel="api")]) == set()
        assert post_loan_scopes([consent("credit_report", "")]) == set()  # no text on record

    def test_the_sources_each_scope_opens(self) -> None:
        assert allowed_kinds("business", {"credit_report"}) == ("bureau", "enforcement")
        assert allowed_kinds("business", {"credit_report", "external_data"}) == (
            "bureau", "tax", "merchant", "enforcement")
        assert allowed_kinds("person", {"credit_report", "external_data"}) == ("bureau", "merchant", "enforcement")
        assert allowed_kinds("business", set()) == ()  # not even the public record

    def test_stale_sources(self) -> None:
        cutoff = datetime(2026, 11, 1, tzinfo=UTC)
        answered = {"bureau": cutoff, "enforcement": cutoff - timedelta(seconds=1)}
        assert stale_kinds(("bureau", "tax", "enforcement"), answered, cutoff) == ("tax", "enforcement")
