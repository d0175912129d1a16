"""The plain-Python pass over a provider's tables says yes only to what pandera passes: the same records come out
of every sandbox answer with or without it, and every broken table still goes to pandera, which words the error."""

from __future__ import annotations

import copy
import json
import random
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest
from pandera.errors import SchemaErrors

from microlend.data.providers import ProviderDataError, contracts, parse
from microlend.demo.sandbox import KINDS, PROFILES, payload, subject_with

ANCHOR = date(2026, 11, 30)
TABLES = {("tax", "declarations"), ("einvoice", "months"), ("einvoice", "top_customers_12m"), ("merchant", "days"),
          ("registry", "changes"), ("enforcement", "cases")}


def answers() -> list[tuple[str, str, dict[str, Any]]]:
    rng, out = random.Random(5), []
    for profile in PROFILES:
        for person in (False, True):
            if person and profile == "shell":
                continue
            subject = subject_with(profile, rng, "person" if person else "business")
            for kind in KINDS:
                for back in (0, 45, 200):
                    out.append((kind, subject, payload(kind, subject, ANCHOR - timedelta(days=back), seed=0,
                                                       anchor=ANCHOR)))
    return out


def pandera_passes(kind: str, name: str, rows: list[dict[str, Any]]) -> bool:
    try:
        contracts._tables()[(kind, name)].validate(pd.DataFrame.from_records(rows), lazy=True)
    except SchemaErrors:
        return False
    return True


def test_every_table_is_known_to_the_shortcut() -> None:
    plain = contracts._plain_rules()
    assert set(plain) == TABLES and all(plain[t] is not None for t in TABLES)


def test_sandbox_answers_give_the_same_records_with_and_without_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cases = answers()
    fast = [parse(kind, json.dumps(body, ensure_ascii=False), subject=subject) for kind, subject, body in cases]
    shortcut_taken = sum(1 for kind, _, body in cases for t in TABLES if t[0] == kind and body.get(t[1])
                         and contracts._keeps_contract(kind, t[1], body[t[1]]))
    monkeypatch.setattr(contracts, "_keeps_contract", lambda kind, name, rows: False)
    slow = [parse(kind, json.dumps(body, ensure_ascii=False), subject=subject) for kind, subject, body in cases]
    assert fast == slow and sum(r is not None for r in fast) > 50
    assert shortcut_taken > 50  # the sandbox's tables keep their contract and take the short way


def _broken(rows: list[dict[str, Any]], rng: random.Random) -> list[dict[str, Any]]:
    """One small breach: a value of another type or shape, a key missing or added, a row repeated."""
    rows = copy.deepcopy(rows)
    row = rng.choice(rows)
    column = rng.choice(sorted(row))
    value = row[column]
    how = rng.choice(("type", "shape", "missing", "extra", "repeat", "none", "unicode", "newline"))
    if how == "type":
        row[column] = {str: 12, int: "12", bool: 1}.get(type(value), True)
    elif how == "shape" and isinstance(value, str):
        row[column] = value + "x"
    elif how == "shape" and type(value) is int:
        row[column] = rng.choice((-1, 2**63, True, 1.0))
    elif how == "missing":
        del row[column]
    elif how == "extra":
        row["other"] = 1
    elif how == "repeat":
        rows.append(copy.deepcopy(row))
    elif how == "none":
        row[column] = None
    elif how == "unicode" and isinstance(value, str):
        row[column] = value.replace("1", "١").replace("2", "٢")  # Arabic-Indic digits: \d in a Unicode regex
    elif how == "newline" and isinstance(value, str):
        row[column] = value + "\n"
    return rows


def test_a_table_the_shortcut_passes_is_one_pandera_passes() -> None:
    rng, tried, refused = random.Random(9), 0, 0
    for kind, _, body in answers():
        for table_kind, name in TABLES:
            rows = body.get(name) if table_kind == kind else None
            if not rows:
                continue
            for _ in range(6):
                broken = _broken(rows, rng)
                tried += 1
                if contracts._keeps_contract(kind, name, broken):
                    assert pandera_passes(kind, name, broken), (kind, name, broken)
                else:
                    refused += 1
    assert tried > 300 and refused > tried / 2


def test_a_broken_table_is_still_worded_by_pandera() -> None:
    subject = subject_with("good", random.Random(2))
    body = payload("tax", subject, ANCHOR, seed=0, anchor=ANCHOR)
    body["declarations"][3]["sales"] = "12.5"
    with pytest.raises(ProviderDataError) as caught:
        parse("tax", json.dumps(body), subject=subject)
    assert str(caught.value).startswith("tax: declarations[3].sales: an amount is a string with 2 decimals")
