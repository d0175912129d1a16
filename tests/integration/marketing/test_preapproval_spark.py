"""Pre-approval with its features on Spark stores the same offers as on the local engine, to the cent."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine

from microlend.batch.engine import BatchEngine, LocalEngine
from microlend.marketing.preapproval import PreapprovalInputs, run_preapproval
from microlend.marketing.synthetic import customer_base
from microlend.marketing.tables import OfferRow

from .conftest import Bank, make_bank

pytestmark = [pytest.mark.spark, pytest.mark.xdist_group("spark")]

AS_OF = date(2026, 3, 1)
AT = datetime(2026, 3, 1, 2, 0, tzinfo=UTC)


def _offers(bank: Bank, run_id: int) -> list[tuple[Any, ...]]:
    with bank.uow() as u:
        return [tuple(r) for r in u.session.execute(
            select(OfferRow.customer_id, OfferRow.limit, OfferRow.annual_rate, OfferRow.apr, OfferRow.expires_on,
                   OfferRow.risk_grade, OfferRow.score).where(OfferRow.run_id == run_id)
            .order_by(OfferRow.customer_id)).all()]


def test_the_same_offers_on_both_engines(marketing_engine: Engine, spark_engine: BatchEngine) -> None:
    tables, profile = customer_base(1200, seed=31, as_of=AS_OF)
    inputs = PreapprovalInputs(tables, profile)
    results = {}
    for name, engine in (("local", LocalEngine()), ("spark", spark_engine)):
        bank = make_bank(marketing_engine)  # a bank each: the same run in one bank would only be resumed
        summary = run_preapproval(bank.uow(), bank.who(), inputs, as_of=AS_OF, started_at=AT, engine=engine,
                                  chunk_rows=500)
        assert summary.status == "completed" and not summary.resumed
        results[name] = (summary.customers_total, summary.customers_in_segment, _offers(bank, summary.run_id))
    local, spark = results["local"], results["spark"]
    assert local[0] == 1200 and len(local[2]) > 50
    assert spark == local
