"""The provider sandboxes' simulated businesses: the same subject always gets the same history, an earlier day
sees a prefix of it, profiles come in their shares and behave as named, and money adds up to the cent."""

from __future__ import annotations

import random
import re
from datetime import date, timedelta
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from microlend.demo import identities
from microlend.demo.sandbox import KINDS, PROFILE_SHARES, payload, profile_of, subject_with
from microlend.demo.sandbox.world import business_of, festival_month_factor
from microlend.parties.kyc import validate_resident_id, validate_uscc

ANCHOR = date(2026, 11, 30)
MONEY = re.compile(r"^\d+\.\d{2}$")
MONEY_KEYS = {
    "total_balance",
    "guarantee_amount",
    "sales",
    "vat_paid",
    "issued_amount",
    "received_amount",
    "red_amount",
    "amount",
    "capital",
}


def body(kind: str, subject: str, as_of: date = ANCHOR, seed: int = 0) -> dict[str, Any]:
    return payload(kind, subject, as_of, seed=seed, anchor=ANCHOR)


def one_of(profile: str, n: int = 1, kind: str = "business", seed: int = 5) -> list[str]:
    rng = random.Random(f"{profile}-{seed}")
    return [subject_with(profile, rng, kind=kind) for _ in range(n)]  # type: ignore[arg-type]


def money_values(node: Any, key: str = "") -> list[str]:
    if isinstance(node, dict):
        return [v for k, child in node.items() for v in money_values(child, k)]
    if isinstance(node, list):
        return [v for child in node for v in money_values(child, key)]
    return [node] if key in MONEY_KEYS else []


def dates_in(node: Any, key: str = "") -> list[tuple[str, str]]:
    if isinstance(node, dict):
        return [v for k, child in node.items() for v in dates_in(child, k)]
    if isinstance(node, list):
        return [v for child in node for v in dates_in(child, key)]
    keys = ("period", "date", "filed_on", "registered_on", "merchant_since", "report_date")
    return [(key, node)] if key in keys else []


def nothing_after(p: dict[str, Any], as_of: date) -> bool:
    """Days up to `as_of`, months (periods) before its month."""
    day, month = as_of.isoformat(), as_of.isoformat()[:7]
    return all(value < month if key == "period" else value <= day for key, value in dates_in(p))


def sales_12m(tax: dict[str, Any], last: str, first: str) -> Decimal:
    return sum((Decimal(d["sales"]) for d in tax["declarations"] if first <= d["period"] <= last), Decimal(0))


class TestDeterminism:
    def test_the_same_subject_and_seed_give_the_same_payload(self) -> None:
        for subject in one_of("good", 3) + one_of("overdue", 2, kind="person"):
            for kind in KINDS:
                business_of.cache_clear()
                first = body(kind, subject)
                business_of.cache_clear()
                assert body(kind, subject) == first

    def test_another_seed_is_another_world(self) -> None:
        subject = one_of("good")[0]
        assert body("tax", subject, seed=0) != body("tax", subject, seed=1)

    def test_a_profile_is_fixed_by_the_id_and_the_seed(self) -> None:
        rng = random.Random(3)
        ids = [identities.uscc(rng) for _ in range(200)]
        assert [profile_of(i) for i in ids] == [profile_of(i.lower()) for i in ids]
        assert [profile_of(i) for i in ids] != [profile_of(i, seed=9) for i in ids]


class TestPointInTime:
    @pytest.mark.parametrize("profile", ["good", "declining", "overdue", "enforcement", "shell", "thin", "seasonal"])
    def test_an_earlier_day_sees_a_prefix_and_nothing_after_it(self, profile: str) -> None:
        for subject in one_of(profile, 2):
            for kind in KINDS:
                for back in (0, 45, 200, 500):
                    earlier = ANCHOR - timedelta(days=back)
                    then, now = body(kind, subject, earlier), body(kind, subject)
                    assert nothing_after(then, earlier), (kind, back)
                    if not then["found"]:
                        continue
                    assert now["found"], (kind, back)
                    self._prefix(kind, then, now, earlier)

    @staticmethod
    def _prefix(kind: str, then: dict[str, Any], now: dict[str, Any], earlier: date) -> None:
        if kind == "tax":
            later = {d["period"]: d for d in now["declarations"]}
            assert all(later[d["period"]] == d for d in then["declarations"] if d["period"] in later)
        elif kind == "einvoice":
            later = {m["period"]: m for m in now["months"]}
            assert all(later[m["period"]] == m for m in then["months"] if m["period"] in later)
        elif kind == "merchant":
            later = {d["date"]: d for d in now["days"]}
            cut = min(later, default="")
            assert all(later.get(d["date"]) == d for d in then["days"] if d["date"] >= cut)
            assert then["merchant_since"] == now["merchant_since"]
        elif kind == "registry":
            assert now["changes"][: len(then["changes"])] == then["changes"]
            assert then["registered_on"] == now["registered_on"]
        elif kind == "enforcement":
            assert [c["case_no"] for c in then["cases"]] == [
                c["case_no"] for c in now["cases"] if c["filed_on"] <= earlier.isoformat()
            ]
        elif kind == "bureau":
            assert then["credit_history_months"] <= now["credit_history_months"]

    def test_a_business_registered_after_the_day_is_not_found_yet(self) -> None:
        subject = one_of("thin")[0]
        registered = date.fromisoformat(body("registry", subject)["registered_on"])
        for kind in ("tax", "einvoice", "registry"):
            assert body(kind, subject, registered - timedelta(days=1))["found"] is False
            assert body(kind, subject, registered)["found"] is True


