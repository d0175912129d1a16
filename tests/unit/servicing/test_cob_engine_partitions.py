"""The partitions of a close of business on a batch engine are fixed loan-id ranges: a rerun of the date finds
the same ranges whatever loans exist, and the ranges cover every loan once."""

from __future__ import annotations

from microlend.servicing.cob_engine import partitions


def test_the_ranges_cover_every_loan_once_and_do_not_depend_on_the_first_loan() -> None:
    assert list(partitions(1, 250, 100)) == [(1, 100), (101, 200), (201, 300)]
    assert list(partitions(150, 250, 100)) == [(101, 200), (201, 300)]
    assert list(partitions(100, 101, 100)) == [(1, 100), (101, 200)]
    covered = [i for lo, hi in partitions(37, 1_234, 64) for i in range(lo, hi + 1) if 37 <= i <= 1_234]
    assert covered == list(range(37, 1_235))
