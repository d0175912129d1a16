"""Champion/challenger split: stable per customer, close to the configured share."""

from __future__ import annotations

import pytest

from microlend.decisioning.arms import BUCKETS, bucket, choose_arm


def test_a_customer_always_lands_in_the_same_bucket() -> None:
    assert bucket(1, "customer-42") == bucket(1, "customer-42")
    # pinned: a change of hashing would silently move customers between arms
    assert bucket(1, "customer-42") == 4471


def test_the_same_customer_id_in_another_bank_is_split_independently() -> None:
    assert [bucket(1, f"c{i}") for i in range(50)] != [bucket(2, f"c{i}") for i in range(50)]


@pytest.mark.parametrize("share_bp", [0, 500, 2500, 5000, 10_000])
def test_the_challenger_share_is_close_to_the_configured_share(share_bp: int) -> None:
    customers = 20_000
    challengers = sum(choose_arm(7, f"cust-{i}", share_bp) == "challenger" for i in range(customers))
    expected = customers * share_bp / BUCKETS
    # binomial standard deviation at most 71 here; allow about four of them
    assert abs(challengers - expected) <= 300


def test_raising_the_share_only_moves_customers_into_the_challenger() -> None:
    ids = [f"cust-{i}" for i in range(2_000)]
    at_10 = {c for c in ids if choose_arm(3, c, 1000) == "challenger"}
    at_20 = {c for c in ids if choose_arm(3, c, 2000) == "challenger"}
    assert at_10 <= at_20


def test_a_share_outside_0_to_10000_is_refused() -> None:
    with pytest.raises(ValueError, match="basis points"):
        choose_arm(1, "c", 10_001)