class TestProfiles:
    def test_profile_shares_over_two_thousand_ids(self) -> None:
        rng = random.Random(11)
        ids = [identities.uscc(rng) for _ in range(2000)]
        counts = {p: 0 for p in PROFILE_SHARES}
        for i in ids:
            counts[profile_of(i)] += 1
        for profile, share in PROFILE_SHARES.items():
            sd = (2000 * share * (1 - share)) ** 0.5
            assert abs(counts[profile] - 2000 * share) <= 4 * sd, (profile, counts)

    @pytest.mark.parametrize("kind", ["business", "person"])
    def test_subject_with_draws_a_valid_id_of_the_profile(self, kind: str) -> None:
        rng = random.Random(1)
        for profile in ("good", "overdue", "thin", "enforcement"):
            sid = subject_with(profile, rng, kind=kind)  # type: ignore[arg-type]
            assert profile_of(sid) == profile
            if kind == "business":
                assert validate_uscc(sid) == sid
            else:
                assert validate_resident_id(sid) == sid

    def test_a_person_is_never_a_shell(self) -> None:
        with pytest.raises(ValueError, match="profile"):
            subject_with("shell", random.Random(1), kind="person")
        rng = random.Random(2)
        people = [identities.resident_id(rng, date(1980, 1, 1) + timedelta(days=n)) for n in range(1500)]
        assert "shell" not in {profile_of(p) for p in people}

    def test_shells_issue_invoices_but_declare_next_to_no_sales(self) -> None:
        for subject in one_of("shell", 8):
            invoiced = sum(Decimal(m["issued_amount"]) for m in body("einvoice", subject)["months"][-12:])
            declared = sales_12m(body("tax", subject), "2026-10", "2025-11")
            assert invoiced > 0
            assert declared <= invoiced * Decimal("0.02")

    def test_declining_businesses_sell_over_thirty_percent_less_than_a_year_before(self) -> None:
        for subject in one_of("declining", 10):
            tax = body("tax", subject)
            last, before = sales_12m(tax, "2026-10", "2025-11"), sales_12m(tax, "2025-10", "2024-11")
            assert last < before * Decimal("0.7"), subject

    def test_good_businesses_mostly_hold_their_sales(self) -> None:
        growth = []
        for subject in one_of("good", 20):
            tax = body("tax", subject)
            growth.append(sales_12m(tax, "2026-10", "2025-11") / sales_12m(tax, "2025-10", "2024-11") - 1)
        assert sorted(growth)[10] > Decimal("-0.05")

    def test_thin_files_are_younger_than_a_year(self) -> None:
        for subject in one_of("thin", 8):
            registered = date.fromisoformat(body("registry", subject)["registered_on"])
            assert (ANCHOR - registered).days < 365
            assert len(body("tax", subject)["declarations"]) < 12
            bureau = body("bureau", subject)
            assert not bureau["found"] or bureau["credit_history_months"] < 12

    def test_overdue_subjects_have_overdue_history_and_others_mostly_not(self) -> None:
        for subject in one_of("overdue", 8) + one_of("overdue", 4, kind="person"):
            report = body("bureau", subject)
            assert report["overdue_months_24m"] > 0
            assert 1 <= report["max_overdue_level_24m"] <= 7
        clean = [body("bureau", s)["overdue_months_24m"] == 0 for s in one_of("good", 40)]
        assert sum(clean) >= 32

    def test_enforcement_subjects_have_an_open_dishonest_case(self) -> None:
        for subject in one_of("enforcement", 6) + one_of("enforcement", 3, kind="person"):
            cases = body("enforcement", subject)["cases"]
            assert any(c["status"] == "open" and c["dishonest"] for c in cases)
            assert all(re.match(r"^\(\d{4}\)\w\d{4}执\d+号$", c["case_no"]) for c in cases)
        for subject in one_of("good", 10):
            assert not any(c["dishonest"] for c in body("enforcement", subject)["cases"])


