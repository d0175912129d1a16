"""The pure rules inside the marketing use cases: arms, send-time suppression, the application funnel,
the pre-approval run key, a customer row as a frame record, and the name of an uplift refusal."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar, cast

import numpy as np
import pytest

from microlend.core.identity import Principal, Role
from microlend.core.uow import UnitOfWork
from microlend.marketing import sources
from microlend.marketing.preapproval import OfferParameters, run_key
from microlend.marketing.service.campaigns import campaign_arms
from microlend.marketing.service.outbox import suppression_reason
from microlend.marketing.service.uplift import uplift_problem
from microlend.marketing.sources import customer_record

NOW = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)
WHO = Principal(user_id=1, tenant_id=1, username="marketer", roles=frozenset({Role.MARKETER}))


class TestCampaignArms:
    def test_an_excluded_customer_is_never_in_control_or_treatment(self) -> None:
        excluded = np.array([True, True, False, False])
        control = np.array([True, False, True, False])
        assert campaign_arms(excluded, control) == ["excluded", "excluded", "control", "treatment"]

    def test_no_targets_give_no_arms(self) -> None:
        assert campaign_arms(np.array([], dtype=bool), np.array([], dtype=bool)) == []


class TestSuppressionReason:
    def _reason(self, customer: int = 1, channel: str = "sms", *, consenting: set[int] | None = None,
                opted: set[tuple[int, str]] | None = None, contacts: list[datetime] | None = None,
                max_messages: int = 2) -> str | None:
        return suppression_reason(customer, channel, consenting={1} if consenting is None else consenting,
                                  opted=opted or set(), contacts=contacts or [], window_start=NOW - timedelta(days=7),
                                  now=NOW, max_messages=max_messages)

    def test_a_consenting_customer_under_the_cap_may_be_contacted(self) -> None:
        assert self._reason(contacts=[NOW - timedelta(days=1)]) is None

    def test_consent_is_checked_first_then_opt_outs_then_the_cap(self) -> None:
        full = [NOW - timedelta(days=1), NOW - timedelta(days=2)]
        assert self._reason(consenting=set(), opted={(1, "sms")}, contacts=full) == "no_consent"
        assert self._reason(opted={(1, "sms")}, contacts=full) == "opted_out"
        assert self._reason(contacts=full) == "frequency_cap"

    def test_an_opt_out_holds_for_its_channel_only(self) -> None:
        assert self._reason(channel="push", opted={(1, "sms")}) is None

    def test_contacts_outside_the_window_do_not_count(self) -> None:
        old = [NOW - timedelta(days=8), NOW - timedelta(days=9)]
        assert self._reason(contacts=old) is None
        assert self._reason(contacts=[NOW + timedelta(minutes=1)] * 2) is None  # after now: not yet made


@dataclass(frozen=True)
class Step:
    customer_id: int
    kind: str
    at: datetime
    campaign_id: int | None


class TestLendingPorts:
    """Marketing learns of applications and arrears only through the ports the composition root connects."""

    def test_an_unconnected_port_answers_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(sources, "lending", sources.LendingPorts())
        uow = cast(UnitOfWork, object())
        assert sources.applications_for_funnel(uow, WHO, [7], NOW) == []
        assert sources.customer_loan_status(uow, WHO) == {}

    def test_a_connected_port_gives_the_funnel_events_of_the_lending_side(
            self, monkeypatch: pytest.MonkeyPatch) -> None:
        asked: list[tuple[list[int], datetime]] = []

        def steps(uow: UnitOfWork, who: Principal, ids: Sequence[int], since: datetime) -> list[Step]:
            asked.append((list(ids), since))
            return [Step(7, "applied", NOW, 3), Step(7, "disbursed", NOW + timedelta(days=1), 3)]

        monkeypatch.setattr(sources, "lending", sources.LendingPorts(steps, lambda uow, who: {7: 35}))
        uow = cast(UnitOfWork, object())
        assert sources.applications_for_funnel(uow, WHO, [7, 8], NOW) == [
            (7, "applied", NOW, 3), (7, "disbursed", NOW + timedelta(days=1), 3)]
        assert asked == [([7, 8], NOW)]
        assert sources.applications_for_funnel(uow, WHO, [], NOW) == []  # nobody to ask about
        assert len(asked) == 1
        assert sources.customer_loan_status(uow, WHO) == {7: 35}

    def test_the_composition_root_connects_origination_and_servicing(self) -> None:
        from microlend.bootstrap import load_modules
        from microlend.origination import queries as applications
        from microlend.servicing import queries as loans

        load_modules()
        assert sources.lending.application_steps is applications.application_steps
        assert sources.lending.worst_days_past_due is loans.worst_days_past_due


class TestRunKey:
    def _key(self, **changes: object) -> str:
        args: dict[str, object] = {"tenant_id": 1, "as_of": date(2026, 3, 1), "segment_id": None,
                                   "policy_version": "p1", "model_version": "m1", "params": OfferParameters(),
                                   "chunk_rows": 1000, "data_fingerprint": "abc"}
        args.update(changes)
        return run_key(**args)  # type: ignore[arg-type]

    def test_the_same_inputs_give_the_same_key(self) -> None:
        assert self._key() == self._key() and len(self._key()) == 64

    def test_any_input_changes_the_key(self) -> None:
        changed = [self._key(tenant_id=2), self._key(as_of=date(2026, 3, 2)), self._key(segment_id=5),
                   self._key(policy_version="p2"), self._key(model_version="m2"),
                   self._key(params=OfferParameters(requested_amount=Decimal("1000"))), self._key(chunk_rows=10),
                   self._key(data_fingerprint="abd")]
        assert len({self._key(), *changed}) == len(changed) + 1


class TestCustomerRecord:
    ROW: ClassVar[dict[str, Any]] = {
           "id": 5, "kind": "person", "birth_date": "1990-03-02", "industry": "", "branch": "城关支行",
           "officer_user_id": None, "marketing_consent": 1, "created_at": datetime(2025, 1, 15, tzinfo=UTC),
           "attributes": {"annual_turnover": 120000, "purpose": "car", "age_in_years": 99}}

    def test_age_and_months_on_book_are_as_of_the_date(self) -> None:
        record = customer_record(self.ROW, date(2026, 3, 1), {})
        assert record["age"] == 35.0  # the birthday is tomorrow
        assert customer_record(self.ROW, date(2026, 3, 2), {})["age"] == 36.0
        assert record["months_on_book"] == 14.0

    def test_flags_profile_and_days_past_due(self) -> None:
        record = customer_record(self.ROW, date(2026, 3, 1), {5: 12})
        assert record["current_days_past_due"] == 12.0 and record["marketing_consent"] is True
        assert record["has_officer"] is False and record["industry"] is None
        assert record["annual_turnover"] == 120000.0 and record["purpose"] == "car"
        assert record["credit_amount"] is None

    def test_without_a_birth_date_the_profile_age_is_used(self) -> None:
        record = customer_record({**self.ROW, "birth_date": None}, date(2026, 3, 1), {})
        assert record["age"] == 99.0

    def test_a_business_is_as_old_as_its_owner(self) -> None:
        row = {**self.ROW, "birth_date": None, "kind": "business", "attributes": {"owner_age": 47}}
        assert customer_record(row, date(2026, 3, 1), {})["age"] == 47.0


class TestUpliftProblem:
    def test_an_arm_without_converters_is_no_contrast_and_anything_else_is_kept(self) -> None:
        message = "outcome: the control group needs both converters and non-converters"
        assert uplift_problem(message) == "no_contrast"
        assert uplift_problem("score: no customers") == "score: no customers"
