"""The batch evaluator's reasons are built once per pattern of matched rules, and every row's reasons are the
ones the row-by-row reference and the rule engine give it, in the same order."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from tests.unit.marketing.test_live_rules import N, _frame

from microlend.decisioning.columnar import ColumnarPolicy
from microlend.decisioning.expressions import Hits, map_hits, map_hits_by_row
from microlend.decisioning.policy import CompiledPolicy, default_policy, outputs_from_engine
from microlend.marketing.bank_preapproval import live_policy_facts
from microlend.marketing.preapproval import OfferParameters

PARAMS = OfferParameters(product_code="EI-STD", requested_amount=Decimal("200000"), term_months=12)


def _hits(rows: int, rules: int, density: float, seed: int) -> Hits:
    rng = np.random.default_rng(seed)
    matrix = rng.random((rows, rules)) < density
    records = tuple({"code": f"R{j:03d}", "other": j} for j in range(rules))
    return Hits(matrix, records)


class TestReasonsByPattern:
    @pytest.mark.parametrize(("rules", "density"), [(1, 0.5), (7, 0.2), (8, 0.3), (9, 0.1), (64, 0.05),
                                                     (65, 0.05), (130, 0.02)])
    def test_each_row_gets_the_reference_tuple(self, rules: int, density: float) -> None:
        hits = _hits(2_000, rules, density, seed=rules)
        fast, reference = map_hits(hits, "code"), map_hits_by_row(hits, "code")
        assert fast.shape == reference.shape == (2_000,)
        assert list(fast) == list(reference)

    def test_rows_without_a_hit_have_no_reasons(self) -> None:
        hits = Hits(np.zeros((5, 3), dtype=bool), ({"code": "A"}, {"code": "B"}, {"code": "C"}))
        assert list(map_hits(hits, "code")) == [()] * 5

    def test_a_table_without_rules_gives_empty_tuples(self) -> None:
        hits = Hits(np.zeros((3, 0), dtype=bool), ())
        assert list(map_hits(hits, "code")) == [(), (), ()]

    def test_the_rule_order_is_kept_and_a_missing_key_is_none(self) -> None:
        matrix = np.array([[True, False, True], [False, True, True], [True, False, True]])
        hits = Hits(matrix, ({"code": "A"}, {}, {"code": "C"}))
        assert list(map_hits(hits, "code")) == [("A", "C"), (None, "C"), ("A", "C")]


_RECORD_VALUES = st.one_of(st.none(), st.text(max_size=4), st.integers(-3, 3), st.booleans())


@st.composite
def hit_tables(draw: st.DrawFn) -> Hits:
    """A collect table's hits as a batch sees them: a few recurring patterns of matched rules that differ from
    one another by a rule here and there (some rows with a pattern of their own), over 0 to 140 rules so
    one-byte, one-word and wider patterns all occur; the rules' records may lack the key, repeat a value or
    hold None."""
    rules = draw(st.one_of(st.sampled_from([1, 7, 8, 9, 63, 64, 65, 72, 129]), st.integers(0, 140)))
    pattern = st.sets(st.integers(0, rules - 1), max_size=rules) if rules else st.just(set[int]())
    base = draw(pattern)
    flips = st.integers(0, rules - 1) | st.integers(max(0, rules - 8), rules - 1)  # the last byte's too
    patterns = [base, *(base ^ {k} for k in draw(st.lists(flips, max_size=6)))] if rules else [base]
    rows = draw(st.lists(st.one_of(st.integers(0, len(patterns) - 1), pattern), max_size=120))
    matrix = np.zeros((len(rows), rules), dtype=bool)
    for i, r in enumerate(rows):
        matrix[i, sorted(patterns[r] if isinstance(r, int) else r)] = True
    if draw(st.booleans()):
        matrix = np.asfortranarray(matrix)  # a column-major matrix gives the same reasons
    records = tuple(draw(st.dictionaries(st.sampled_from(["code", "other"]), _RECORD_VALUES, max_size=2))
                    for _ in range(rules))
    return Hits(matrix, records)


class TestReasonsByPatternOnAnyHits:
    @settings(max_examples=150, deadline=None)
    @given(hit_tables())
    def test_every_row_gets_the_row_by_row_reasons(self, hits: Hits) -> None:
        fast, reference = map_hits(hits, "code"), map_hits_by_row(hits, "code")
        assert fast.shape == reference.shape == (hits.matrix.shape[0],)
        assert [type(t) for t in fast] == [tuple] * len(fast)
        assert list(fast) == list(reference)


def _engine_reasons(policy: CompiledPolicy, columns: dict[str, Any], n: int) -> list[tuple[str, ...] | None]:
    out: list[tuple[str, ...] | None] = []
    for i in range(n):
        context: dict[str, Any] = {}
        for path, col in columns.items():
            *heads, leaf = path.split(".")
            value = None if col.null[i] else col.data[i]
            node = context
            for head in heads:
                node = node.setdefault(head, {})
            node[leaf] = value.item() if isinstance(value, np.generic) else value
        try:
            out.append(outputs_from_engine(policy.evaluate_raw(context)["result"]).reasons)
        except Exception:  # the engine fails on this row: the batch refers it with ENGINE_ERROR
            out.append(None)
    return out


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_batch_gives_every_customer_the_engines_reasons(seed: int) -> None:
    frame, score = _frame(seed)
    facts = live_policy_facts(frame, score, PARAMS)
    batch = ColumnarPolicy(default_policy()).evaluate(facts, n=N)
    engine = _engine_reasons(CompiledPolicy(default_policy()), facts, N)
    varied = {tuple(r) for r in batch.reasons}
    assert len(varied) >= 5, "the sample should reach several different sets of reasons"
    for i in range(N):
        expected = engine[i]
        got = tuple(batch.reasons[i])
        assert got == (expected if expected is not None else ("ENGINE_ERROR",)), f"row {i}"