class TestRealism:
    def test_sales_scale_with_the_industry_and_the_entity(self) -> None:
        rng = random.Random(4)
        shops, factories = [], []
        while len(shops) < 5 or len(factories) < 5:
            sid = identities.uscc(rng)
            b = business_of(sid, 0, ANCHOR)
            assert b is not None
            if b.profile != "good":
                continue
            if b.industry == "retail" and b.individual:
                shops.append(sales_12m(body("tax", sid), "2026-10", "2025-11"))
            elif b.industry == "manufacturing" and not b.individual:
                factories.append(sales_12m(body("tax", sid), "2026-10", "2025-11"))
        assert all(Decimal(100_000) < s < Decimal(1_500_000) for s in shops[:5]), shops
        assert all(Decimal(1_200_000) < s < Decimal(15_000_000) for s in factories[:5]), factories

    def test_the_spring_festival_is_a_dip(self) -> None:
        assert festival_month_factor("manufacturing", 2026, 2) < 0.85  # 春节 2026-02-17
        assert festival_month_factor("manufacturing", 2025, 1) < festival_month_factor("manufacturing", 2025, 3)

    def test_card_takings_of_shops_follow_their_sales(self) -> None:
        checked = 0
        rng = random.Random(8)
        while checked < 6:
            sid = identities.uscc(rng)
            b = business_of(sid, 0, ANCHOR)
            assert b is not None
            if b.profile != "good" or b.industry not in ("retail", "catering") or b.merchant_since is None:
                continue
            flows = body("merchant", sid, date(2026, 11, 1))["days"]  # August, September, October
            taken = sum((Decimal(d["amount"]) for d in flows if d["date"] >= "2026-08-01"), Decimal(0))
            sold = sales_12m(body("tax", sid), "2026-10", "2026-08")
            assert sold * Decimal("0.4") < taken < sold, (sid, taken, sold)
            checked += 1

    def test_invoices_are_consistent_with_declared_sales(self) -> None:
        for subject in one_of("good", 15):
            b = business_of(subject, 0, ANCHOR)
            assert b is not None
            invoiced = sum(Decimal(m["issued_amount"]) for m in body("einvoice", subject)["months"][-12:])
            declared = sales_12m(body("tax", subject), "2026-10", "2025-11")
            assert invoiced <= declared * Decimal("1.1"), subject
            assert invoiced >= declared * Decimal("0.1"), subject

    def test_unknown_subjects_are_not_found(self) -> None:
        person = one_of("good", kind="person")[0]
        assert body("tax", "NOT-AN-ID")["found"] is False
        assert body("bureau", "91330782MA2ABCDEF0")["found"] is False  # a check character that does not fit
        for kind in ("tax", "einvoice", "registry"):
            assert body(kind, person) == {
                "subject": person,
                "found": False,
                "as_of": ANCHOR.isoformat(),
                "provider": f"sandbox-{kind}",
                "schema": f"{kind}/1",
            }
        assert body("enforcement", person)["found"] is True


class TestMoney:
    @settings(max_examples=40, deadline=None)
    @given(st.randoms(use_true_random=False), st.integers(0, 700))
    def test_money_is_two_decimals_and_adds_up(self, rng: random.Random, back: int) -> None:
        sid = identities.uscc(rng)
        as_of = ANCHOR - timedelta(days=back)
        payloads = {kind: body(kind, sid, as_of) for kind in KINDS}
        for kind, p in payloads.items():
            assert p["provider"] == f"sandbox-{kind}" and p["schema"] == f"{kind}/1" and p["subject"] == sid
            assert all(isinstance(v, str) and MONEY.match(v) for v in money_values(p)), kind
        inv = payloads["einvoice"]
        if inv["found"]:
            issued = sum((Decimal(m["issued_amount"]) for m in inv["months"][-12:]), Decimal(0))
            top = [Decimal(c["amount"]) for c in inv["top_customers_12m"]]
            assert sum(top, Decimal(0)) <= issued
            assert top == sorted(top, reverse=True)
            assert len(top) <= min(5, inv["counterparties_12m"])
            assert all(Decimal(m["red_amount"]) <= Decimal(m["issued_amount"]) for m in inv["months"])
            assert len(inv["months"]) == 24
        tax = payloads["tax"]
        b = business_of(sid, 0, ANCHOR)
        assert b is not None
        for d in tax.get("declarations", []):
            sales = Decimal(d["sales"])
            expected = (
                Decimal(0) if b.individual and sales <= 100_000 else (sales * b.vat_rate()).quantize(Decimal("0.01"))
            )
            assert Decimal(d["vat_paid"]) == expected
