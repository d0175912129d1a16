"""Collections' pure rules: routing by bucket, amount and branch, and the conduct rules a contact must pass."""

from __future__ import annotations

from datetime import UTC, datetime, time
from decimal import Decimal

from hypothesis import given
from hypothesis import strategies as st

from microlend.servicing import collection_rules as rules
from microlend.servicing.collection_rules import CollectionSettings, ContactAttempt, Route

DEFAULT = CollectionSettings()
# 10:00 in Shanghai is 02:00 UTC
NOON_SHANGHAI = datetime(2026, 3, 2, 4, 0, tzinfo=UTC)


def test_the_default_strategy_routes_each_bucket_to_its_team() -> None:
    assert rules.route(DEFAULT, "M1", Decimal("500"), "") == ("early", "reminder")
    assert rules.route(DEFAULT, "M2", Decimal("500"), "") == ("officer", "officer_call")
    assert rules.route(DEFAULT, "M3", Decimal("500"), "") == ("field", "field_visit")
    assert rules.route(DEFAULT, "M7", Decimal("500"), "") == ("field", "field_visit")


def test_a_large_amount_and_a_branch_change_the_queue() -> None:
    settings = CollectionSettings(routes=(Route("M1", "early", ("call",), Decimal("50000"), "senior"),
                                          *rules.DEFAULT_ROUTES[1:]), branch_queues={"西湖支行": "xihu"})
    assert rules.route(settings, "M1", Decimal("49999.99"), "") == ("early", "call")
    assert rules.route(settings, "M1", Decimal("50000"), "") == ("senior", "call")
    assert rules.route(settings, "M2", Decimal("1"), "西湖支行") == ("xihu:officer", "officer_call")


def _check(at: datetime, *, today: int = 0, party: str = "borrower", channel: str = "call",
           template: str | None = None, settings: CollectionSettings = DEFAULT) -> str | None:
    found = rules.conduct_violation(settings, ContactAttempt(channel, party, at, template), contacts_today=today,
                                    registered=["王小明"])
    return found[0] if found else None


def test_contacts_only_in_the_banks_hours_in_its_time_zone() -> None:
    assert _check(NOON_SHANGHAI) is None
    assert _check(datetime(2026, 3, 2, 0, 0, tzinfo=UTC)) is None  # 08:00 Shanghai: allowed
    assert _check(datetime(2026, 3, 1, 23, 59, tzinfo=UTC)) == rules.ALLOWED_HOURS  # 07:59 Shanghai
    assert _check(datetime(2026, 3, 2, 13, 0, tzinfo=UTC)) == rules.ALLOWED_HOURS  # 21:00 Shanghai
    assert _check(datetime(2026, 3, 2, 12, 59, tzinfo=UTC)) is None  # 20:59
    london = CollectionSettings(timezone="Europe/London", allowed_start=time(9), allowed_end=time(17))
    assert _check(datetime(2026, 3, 2, 12, 59, tzinfo=UTC), settings=london) is None
    assert _check(datetime(2026, 3, 2, 17, 0, tzinfo=UTC), settings=london) == rules.ALLOWED_HOURS


def test_daily_limit_party_and_template_rules() -> None:
    assert _check(NOON_SHANGHAI, today=2) is None
    assert _check(NOON_SHANGHAI, today=3) == rules.DAILY_LIMIT
    assert _check(NOON_SHANGHAI, party="王小明") is None
    assert _check(NOON_SHANGHAI, party="邻居") == rules.ALLOWED_PARTY
    assert _check(NOON_SHANGHAI, channel="sms") == rules.TEMPLATE
    assert _check(NOON_SHANGHAI, channel="sms", template="free text") == rules.TEMPLATE
    assert _check(NOON_SHANGHAI, channel="sms", template="reminder") is None


@given(st.integers(min_value=0, max_value=23), st.integers(min_value=0, max_value=59))
def test_the_hours_rule_agrees_with_the_local_clock(hour: int, minute: int) -> None:
    at = datetime(2026, 3, 2, hour, minute, tzinfo=UTC)
    local_hour = (hour + 8) % 24
    expected_ok = 8 <= local_hour < 21
    assert (_check(at) is None) == expected_ok


def test_bucket_groups() -> None:
    assert [rules.bucket_group(b) for b in ("M1", "M2", "M3", "M12")] == ["M1", "M2", "M3+", "M3+"]


def test_an_end_of_midnight_allows_the_evening() -> None:
    all_day = CollectionSettings(allowed_start=time(0), allowed_end=time(0))
    assert _check(datetime(2026, 3, 2, 15, 59, 59, tzinfo=UTC), settings=all_day) is None  # 23:59:59 Shanghai
    assert _check(datetime(2026, 3, 2, 16, 0, tzinfo=UTC), settings=all_day) is None  # 00:00


class TestSettingsProblems:
    def test_the_defaults_are_fine(self) -> None:
        from microlend.servicing.collection_rules import settings_problems

        assert settings_problems(CollectionSettings()) == []

    def test_a_threat_or_shaming_in_a_template_is_refused_in_either_language(self) -> None:
        from microlend.servicing.collection_rules import settings_problems

        zh = CollectionSettings(templates={"r": {"zh": "不还钱就联系你家人", "en": "Please repay."}})
        en = CollectionSettings(templates={"r": {"zh": "请还款", "en": "We will tell YOUR EMPLOYER."}})
        assert settings_problems(zh) == [("templates.r.zh", "not respectful: '家人'")]
        assert settings_problems(en) == [("templates.r.en", "not respectful: 'your employer'")]

    def test_every_bucket_group_has_one_route_and_hours_stay_in_the_day(self) -> None:
        from microlend.servicing.collection_rules import settings_problems

        two = CollectionSettings(routes=(Route("M1", "a", ("call",)), Route("M2", "b", ("visit",))))
        assert [f for f, _ in settings_problems(two)] == ["routes"]
        night = CollectionSettings(allowed_start=time(8), allowed_end=time(0))
        assert [f for f, _ in settings_problems(night)] == ["allowed_start"]
        large = CollectionSettings(routes=(Route("M1", "a", ("call",), Decimal("100")), *DEFAULT.routes[1:]))
        assert [f for f, _ in settings_problems(large)] == ["routes.0.large_queue"]
