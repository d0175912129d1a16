"""The facts of a recorded answer that whole-book jobs read (the early-warning scan), extracted once when the
answer arrives (`facts_of`, called by the gateway as it records the call) and kept in `data_answer_facts`, so
a scan over a million loans reads columns instead of decrypting and parsing each answer again.

Tax declarations and merchant takings are kept as prefix sums (cents, and rows) over a dense run of months /
days, so the sum over any window of a later `as_of` is two look-ups (the early-warning read cuts the two from
the blob in the database: `data.queries.answer_facts`). Answers recorded before the table existed get their
facts on first need (`backfill`)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import date
from typing import Any

import numpy as np
from sqlalchemy import select

from microlend.core import crypto
from microlend.core.errors import ValidationError
from microlend.core.uow import UnitOfWork
from microlend.data.business import _cents, _day, _period
from microlend.data.tables import AnswerFactsRow, ProviderCallRow

#: The sources whose answers have facts kept (the early-warning scan's).
KINDS = ("tax", "merchant", "enforcement", "bureau")
#: Statuses whose recorded answer says something about the subject (found or not).
KEPT = ("ok", "not_found")
_CHUNK = 500


def _month_index(d: date) -> int:
    return d.year * 12 + d.month


def _prefix(keyed: list[tuple[int, int]]) -> tuple[int | None, bytes | None, bytes | None]:
    """(first key, prefix sums of the values, prefix counts of the rows) over the dense keys first..last."""
    if not keyed:
        return None, None, None
    keys = np.array([k for k, _ in keyed], dtype=np.int64)
    values = np.array([v for _, v in keyed], dtype=np.int64)
    first = int(keys.min())
    length = int(keys.max()) - first + 1
    sums = np.zeros(length + 1, dtype="<i8")
    counts = np.zeros(length + 1, dtype="<i8")
    np.add.at(sums, keys - first + 1, values)
    np.add.at(counts, keys - first + 1, 1)
    return first, np.cumsum(sums).astype("<i8").tobytes(), np.cumsum(counts).astype("<i8").tobytes()


def _flag(value: bool) -> str:
    return "1" if value else "0"


def facts_of(kind: str, payload: Mapping[str, Any]) -> dict[str, Any]:
    """The kept facts (columns of `AnswerFactsRow` besides the call's own) of one parsed answer."""
    found = payload.get("found") is True
    out: dict[str, Any] = {"found": found, "series_first": None, "series": None, "counts": None,
                           "overdue_now": None, "overdue_level": None, "cases": None}
    if kind == "tax" and found:
        first, series, counts = _prefix([(_month_index(_period(d["period"], "tax.period")),
                                          _cents(d["sales"], "tax.sales")) for d in payload.get("declarations") or []])
        out.update(series_first=first, series=series, counts=counts)
    elif kind == "merchant" and found:
        first, series, counts = _prefix([(_day(d["date"], "merchant.date").toordinal(),
                                          _cents(d["amount"], "merchant.amount")) for d in payload.get("days") or []])
        out.update(series_first=first, series=series, counts=counts)
    elif kind == "bureau":
        out.update(overdue_now=int(payload.get("overdue_accounts_now") or 0),
                   overdue_level=int(payload.get("max_overdue_level_24m") or 0))
    elif kind == "enforcement":
        cases = [[str(c.get("case_no")), _flag(c.get("status") == "open"), _flag(c.get("dishonest") is True),
                  _flag(bool(c.get("dishonest")))] for c in payload.get("cases") or () if isinstance(c, Mapping)]
        out["cases"] = json.dumps(cases, ensure_ascii=False) if cases else None
    return out


def row_of(call: ProviderCallRow, text: str) -> AnswerFactsRow | None:
    """The facts row of a kept call of a kept kind whose answer is `text` (None otherwise, or when the answer
    cannot be read as the contract says: its facts stay unknown)."""
    if call.kind not in KINDS or call.status not in KEPT:
        return None
    try:
        facts = facts_of(call.kind, json.loads(text))
    except (ValidationError, ValueError, TypeError, KeyError, AttributeError):
        return None
    return AnswerFactsRow(call_id=call.id, tenant_id=call.tenant_id, subject_index=call.subject_index,
                          kind=call.kind, at=call.at, **facts)


def backfill(uow: UnitOfWork, tenant_id: int) -> int:
    """Facts for the bank's kept answers recorded without them (before the table existed); how many."""
    with uow:
        s = uow.session
        missing = list(s.execute(select(ProviderCallRow.id).where(
            ProviderCallRow.tenant_id == tenant_id, ProviderCallRow.kind.in_(KINDS),
            ProviderCallRow.status.in_(KEPT), ProviderCallRow.payload.is_not(None),
            ~select(AnswerFactsRow.call_id).where(AnswerFactsRow.call_id == ProviderCallRow.id).exists()))
            .scalars())
        if not missing:
            return 0
        made = 0
        for start in range(0, len(missing), _CHUNK):
            for call in s.execute(select(ProviderCallRow).where(
                    ProviderCallRow.id.in_(missing[start:start + _CHUNK]))).scalars():
                assert call.payload is not None
                row = row_of(call, crypto.decrypt(call.payload))
                if row is not None:
                    s.add(row)
                    made += 1
            s.flush()
            s.expunge_all()
        uow.commit()
    return made
