"""PSI/CSI as an engine job (here on the local engine): the figures equal the in-memory functions'
(`psi_edges`, `bin_shares`, `_shares_with_missing`, `score_stability`) on seeded populations with ties at the
edges, missing values and categories never seen before."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from tests.analytics_books import generated_population

from microlend.core.errors import ValidationError
from microlend.risk.monitoring import _shares_with_missing, score_stability
from microlend.risk.monitoring_jobs import Profile, interpolate, quantile_ranks, stability_on
from microlend.risk.validation import bin_shares, psi_edges, psi_from_shares


class TestNumpyQuantilesFromOrderStatistics:
    @pytest.mark.parametrize("n", [1, 2, 3, 9, 10, 11, 97, 1000, 4099])
    def test_edges_equal_psi_edges_bit_for_bit(self, n: int) -> None:
        rng = np.random.default_rng(n)
        for values in (rng.normal(size=n), np.round(rng.normal(size=n) * 3) / 7, rng.integers(0, 4, n) * 0.1):
            ordered = np.sort(values)
            below, above, gamma = quantile_ranks(n)
            assert interpolate(ordered[below], ordered[above], gamma) == psi_edges(values)


def _reference(expected: pd.DataFrame, actual: pd.DataFrame) -> dict[str, float]:
    e_scores = expected["score"].to_numpy()
    edges = psi_edges(e_scores)
    out = {"score": psi_from_shares(bin_shares(e_scores, edges), bin_shares(actual["score"].to_numpy(), edges))}
    for name in ("income", "region"):
        ref, live = _shares_with_missing(actual[name].rename(name), expected[name].rename(name))
        out[name] = psi_from_shares(ref, live)
    return out


COLUMNS = {"score": "score", "income": "numeric", "region": "categorical"}


@pytest.mark.parametrize(("seed", "shift"), [(1, 0.0), (2, 0.5), (3, 1.0)])
def test_local_job_equals_the_in_memory_figures(seed: int, shift: float) -> None:
    expected = generated_population(3000, seed)
    actual = generated_population(2000, seed + 100, shift=shift)
    got = {s.column: s for s in stability_on("local", expected, actual, COLUMNS)}
    want = _reference(expected.to_pandas(), actual.to_pandas())
    assert list(got) == list(COLUMNS)
    for name, value in want.items():
        assert got[name].psi == pytest.approx(value, abs=1e-12), name
    if shift >= 0.5:
        assert got["score"].status != "stable"


def test_filters_choose_the_rows_of_each_side() -> None:
    both = generated_population(4000, 7)
    got = stability_on("local", both, both, {"score": "score"}, expected_where="id < 2000",
                       actual_where="id >= 2000")
    frame = both.to_pandas()
    e, a = frame["score"].to_numpy()[:2000], frame["score"].to_numpy()[2000:]
    edges = psi_edges(e)
    assert got[0].bins == edges
    assert got[0].psi == pytest.approx(psi_from_shares(bin_shares(e, edges), bin_shares(a, edges)), abs=1e-12)


def test_a_development_profile_gives_the_bins_and_expected_shares() -> None:
    live = generated_population(2500, 9, shift=0.3)
    development = {"score_edges": [520.0, 560.0, 600.0, 640.0, 680.0],
                   "score_shares": [0.1, 0.15, 0.25, 0.25, 0.15, 0.1]}
    (got,) = stability_on("local", live, live, {"score": "score"},
                          profiles={"score": Profile(development["score_edges"], development["score_shares"])})
    want = score_stability(development, live.column("score").to_numpy(zero_copy_only=False))
    assert got.psi == pytest.approx(want["psi"], abs=1e-12)
    assert got.actual == pytest.approx(want["live_shares"], abs=1e-15)


def test_an_expected_side_without_scores_is_refused() -> None:
    empty = pa.table({"score": pa.array([None, None], type=pa.float64())})
    with pytest.raises(ValidationError, match="no values"):
        stability_on("local", empty, generated_population(10, 1), {"score": "score"})


def test_a_column_name_that_is_not_plain_is_refused() -> None:
    pop = generated_population(10, 1)
    with pytest.raises(ValidationError, match="plain column"):
        stability_on("local", pop, pop, {"score; DROP": "score"})
